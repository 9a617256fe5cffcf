"""Nothing a careless or hostile user asks of `voicetune run`, `simulate`, `export` and `report` loses data or
ends in a traceback: outputs never land on inputs (the shared check, voicetune.records.refuse_overwriting_input),
a run never takes over a folder that is not a run, databases move with their WAL (or not under a live server),
configs fail at validation rather than at their stage, and bad paths get one clear line. All fast: nothing
here trains or loads a model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from voicetune.errors import VoicetuneError
from voicetune.records import EVERYTHING, Message, Turn, refuse_overwriting_input, write_records

# ---------------------------------------------------------------------------------------------------------
# The shared check


def test_an_output_that_is_an_input_by_any_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "turns.jsonl"
    source.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(source)
    os.link(source, tmp_path / "hard.jsonl")
    for output in ("turns.jsonl", "./sub/../turns.jsonl", tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(VoicetuneError, match="is the input file"):
            refuse_overwriting_input(output, source)
    refuse_overwriting_input(
        tmp_path / "other.jsonl", source, None, tmp_path / "missing.jsonl"
    )  # no clash: nothing raised


def test_a_databases_journal_files_are_part_of_it(tmp_path):
    database = tmp_path / "review.sqlite"
    database.write_bytes(b"SQLite format 3\x00")
    for suffix in ("-wal", "-shm", "-journal"):
        with pytest.raises(VoicetuneError, match="SQLite's journal of the input"):
            refuse_overwriting_input(tmp_path / f"review.sqlite{suffix}", database)


def test_an_output_folder_says_what_it_writes(tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    inside = out / "data" / "turns.jsonl"
    beside = out / "mine.jsonl"
    inside.write_text("{}\n")
    beside.write_text("{}\n")
    with pytest.raises(VoicetuneError, match="holds the input"):  # a folder written or moved aside whole
        refuse_overwriting_input(out, inside, writes=("data", "summary.json"))
    refuse_overwriting_input(out, beside, writes=("data", "summary.json"))  # a file the command does not write
    with pytest.raises(VoicetuneError, match="mine.jsonl"):
        refuse_overwriting_input(out, beside, writes=EVERYTHING)


def test_an_existing_file_of_an_input_folder_is_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(VoicetuneError, match="a file of the input folder"):
        refuse_overwriting_input(model / "config.json", model)
    refuse_overwriting_input(model / "new.gguf", model)  # a new file overwrites nothing


# ---------------------------------------------------------------------------------------------------------
# Databases moved aside: checkpointed and with their WAL, never under a live server


def _database_with_wal(path: Path) -> None:
    """A database whose last commits sit in its WAL: the writer was killed, as a server may be."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE votes (id INTEGER)")
    db.close()
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os, sqlite3\n"
                f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
                "for i in range(5): db.execute('INSERT INTO votes VALUES (?)', (i,))\n"
                "os._exit(0)  # killed: no checkpoint, no close\n"
            ),
        ],
        check=True,
    )


def _review_step(root: Path, made_from: dict):
    from voicetune.layout import RunPaths
    from voicetune.pipeline.outputs import StageStep
    from voicetune.pipeline.run import STAGES

    paths = RunPaths(root)
    stage = next(s for s in STAGES if s.name == "review")
    return paths, StageStep(paths.record("review"), stage.outputs(paths), made_from, name="review", log=lambda _: None)


def test_a_killed_servers_votes_move_with_the_review_set(tmp_path):
    paths, step = _review_step(tmp_path, {"sample": 8})
    paths.review_db.parent.mkdir()
    _database_with_wal(paths.review_db)
    assert Path(f"{paths.review_db}-wal").stat().st_size > 0
    paths.stages.mkdir()
    paths.record("review").write_text(json.dumps({"status": "done", "made_from": {"sample": 6}}))
    step.begin()  # review.sample changed: the old set is moved aside
    assert sorted(paths.review_db.parent.iterdir()) == []  # no stale WAL left to be replayed into the next set
    moved = next((paths.stages / ".superseded").glob("review-*/review.sqlite"))
    assert sqlite3.connect(moved).execute("SELECT count(*) FROM votes").fetchone() == (5,)


def test_a_review_set_a_live_server_holds_is_not_moved(tmp_path):
    paths, step = _review_step(tmp_path, {"sample": 8})
    paths.review_db.parent.mkdir()
    _database_with_wal(paths.review_db)
    paths.stages.mkdir()
    paths.record("review").write_text(json.dumps({"status": "done", "made_from": {"sample": 6}}))
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sqlite3, time\n"
                f"db = sqlite3.connect({str(paths.review_db)!r}, isolation_level=None)\n"
                "db.execute('PRAGMA journal_mode=WAL'); db.execute('SELECT count(*) FROM votes').fetchone()\n"
                "print('serving', flush=True); time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "serving"
        with pytest.raises(VoicetuneError, match="in use by another process") as error:
            step.begin()
        assert "\n" not in str(error.value)
        assert paths.review_db.is_file() and not (paths.stages / ".superseded").exists()
    finally:
        server.kill()
        server.wait()
    assert sqlite3.connect(paths.review_db).execute("SELECT count(*) FROM votes").fetchone() == (5,)


# ---------------------------------------------------------------------------------------------------------
# `voicetune run`: the folder, the inputs, the config


def test_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    from voicetune.pipeline import RunConfig, run

    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "config.yaml").write_text("# my own notes\n")
    (mine / "command.txt").write_text("mine\n")
    (mine / "data" / "precious.jsonl").write_text("{}\n")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    with pytest.raises(VoicetuneError, match="not a voicetune run"):
        run(RunConfig(), mine, log=lambda _: None)
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before and not (mine / "stages").exists()


def test_a_run_folder_is_recognised_by_its_marker_or_an_older_runs_layout(tmp_path):
    from voicetune.pipeline.outputs import is_run_folder

    assert not is_run_folder(tmp_path)
    (tmp_path / "config.yaml").write_text("threads: 0\n")
    (tmp_path / "command.txt").write_text("voicetune run\n")
    assert not is_run_folder(tmp_path)  # a user's folder may have these
    (tmp_path / "thresholds.json").write_text(
        json.dumps({"thresholds": {"win_rate": 0.6}, "set_at": 1.0, "earlier": []})
    )
    assert is_run_folder(tmp_path)  # an older run, made before the marker existed
    other = tmp_path / "other"
    (other / "stages").mkdir(parents=True)
    (other / "stages" / "run.json").write_text("{}")
    assert is_run_folder(other)


def _run_folder(root: Path, config_text: str) -> Path:
    (root / "stages").mkdir(parents=True)
    (root / "stages" / "run.json").write_text("{}")
    (root / "config.yaml").write_text(config_text)
    return root / "config.yaml"


def test_run_never_rewrites_the_config_it_reads_unless_nothing_changes(tmp_path):
    from voicetune.pipeline import RunConfig, load_run_config, run
    from voicetune.pipeline.run import check_run_folder
    from voicetune.settings import dump_yaml

    edited = "# the bigger review set\n" + dump_yaml(RunConfig()).replace("sample: 24", "sample: 30")
    config_file = _run_folder(tmp_path / "run", edited)
    with pytest.raises(VoicetuneError, match="is the run's own .*run a copy of it instead") as error:
        run(load_run_config(config_file), tmp_path / "run", config_file=config_file, log=lambda _: None)
    assert "\n" not in str(error.value) and config_file.read_text() == edited
    # the run's own config, a setting edited in place: writing it back changes nothing, so the run may resume
    in_place = dump_yaml(RunConfig()).replace("sample: 24", "sample: 30")
    config_file.write_text(in_place)
    assert check_run_folder(tmp_path / "run", load_run_config(config_file), config_file) == in_place
    assert (
        check_run_folder(tmp_path / "run", load_run_config(config_file), tmp_path / "run" / "." / "config.yaml")
        == in_place
    )


def test_run_refuses_inputs_where_it_writes(tmp_path):
    from voicetune.pipeline import load_run_config, run

    root = tmp_path / "run"
    _run_folder(root, "")
    (root / "data").mkdir()
    source = root / "data" / "calls.jsonl"
    source.write_text("{}\n")
    with pytest.raises(VoicetuneError, match="holds the input .*calls.jsonl"):
        run(load_run_config(None, {"data": {"source": str(source)}}), root, log=lambda _: None)
    assert source.read_text() == "{}\n"
    other = tmp_path / "elsewhere.yaml"
    other.write_text("review: {sample: 4}\n")
    (root / "eval").mkdir()
    (root / "eval" / "cfg.yaml").write_bytes(other.read_bytes())
    with pytest.raises(VoicetuneError, match="holds the input"):
        run(
            load_run_config(root / "eval" / "cfg.yaml"),
            root,
            config_file=root / "eval" / "cfg.yaml",
            log=lambda _: None,
        )


def test_run_command_refuses_its_own_config_in_one_line(cli, tmp_path):
    config_file = _run_folder(tmp_path / "r", "# mine\nreview: {sample: 4}\n")
    code, _, err = cli("run", str(config_file), "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "run a copy of it instead" in err
    assert config_file.read_text() == "# mine\nreview: {sample: 4}\n"


# ---------------------------------------------------------------------------------------------------------
# Configs that would validate and then crash at their stage


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"review": {"reviewers": ["ann", "bob", "ann"]}}, "review.reviewers"),
        ({"review": {"reviewers": ["ann", " "]}}, "review.reviewers"),
        ({"review": {"tts": "festival"}}, "review.tts"),
        ({"simulate": {"tts": "festival"}}, "simulate.tts"),
        ({"simulate": {"channel": "speech", "tts": "browser"}}, "simulate.tts"),
        ({"eval": {"llm_judge": {"kind": "llm"}}}, "eval.llm_judge"),
        ({"eval": {"llm_judge": {"models": ["m"]}}}, "eval.llm_judge"),
        ({"eval": {"llm_judge": {"endpoints": ["a", "b"], "models": ["m"]}}}, "eval.llm_judge"),
        ({"eval": {"judge": {"kind": "llm"}}}, "eval.judge"),
        ({"eval": {"judge": {"kind": "rubric", "model": "judges/mine"}}}, "eval.judge"),
        ({"eval": {"baselines": ["plain=draft+voice"]}}, "eval.baselines"),
        ({"eval": {"baselines": ["big={model}+best99"]}}, "eval.baselines"),
        ({"data": {"source": "calls.json", "format": "tau"}}, "data.format"),
        ({"data": {"ratios": [1, 1, 0]}}, "data.ratios"),
        ({"generation": {"seeds": [-1]}}, "generation.seeds.0"),
        ({"generation": {"seeds": [0, 2**32]}}, "generation.seeds.1"),
    ],
)
def test_a_config_that_would_fail_at_its_stage_fails_at_validation(settings, field, cli, tmp_path):
    import yaml

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(settings))
    code, _, err = cli("run", "bad.yaml", "--out", "r")
    assert code == 2 and err.count("\n") == 1 and f"field '{field}'" in err, err
    assert not (tmp_path / "r").exists()


def test_an_llm_judge_section_that_names_an_endpoint_is_an_llm_judge():
    from voicetune.pipeline import load_run_config

    config = load_run_config(
        None, {"eval": {"llm_judge": {"endpoints": ["http://127.0.0.1:8080/v1"], "models": ["m"]}}}
    )
    assert config.eval.llm_judge.kind == "llm"


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"eval": {"baselines": ["base=no-such-model"]}}, "eval.baselines.0"),
        ({"eval": {"baselines": ["draft+pipecat", "other=missing/dir/model"]}}, "eval.baselines.1"),
        ({"train": {"model": "nowhere.gguf"}}, "train.model"),
        ({"eval": {"judge": {"kind": "learned", "model": "no-such-judge"}}}, "eval.judge.model"),
    ],
)
def test_what_a_config_needs_of_this_machine_is_checked_before_anything_runs(settings, field, tmp_path):
    from voicetune.pipeline import load_run_config, run

    with pytest.raises(VoicetuneError, match=field.replace(".", r"\.")):
        run(load_run_config(None, settings), tmp_path / "new", log=lambda _: None)
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------------------------------------------
# `voicetune simulate`


def _turn(index, draft="Your flight leaves at 9:40 AM.", **meta) -> dict:
    return Turn(
        id=f"c1-t{index}",
        history=[Message(role="user", text="When do I leave?")],
        draft=draft,
        meta={"conversation_id": "c1", "turn_index": index, **meta},
    ).model_dump(exclude_none=True)


@pytest.mark.parametrize("value", [None, "2", True, 1.5])
def test_a_turn_index_that_is_not_a_whole_number_is_one_line(value, tmp_path):
    from voicetune.simulate.config import SimConfig
    from voicetune.simulate.run import simulate

    rows = [_turn(0), {**_turn(1), "meta": {"conversation_id": "c1", "turn_index": value}}]
    write_records(tmp_path / "calls.jsonl", rows)
    config = SimConfig(systems=["draft", "reference"], conversations=str(tmp_path / "calls.jsonl"), timing="estimate")
    with pytest.raises(VoicetuneError, match=r"calls\.jsonl:2: field 'meta\.turn_index'") as error:
        simulate(config, tmp_path / "out", progress=False, log=lambda _: None)
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


def test_a_turn_without_a_draft_is_refused(cli, tmp_path):
    write_records(tmp_path / "calls.jsonl", [_turn(0), _turn(1, draft=None)])
    code, _, err = cli(
        "simulate", "--system", "draft", "--system", "reference", "--conversations", "calls.jsonl", "--out", "out"
    )
    assert (
        code == 2 and "calls.jsonl:2: field 'draft'" in err and err.strip().count("\n") <= 1
    )  # (a threads notice may precede)


def test_a_silent_agent_never_resolves_a_call():
    from voicetune.quality.speech import estimate_seconds
    from voicetune.simulate.caller import RuleCaller
    from voicetune.simulate.channel import Heard
    from voicetune.simulate.config import CallerModel, SimConfig
    from voicetune.simulate.run import _Simulator

    class Text:
        name = "text"

        def hear(self, text):
            return Heard(text, estimate_seconds(text), "estimate")

    config = SimConfig.model_validate(
        {"systems": ["a=draft", "b=draft"], "usable_check": False, "scorer": {"meaning": {"model": "none"}}}
    )
    turns = [Turn.model_validate(_turn(0, draft="Your flight leaves at 9:40 AM. The fee is $75.", facts=None))]
    never = CallerModel(repair_interval_seconds=1e9)
    simulator = _Simulator(config, Text(), RuleCaller(never), {})
    silent = simulator.call("a", "c1", turns, {}, seed=0, response_seed=0, caller_model=never)
    spoken = simulator.call(
        "a",
        "c1",
        turns,
        {"c1-t0": "You leave at 9:40 in the morning, and the fee is $75."},
        seed=0,
        response_seed=0,
        caller_model=never,
    )
    assert spoken.resolved and not silent.resolved and silent.unusable_turns == 1


def test_simulate_never_writes_over_its_own_inputs(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_records(out / "calls.jsonl", [_turn(0), _turn(1)])
    (out / "responses").mkdir()
    write_records(out / "responses" / "mine.jsonl", [_turn(0)])
    before = (out / "calls.jsonl").read_bytes()
    for conversations in ("out/calls.jsonl", "out/responses/mine.jsonl"):
        code, _, err = cli(
            "simulate", "--system", "draft", "--system", "reference", "--conversations", conversations, "--out", "out"
        )
        assert code == 2 and "choose another output path" in err, err
    assert (out / "calls.jsonl").read_bytes() == before and not (out / "summary.json").exists()
    mine = "systems: [draft, reference]\nconversations: calls.jsonl\n# my notes\n"
    (out / "simulate.yaml").write_text(mine)  # the run writes its own simulate.yaml there
    code, _, err = cli("simulate", "--config", "out/simulate.yaml", "--out", "out")
    assert code == 2 and "choose another output path" in err and (out / "simulate.yaml").read_text() == mine, err


# ---------------------------------------------------------------------------------------------------------
# `voicetune export`


def test_export_never_writes_over_the_model_it_reads(tmp_path):
    from voicetune.serve.export import export_gguf

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"weights")
    for target in ("model.safetensors", "config.json"):
        with pytest.raises(VoicetuneError, match="a file of the input folder"):
            export_gguf(str(model), model / target, "q8_0", log=lambda _: None)
    assert (model / "model.safetensors").read_bytes() == b"weights" and (
        model / "config.json"
    ).read_text() == '{"model_type": "llama"}'
    gguf = tmp_path / "tuned.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(VoicetuneError, match="is the input file"):
        export_gguf(str(gguf), tmp_path / "." / "tuned.gguf", "q8_0", log=lambda _: None)
    assert gguf.read_bytes() == b"GGUF"


# ---------------------------------------------------------------------------------------------------------
# Paths: one clear line each


def test_bad_paths_are_one_clear_line(cli, tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "afile").write_text("x")
    cases = [
        (("report", "missing"), "missing: no such file or folder"),
        (("report", "loop"), "loop: a symbolic link loop"),
        (("report", "afile"), "afile: is a file, expected a run folder"),
        (("run", "loop"), "loop: a symbolic link loop"),
        (("run", "--out", "afile"), "afile: is a file, expected a run folder"),
        (("run", "--out", "loop"), "loop: a symbolic link loop"),
        (
            ("simulate", "--system", "draft", "--system", "reference", "--out", "afile"),
            "afile: is a file, expected the simulation's output folder",
        ),
        (("simulate", "--system", "draft", "--system", "reference", "--out", "loop"), "loop: a symbolic link loop"),
        (
            ("simulate", "--system", "draft", "--system", "reference", "--conversations", "loop", "--out", "o"),
            "loop: a symbolic link loop",
        ),
        (("export", "loop", "--gguf", "m.gguf"), "loop: a symbolic link loop"),
        (("export", "smollm2-135m", "--gguf", "loop"), "loop: a symbolic link loop"),
    ]
    for args, expected in cases:
        code, _, err = cli(*args)
        last = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2 and last.startswith("error: ") and expected in last, (args, err)
    assert (tmp_path / "afile").read_text() == "x" and (tmp_path / "loop").is_symlink()
