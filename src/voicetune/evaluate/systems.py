"""Systems under evaluation: what produces a spoken response for a turn.

A system is given on the command line as ``NAME=SPEC`` (or just ``SPEC``, then the name is the spec):

    smollm2-135m, runs/X/model, an HF id   a model, as ``voicetune generate`` takes it
    MODEL+voice                            the same model with the voice style prompt (the prompted base)
    draft                                  the written draft read aloud as it is
    draft+pipecat                          the draft through Pipecat's rule-based ``VoiceFormatter``
    reference                              the records' spoken ``reference`` (turns without one are left out)
    endpoint:URL#MODEL[+voice]             any OpenAI-compatible model

Responses are written to ``DIR/responses/NAME.jsonl`` and reused on a re-run: a model's finished rows are
never generated twice (see :func:`voicetune.models.generate.generate_turns`).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

from voicetune.errors import VoicetuneError
from voicetune.records import Turn, atomic_write_text, write_records

Kind = Literal["model", "draft", "pipecat", "reference", "endpoint"]
#: Systems whose response does not depend on the seed.
DETERMINISTIC: frozenset[str] = frozenset({"draft", "pipecat", "reference"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class System:
    """One system: its name in tables and file names, what it is, and how to run it."""

    name: str
    spec: str
    kind: Kind
    model: str | None = None
    voice: bool = False
    endpoint: str | None = None
    api_model: str | None = None


def parse_system(text: str) -> System:
    """Parse ``NAME=SPEC`` (or a bare ``SPEC``) into a :class:`System`; a bad spec raises a clear error."""
    name, _, spec = text.partition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    spec = spec.strip()
    name = name.strip() or spec.replace("endpoint:", "").split("#")[-1].replace("/", "_")
    if not spec:
        raise VoicetuneError(f"--system '{text}': empty spec (expected NAME=SPEC, e.g. tuned=runs/train/model)")
    if not _NAME.match(name):
        raise VoicetuneError(f"--system '{text}': the name '{name}' must be letters, digits and . _ + - (it names a file)")
    voice = spec.endswith("+voice")
    base = spec.removesuffix("+voice")
    if spec == "draft":
        return System(name, spec, "draft")
    if spec == "draft+pipecat":
        return System(name, spec, "pipecat")
    if spec == "reference":
        return System(name, spec, "reference")
    if base.startswith("endpoint:"):
        url, _, api_model = base.removeprefix("endpoint:").rpartition("#")
        if not url or not api_model or not re.match(r"^https?://", url):
            raise VoicetuneError(f"--system '{text}': expected endpoint:URL#MODEL, e.g. endpoint:http://127.0.0.1:8080/v1#my-model")
        return System(name, spec, "endpoint", voice=voice, endpoint=url, api_model=api_model)
    if base in ("draft", "reference"):
        raise VoicetuneError(f"--system '{text}': +voice applies to models, not to '{base}'")
    return System(name, spec, "model", model=base, voice=voice)


def pipecat_format(texts: Sequence[str]) -> list[str]:
    """Each text through Pipecat's ``VoiceFormatter`` with its default transforms (markdown stripping,
    currency, dates, phone numbers, emails, acronyms): the rule-based formatter voice agents put in front of
    their TTS today."""
    try:
        from loguru import logger

        logger.disable("pipecat")  # Pipecat logs a banner on import; the evaluation's output is ours
        from pipecat.utils.text.transforms.voice_formatter import VoiceFormatter
    except ImportError:
        raise VoicetuneError("draft+pipecat needs Pipecat: pip install 'voicetune[pipecat]' (make install includes it)") from None
    formatter = VoiceFormatter()

    async def run_all() -> list[str]:
        return [await formatter(text, "sentence") for text in texts]

    return asyncio.run(run_all())


def system_responses(
    system: System,
    turns: Sequence[Turn],
    folder: Path,
    seed: int,
    backend_for: Callable[[System], object],
    max_new_tokens: int = 96,
    temperature: float = 0.7,
    progress: bool = True,
    file_suffix: str = "",
) -> dict[str, str]:
    """The system's response for each turn (``turn.id -> text``), written to ``folder/NAME.jsonl``.

    Model and endpoint responses are sampled with ``seed`` and cached: a re-run reuses every finished row.
    A cached file made by a different spec, seed or sampling is set aside and regenerated, never mixed in.
    """
    from voicetune.models.generate import SamplingConfig, generate_turns
    from voicetune.models.prompts import load_style_prompt

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{system.name}{file_suffix}.jsonl"
    settings = {**asdict(system), "seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature}
    settings_path = folder / f"{system.name}{file_suffix}.settings.json"
    if settings_path.exists() and json.loads(settings_path.read_text(encoding="utf-8")) != settings:
        for stale in (path, path.with_name(path.name + ".partial")):
            if stale.exists():
                stale.rename(stale.with_name(stale.name + ".stale"))
    atomic_write_text(settings_path, json.dumps(settings, indent=2) + "\n")

    if system.kind in DETERMINISTIC:
        usable = [t for t in turns if (t.reference if system.kind == "reference" else t.draft)]
        texts = [t.reference if system.kind == "reference" else t.draft for t in usable]
        if system.kind == "pipecat":
            texts = pipecat_format(texts)
        written = [t.model_copy(update={"response": text}) for t, text in zip(usable, texts)]
        write_records(path, written)
        return {t.id: t.response for t in written}

    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=max(temperature, 1e-5), do_sample=temperature > 0, seed=seed)
    style = load_style_prompt("default") if system.voice else None
    generated = generate_turns(backend_for(system), list(turns), path, style, sampling, progress=progress)
    return {t.id: t.response or "" for t in generated}
