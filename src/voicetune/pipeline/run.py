"""The main job, read top to bottom: data → train → eval → review → simulate → report, in one run directory.

    RUN/config.yaml              the resolved run config (every default written out)
    RUN/thresholds.json          the headline's thresholds and when they were set
    RUN/data/                    train.jsonl, dev.jsonl, test.jsonl (the built-in splits, or the file's, by
    conversation)
    RUN/train/                   `voicetune train`'s output: model/ (the tuned model), train/ (targets, pairs, metrics),
    summary.json
    RUN/eval/                    `voicetune eval`'s: responses/ (every system's answers), pairs.jsonl (judged),
    summary.json, summary.md
    RUN/eval-llm/                the same pairs judged by the LLM judge (when eval.llm_judge is set)
    RUN/review/review.sqlite     the human review set, audio included; votes accrue here (`voicetune review serve`)
    RUN/simulate/                `voicetune simulate`'s, on eval's responses: calls.jsonl, summary.json
    RUN/summary.json             every stage's figures, the headline verdicts, timings and the manifest
    RUN/report.html, report.md   the report (`voicetune report RUN` rebuilds both, e.g. after reviewers voted)
    RUN/stages/NAME.fingerprint.json   what each stage was made from, whether it finished, and how long it took
    RUN/stages/run.json          marks the folder as a run (written first; see voicetune.pipeline.outputs)

Each stage is skipped only when its record says it finished from exactly what it would be made from now
(:class:`voicetune.provenance.Step`): the config sections it reads and the hashes of its inputs (the data,
the tuned model's weights, the judged pairs, the responses). A changed setting redoes the stages that read it
and, through their outputs' hashes, those downstream; inside a stage the same holds step by step (training
redoes only the steps whose inputs changed, evaluation only the systems whose responses changed). A killed
run resumes where it stopped. The report is rebuilt every time (it reads the live review votes).

Nothing the user made is overwritten: ``--out`` must be a new or empty folder, or a run's
(:func:`voicetune.pipeline.outputs.is_run_folder`); no input (the config file, ``data.source``, a model
folder) may lie where the run writes (:data:`WRITES`). The one exception is the run's own
``RUN/config.yaml`` given as the config to resume it (``voicetune run RUN/config.yaml --out RUN``), and only
while writing the resolved config back changes nothing in it: an edit of a setting in place is such a
resume, but a file with comments, another layout or a ``--threads`` override would be rewritten, so it is
refused (run a copy of it instead). What the config needs of this machine (its models, judge folder, TTS
engines) is checked before anything runs (:func:`preflight`), and a stage's outputs are moved aside with
their SQLite databases settled, never under a live review server (:class:`~voicetune.pipeline.outputs.StageStep`).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicetune.asr import asr_available
from voicetune.data import builtin_turns, import_transcripts, split_records
from voicetune.data.references import reference_turns
from voicetune.errors import VoicetuneError
from voicetune.evaluate import evaluate, parse_system
from voicetune.judge import make_judge
from voicetune.layout import TUNED, RunPaths
from voicetune.models.loading import EMBEDDED
from voicetune.pipeline.config import RunConfig, load_run_config
from voicetune.pipeline.outputs import MARKER, StageStep, companions, is_run_folder
from voicetune.progress import RunDisplay, duration, say
from voicetune.provenance import hash_file, hash_records, hash_tree, package_version
from voicetune.records import (
    Turn,
    atomic_write_text,
    dumps,
    iter_numbered_records,
    load_records,
    missing_reason,
    output_folder,
    refuse_overwriting_input,
    same_file,
    write_records,
)
from voicetune.report import build_report
from voicetune.report.summary import MissingOutput, RunFacts, read_stages
from voicetune.review.create import create_review_set, review_links
from voicetune.review.store import ReviewStore
from voicetune.settings import dump_yaml
from voicetune.simulate.config import SimConfig
from voicetune.simulate.run import call_place_error, check_call_turns, group_calls, simulate
from voicetune.threads import apply_threads
from voicetune.train import train
from voicetune.tts import choose_engine

Log = Callable[[str], None]
SPLITS = ("train", "dev", "test")
#: Seconds each stage took for the embedded default on a 2-core AVX-512 CPU (measured; see the README), the
#: basis of the display's estimate, scaled by each stage's amount of work (:func:`planned_seconds`).
DEFAULT_SECONDS = {"data": 0.1, "train": 578.0, "eval": 365.0, "review": 56.0, "simulate": 44.0, "report": 4.0}
#: What a run writes directly in its folder: files, and folders written or moved aside as a whole. An input
#: at or below one of them would be overwritten (voicetune.records.refuse_overwriting_input).
WRITES = (
    "config.yaml",
    "command.txt",
    "thresholds.json",
    "summary.json",
    "report.html",
    "report.md",
    "plots",
    "data",
    "train",
    "eval",
    "eval-llm",
    "review",
    "simulate",
    "stages",
)


# --------------------------------------------------------------------------------------------------------
# What every stage reads


def baseline_systems(config: RunConfig) -> list[str]:
    """The baselines' ``NAME=SPEC``, with ``{model}`` replaced by the policy's base model."""
    return [spec.replace("{model}", config.train.model) for spec in config.eval.baselines]


def systems(config: RunConfig, paths: RunPaths) -> list[str]:
    """Every system of the evaluation and the calls: the tuned model first, then the baselines."""
    return [f"{TUNED}={paths.model}", *baseline_systems(config)]


def held_out_turns(config: RunConfig, paths: RunPaths) -> list[Turn]:
    """The test split's turns, call by call (the first ``data.limit`` calls when set): what the evaluation
    judges and the simulated calls replay, so one set of responses serves both."""
    calls = list(group_calls(load_records(paths.split("test"), Turn, unique_ids=True)).values())
    if config.data.limit:
        calls = calls[: config.data.limit]
    turns = [turn for call in calls for turn in call]
    if not turns:
        raise VoicetuneError(f"{paths.split('test')}: no held-out turns to evaluate (the test split is empty)")
    return turns


def train_config(config: RunConfig, paths: RunPaths):
    """The training config the run uses: the run's train section on the train split, with the run's threads."""
    return config.train.model_copy(
        update={"data": str(paths.split("train")), "threads": config.threads or config.train.threads}
    )


def sim_config(config: RunConfig, paths: RunPaths):
    """The simulation config: the run's systems, held-out calls and sampling, the reward as the scorer."""
    section, generation = config.simulate, config.generation
    return SimConfig(
        systems=systems(config, paths),
        conversations=str(paths.split("test")),
        seeds=section.seeds,
        response_seeds=generation.seeds,
        channel=section.channel,
        tts=section.tts,
        caller_model=section.caller_model,
        timing_model=section.timing_model,
        margin=config.thresholds.resolution_margin,
        temperature=generation.temperature,
        max_new_tokens=generation.max_new_tokens,
        batch_size=generation.batch_size,
        threads=config.threads,
        limit=config.data.limit,
        scorer=config.train.reward,
    )


def _response_digests(folder: Path) -> dict[str, str | None]:
    """Each cached response file's fingerprint digest (what the responses were made from)."""
    digests = {}
    for record in sorted(folder.glob("*.fingerprint.json")):
        try:
            digests[record.name.removesuffix(".fingerprint.json")] = json.loads(record.read_text(encoding="utf-8")).get(
                "digest"
            )
        except (OSError, ValueError):
            digests[record.name] = None
    return digests


# --------------------------------------------------------------------------------------------------------
# The stages: what each is made from, and what it does


def data_made_from(config: RunConfig, paths: RunPaths) -> dict:
    section = config.data
    if section.source == "builtin":
        source = {"builtin": hash_records(builtin_turns())}
    elif section.source == "spoken":
        source = {"spoken": hash_records(reference_turns())}
    else:
        if not Path(section.source).is_file():
            problem = "a folder, expected a file" if Path(section.source).is_dir() else missing_reason(section.source)
            raise VoicetuneError(f"data.source: {section.source}: {problem}")
        source = {"file": hash_file(section.source)}
    return {"data": section.model_dump(exclude={"limit"}), "source": source}


def run_data(config: RunConfig, paths: RunPaths, log: Log) -> dict:
    """Write the train/dev/test splits (the built-in ones, or the file's split by conversation)."""
    section = config.data
    if section.source == "builtin":
        splits = {name: builtin_turns(name) for name in SPLITS}
    elif section.source == "spoken":
        splits = {"train": reference_turns("train"), "dev": reference_turns("dev"), "test": builtin_turns("test")}
    else:
        if section.format:
            turns = import_transcripts(section.source, section.format, section.domain)
        else:
            numbered = list(iter_numbered_records(section.source, Turn, unique_ids=True))
            for (
                line,
                turn,
            ) in numbered:  # a call's turns are ordered by it: refused here, not when the test split is grouped
                problem = call_place_error(turn)
                if problem is not None:
                    raise VoicetuneError(f"{section.source}:{line}: {problem}")
            turns = [turn for _, turn in numbered]
            if section.domain:
                turns = [t.model_copy(update={"domain": section.domain}) for t in turns]
        splits = split_records(turns, section.ratios, section.seed)
    for name, turns in splits.items():
        write_records(paths.split(name), turns)
    counts = {name: len(turns) for name, turns in splits.items()}
    log(f"data: {', '.join(f'{n} {name}' for name, n in counts.items())} turns")
    return {"turns": counts}


def train_made_from(config: RunConfig, paths: RunPaths) -> dict:
    settings = train_config(config, paths).model_dump(mode="json", exclude={"data", "threads"})
    return {"train": settings, "data": hash_file(paths.split("train"))}


def run_train(config: RunConfig, paths: RunPaths, log: Log) -> dict:
    """Post-train (the recipe resumes step by step on its own)."""
    summary = train(train_config(config, paths), paths.train, log=log)
    return {"steps_run": summary["steps_run"]}


def eval_made_from(config: RunConfig, paths: RunPaths) -> dict:
    return {
        "eval": config.eval.model_dump(mode="json"),
        "systems": systems(config, paths)[1:],
        "generation": config.generation.model_dump(),
        "tuned": hash_tree(paths.model),
        "turns": hash_records(held_out_turns(config, paths)),
        "scorer": config.train.reward.fingerprint(),
    }


def run_eval(config: RunConfig, paths: RunPaths, log: Log) -> dict:
    """Judge the tuned model against each baseline on the held-out turns (and again with the LLM judge)."""
    section, generation = config.eval, config.generation
    parsed = [parse_system(text) for text in systems(config, paths)]
    turns = held_out_turns(config, paths)
    comparisons = [(TUNED, system.name) for system in parsed[1:]]
    options: dict[str, Any] = dict(
        seed=generation.seeds,
        data_name=str(paths.split("test")),
        temperature=generation.temperature,
        max_new_tokens=generation.max_new_tokens,
        batch_size=generation.batch_size,
        log=log,
        scorer=config.train.reward,
    )
    judge = make_judge(section.judge, paths.eval / "judge_cache.sqlite", config.train.reward)
    summary = evaluate(parsed, turns, judge, paths.eval, comparisons, **options)
    if section.llm_judge is not None:
        llm = make_judge(section.llm_judge, paths.eval_llm / "judge_cache.sqlite", config.train.reward)
        evaluate(parsed, turns, llm, paths.eval_llm, comparisons, responses_dir=paths.responses, **options)
    return {"pairs": sum(c["n"] for c in summary["comparisons"])}


def review_made_from(config: RunConfig, paths: RunPaths) -> dict:
    return {"review": config.review.model_dump(), "pairs": hash_file(paths.eval / "pairs.jsonl")}


def run_review(config: RunConfig, paths: RunPaths, log: Log) -> dict:
    """Build the review set from the judged pairs, audio included (an existing set from the same pairs is kept)."""
    section = config.review
    if not paths.review_db.exists():  # a set made from other pairs was moved aside by the stage's record
        leftovers = [path for path in companions(paths.review_db) if path.exists()]
        if leftovers:  # a WAL without its database would be replayed into the new one: kept aside, never deleted
            moved = StageStep(paths.record("review"), [], {}, name="review", log=log).set_aside(leftovers)
            log(f"review: {', '.join(p.name for p in leftovers)} without their database moved to {moved}")
        paths.review_db.parent.mkdir(parents=True, exist_ok=True)
        create_review_set(
            paths.eval,
            paths.review_db,
            section.reviewers,
            sample=section.sample,
            overlap=min(section.overlap, len(section.reviewers)),
            repeat_share=section.repeat_share,
            mode=section.mode,
            engine=section.tts,
            seed=section.seed,
            progress=True,
            log=log,
        )
    store = ReviewStore(paths.review_db)
    links = review_links(store.reviewers(), store.meta()["admin_token"])
    log(f"review set: {paths.review_db} (serve it: voicetune review serve --db {paths.review_db})")
    for name, link in links.items():
        log(f"  {name}: {link}")
    return {"pairs": len(store.pairs())}


def simulate_made_from(config: RunConfig, paths: RunPaths) -> dict:
    settings = sim_config(config, paths).model_dump(mode="json", exclude={"threads", "conversations", "systems"})
    return {
        "simulate": settings,
        "sensitivity": config.simulate.sensitivity,
        "systems": systems(config, paths)[1:],
        "turns": hash_records(held_out_turns(config, paths)),
        "responses": _response_digests(paths.responses),
    }


def run_simulate(config: RunConfig, paths: RunPaths, log: Log) -> dict:
    """Simulated calls over the held-out conversations, on the evaluation's responses."""
    summary = simulate(
        sim_config(config, paths),
        paths.simulate,
        sensitivity=config.simulate.sensitivity,
        log=log,
        responses_dir=paths.responses,
    )
    return {"calls": summary["calls"]}


@dataclass(frozen=True)
class Stage:
    """One stage of the run: what it is made from (a JSON-able dict), what it does, the outputs set aside
    when it must be redone (empty where the stage keeps its own step-by-step provenance inside), and the files
    it produces: a stage whose record says it finished is redone when one of them is missing (moved or
    deleted since), and the report says so rather than leaving its figures out."""

    name: str
    description: str
    made_from: Callable[[RunConfig, RunPaths], dict]
    run: Callable[[RunConfig, RunPaths, Log], dict]
    outputs: Callable[[RunPaths], list[Path]] = lambda paths: []
    products: Callable[[RunConfig, RunPaths], list[Path]] = lambda config, paths: []

    def missing(self, config: RunConfig, paths: RunPaths) -> list[Path]:
        """The files this stage produces that are not there."""
        return [path for path in self.products(config, paths) if not path.is_file()]


def _eval_products(config: RunConfig, paths: RunPaths) -> list[Path]:
    return [paths.eval / "summary.json", paths.eval / "pairs.jsonl"] + (
        [paths.eval_llm / "summary.json"] if config.eval.llm_judge else []
    )


STAGES = (
    Stage(
        "data",
        "the turns and their split",
        data_made_from,
        run_data,
        lambda p: [p.data],
        lambda c, p: [p.split(name) for name in SPLITS],
    ),
    Stage(
        "train",
        "SFT on spoken targets, then sample, score and DPO",
        train_made_from,
        run_train,
        products=lambda c, p: [p.train / "summary.json", p.model / "config.json"],
    ),
    Stage("eval", "the judge: tuned vs each baseline, both orders", eval_made_from, run_eval, products=_eval_products),
    Stage(
        "review",
        "the human review set, audio included",
        review_made_from,
        run_review,
        lambda p: [p.review_db, *companions(p.review_db)],
        lambda c, p: [p.review_db],
    ),
    Stage(
        "simulate",
        "simulated calls on the held-out conversations",
        simulate_made_from,
        run_simulate,
        products=lambda c, p: [p.simulate / "summary.json"],
    ),
)


def stages_for(config: RunConfig) -> list[Stage]:
    """The stages this config runs (review and simulate can be switched off)."""
    return [
        s
        for s in STAGES
        if not (
            s.name == "review" and not config.review.enabled or s.name == "simulate" and not config.simulate.enabled
        )
    ]


def planned_seconds(config: RunConfig, stage: str) -> float:
    """The display's plan for a stage: the default's measured time scaled by this config's amount of work."""
    default = RunConfig()
    base = DEFAULT_SECONDS.get(stage, 10.0)
    if stage == "train":
        sft = lambda c: (c.sft.max_examples or 400) * c.sft.epochs  # noqa: E731
        sample = lambda c: (  # noqa: E731
            c.sample.candidates * (c.sample.contexts or 100) * max(c.rounds, 0) * (c.sample.max_new_tokens / 64)
        )
        return base * (
            0.35 * sft(config.train) / sft(default.train) + 0.65 * sample(config.train) / sample(default.train)
        )
    conversations = (config.data.limit or 7) / 7 if config.data.source in ("builtin", "spoken") else 1.0
    models = sum(1 for spec in baseline_systems(config) if "draft" not in spec and "reference" not in spec) + 1
    if stage == "eval":
        return base * conversations * len(config.generation.seeds) * models / 3 * (2 if config.eval.llm_judge else 1)
    if stage == "review":
        return base * config.review.sample / default.review.sample
    if stage == "simulate":
        return (
            base
            * conversations
            * config.simulate.seeds
            / 5
            * (13 if config.simulate.sensitivity else 1)
            * (8 if config.simulate.channel == "speech" else 1)
        )
    return base


# --------------------------------------------------------------------------------------------------------
# The run


def record_thresholds(paths: RunPaths, config: RunConfig) -> dict:
    """Write the thresholds with the time they were set; unchanged thresholds keep their first time."""
    path = paths.root / "thresholds.json"
    wanted = config.thresholds.model_dump()
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    if isinstance(stored, dict) and stored.get("thresholds") == wanted:
        return stored
    record = {
        "thresholds": wanted,
        "set_at": time.time(),
        "earlier": (
            [*stored.get("earlier", []), {k: stored.get(k) for k in ("thresholds", "set_at")}]
            if isinstance(stored, dict)
            else []
        ),
    }
    atomic_write_text(path, dumps(record, indent=2) + "\n")
    return record


def _model_on_this_machine(field: str, spec: str) -> None:
    """Raise unless ``spec`` names a model the stages can load here, as ``resolve_model`` would decide (without
    converting anything): a packaged model, a .gguf file, a model directory or a Hugging Face id."""
    if spec in EMBEDDED:
        return
    path = Path(spec).expanduser()
    if path.suffix == ".gguf" and not path.is_dir():
        if not path.is_file():
            raise VoicetuneError(
                f"{field}: {spec}: {missing_reason(path) if not path.exists() else 'not a file'}, expected a .gguf file"
            )
        return
    if path.exists():
        if not (path / "config.json").is_file():
            raise VoicetuneError(f"{field}: {spec}: not a model directory (no config.json)")
        return
    if path.is_symlink():
        raise VoicetuneError(f"{field}: {spec}: {missing_reason(path)}")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return  # a Hugging Face id: loaded from the local cache, or fetched
    raise VoicetuneError(
        f"{field}: {spec!r}: no such model (not {', '.join(EMBEDDED)}, a .gguf file, a model directory or a Hugging "
        "Face id)"
    )


def _tts_on_this_machine(field: str, name: str, speech: bool = False) -> None:
    try:
        engine = choose_engine(name)
    except VoicetuneError as error:
        raise VoicetuneError(f"{field}: {error}") from None
    if speech and engine == "browser":
        raise VoicetuneError(
            f"{field}: the speech channel needs a TTS engine on this machine, and none is installed (espeak-ng or "
            "piper)"
        )


def preflight(config: RunConfig) -> None:
    """What the config needs of this machine, checked before anything runs or moves (the config's own
    cross-field rules are checked when it is read): the policy and every model baseline, a learned judge's
    folder, the TTS engines (and speech recognition) of the enabled stages. A config that fails here would
    otherwise fail at its stage, after the stages before it ran and a redone stage's outputs were moved aside."""
    _model_on_this_machine("train.model", config.train.model)
    for index, spec in enumerate(baseline_systems(config)):
        system = parse_system(spec)
        if system.kind == "model":
            _model_on_this_machine(f"eval.baselines.{index}", system.model or "")
    for field, options in (("eval.judge", config.eval.judge), ("eval.llm_judge", config.eval.llm_judge)):
        if options is not None and options.kind == "learned" and options.model:
            folder = Path(options.model).expanduser()
            if not ((folder / "judge.pkl").is_file() and (folder / "judge.json").is_file()):
                raise VoicetuneError(
                    f"{field}.model: {options.model}: not a learned judge "
                    "(expected judge.pkl and judge.json from `voicetune judge train`)"
                )
    if config.review.enabled:
        _tts_on_this_machine("review.tts", config.review.tts)
    if config.simulate.enabled:
        speech = config.simulate.channel == "speech"
        _tts_on_this_machine("simulate.tts", config.simulate.tts, speech)
        if speech:
            if not asr_available():
                raise VoicetuneError(
                    "simulate.channel: speech needs speech recognition (pip install 'voicetune[speech]'), or use the "
                    "text channel"
                )


def run_inputs(config: RunConfig) -> list[Path]:
    """The files and folders a run reads that could sit where it writes: the data, the policy and baseline
    model folders, a style prompt, the learned judge's folder (what does not exist is skipped by the check)."""
    found = [] if config.data.source in ("builtin", "spoken") else [Path(config.data.source)]
    found.append(Path(config.train.model).expanduser())
    models = [system.model for system in map(parse_system, baseline_systems(config)) if system.kind == "model"]
    judges = [options.model for options in (config.eval.judge, config.eval.llm_judge) if options is not None]
    sample = config.train.sample
    found += [
        Path(path).expanduser()
        for path in (*models, *judges, sample.style_prompt, sample.data)
        if path and path != "default"
    ]
    return found


def check_run_folder(root: Path, config: RunConfig, config_file: str | Path | None) -> str:
    """Refuse an output that would lose something (see the module docstring); returns the config text the run
    writes."""
    if root.exists() and not root.is_dir():
        raise VoicetuneError(f"{root}: is a file, expected a run folder (--out)")
    if not root.exists() and root.is_symlink():
        raise VoicetuneError(f"{root}: {missing_reason(root)}, expected a run folder (--out)")
    if root.is_dir() and any(root.iterdir()) and not is_run_folder(root):
        raise VoicetuneError(
            f"{root}: a folder that is not a voicetune run (no {MARKER}) and not empty: the run would overwrite its "
            "files "
            "and move its data/ aside; choose a new or empty folder for --out"
        )
    text = dump_yaml(config)
    stored = root / "config.yaml"
    if config_file is not None and same_file(config_file, stored):
        try:
            unchanged = stored.read_text(encoding="utf-8") == text
        except (OSError, UnicodeDecodeError):
            unchanged = False
        if not unchanged:
            raise VoicetuneError(
                f"{config_file}: is the run's own {stored}, which the run rewrites with the resolved config (every "
                "default "
                "written out), and that would change it (comments, layout, a flag's override); run a copy of it instead"
            )
        config_file = None  # resuming the run with its own config: writing it back changes nothing
    refuse_overwriting_input(root, config_file, *run_inputs(config), writes=WRITES)
    return text


def check_held_out(config: RunConfig, paths: RunPaths) -> None:
    """After the data stage, before the training: the test split's turns can be grouped into calls (a
    ``meta.turn_index`` that is not a whole number is refused), and each held-out turn has the draft the
    simulated calls judge it against, when they run (see :func:`voicetune.simulate.run.check_call_turns`)."""
    test = paths.split("test")
    numbered = list(iter_numbered_records(test, Turn))
    for line, turn in numbered:
        problem = call_place_error(turn)
        if problem is not None:
            raise VoicetuneError(f"{test}:{line}: {problem}")
    if config.simulate.enabled:
        held = {turn.id for turn in held_out_turns(config, paths)}
        check_call_turns([(line, turn) for line, turn in numbered if turn.id in held], test)


# --------------------------------------------------------------------------------------------------------
# The report


def missing_outputs(config: RunConfig, paths: RunPaths, stages: dict) -> list[MissingOutput]:
    """Every stage of the config recorded as done whose products (:attr:`voicetune.pipeline.run.Stage.products`)
    are missing."""
    found = []
    for stage in stages_for(config):
        if (stages.get(stage.name) or {}).get("status") == "done":
            missing = stage.missing(config, paths)
            if missing:
                found.append(
                    MissingOutput(stage=stage.name, files=[path.relative_to(paths.root).as_posix() for path in missing])
                )
    return found


def load_run(run_dir: str | Path) -> tuple[RunConfig, RunPaths]:
    """The config a run was made with (``RUN/config.yaml``) and its paths; a folder that is not a run is an error."""
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        problem = "is a file" if paths.root.exists() else missing_reason(paths.root)
        raise VoicetuneError(
            f"{paths.root}: {problem}, expected a run folder (`voicetune run --out {paths.root}` makes one)"
        )
    if not (paths.root / "config.yaml").is_file():
        raise VoicetuneError(
            f"{paths.root}: not a run directory (no config.yaml; `voicetune run --out {paths.root}` makes one)"
        )
    return load_run_config(paths.root / "config.yaml"), paths


def run_facts(config: RunConfig, paths: RunPaths) -> RunFacts:
    """What the report needs from the run's config (:class:`voicetune.report.summary.RunFacts`)."""
    return RunFacts(
        thresholds=config.thresholds,
        baselines=[spec.partition("=")[0] for spec in baseline_systems(config)],
        base_model=config.train.model,
        threads=config.threads,
        scorer_fingerprint=config.train.reward.fingerprint(),
        review_seed=config.review.seed,
        missing=missing_outputs(config, paths, read_stages(paths)),
        seeds={
            "data": config.data.seed,
            "train": config.train.seed,
            "generation": config.generation.seeds,
            "review": config.review.seed,
            "simulate_streams": config.simulate.seeds,
        },
    )


def report_run(run_dir: str | Path) -> dict:
    """Rebuild a run's ``summary.json``, ``report.html`` and ``report.md`` (``voicetune report RUN``)."""
    config, paths = load_run(run_dir)
    return build_report(paths, run_facts(config, paths))


def run(
    config: RunConfig,
    out: str | Path,
    *,
    command: str | None = None,
    log: Log = say,
    config_file: str | Path | None = None,
) -> dict:
    """Run every stage of ``config`` into ``out`` (see the module docstring); returns the run's summary.

    ``config_file``: the YAML ``config`` was read from, so that the run never writes over it (see the module
    docstring for the one exception, the run's own config resumed unchanged).
    """
    paths = RunPaths(Path(out))
    config_text = check_run_folder(paths.root, config, config_file)
    preflight(config)
    output_folder(paths.root, "a run folder (--out)")
    if not (paths.root / MARKER).is_file():
        marker = {"made_by": "voicetune run", "version": package_version(), "created_at": time.time()}
        atomic_write_text(paths.root / MARKER, dumps(marker, indent=2) + "\n")
    atomic_write_text(paths.root / "config.yaml", config_text)
    record_thresholds(paths, config)
    atomic_write_text(
        paths.root / "command.txt",
        (command or "voicetune run " + " ".join(shlex.quote(a) for a in sys.argv[2:])) + "\n",
    )
    apply_threads(config.threads, log)
    plan = stages_for(config)
    names = [stage.name for stage in plan] + ["report"]
    started = time.perf_counter()
    with RunDisplay("voicetune run", [(name, planned_seconds(config, name)) for name in names]) as display:
        for number, stage in enumerate(plan, 1):
            prefix = f"[{number}/{len(names)}] {stage.name}"
            display.start(stage.name)
            step = StageStep(
                paths.record(stage.name), stage.outputs(paths), stage.made_from(config, paths), name=stage.name, log=log
            )
            missing = stage.missing(config, paths)
            if step.done and missing:
                gone = ", ".join(str(path.relative_to(paths.root)) for path in missing)
                log(f"{prefix}: its record says it finished, but {gone} is missing: redoing it")
            if step.done and not missing:
                stored = json.loads(paths.record(stage.name).read_text(encoding="utf-8"))
                log(
                    f"{prefix}: up to date (made in {duration(stored.get('seconds', 0))}; nothing it reads has changed)"
                )
                display.finish(stage.name, 0.0, ran=False)
            else:
                log(f"{prefix}: {stage.description}")
                step.begin()
                stage_started = time.perf_counter()
                info = stage.run(config, paths, log) or {}
                seconds = round(time.perf_counter() - stage_started, 1)
                step.finish(seconds=seconds, finished_at=time.time(), **info)
                display.finish(stage.name, seconds, ran=True)
                log(f"{prefix}: done in {duration(seconds)}")
            if stage.name == "data":
                check_held_out(config, paths)
        display.start("report")
        log(f"[{len(names)}/{len(names)}] report: summary.json, report.html and report.md")
        summary = build_report(paths, run_facts(config, paths))
        display.finish("report", 0.0, ran=True)
    log(f"run finished in {duration(time.perf_counter() - started)}: {paths.root / 'report.html'}")
    return summary
