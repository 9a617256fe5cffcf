"""``voicetune review``: create a blind listening review from an eval, serve it, measure agreement, and move
votes to and from Label Studio. A thin layer over :mod:`voicetune.review`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from voicetune.errors import VoicetuneError
from voicetune.records import Turn, atomic_write_text, dumps, load_records, refuse_overwriting_input, same_file
from voicetune.review.agreement import render_agreement, review_agreement
from voicetune.review.create import base_url, create_review_set, review_links
from voicetune.review.export import votes_csv, votes_jsonl, votes_labels
from voicetune.review.labelstudio import export_label_studio, import_label_studio
from voicetune.review.store import ReviewStore, symlink_loop

review_app = typer.Typer(
    help="Human review: blind, listen-first pairwise votes, and their agreement with the judge.", no_args_is_help=True
)
console = Console(stderr=True)
out = Console()


def _say(message: str) -> None:
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def _check_output(output: Path, db: Path, *inputs: Path | None, writes: tuple[str, ...] | None = None) -> None:
    """Refuse an output that would replace the review database (or the WAL and shared-memory files SQLite keeps
    beside it: replacing either loses the votes not yet checkpointed) or another input; and a symlink loop,
    which would otherwise read as "File exists". ``writes``: the files written inside a folder ``output``."""
    database = (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    refuse_overwriting_input(output, *database, *inputs, writes=writes)
    taken = next((path for path in database if writes is not None and same_file(output, path)), None)
    if taken is not None:  # a folder in the place of the database's file (or of its WAL, made when it opens)
        raise VoicetuneError(f"{output}: is the review database's file {taken}; choose another --out folder")
    if symlink_loop(output):
        raise VoicetuneError(f"{output}: is a symlink loop (or inside one); choose another --out")


@review_app.command("create")
def create(
    source: Path = typer.Option(..., "--from", help="A `voicetune eval` output folder (its pairs.jsonl)."),
    db: Path = typer.Option(..., "--db", help="The review database to create (SQLite; never overwritten)."),
    reviewers: str = typer.Option(..., "--reviewers", help="Reviewer names, comma-separated."),
    sample: int | None = typer.Option(
        None, "--sample", min=1, help="Review N pairs, stratified by domain and comparison (default: all)."
    ),
    overlap: int | None = typer.Option(
        None,
        "--overlap",
        min=1,
        help="Reviewers per pair, for inter-reviewer agreement (default 2, or 1 with one reviewer).",
    ),
    repeat_share: float = typer.Option(
        0.1,
        "--repeat-share",
        min=0.0,
        max=1.0,
        help="Share of each reviewer's pairs shown again in the other order (self-consistency).",
    ),
    mode: str = typer.Option("listen", "--mode", help="listen (text hidden until both responses were heard) or read."),
    engine: str = typer.Option("auto", "--tts", help="auto, piper, espeak or browser (see voicetune.tts)."),
    seed: int = typer.Option(0, help="Sampling, assignment and order seed."),
    host: str = typer.Option("127.0.0.1", help="The host the links name (as `serve` will bind)."),
    port: int = typer.Option(8000, min=1, max=65535, help="The port the links name."),
) -> None:
    """Make a review set: sample pairs, assign reviewers, synthesise every response once.

    Example: voicetune review create --from runs/eval --db review.sqlite --reviewers alice,bob,carol --sample 60
    """
    made = create_review_set(
        source,
        db,
        reviewers.split(","),
        sample=sample,
        overlap=overlap,
        repeat_share=repeat_share,
        mode=mode,
        engine=engine,
        seed=seed,
        progress=True,
        log=_say,
    )
    out.print(f"review set {db}: {made.pairs} pairs, {made.items} items, audio: {made.engine}")
    for name, link in made.links(host, port).items():
        out.print(f"  {name:>10}  {link}", markup=False, highlight=False, soft_wrap=True)
    _say(
        f"serve it with: voicetune review serve --db {db}"
        + (f" --host {host}" if host != "127.0.0.1" else "")
        + (f" --port {port}" if port != 8000 else "")
    )


@review_app.command("serve")
def serve_command(
    db: Path = typer.Option(..., "--db", help="The review database."),
    host: str = typer.Option(
        "127.0.0.1", help="Bind address (127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)."
    ),
    port: int = typer.Option(8000, min=1, max=65535, help="Port (1 to 65535)."),
) -> None:
    """Serve the review app until Ctrl-C; votes are committed as they are cast.

    Example: voicetune review serve --db review.sqlite --port 8000
    """
    from voicetune.review.app import serve  # noqa: PLC0415 (heavy: fastapi)
    from voicetune.web import bind, is_loopback  # noqa: PLC0415 (heavy: starlette, only for serving)

    store = ReviewStore(db)
    listener = bind(host, port)  # a port in use is one line now, before any link or "serving" is printed
    links = review_links(store.reviewers(), store.meta()["admin_token"], host, port)
    for name, link in links.items():
        out.print(f"  {name:>10}  {link}", markup=False, highlight=False, soft_wrap=True)
    if not is_loopback(host):
        _say(
            f"warning: serving on {host} over plain HTTP (no TLS): the secret links are the only protection, so "
            "anyone who sees a link or the traffic can vote as that reviewer, and the admin link reads and exports "
            "every vote"
        )
    _say(f"serving {db} on {base_url(host, port)} (Ctrl-C stops; every vote is already saved)")
    serve(db, host, port, sock=listener)


@review_app.command("agreement")
def agreement(
    db: Path = typer.Option(..., "--db", help="The review database."),
    eval_dir: Path | None = typer.Option(
        None, "--eval", help="The eval folder, to put the judge's summary beside the humans' (summary.json)."
    ),
    output: Path | None = typer.Option(
        None, "--out", "-o", help="Write the figures as JSON here (default DB.agreement.json)."
    ),
    seed: int = typer.Option(0, help="Bootstrap seed."),
) -> None:
    """Human vs judge (Cohen's κ), reviewers vs each other (Krippendorff's α, Fleiss' κ), self-consistency,
    human win rates with bootstrap CIs, Bradley–Terry strengths, listen vs read.

    Example: voicetune review agreement --db review.sqlite --eval runs/eval
    """
    store = ReviewStore(db)
    output = output or db.with_name(db.name + ".agreement.json")
    _check_output(output, db, eval_dir / "summary.json" if eval_dir is not None else None)
    votes = store.votes()
    if not votes:
        raise VoicetuneError(f"{db}: no votes yet")
    report = review_agreement(votes, store.judge_verdicts(), seed=seed)
    if eval_dir is not None:
        summary_path = eval_dir / "summary.json"
        if not summary_path.is_file():
            raise VoicetuneError(f"{eval_dir}: no summary.json (the --eval folder is a `voicetune eval` output)")
        judged = {f"{c['system_a']}-vs-{c['system_b']}": c for c in json.loads(summary_path.read_text())["comparisons"]}
        for row in report["comparisons"]:
            row["eval_win_rate"] = judged.get(row["comparison"], {}).get("win_rate")
    atomic_write_text(output, dumps(report, indent=2) + "\n")
    print(render_agreement(report))
    _say(f"wrote {output}")


@review_app.command("export")
def export(
    db: Path = typer.Option(..., "--db", help="The review database."),
    format: str = typer.Option(
        "csv",
        "--format",
        "-f",
        help="csv, jsonl (the votes), labels (the votes as listener preferences for 'voicetune judge train'; needs "
        "--contexts) or label-studio (a project to review in Label Studio).",
    ),
    contexts: Path | None = typer.Option(
        None,
        "--contexts",
        help="labels: the turn records the set was made from (e.g. RUN/data/test.jsonl), for each pair's draft and "
        "history.",
    ),
    output: Path = typer.Option(..., "--out", "-o", help="The file (csv, jsonl) or folder (label-studio) to write."),
    audio_url_prefix: str = typer.Option(
        "/data/local-files/?d=", help="label-studio: the URL prefix Label Studio serves local files under."
    ),
) -> None:
    """Export the votes, or the set as a Label Studio project.

    Example: voicetune review export --db review.sqlite --format label-studio --out ls_project/
    """
    store = ReviewStore(db)
    # label-studio writes a folder: none of the files written into it may be the database either
    project = ("tasks.json", "labeling_config.xml", "README.txt", "audio") if format == "label-studio" else None
    _check_output(output, db, contexts, writes=project)
    if format in ("csv", "jsonl"):
        # review data (each reviewer's verdicts and comments): owner-only, as the database is
        atomic_write_text(output, votes_csv(store) if format == "csv" else votes_jsonl(store), private=True)
        _say(f"wrote {len(store.votes())} votes to {output}")
    elif format == "labels":
        if contexts is None:
            raise VoicetuneError(
                "--format labels needs --contexts FILE: the turn records the review set was made from (e.g. "
                "RUN/data/test.jsonl)"
            )
        rows = votes_labels(store, {t.id: t for t in load_records(contexts, Turn)})
        atomic_write_text(output, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), private=True)
        _say(
            f"wrote {len(rows)} listener preferences to {output} (voicetune judge train --labels {output} "
            "--with-builtin)"
        )
    elif format == "label-studio":
        result = export_label_studio(store, output, audio_url_prefix=audio_url_prefix)
        _say(
            f"wrote {result['tasks']} tasks and {result['audio_files']} audio files to {output} (see "
            f"{output}/README.txt)"
        )
    else:
        raise VoicetuneError(f"--format '{format}': expected csv, jsonl, labels or label-studio")


@review_app.command("import")
def import_command(
    db: Path = typer.Option(..., "--db", help="The review database the votes go into."),
    source: Path = typer.Argument(
        ..., help="A Label Studio JSON export of the project `export --format label-studio` made."
    ),
    reviewer_from: str = typer.Option(
        "email", help="Name reviewers by their Label Studio email (its local part) or id."
    ),
) -> None:
    """Import votes collected in Label Studio; re-importing the same export adds nothing.

    Example: voicetune review import --db review.sqlite project-1-at-2026-11-29.json
    """
    if reviewer_from not in ("email", "id"):
        raise VoicetuneError(f"--reviewer-from '{reviewer_from}': expected email or id")
    result = import_label_studio(ReviewStore(db), source, reviewer_from=reviewer_from)
    _say(
        f"{result['imported']} votes imported, {result['already']} already there, {result['skipped']} skipped, from "
        f"{result['annotations']} annotations by {len(result['reviewers'])} reviewers"
    )
