"""Configuration files: read a YAML file into a pydantic model with one-line errors, and describe every field.

Every config of voicetune (training, evaluation, the scorer) is a pydantic model whose fields all have a
default and a ``description``; :func:`load_yaml_config` reads one, :func:`describe_config` lists its fields
for ``--help-config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from voicetune.errors import VoicetuneError
from voicetune.records import invalid_text_field, missing_reason

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_yaml_mapping(path: str | Path) -> dict:
    """The mapping a YAML config file holds; errors name the file (and line)."""
    path = Path(path)
    if not path.is_file():
        reason = missing_reason(path)
        raise VoicetuneError(
            f"{path}: no such config file"
            if reason == "no such file or folder"
            else f"{path}: expected a YAML config file, found "
            f"{'a folder' if path.is_dir() else 'not a regular file' if reason == 'exists' else reason}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise VoicetuneError(f"{path}: not UTF-8 text, expected a YAML config") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise VoicetuneError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', error)})") from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise VoicetuneError(f"{path}: nested too deeply to be a config") from None
    if not isinstance(data, dict):
        raise VoicetuneError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    where = invalid_text_field(data)
    if where is not None:  # a lone surrogate ("\ud800") would pass validation and fail at the stage that writes it
        raise VoicetuneError(f"{path}: field '{where}': not valid Unicode text (a lone surrogate)")
    return data


def validation_message(error: ValidationError, where: str, prefix: str = "") -> str:
    """One line naming ``where`` and the dotted field of the first validation error."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(config)"
    message = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"].lower()
    return f"{where}: field '{prefix}{field}': {message}"


def load_yaml_config(model: type[ModelT], path: str | Path | None, overrides: dict | None = None) -> ModelT:
    """Read a YAML config (or the defaults when ``path`` is None), apply ``overrides`` (None values ignored)
    and validate; errors name the file and the dotted field."""
    data: dict[str, Any] = read_yaml_mapping(path) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise VoicetuneError(validation_message(error, str(path) if path is not None else "defaults")) from None


def dump_yaml(config: BaseModel) -> str:
    """A config as YAML, every default written out (what a run directory records)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _type_name(annotation: Any) -> str:
    text = (
        str(annotation)
        if get_origin(annotation) is not None
        else getattr(annotation, "__name__", None) or str(annotation)
    )
    return text.replace("typing.", "").replace("NoneType", "None")


def describe_config(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Every field of a config model, nested sections flattened: ``(dotted name, type, default, description)``."""
    rows: list[tuple[str, str, str, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        dotted = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.append((dotted, "section", "", info.description or (annotation.__doc__ or "").strip().splitlines()[0]))
            rows += describe_config(annotation, dotted + ".")
            continue
        default = info.get_default(call_default_factory=True)
        rows.append(
            (
                dotted,
                _type_name(annotation),
                yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip(),
                info.description or "",
            )
        )
    return rows


def undocumented_fields(model: type[BaseModel]) -> list[str]:
    """Dotted names of fields without a description (a test keeps this empty for every config)."""
    return [name for name, _, _, description in describe_config(model) if not description.strip()]


def config_help_text(model: type[BaseModel], title: str) -> str:
    """``--help-config``: every field with its type, default and what it does."""
    lines = [title, ""]
    for name, kind, default, description in describe_config(model):
        if kind == "section":
            lines += ["", f"{name}:  {description}"]
        else:
            lines.append(f"  {name} ({kind}, default {default}): {description}")
    return "\n".join(lines).strip() + "\n"
