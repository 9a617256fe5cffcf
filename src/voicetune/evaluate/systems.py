"""Systems under evaluation: what produces a spoken response for a turn.

A system is given on the command line as ``NAME=SPEC`` (or just ``SPEC``, then the name is the spec):

    smollm2-135m, runs/X/model, an HF id   a model, as ``voicetune generate`` takes it
    MODEL+voice                            the same model with the voice style prompt (the prompted base)
    MODEL+numbers                          digits only from the prompt (a logits processor:
                                           :mod:`voicetune.models.constrain`; transformers models)
    MODEL+best4                            best-of-N decoding: 4 samples, the one the reward rates highest
    MODEL+guard                            guarded decoding: a response the learned judge does not call usable
                                           is replaced by the draft said faithfully (``draft+voicetune``,
                                           marked ``meta.fallback``); combine as ``MODEL+best4+guard``
    draft                                  the written draft read aloud as it is
    draft+pipecat                          the draft through Pipecat's rule-based ``VoiceFormatter``
    draft+voicetune                        the draft said faithfully by :func:`voicetune.verbalize.speak_draft`
    reference                              the records' spoken ``reference`` (turns without one are left out)
    endpoint:URL#MODEL[+voice]             any OpenAI-compatible model

Responses are written to ``DIR/responses/NAME.jsonl`` and reused on a re-run: a model's finished rows are
never generated twice (see :func:`voicetune.models.generate.generate_turns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from voicetune.errors import VoicetuneError
from voicetune.judge.decode import DECODER_VERSION, pick
from voicetune.judge.learned import default_judge
from voicetune.models.generate import DEFAULT_SAMPLING, SamplingConfig, generate_turns
from voicetune.models.loading import model_identity
from voicetune.models.prompts import load_style_prompt
from voicetune.provenance import Step, digest, hash_records, package_version
from voicetune.quality import ScorerConfig
from voicetune.quality.scorer import prefetch_meaning
from voicetune.records import Turn, load_records, write_records
from voicetune.verbalize import VERBALIZER_VERSION, formatted_draft, speak_draft

Kind = Literal["model", "draft", "pipecat", "voicetune", "reference", "endpoint"]
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
    best_of: int = 1
    guard: bool = False
    numbers: bool = False

    @property
    def decoded(self) -> bool:
        """Whether responses are chosen among candidates (best-of-N) or guarded, not taken as sampled."""
        return self.best_of > 1 or self.guard

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
    parse: Callable[[str, str], System | None]
    identity: Callable[[System], dict]
    texts: Callable[[Sequence[Turn]], list[str | None]] | None = None

    @property
    def deterministic(self) -> bool:
        return self.texts is not None


def _exact(kind: Kind, spec_text: str):
    def parse(name: str, spec: str) -> System | None:
        if spec == spec_text:
            return System(name, spec, kind)
        if _options(name, spec)[0] == spec_text:
            raise VoicetuneError(
                f"--system '{name}={spec}': +voice, +numbers, +bestN and +guard apply to models, not to '{spec_text}'"
            )
        return None

    return parse


_SUFFIX = re.compile(r"\+(voice|guard|numbers|best(\d+))$")


def _options(name: str, spec: str) -> tuple[str, dict]:
    """A generator spec without its ``+voice``, ``+bestN`` and ``+guard`` suffixes (any order), and those options."""
    options: dict = {"voice": False, "best_of": 1, "guard": False, "numbers": False}
    while match := _SUFFIX.search(spec):
        if match.group(1) == "voice":
            options["voice"] = True
        elif match.group(1) == "guard":
            options["guard"] = True
        elif match.group(1) == "numbers":
            options["numbers"] = True
        else:
            options["best_of"] = int(match.group(2))
            if not 2 <= options["best_of"] <= 64:
                raise VoicetuneError(f"--system '{name}={spec}': +bestN takes N from 2 to 64")
        spec = spec[: match.start()]
    return spec, options


def _parse_endpoint(name: str, spec: str) -> System | None:
    base, options = _options(name, spec)
    if not base.startswith("endpoint:"):
        return None
    url, _, api_model = base.removeprefix("endpoint:").rpartition("#")
    if not url or not api_model or not re.match(r"^https?://", url):
        raise VoicetuneError(
            f"--system '{name}={spec}': expected endpoint:URL#MODEL, e.g. endpoint:http://127.0.0.1:8080/v1#my-model"
        )
    return System(name, spec, "endpoint", endpoint=url, api_model=api_model, **options)


def _parse_model(name: str, spec: str) -> System:
    base, options = _options(name, spec)
    return System(name, spec, "model", model=base, **options)


def _decoding(system: System) -> dict:
    return {"best_of": system.best_of, "guard": system.guard} if system.decoded else {}


def _model_identity(system: System) -> dict:
    return {
        "model": model_identity(system.model or ""),
        "voice": system.voice,
        **({"numbers": True} if system.numbers else {}),
        **_decoding(system),
    }


def _pipecat_version() -> str:
    try:
        return version("pipecat-ai")
    except PackageNotFoundError:
        return "absent"


#: System kinds, tried in this order when parsing a spec (a model path is the fallback): adding a system
#: spec is one entry here.
SYSTEMS: dict[str, SystemType] = {
    "draft": SystemType("draft", _exact("draft", "draft"), lambda s: {}, lambda turns: [t.draft for t in turns]),
    "pipecat": SystemType(
        "pipecat",
        _exact("pipecat", "draft+pipecat"),
        lambda s: {"pipecat": _pipecat_version()},
        lambda turns: _pipecat_texts(turns),
    ),
    "voicetune": SystemType(
        "voicetune",
        _exact("voicetune", "draft+voicetune"),
        lambda s: {"verbalizer": VERBALIZER_VERSION},
        lambda turns: [speak_draft(t.draft) if t.draft else None for t in turns],
    ),
    "reference": SystemType(
        "reference", _exact("reference", "reference"), lambda s: {}, lambda turns: [t.reference for t in turns]
    ),
    "endpoint": SystemType(
        "endpoint",
        _parse_endpoint,
        lambda s: {"endpoint": s.endpoint, "model": s.api_model, "voice": s.voice, **_decoding(s)},
    ),
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
        raise VoicetuneError(
            f"--system '{text}': the name '{name}' must be letters, digits and . _ + - (it names a file)"
        )
    for system_type in SYSTEMS.values():
        system = system_type.parse(name, spec)
        if system is not None:
            return system
    raise VoicetuneError(f"--system '{text}': not a system spec")  # unreachable: a model path is the fallback


def pipecat_format(texts: Sequence[str]) -> list[str]:
    """Each text through Pipecat's ``VoiceFormatter`` (see :func:`voicetune.verbalize.formatted_draft`)."""
    return formatted_draft(texts)


def _pipecat_texts(turns: Sequence[Turn]) -> list[str | None]:
    usable = [i for i, t in enumerate(turns) if t.draft]
    formatted = pipecat_format([turns[i].draft or "" for i in usable])
    texts: list[str | None] = [None] * len(turns)
    for index, text in zip(usable, formatted, strict=True):
        texts[index] = text
    return texts


def system_responses(
    system: System,
    turns: Sequence[Turn],
    folder: Path,
    seed: int,
    backend_for: Callable[[System], object],
    max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens,
    temperature: float = DEFAULT_SAMPLING.temperature,
    progress: bool = True,
    file_suffix: str = "",
    log: Callable[[str], None] = print,
    scorer=None,
    judge=None,
) -> dict[str, str]:
    """The system's response for each turn (``turn.id -> text``), written to ``folder/NAME.jsonl``.

    ``folder/NAME.fingerprint.json`` records what the responses were made from: the system's identity (a
    model's weights hash, an endpoint's URL and model name, the formatter's version), the seed and sampling
    settings, and for deterministic systems the turns. A file made from anything else is moved to
    ``folder/.superseded/`` with a one-line notice and made again; retraining a model into the same path
    therefore regenerates its responses. Model rows are also reused only for turns whose prompt is unchanged.

    A decoded system (``+bestN``, ``+guard``) samples its candidates into ``folder/NAME.candidates.jsonl`` and
    keeps one per turn with :func:`voicetune.judge.decode.pick`: in the learned judge's order (``judge`` when it
    is a learned judge, else the default one), or the rules' when ``judge`` is the rubric judge (under ``scorer``;
    both are part of the record); each row's ``meta.decoding`` says which candidate was kept, whether it
    is a fallback, and why the refused candidates were refused.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{system.name}{file_suffix}.jsonl"
    system_type = SYSTEMS[system.kind]
    style = load_style_prompt("default") if system.voice else None
    made_from: dict = {"system": {"kind": system.kind, **system_type.identity(system)}, "version": package_version()}
    if system_type.deterministic:
        made_from["turns"] = hash_records(turns)
    else:
        made_from.update(
            {"seed": seed, "max_new_tokens": max_new_tokens, "temperature": temperature, "style_prompt": digest(style)}
        )
    if system.decoded:
        made_from["selector"] = (scorer or ScorerConfig()).fingerprint()
        selector = _selector(judge, scorer)
        made_from["judge"] = "rubric" if selector is None else selector.meta["labels"]
        made_from["decoder"] = DECODER_VERSION
        if system.guard:
            made_from["verbalizer"] = VERBALIZER_VERSION  # what the guard falls back to
    step = Step(
        folder / f"{system.name}{file_suffix}.fingerprint.json",
        [path, path.with_name(path.name + ".partial")],
        made_from,
        name=f"responses {system.name}{file_suffix}",
        log=log,
    )
    (folder / f"{system.name}{file_suffix}.settings.json").unlink(missing_ok=True)  # the record of earlier versions

    if system_type.texts is not None:
        if step.done and path.is_file():
            if path.stat().st_size == 0:  # a system with nothing to say on these turns (no references in the data)
                return {}
            return {t.id: t.response for t in load_records(path) if t.response is not None}
        step.begin()
        written = [
            t.model_copy(update={"response": text})
            for t, text in zip(turns, system_type.texts(turns), strict=True)
            if text
        ]
        write_records(path, written)
        step.finish(responses=len(written))
        return {t.id: t.response or "" for t in written}

    sampling = SamplingConfig.at(
        temperature, max_new_tokens=max_new_tokens, seed=seed, numbers_from_prompt=system.numbers
    )
    if system.decoded:
        if step.done and path.is_file():
            return {t.id: t.response or "" for t in load_records(path)}
        step.begin()
        decoded = _decoded_turns(
            system,
            turns,
            folder / f"{system.name}{file_suffix}.candidates.jsonl",
            backend_for(system),
            style,
            sampling,
            scorer,
            progress,
            selector,
        )
        write_records(path, decoded)
        step.finish(responses=len(decoded), fallbacks=sum(t.meta["decoding"]["fallback"] for t in decoded))
        return {t.id: t.response or "" for t in decoded}
    if not step.done:
        step.begin()
    generated = generate_turns(backend_for(system), list(turns), path, style, sampling, progress=progress)
    step.finish(responses=len(generated))
    return {t.id: t.response or "" for t in generated}


def _selector(judge, scorer):
    """The learned judge decoding chooses with (None: the rubric's rules, when ``judge`` is the rubric judge)."""
    if getattr(judge, "name", None) == "rubric":
        return None
    if hasattr(judge, "assess"):
        return judge

    return default_judge(scorer)


def _decoded_turns(
    system: System,
    turns: Sequence[Turn],
    candidates_path: Path,
    backend,
    style: str | None,
    sampling,
    scorer,
    progress: bool,
    selector=None,
) -> list[Turn]:
    """Each turn with the response :func:`voicetune.judge.decode.pick` keeps among ``system.best_of``
    sampled candidates (resumable: the candidates file is reused row by row), and ``meta.decoding``."""
    n = system.best_of
    copies = [t.model_copy(update={"id": f"{t.id}#c{k}"}) for t in turns for k in range(n)]
    sampled = generate_turns(backend, copies, candidates_path, style, sampling, progress=progress)
    texts = [[sampled[i * n + k].response or "" for k in range(n)] for i in range(len(turns))]
    if selector is None:  # the rules' meaning check, in large batches
        prefetch_meaning(
            ((turn, text) for turn, options in zip(turns, texts, strict=True) for text in options),
            scorer,
            progress=progress,
        )
    decoded = []
    for turn, options in zip(turns, texts, strict=True):
        choice = pick(
            turn,
            options,
            scorer,
            guard=system.guard,
            judge=selector,
            selector="rubric" if selector is None else "learned",
        )
        meta = {
            "candidates": n,
            "chosen": choice.index,
            "fallback": choice.fallback,
            "refused": {str(i): kinds for i, kinds in choice.refused.items()},
        }
        decoded.append(turn.model_copy(update={"response": choice.text, "meta": {**turn.meta, "decoding": meta}}))
    return decoded


def fallback_rate(folder: Path, system: System, file_suffixes: Sequence[str]) -> float | None:
    """The share of a guarded system's responses that are the formatted draft (over the given seeds' files);
    None for a system without a guard."""
    if not system.guard:
        return None
    flags = [
        bool(t.meta.get("decoding", {}).get("fallback"))
        for suffix in file_suffixes
        for t in load_records(folder / f"{system.name}{suffix}.jsonl")
    ]
    return round(sum(flags) / len(flags), 4) if flags else None
