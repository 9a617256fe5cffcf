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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

from voicetune.errors import VoicetuneError
from voicetune.records import Turn, load_records, write_records

Kind = Literal["model", "draft", "pipecat", "reference", "endpoint"]
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

    @property
    def deterministic(self) -> bool:
        """Whether its response does not depend on the seed (answered once for all seeds)."""
        return SYSTEMS[self.kind].deterministic


@dataclass(frozen=True)
class SystemType:
    """One kind of system spec, registered in :data:`SYSTEMS`.

    Attributes:
        kind: the name ``System.kind`` carries.
        parse: ``(name, spec) -> System`` when the spec is of this kind, else None.
        identity: what the system's responses are made from, for their fingerprint (a model's weights hash,
            an endpoint's URL and model name, the formatter's version).
        texts: for deterministic kinds, the response to each turn (None: the turn is left out).
    """

    kind: Kind
    parse: Callable[[str, str], "System | None"]
    identity: Callable[["System"], dict]
    texts: Callable[[Sequence[Turn]], list[str | None]] | None = None

    @property
    def deterministic(self) -> bool:
        return self.texts is not None


def _exact(kind: Kind, spec_text: str):
    def parse(name: str, spec: str) -> System | None:
        if spec == spec_text:
            return System(name, spec, kind)
        if spec.removesuffix("+voice") == spec_text and spec.endswith("+voice"):
            raise VoicetuneError(f"--system '{name}={spec}': +voice applies to models, not to '{spec_text}'")
        return None

    return parse


def _parse_endpoint(name: str, spec: str) -> System | None:
    base = spec.removesuffix("+voice")
    if not base.startswith("endpoint:"):
        return None
    url, _, api_model = base.removeprefix("endpoint:").rpartition("#")
    if not url or not api_model or not re.match(r"^https?://", url):
        raise VoicetuneError(f"--system '{name}={spec}': expected endpoint:URL#MODEL, e.g. endpoint:http://127.0.0.1:8080/v1#my-model")
    return System(name, spec, "endpoint", voice=spec.endswith("+voice"), endpoint=url, api_model=api_model)


def _parse_model(name: str, spec: str) -> System:
    return System(name, spec, "model", model=spec.removesuffix("+voice"), voice=spec.endswith("+voice"))


def _model_identity(system: System) -> dict:
    from voicetune.provenance import model_identity

    return {"model": model_identity(system.model or ""), "voice": system.voice}


def _pipecat_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pipecat-ai")
    except PackageNotFoundError:
        return "absent"


#: System kinds, tried in this order when parsing a spec (a model path is the fallback): adding a system
#: spec is one entry here.
SYSTEMS: dict[str, SystemType] = {
    "draft": SystemType("draft", _exact("draft", "draft"), lambda s: {}, lambda turns: [t.draft for t in turns]),
    "pipecat": SystemType("pipecat", _exact("pipecat", "draft+pipecat"), lambda s: {"pipecat": _pipecat_version()},
                          lambda turns: _pipecat_texts(turns)),
    "reference": SystemType("reference", _exact("reference", "reference"), lambda s: {}, lambda turns: [t.reference for t in turns]),
    "endpoint": SystemType("endpoint", _parse_endpoint, lambda s: {"endpoint": s.endpoint, "model": s.api_model, "voice": s.voice}),
    "model": SystemType("model", lambda name, spec: _parse_model(name, spec), _model_identity),
}
#: Kinds whose response does not depend on the seed.
DETERMINISTIC: frozenset[str] = frozenset(kind for kind, t in SYSTEMS.items() if t.deterministic)


def parse_system(text: str) -> System:
    """Parse ``NAME=SPEC`` (or a bare ``SPEC``) into a :class:`System`; a bad spec raises a clear error."""
    name, _, spec = text.partition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    spec = spec.strip()
    name = name.strip() or spec.replace("endpoint:", "").split("#")[-1].replace("/", "_")
    if not spec:
        raise VoicetuneError(f"--system '{text}': empty spec (expected NAME=SPEC, e.g. tuned=runs/train/model)")
    if not _NAME.match(name):
        raise VoicetuneError(f"--system '{text}': the name '{name}' must be letters, digits and . _ + - (it names a file)")
    for system_type in SYSTEMS.values():
        system = system_type.parse(name, spec)
        if system is not None:
            return system
    raise VoicetuneError(f"--system '{text}': not a system spec")  # unreachable: a model path is the fallback


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


def _pipecat_texts(turns: Sequence[Turn]) -> list[str | None]:
    usable = [i for i, t in enumerate(turns) if t.draft]
    formatted = pipecat_format([turns[i].draft for i in usable])
    texts: list[str | None] = [None] * len(turns)
    for index, text in zip(usable, formatted):
        texts[index] = text
    return texts


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
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """The system's response for each turn (``turn.id -> text``), written to ``folder/NAME.jsonl``.

    ``folder/NAME.fingerprint.json`` records what the responses were made from: the system's identity (a
    model's weights hash, an endpoint's URL and model name, the formatter's version), the seed and sampling
    settings, and for deterministic systems the turns. A file made from anything else is moved to
    ``folder/.superseded/`` with a one-line notice and made again; retraining a model into the same path
    therefore regenerates its responses. Model rows are also reused only for turns whose prompt is unchanged.
    """
    from voicetune.models.generate import SamplingConfig, generate_turns
    from voicetune.models.prompts import load_style_prompt
    from voicetune.provenance import Step, digest, hash_records, package_version

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{system.name}{file_suffix}.jsonl"
    system_type = SYSTEMS[system.kind]
    style = load_style_prompt("default") if system.voice else None
    made_from: dict = {"system": {"kind": system.kind, **system_type.identity(system)}, "version": package_version()}
    if system_type.deterministic:
        made_from["turns"] = hash_records(turns)
    else:
        made_from.update({"seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature, "style_prompt": digest(style)})
    step = Step(folder / f"{system.name}{file_suffix}.fingerprint.json", [path, path.with_name(path.name + ".partial")], made_from,
                name=f"responses {system.name}{file_suffix}", log=log)
    (folder / f"{system.name}{file_suffix}.settings.json").unlink(missing_ok=True)  # the record of earlier versions

    if system_type.deterministic:
        if step.done and path.is_file():
            if path.stat().st_size == 0:  # a system with nothing to say on these turns (no references in the data)
                return {}
            return {t.id: t.response for t in load_records(path) if t.response is not None}
        step.begin()
        written = [t.model_copy(update={"response": text}) for t, text in zip(turns, system_type.texts(turns)) if text]
        write_records(path, written)
        step.finish(responses=len(written))
        return {t.id: t.response for t in written}

    if not step.done:
        step.begin()
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=max(temperature, 1e-5), do_sample=temperature > 0, seed=seed)
    generated = generate_turns(backend_for(system), list(turns), path, style, sampling, progress=progress)
    step.finish(responses=len(generated))
    return {t.id: t.response or "" for t in generated}
