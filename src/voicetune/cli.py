"""The ``voicetune`` command: a thin layer over the library API. User errors print one line, exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from voicetune.errors import VoicetuneError
from voicetune.models.generate import DEFAULT_SAMPLING

app = typer.Typer(
    help="Post-train a voice agent's text model so that what it says aloud sounds right.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Import transcripts, export built-in data, split by conversation.", no_args_is_help=True)
app.add_typer(data_app, name="data")
from voicetune.review.cli import review_app  # noqa: E402  (a thin sub-app; its imports are lazy too)

app.add_typer(review_app, name="review")
console = Console(stderr=True)
out = Console()


def _version(value: bool) -> None:
    if value:
        from voicetune import __version__

        print(f"voicetune {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """voicetune: data, voice-quality scoring, judging."""


def _load(path: Path, skip_invalid: bool, model=None) -> list:
    """Read records (turns by default, whose ids must be unique); with ``--skip-invalid``, say how many lines
    were skipped and why."""
    from voicetune.records import Turn, load_records

    skipped: list[str] = []
    records = load_records(
        path, model or Turn, skip_invalid=skip_invalid, skipped=skipped, unique_ids=model in (None, Turn)
    )
    _report_skipped(skipped)
    return records


def _report_skipped(skipped: list[str]) -> None:
    """Say how many lines were skipped and why, one unwrapped line each."""
    if skipped:
        print(f"skipped {len(skipped)} invalid line{'s' * (len(skipped) > 1)}:", file=sys.stderr)
        for reason in skipped[:10]:
            print(f"  {reason}", file=sys.stderr)
        if len(skipped) > 10:
            print(f"  … and {len(skipped) - 10} more", file=sys.stderr)


@data_app.command("import")
def data_import(
    source: Path = typer.Argument(..., help="The transcript file."),
    format: str = typer.Option(..., "--format", "-f", help="tau-bench | tau-bench-fewshot | openai-chat | csv"),
    output: Path = typer.Option(..., "--out", "-o", help="Where to write the turn records (JSONL)."),
    domain: str | None = typer.Option(None, help="Set the records' domain (default: from the data or file name)."),
) -> None:
    """Import transcripts: one turn record per agent text turn.

    Example: voicetune data import --format tau-bench ../shared/data/tau-bench/gpt-4o-airline.json --out turns.jsonl
    """
    from voicetune.data import import_transcripts
    from voicetune.records import refuse_overwriting_input, write_records

    refuse_overwriting_input(output, source)
    turns = import_transcripts(source, format, domain)
    if not turns:  # an empty output would be an error for the next command: say so now
        raise VoicetuneError(
            f"{source}: no agent text message to import as a turn (tool calls and tool results are never spoken)"
        )
    write_records(output, turns)
    conversations = len({t.meta.get("conversation_id") for t in turns})
    console.print(f"wrote {len(turns)} turns from {conversations} conversations to {output}")


@data_app.command("split")
def data_split(
    source: Path = typer.Argument(..., help="Turn records (JSONL)."),
    output: Path = typer.Option(..., "--out", "-o", help="Folder for train.jsonl, dev.jsonl, test.jsonl."),
    ratios: str = typer.Option("0.8,0.1,0.1", help="Train, dev and test shares."),
    seed: int = typer.Option(0, help="Shuffle seed."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad lines (and report them) instead of stopping."
    ),
) -> None:
    """Split turns into train/dev/test by conversation (and by task id when present).

    Example: voicetune data split turns.jsonl --out data/
    """
    from voicetune.data import split_records
    from voicetune.data.split import SPLITS
    from voicetune.records import refuse_overwriting_input, write_records

    for name in SPLITS:
        refuse_overwriting_input(output / f"{name}.jsonl", source)
    try:
        shares = [float(x) for x in ratios.split(",")]
    except ValueError:
        raise VoicetuneError(f"--ratios should be three numbers like 0.8,0.1,0.1, got '{ratios}'") from None
    records = _load(source, skip_invalid)
    for name, part in split_records(records, shares, seed).items():
        write_records(output / f"{name}.jsonl", part)
        console.print(f"{name}: {len(part)} turns -> {output / f'{name}.jsonl'}")


@data_app.command("builtin")
def data_builtin(
    output: Path = typer.Option(..., "--out", "-o", help="Where to write the records (JSONL)."),
    split: str | None = typer.Option(None, help="Only this split: train, dev or test."),
    pairs: bool = typer.Option(False, "--pairs", help="Export the hand-labelled pairs instead of the turns."),
) -> None:
    """Export the built-in turns (with spoken references) or labelled pairs.

    Example: voicetune data builtin --split test --out test.jsonl
    """
    from voicetune.data import builtin_pairs, builtin_turns
    from voicetune.records import write_records

    if split not in (None, "train", "dev", "test"):
        raise VoicetuneError(f"--split must be train, dev or test, not '{split}'")
    records = builtin_pairs() if pairs else builtin_turns(split)
    write_records(output, records)
    console.print(f"wrote {len(records)} {'pairs' if pairs else 'turns'} to {output}")


@data_app.command("facts")
def data_facts(
    input: Path = typer.Option(..., "--input", "-i", help="Turn records (JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the turns with 'facts'."),
    teacher: str = typer.Option(
        ..., "--teacher", help="The teacher's OpenAI-compatible URL (vLLM, llama.cpp, hosted)."
    ),
    teacher_model: str = typer.Option(..., "--teacher-model", help="The model name the --teacher endpoint expects."),
    concurrency: int = typer.Option(2, min=1, help="Parallel requests to the teacher."),
    timeout: float = typer.Option(
        60.0, min=0.001, help="Seconds one request may take in all (then retried with backoff)."
    ),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", help="The environment variable holding the teacher endpoint's API key."
    ),
    cache: Path | None = typer.Option(
        None,
        "--cache",
        help="The teacher's answers (SQLite; default OUTPUT.facts_cache.sqlite): a re-run asks only what is missing.",
    ),
    overwrite_facts: bool = typer.Option(
        False, "--overwrite-facts", help="Ask about turns that already have facts too (default: leave them alone)."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad lines (and report them) instead of stopping."
    ),
) -> None:
    """Label each turn's must-convey facts with a teacher model: the spans of the draft the caller must hear now.

    Example: voicetune data facts --input turns.jsonl --output facts.jsonl --teacher http://127.0.0.1:8000/v1
    --teacher-model NAME
    """
    from voicetune.data.teacher_facts import FactsStats, teacher_facts
    from voicetune.records import ensure_dir, refuse_overwriting_input, same_file, write_records

    refuse_overwriting_input(output, input)
    cache = cache if cache is not None else output.with_name(output.name + ".facts_cache.sqlite")
    refuse_overwriting_input(cache, input)
    if same_file(cache, output):
        raise VoicetuneError(f"{cache}: is also the --output file; choose another --cache path")
    if output.is_dir():
        raise VoicetuneError(f"{output}: is a directory, expected a file to write")
    ensure_dir(output.parent, for_file=output)  # a bad output path fails now, not after asking the teacher
    turns = _load(input, skip_invalid)
    stats = FactsStats()
    labelled = teacher_facts(
        turns,
        teacher,
        teacher_model,
        cache_path=cache,
        concurrency=concurrency,
        timeout=timeout,
        api_key_env=api_key_env,
        progress=True,
        overwrite=overwrite_facts,
        stats=stats,
    )
    write_records(output, labelled)
    parts = [
        f"facts for {stats.updated} of {stats.turns} turns"
        + (f" ({stats.none} of them none: the teacher said NONE)" if stats.none else "")
    ]
    dropped = f"kept {stats.kept} facts, {stats.dropped} dropped as not in the draft" + (
        f" (e.g. {stats.dropped_examples[0]!r})" if stats.dropped_examples else ""
    )
    parts.append(dropped + (f", {stats.ids_dropped} as internal ids or URLs" if stats.ids_dropped else ""))
    if stats.unusable:
        parts.append(f"{stats.unusable} turns left as they were (no span of the draft in the answer)")
    if stats.curated:
        parts.append(
            f"{stats.curated} turns already had facts and were left alone (--overwrite-facts asks about them too)"
        )
    if stats.no_draft:
        parts.append(f"{stats.no_draft} turns without a draft")
    if stats.asked:
        parts.append(f"{stats.requests} requests, {stats.cached} answers from the cache {cache}")
    console.print("; ".join(parts) + f"; wrote {output}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def score(
    input: Path = typer.Option(..., "--input", "-i", help="Turn records (JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the scored records."),
    field: str = typer.Option("response", help="Which text to score: response, reference or draft."),
    tts: str | None = typer.Option(
        None,
        help="Speaking time from a words-per-minute estimate, or real espeak-ng audio (default: the scorer config's, "
        "estimate).",
    ),
    scorer_config: Path | None = typer.Option(
        None, "--scorer-config", help="A YAML scorer config (weights, gate, penalties; see configs/scorer.yaml)."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad lines (and report them) instead of stopping."
    ),
    judge_kind: str = typer.Option(
        "learned",
        "--judge",
        help="learned (also writes usable, usable_p and, when unusable, failure; the default) or rubric (the five "
        "qualities only).",
    ),
    judge_dir: Path | None = typer.Option(
        None,
        "--judge-dir",
        help="A learned judge's folder from 'voicetune judge train' (default: the packaged listener labels' judge).",
    ),
) -> None:
    """Score spoken responses: usable or not (the learned judge), then non-repetition, conciseness, clarity,
    humanness and faithfulness.

    Example: voicetune score --input turns.jsonl --output scored.jsonl --field draft
    """
    if judge_kind not in ("learned", "rubric"):
        raise VoicetuneError(f"--judge must be learned or rubric, not '{judge_kind}'")
    from voicetune.quality import load_scorer_config, score_records
    from voicetune.records import Turn, iter_numbered_records, refuse_overwriting_input, write_records
    from voicetune.summary import print_scores

    if tts not in (None, "estimate", "espeak"):
        raise VoicetuneError(f"--tts must be estimate or espeak, not '{tts}'")
    scorer = load_scorer_config(scorer_config)
    if tts:
        scorer = scorer.model_copy(update={"tts": tts})
    if field not in ("response", "reference", "draft"):
        raise VoicetuneError(f"--field must be response, reference or draft, not '{field}'")
    refuse_overwriting_input(output, input)
    skipped: list[str] = []
    records = []
    for line, record in iter_numbered_records(input, Turn, skip_invalid=skip_invalid, skipped=skipped, unique_ids=True):
        if getattr(record, field) is None:  # nothing to score: a bad line like any other
            reason = f"{input}:{line}: missing field '{field}' to score (record '{record.id}'; choose another --field)"
            if not skip_invalid:
                raise VoicetuneError(reason)
            skipped.append(reason)
            continue
        records.append(record)
    if not records:  # every line skipped: nothing to score or write
        first = f" (the first: {skipped[0]})" if skipped else ""
        raise VoicetuneError(f"{input}: no record to score, all {len(skipped)} lines are invalid{first}")
    _report_skipped(skipped)
    scored = score_records(records, field=field, config=scorer, progress=True)
    if judge_kind == "learned":
        from voicetune.judge.learned import assess_records, default_judge, load_judge

        learned = (
            load_judge(judge_dir, scorer)
            if judge_dir
            else default_judge(scorer, log=lambda m: console.print(m, markup=False))
        )
        scored = assess_records(scored, learned, field, progress=True)
        usable = sum(bool(getattr(r, "usable", False)) for r in scored)
        out.print(f"usable: {usable}/{len(scored)} = {usable / len(scored):.1%} (learned judge)")
    write_records(output, scored)
    print_scores(scored, field, out)
    console.print(f"wrote {len(scored)} scored records to {output}")


judge_app = typer.Typer(
    help="Judge pairs of responses (the learned judge by default); 'judge train' fits a learned judge on listener "
    "labels."
)
app.add_typer(judge_app, name="judge")


@judge_app.callback(invoke_without_command=True)
def judge(
    ctx: typer.Context,
    pairs: Path | None = typer.Option(None, "--pairs", "-p", help="Pair records (JSONL)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to write the judged pairs."),
    judge_kind: str = typer.Option(
        "learned",
        "--judge",
        help="learned (usable first, learned from listeners; the default), rubric (the scorer's rules alone) or llm "
        "(an OpenAI-compatible judge).",
    ),
    judge_dir: Path | None = typer.Option(
        None,
        "--judge-dir",
        help="A learned judge's folder from 'voicetune judge train' (default: the one trained on the packaged listener "
        "labels).",
    ),
    judge_endpoint: list[str] = typer.Option(
        [], "--judge-endpoint", help="The LLM judge's OpenAI-compatible URL (one, or one per --judge-model)."
    ),
    judge_model: list[str] = typer.Option(
        [], "--judge-model", help="The LLM judge's model name; repeat for a panel (majority vote)."
    ),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", help="The environment variable holding the judge endpoint's API key."
    ),
    concurrency: int = typer.Option(4, min=1, help="Parallel requests to the judge endpoint."),
    timeout: float = typer.Option(
        120.0, min=0.001, help="Seconds one judge request may take in all (then retried with backoff)."
    ),
    scorer_config: Path | None = typer.Option(
        None, "--scorer-config", help="A YAML scorer config for the rubric (and the learned judge's rubric features)."
    ),
    both_orders: bool = typer.Option(
        False, "--both-orders", help="Judge each pair in both orders; a verdict that flips with the order is a tie."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip bad lines (and report them) instead of stopping."
    ),
) -> None:
    """Judge pairs of responses: a winner and a verdict per quality. Labelled pairs also get agreement.

    Example: voicetune judge --pairs pairs.jsonl --output judged.jsonl   (or --judge rubric)
    """
    if ctx.invoked_subcommand is not None:
        return
    if pairs is None or output is None:
        raise VoicetuneError(
            "voicetune judge needs --pairs FILE and --output FILE (or a subcommand: voicetune judge train --help)"
        )
    from voicetune.evaluate import judge_both_orders
    from voicetune.judge import judge_pairs, label_agreement
    from voicetune.records import Pair, refuse_overwriting_input, write_records

    refuse_overwriting_input(output, pairs)
    judge = _make_judge(
        judge_kind,
        judge_endpoint,
        judge_model,
        output.with_name(output.name + ".judge_cache.sqlite"),
        api_key_env,
        concurrency,
        timeout,
        scorer_config,
        judge_dir,
    )
    records = _load(pairs, skip_invalid, Pair)
    judged = (
        judge_both_orders(judge, records, progress=True) if both_orders else judge_pairs(records, judge, progress=True)
    )
    write_records(output, judged)
    wins = {v: sum(1 for p in judged if p.winner == v) for v in ("a", "b", "tie")}
    errors = sum(p.winner is None for p in judged)
    out.print(f"verdicts: a {wins['a']}, b {wins['b']}, tie {wins['tie']}" + (f", errors {errors}" if errors else ""))
    agreement = label_agreement(judged)
    if agreement["n"]:
        out.print(
            f"agreement with labels: {agreement['agree']}/{agreement['n']} = {agreement['accuracy']:.1%} "
            f"({agreement['ties']} ties)"
        )
    console.print(f"wrote {len(judged)} judged pairs to {output}")


@judge_app.command("train")
def judge_train(
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        "-l",
        help="Listener labels (JSONL): labelled responses (usable, failure, reason) and/or "
        "preferences (response_a, response_b, winner); 'voicetune review export --format labels' writes them. "
        "Repeatable.",
    ),
    output: Path = typer.Option(..., "--out", "-o", help="The folder to write the judge to (judge.pkl, judge.json)."),
    scorer_config: Path | None = typer.Option(
        None, "--scorer-config", help="A YAML scorer config for the rubric features."
    ),
    with_builtin: bool = typer.Option(
        False, "--with-builtin", help="Also learn from the packaged listener labels (dev half)."
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the tree models."),
) -> None:
    """Fit a learned judge (usable first, then style) on listener labels; rows of the test half are left out.

    Example: voicetune review export --db runs/default/review/review.sqlite --format labels --out labels.jsonl &&
    voicetune judge train --labels labels.jsonl --out judges/ours
    """
    from voicetune.judge.learned import read_labels, train_judge
    from voicetune.quality import load_scorer_config

    responses, preferences = [], []
    for path in labels:
        found = read_labels(path)
        responses += found[0]
        preferences += found[1]
    if with_builtin:
        from voicetune.data.listener import labelled_preferences, labelled_responses

        responses += labelled_responses()
        preferences += labelled_preferences()
    judge = train_judge(
        responses,
        preferences,
        output,
        load_scorer_config(scorer_config),
        seed=seed,
        log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True),
    )
    out.print(
        f"learned judge written to {output} (out-of-fold accuracy {judge.meta['oof_accuracy']:.1%}, ECE "
        f"{judge.meta['oof_ece']:.3f})"
    )


@app.command()
def generate(
    input: Path = typer.Option(..., "--input", "-i", help="Turn records (JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the records with 'response'."),
    model: str = typer.Option(
        "smollm2-135m", help="smollm2-135m, a .gguf file, a model directory (e.g. runs/X/model) or a Hugging Face id."
    ),
    system_prompt: Path | None = typer.Option(
        None, "--system-prompt", help="A voice style prompt file ('default' for the built-in one)."
    ),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Sampling seed (0 to 2**32 - 1)."),
    temperature: float = typer.Option(DEFAULT_SAMPLING.temperature, min=0, help="Sampling temperature (0 for greedy)."),
    max_new_tokens: int = typer.Option(DEFAULT_SAMPLING.max_new_tokens, min=1, help="Longest response, in tokens."),
    batch_size: int = typer.Option(16, min=1, help="Prompts per batch (transformers backend)."),
    endpoint: str | None = typer.Option(
        None, help="An OpenAI-compatible server (vLLM, llama.cpp, hosted) instead of local transformers."
    ),
    api_model: str | None = typer.Option(None, help="The model name the --endpoint expects."),
    threads: int = typer.Option(0, min=0, max=1024, help="CPU threads (0: the cores no other process is using)."),
) -> None:
    """Generate spoken responses; resumable (a killed run keeps its finished rows).

    Example: voicetune generate --model runs/demo/model --input test.jsonl --output responses.jsonl --seed 0
    """
    from voicetune.models.generate import SamplingConfig, generate_file, make_backend
    from voicetune.models.prompts import load_style_prompt
    from voicetune.threads import apply_threads

    apply_threads(threads)
    style = load_style_prompt(system_prompt)
    backend = make_backend(model, endpoint, api_model, batch_size)
    sampling = SamplingConfig.at(temperature, max_new_tokens=max_new_tokens, seed=seed)
    turns = generate_file(backend, input, output, style, sampling)
    console.print(f"wrote {len(turns)} responses to {output}")


@app.command("train")
def train_command(
    config: Path | None = typer.Option(None, "--config", "-c", help="A YAML config (every field has a default)."),
    output: Path = typer.Option(Path("runs/train"), "--out", "-o", help="The run directory (resumes if it exists)."),
    model: str | None = typer.Option(None, help="Override the config's model."),
    data: str | None = typer.Option(
        None,
        help="Override the config's data: 'spoken' (every spoken reference's train split), 'builtin' or a turns JSONL "
        "with references.",
    ),
    teacher: str | None = typer.Option(None, help="An OpenAI-compatible endpoint that writes the spoken targets."),
    teacher_model: str | None = typer.Option(None, help="The teacher's model name."),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="Override the config's threads (0: the cores no other process is using)."
    ),
    help_config: bool = typer.Option(
        False, "--help-config", help="Print every config field (type, default, what it does) and exit."
    ),
) -> None:
    """Post-train: SFT on spoken targets, then sample, score and DPO on best vs worst.

    Example: voicetune train --out runs/tuned   (then: voicetune generate --model runs/tuned/model ...)
    """
    from voicetune.train import TrainConfig, load_config, train

    if help_config:
        from voicetune.settings import config_help_text

        print(
            config_help_text(
                TrainConfig, "voicetune train --config FILE: every field (YAML; nested sections as mappings)"
            ),
            end="",
        )
        return
    overrides = {"model": model, "data": data, "threads": threads}
    if teacher:
        overrides.update({"targets": "teacher", "teacher_endpoint": teacher, "teacher_model": teacher_model})
    resolved = load_config(config, overrides)
    summary = train(
        resolved, output, log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True)
    )
    out.print(f"model: {summary['model']} ({summary['timings']['total_s']:.0f} s)")


@app.command("eval")
def eval_command(
    system: list[str] = typer.Option(
        [],
        "--system",
        "-s",
        help="NAME=SPEC, repeated: a model (smollm2-135m, runs/X/model, an HF id; +voice adds the voice style prompt, "
        "+best4 keeps the best of 4 samples, +guard falls back to the draft said faithfully), draft, "
        "draft+pipecat, draft+voicetune, reference or endpoint:URL#MODEL.",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="A YAML evaluation config (see --help-config); flags given here win."
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        "-d",
        help="Turn records (JSONL), builtin:SPLIT for the built-in data, or spoken:SPLIT[:SOURCE] for the spoken "
        "references (default builtin:test).",
    ),
    judge_kind: str | None = typer.Option(
        None,
        "--judge",
        help="learned (usable first, learned from listeners; the default), rubric (the scorer's rules alone) or llm "
        "(an OpenAI-compatible judge).",
    ),
    judge_endpoint: list[str] = typer.Option(
        [], "--judge-endpoint", help="The LLM judge's OpenAI-compatible URL (one, or one per --judge-model)."
    ),
    judge_model: list[str] = typer.Option(
        [], "--judge-model", help="The LLM judge's model name; repeat for a panel (majority vote)."
    ),
    api_key_env: str | None = typer.Option(
        None, help="The environment variable holding the judge endpoint's API key (default OPENAI_API_KEY)."
    ),
    pair: list[str] = typer.Option(
        [], "--pair", help="A:B comparisons to judge (default: the first system against each other)."
    ),
    output: Path = typer.Option(
        Path("runs/eval"), "--out", "-o", help="The run directory (cached responses and verdicts are reused)."
    ),
    seed: list[int] = typer.Option(
        [],
        "--seed",
        min=0,
        max=2**32 - 1,
        help="Sampling seed (0 to 2**32 - 1), the same for every system; repeat for several (default 0).",
    ),
    limit: int | None = typer.Option(None, min=1, help="Only the first N turns."),
    temperature: float | None = typer.Option(
        None, min=0, help=f"Sampling temperature of model systems (default {DEFAULT_SAMPLING.temperature})."
    ),
    concurrency: int | None = typer.Option(None, min=1, help="Parallel requests to the judge endpoint (default 4)."),
    timeout: float | None = typer.Option(
        None, min=0.001, help="Seconds one judge request may take in all (default 120; then retried with backoff)."
    ),
    scorer_config: Path | None = typer.Option(
        None,
        "--scorer-config",
        help="A YAML scorer config for the rubric judge and the statistics (e.g. a training run's reward).",
    ),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="CPU threads (default: the cores no other process is using)."
    ),
    help_config: bool = typer.Option(
        False, "--help-config", help="Print every config field (type, default, what it does) and exit."
    ),
) -> None:
    """Compare systems pairwise on the same contexts: both orders, per criterion, with confidence intervals.

    Example: voicetune eval --system tuned=runs/train/model --system base=smollm2-135m --system draft+pipecat --data
    builtin:test --out runs/eval
    """
    from pydantic import ValidationError

    from voicetune.evaluate import evaluate, parse_system
    from voicetune.evaluate.config import EvalConfig
    from voicetune.evaluate.run import parse_comparison
    from voicetune.quality import load_scorer_config
    from voicetune.settings import config_help_text, load_yaml_config, validation_message

    if help_config:
        print(config_help_text(EvalConfig, "voicetune eval --config FILE: every field (YAML; flags override)"), end="")
        return
    settings = load_yaml_config(EvalConfig, config)
    judge_flags = {
        "kind": judge_kind,
        "endpoints": judge_endpoint or None,
        "models": judge_model or None,
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "timeout": timeout,
    }
    updates = {
        "systems": system or None,
        "data": data,
        "pairs": pair or None,
        "seeds": seed or None,
        "limit": limit,
        "temperature": temperature,
        "threads": threads,
        "judge": settings.judge.model_copy(update={k: v for k, v in judge_flags.items() if v is not None}),
        "scorer": load_scorer_config(scorer_config) if scorer_config else None,
    }
    try:
        settings = EvalConfig.model_validate(
            {**settings.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
        )
    except ValidationError as error:
        raise VoicetuneError(validation_message(error, "the eval flags")) from None
    if not settings.systems:
        raise VoicetuneError(
            "give the systems to compare: --system NAME=SPEC (at least two), or 'systems:' in --config"
        )
    systems = [parse_system(text) for text in settings.systems]
    turns = _eval_turns(settings.data, settings.limit)
    comparisons = [parse_comparison(text, [s.name for s in systems]) for text in settings.pairs] or None
    from voicetune.judge import make_judge
    from voicetune.records import atomic_write_text
    from voicetune.settings import dump_yaml
    from voicetune.threads import apply_threads

    apply_threads(settings.threads, log=lambda message: console.print(message, markup=False, highlight=False))
    judge = make_judge(settings.judge, output / "judge_cache.sqlite", settings.scorer)
    atomic_write_text(output / "eval.yaml", dump_yaml(settings))
    summary = evaluate(
        systems,
        turns,
        judge,
        output,
        comparisons,
        seed=settings.seeds,
        data_name=settings.data,
        temperature=settings.temperature,
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
        scorer=settings.scorer,
        log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True),
    )
    print((output / "summary.md").read_text(encoding="utf-8"))
    console.print(
        f"wrote {output / 'summary.json'}, {output / 'summary.md'} and {output / 'pairs.jsonl'} "
        f"({sum(c['n'] + c['errors'] for c in summary['comparisons'])} pairs)",
        soft_wrap=True,
    )


@app.command("simulate")
def simulate_command(
    system: list[str] = typer.Option(
        [],
        "--system",
        "-s",
        help="NAME=SPEC, repeated, as `eval` takes them (the first is compared with each other one).",
    ),
    conversations: str | None = typer.Option(
        None,
        "--conversations",
        help="Turn records (JSONL, e.g. imported τ-bench trajectories) or builtin:SPLIT (default builtin:test).",
    ),
    output: Path = typer.Option(
        Path("runs/simulate"), "--out", "-o", help="The run directory (responses and the channel are cached)."
    ),
    seeds: int | None = typer.Option(
        None,
        "--seeds",
        min=1,
        max=1000,
        help="The caller's random streams per call (default 5), the same for every system.",
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="A YAML simulation config (see --help-config); flags given here win."
    ),
    channel: str | None = typer.Option(
        None, "--channel", help="text (default) or speech: each agent turn synthesised and transcribed by offline ASR."
    ),
    pair: list[str] = typer.Option(
        [], "--pair", help="A:B comparisons (default: the first system against each other one)."
    ),
    caller: str | None = typer.Option(
        None, "--caller", help="rules (the default caller model) or llm (an LLM playing τ²-bench personas)."
    ),
    caller_endpoint: str | None = typer.Option(
        None, "--caller-endpoint", help="The LLM caller's OpenAI-compatible URL."
    ),
    caller_model: str | None = typer.Option(None, "--caller-model", help="The LLM caller's model name."),
    sensitivity: bool = typer.Option(
        False,
        "--sensitivity",
        help="Also rerun the comparisons with each main caller-model parameter at 0.5x and 1.5x.",
    ),
    limit: int | None = typer.Option(None, min=1, help="Only the first N calls."),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="CPU threads (default: the cores no other process is using)."
    ),
    help_config: bool = typer.Option(
        False, "--help-config", help="Print every config field (type, default, source) and exit."
    ),
) -> None:
    """Simulated calls: repeat requests, turns, call duration and resolution per system, paired over the same
    calls and caller random streams, with 95% CIs and a non-inferiority test on resolution.

    Example: voicetune simulate --system tuned=runs/train/model --system base=smollm2-135m --system draft+pipecat
    --conversations builtin:test --out runs/sim
    """
    from pydantic import ValidationError

    from voicetune.settings import config_help_text, load_yaml_config, validation_message
    from voicetune.simulate.config import SimConfig
    from voicetune.simulate.run import simulate
    from voicetune.threads import apply_threads

    if help_config:
        print(
            config_help_text(SimConfig, "voicetune simulate --config FILE: every field (YAML; flags override)"), end=""
        )
        return
    settings = load_yaml_config(SimConfig, config)
    llm = settings.llm.model_copy(
        update={k: v for k, v in {"endpoint": caller_endpoint, "model": caller_model}.items() if v}
    )
    updates = {
        "systems": system or None,
        "conversations": conversations,
        "seeds": seeds,
        "channel": channel,
        "comparisons": pair or None,
        "caller": caller,
        "limit": limit,
        "threads": threads,
        "llm": llm,
    }
    try:
        settings = SimConfig.model_validate(
            {**settings.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
        )
    except ValidationError as error:
        raise VoicetuneError(validation_message(error, "the simulate flags")) from None
    if not settings.systems:
        raise VoicetuneError(
            "give the systems to compare: --system NAME=SPEC (at least two), or 'systems:' in --config"
        )
    if config is not None:  # the config file is an input too: the run writes its own simulate.yaml into --out
        from voicetune.records import refuse_overwriting_input
        from voicetune.simulate.run import WRITES

        refuse_overwriting_input(output, config, writes=WRITES)
    apply_threads(settings.threads, log=lambda message: console.print(message, markup=False, highlight=False))
    summary = simulate(
        settings,
        output,
        sensitivity=sensitivity,
        log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True),
    )
    print((output / "summary.md").read_text(encoding="utf-8"))
    console.print(
        f"wrote {output / 'summary.json'}, {output / 'summary.md'} and {output / 'calls.jsonl'} ({summary['calls']} "
        "calls)",
        soft_wrap=True,
    )


def _eval_turns(data: str, limit: int | None) -> list:
    from voicetune.data import load_turns

    return load_turns(data, limit)


def _make_judge(
    kind: str,
    endpoints: list[str],
    models: list[str],
    cache_path: Path,
    api_key_env: str,
    concurrency: int,
    timeout: float,
    scorer_config: Path | None = None,
    judge_dir: Path | None = None,
):
    """The judge the flags describe (see :mod:`voicetune.judge.registry`)."""
    from pydantic import ValidationError

    from voicetune.judge import JUDGES, JudgeOptions, make_judge
    from voicetune.quality import load_scorer_config
    from voicetune.settings import validation_message

    if kind not in JUDGES:
        raise VoicetuneError(f"--judge '{kind}': expected one of {', '.join(JUDGES)}")
    try:
        options = JudgeOptions(
            kind=kind,
            endpoints=endpoints,
            models=models,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
            model=str(judge_dir) if judge_dir else None,
        )
    except ValidationError as error:
        raise VoicetuneError(validation_message(error, "--judge", "")) from None
    return make_judge(options, cache_path if kind == "llm" else None, load_scorer_config(scorer_config))


@app.command("run")
def run_command(
    config: Path | None = typer.Argument(
        None,
        help="A YAML run config (see --help-config); none: the embedded default (built-in data, smollm2-135m, CPU).",
    ),
    output: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The run directory (default runs/CONFIG_NAME, or runs/default); an existing one resumes.",
    ),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="CPU threads for every stage (0: the cores no other process is using)."
    ),
    help_config: bool = typer.Option(
        False, "--help-config", help="Print every config field (type, default, what it does) and exit."
    ),
) -> None:
    """The main job: data, train, eval (tuned vs base, prompted base and draft+pipecat), review set, simulated
    calls and the report, into one run directory. Stages whose inputs have not changed are skipped; a killed
    run resumes.

    Example: voicetune run --out runs/default   (then open runs/default/report.html)
    """
    import shlex

    from voicetune.pipeline import RunConfig, load_run_config, run
    from voicetune.settings import config_help_text

    if help_config:
        print(
            config_help_text(RunConfig, "voicetune run CONFIG: every field (YAML; nested sections as mappings)"), end=""
        )
        return
    if config is not None and not config.exists():
        from voicetune.records import missing_reason

        raise VoicetuneError(f"{config}: {missing_reason(config)}, expected the run's config file (YAML)")
    settings = load_run_config(config, {"threads": threads})
    output = output or Path("runs") / (config.stem if config is not None else "default")
    command = (
        "voicetune run"
        + (f" {shlex.quote(str(config))}" if config else "")
        + f" --out {shlex.quote(str(output))}"
        + (f" --threads {threads}" if threads is not None else "")
    )
    summary = run(settings, output, command=command, config_file=config)
    from voicetune.report.render import sentence
    from voicetune.report.summary import Verdict

    for verdict in summary["headline"]:
        out.print(sentence(Verdict.model_validate(verdict)), markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"report: {output / 'report.html'} (and report.md, summary.json)", markup=False, highlight=False, soft_wrap=True
    )


@app.command("report")
def report_command(
    run_dir: Path = typer.Argument(..., help="A run directory (made by `voicetune run`)."),
) -> None:
    """Rebuild a run's summary.json, report.html and report.md from its stages' outputs and the review set's
    current votes (run it again after reviewers voted).

    Example: voicetune report runs/default
    """
    from voicetune.pipeline import report_run

    summary = report_run(run_dir)
    votes = (summary.get("review") or {}).get("votes", 0)
    out.print(
        f"wrote {run_dir / 'report.html'}, report.md and summary.json ({len(summary['headline'])} headline figures, "
        f"{votes} review votes)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="A merged model directory (e.g. runs/default/train/model) or smollm2-135m."),
    gguf: Path = typer.Option(..., "--gguf", help="The GGUF file to write."),
    quant: str = typer.Option("q8_0", "--quant", help="q4_k_m (smallest; needs llama-cpp-python), q8_0 or f16."),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="CPU threads for quantising (default: the free cores)."
    ),
) -> None:
    """Export a model to GGUF with llama.cpp's converter, for llama.cpp, llama-cpp-python, Ollama or LM Studio.

    Example: voicetune export runs/default/train/model --gguf tuned-q4.gguf --quant q4_k_m
    """
    from voicetune.serve.export import QUANTS, export_gguf

    if quant not in QUANTS:
        raise VoicetuneError(f"--quant {quant!r}: expected one of {', '.join(QUANTS)}")
    result = export_gguf(
        model,
        gguf,
        quant,
        threads=threads,
        log=lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True),
    )
    out.print(
        f"wrote {result['gguf']} ({result['bytes'] / 1e6:.1f} MB, {quant}) in {result['seconds']:.1f} s",
        markup=False,
        highlight=False,
    )


@app.command("serve")
def serve_command(
    model: str = typer.Argument(
        ...,
        help="The tuned model: a .gguf file (llama.cpp), a model directory or an HF id (transformers), or the name the "
        "endpoint expects.",
    ),
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8010, min=1, max=65535, help="The port to listen on."),
    backend: str = typer.Option(
        "auto", help="auto (llama.cpp for a .gguf, else transformers), transformers, llama.cpp, vllm, or endpoint:URL."
    ),
    best_of: int = typer.Option(
        1, "--best-of", min=1, help="Sample N candidates and return the one the scorer rates highest."
    ),
    guard: bool = typer.Option(
        False, "--guard", help="Return the draft said faithfully (and say so) when the judge calls no candidate usable."
    ),
    system_prompt: Path | None = typer.Option(
        None,
        "--system-prompt",
        help="A voice style prompt file ('default' for the built-in one), for a model not trained on spoken targets.",
    ),
    temperature: float = typer.Option(DEFAULT_SAMPLING.temperature, min=0, help="Sampling temperature (0: greedy)."),
    max_new_tokens: int = typer.Option(DEFAULT_SAMPLING.max_new_tokens, min=1, help="The longest response, in tokens."),
    scorer_config: Path | None = typer.Option(
        None,
        "--scorer-config",
        help="The scorer of --best-of, --guard and scores (e.g. the training run's reward.yaml).",
    ),
    threads: int | None = typer.Option(
        None, min=0, max=1024, help="CPU threads (default: the cores no other process is using)."
    ),
    queue: int = typer.Option(
        8,
        "--queue",
        min=0,
        max=1024,
        help="Requests that may wait for the voice while one generates; more are answered 503 with Retry-After.",
    ),
) -> None:
    """Serve the tuned voice over HTTP: POST /v1/speak (streaming sentence by sentence with server-sent events)
    and an OpenAI-compatible /v1/chat/completions. There is no authentication: keep it on 127.0.0.1 or a
    private network behind your pipeline.

    Example: voicetune serve tuned-q4.gguf --port 8010 --best-of 4 --guard
    """
    from voicetune.quality import load_scorer_config
    from voicetune.serve.app import serve
    from voicetune.serve.voice import check_backend, load_voice
    from voicetune.web import bind, is_loopback

    check_backend(backend)
    sock = bind(host, port)  # before the model loads: a port in use is one line at once, not an exit after "serving"
    with sock:
        if not is_loopback(host):
            console.print(
                f"warning: serving on {host}: the speak server has no authentication; anyone who can reach this port "
                "can use "
                "the voice; keep it behind your pipeline (127.0.0.1 or a private network)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        voice = load_voice(
            model,
            backend,
            best_of=best_of,
            guard=guard,
            style=str(system_prompt) if system_prompt else None,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            threads=threads,
            scorer=load_scorer_config(scorer_config),
        )
        console.print(
            f"serving {model} ({backend}{f', best of {best_of}' if best_of > 1 else ''}{', guarded' if guard else ''}) "
            f"at http://{host}:{port}/v1/speak",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        serve(voice, host, port, backend_name=backend, queue=queue, sock=sock)


def main(args: list[str] | None = None) -> None:
    """Entry point: a user error (a bad file, line, field, flag or URL, an unknown option, a missing or invalid
    value, a path that cannot be written) is one line on stderr starting ``error: ``, exit code 2, never a
    traceback; ``--help`` and ``--version`` exit 0; an interrupt exits 130."""
    import errno

    try:  # typer >= 0.2x vendors click; older versions use click itself: catch whichever is in use
        from typer._click import exceptions as click_exceptions
    except ImportError:
        from click import exceptions as click_exceptions  # type: ignore[no-redef]  # the same module, by its older name

    def fail(message: str, code: int = 2) -> None:
        message = str(VoicetuneError(str(message).strip()))  # line breaks escaped: one line, never wrapped
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)

    args = list(sys.argv[1:] if args is None else args)
    path_flags = {"--out", "-o", "--output", "--input", "-i", "--pairs", "-p", "--config", "-c", "--system-prompt"}
    for index, arg in enumerate(args):  # "" would become the current folder (Path("")): refuse it by name
        flag: str | None
        if arg.startswith("--") and arg.endswith("=") and len(arg) > 3:
            flag = arg[:-1]  # --out=
        elif arg == "":
            flag = args[index - 1] if index and args[index - 1].startswith("-") else None
        else:
            continue
        if flag is None:
            fail(f"argument {index + 1} is empty: empty path")  # the positional arguments are files
        fail(f"{flag}: empty path" if flag in path_flags else f"{flag}: empty value")
    try:
        result = app(args=args, prog_name="voicetune", standalone_mode=False)
    except VoicetuneError as error:
        fail(str(error))
    except getattr(
        click_exceptions, "NoArgsIsHelpError", ()
    ) as error:  # "voicetune" or "voicetune data" alone: the help
        if error.format_message().strip():  # (typer has printed it already)
            print(error.format_message(), file=sys.stderr)
        sys.exit(2)
    except click_exceptions.UsageError as error:
        path = error.ctx.command_path if error.ctx is not None else "voicetune"
        fail(f"{error.format_message()} (see '{path} --help')")
    except click_exceptions.ClickException as error:
        fail(error.format_message(), getattr(error, "exit_code", 2) or 2)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as error:  # last resort: a path that cannot be read or written, never a traceback
        if error.errno == errno.EPIPE:
            sys.exit(1)
        if not error.filename:
            raise
        fail(f"{error.filename}: {error.strerror or error}")
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
