"""Models: loading (embedded GGUF, Hugging Face id, local directory), prompts, generation backends."""

from voicetune.models.loading import DEFAULT_MODEL, load_model, load_tokenizer, resolve_model
from voicetune.models.prompts import DEFAULT_STYLE_PROMPT, build_messages

__all__ = ["DEFAULT_MODEL", "DEFAULT_STYLE_PROMPT", "build_messages", "load_model", "load_tokenizer", "resolve_model"]
