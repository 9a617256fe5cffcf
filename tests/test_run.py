"""The main job (`voicetune run`) on a tiny randomly initialised model and two built-in calls, its resume and
provenance, and the report (`voicetune report`) with and without review votes, in a headless browser too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from voicetune.errors import VoicetuneError  # noqa: E402
from voicetune.pipeline import RunConfig, load_run_config, report_run, run  # noqa: E402
from voicetune.report.render import pct, sentence  # noqa: E402
from voicetune.report.summary import Verdict, call_verdicts, judge_verdicts  # noqa: E402
from voicetune.settings import undocumented_fields  # noqa: E402

STAGE_NAMES = ("data", "train", "eval", "review", "simulate")


def tiny_run_config(tiny_model: str, **sections) -> RunConfig:
    """The whole method at toy size: two held-out calls, a 2-layer random model, espeak for every voice."""
    settings = {
        "data": {"limit": 2},
        "train": {
            "model": tiny_model,
            "max_length": 256,
            "precision": "fp32",
            "sft": {"max_examples": 6, "epochs": 1, "batch_size": 3},
            "sample": {"contexts": 3, "candidates": 2, "max_new_tokens": 12, "batch_size": 6},
            "dpo": {"margin": 0.0, "batch_size": 2},
        },
        "generation": {"max_new_tokens": 16},
        "review": {"sample": 6, "tts": "espeak"},
        "simulate": {"seeds": 2, "tts": "espeak"},
    }
    for name, values in sections.items():
        settings[name] = {**settings.get(name, {}), **values}
    return load_run_config(None, settings)


class Log(list):
    def __call__(self, message: str) -> None:
        self.append(message)

    def ran(self) -> set[str]:
        """The stages that ran (not skipped as up to date)."""
        return {
            m.split("] ")[1].split(":")[0] for m in self if re.match(r"\[\d+/\d+\] \w+: (?!up to date|done)", m)
        } - {"report"}

    def skipped(self) -> set[str]:
        return {m.split("] ")[1].split(":")[0] for m in self if re.match(r"\[\d+/\d+\] \w+: up to date", m)}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model) -> Path:
    """One whole run, made once; tests work on copies."""
    out = tmp_path_factory.mktemp("run") / "run"
    run(tiny_run_config(tiny_model), out, command="voicetune run tiny.yaml --out run", log=lambda _: None)
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(finished_run, target)
    return target


def test_every_run_setting_is_documented():
    assert undocumented_fields(RunConfig) == []


def test_the_whole_run_writes_every_stage_and_the_report(finished_run):
    root = finished_run
    for name in STAGE_NAMES:
        record = json.loads((root / "stages" / f"{name}.fingerprint.json").read_text())
        assert record["status"] == "done" and record["seconds"] >= 0, name
    assert (root / "train" / "model" / "config.json").is_file()
    assert (root / "eval" / "pairs.jsonl").is_file() and (root / "review" / "review.sqlite").is_file()
    summary = json.loads((root / "summary.json").read_text())
    # the sections the issue names
    assert {c["system_b"] for c in summary["eval"]["comparisons"]} == {
        "base",
        "prompted",
        "draft+pipecat",
        "draft+voicetune",
    }
    assert all(
        c["system_a"] == "tuned" and 0 <= c["win_rate"] <= 1 and c["n"] > 0 for c in summary["eval"]["comparisons"]
    )
    assert summary["review"]["votes"] == 0 and summary["review"]["pairs"] == 6
    assert set(summary["simulation"]["systems"]) == {"tuned", "base", "prompted", "draft+pipecat", "draft+voicetune"}
    assert {c["b"] for c in summary["simulation"]["relative_change"]} == {
        "base",
        "prompted",
        "draft+pipecat",
        "draft+voicetune",
    }
    assert summary["simulation"]["calls"] == 2
    assert summary["train"]["final"]["sft"]["loss"] > 0 and "dpo" in summary["train"]["final"]
    assert set(summary["timings"]) == set(STAGE_NAMES)
    manifest = summary["manifest"]
    assert manifest["versions"]["voicetune"] and manifest["versions"]["torch"]
    assert manifest["models"]["tuned"]["weights"] and manifest["models"]["base"]["weights"]
    assert set(manifest["data"]) == {"train", "dev", "test"}
    assert manifest["judge"]["scorer_config"] and manifest["judge"]["llm_prompt"]
    assert manifest["tts"]["review"]["engine"] == "espeak" and manifest["tts"]["simulate"]
    # the headline: judge (4 baselines) and calls (3 figures x 4 baselines), no humans before any vote
    proofs = [v["proof"] for v in summary["headline"]]
    assert proofs.count("judge") == 4 and proofs.count("calls") == 12 and "humans" not in proofs
    # the same sampling serves eval and simulate: the calls did not generate anything again
    assert sorted(p.name for p in (root / "eval" / "responses").glob("*.jsonl")) == [
        "base.jsonl",
        "draft+pipecat.jsonl",
        "draft+voicetune.jsonl",
        "prompted.jsonl",
        "tuned.jsonl",
    ]
    assert not (root / "simulate" / "responses").exists()
    assert (root / "report.md").read_text().startswith("# voicetune run")
    assert "voicetune run tiny.yaml --out run" in (root / "report.md").read_text()


def test_a_rerun_skips_every_stage(run_copy, tiny_model):
    log = Log()
    run(tiny_run_config(tiny_model), run_copy, log=log)
    assert log.skipped() == set(STAGE_NAMES) and not log.ran()


def test_a_killed_run_resumes_and_a_changed_setting_redoes_only_what_reads_it(run_copy, tiny_model):
    config = tiny_run_config(tiny_model)
    # killed during the simulated calls: the stage's record says running and its summary is missing
    record = run_copy / "stages" / "simulate.fingerprint.json"
    record.write_text(record.read_text().replace('"status": "done"', '"status": "running"'))
    (run_copy / "simulate" / "summary.json").unlink()
    model_stamp = (run_copy / "train" / "model" / "adapters.json").stat().st_mtime_ns
    log = Log()
    run(config, run_copy, log=log)
    assert log.ran() == {"simulate"} and log.skipped() == {"data", "train", "eval", "review"}
    assert (run_copy / "simulate" / "summary.json").is_file()

    log = Log()  # more caller streams: only the calls
    run(tiny_run_config(tiny_model, simulate={"seeds": 3}), run_copy, log=log)
    assert log.ran() == {"simulate"}
    assert json.loads((run_copy / "summary.json").read_text())["simulation"]["seeds"] == 3

    log = Log()  # a bigger review set: only the review (the old set, votes and all, is kept aside)
    run(tiny_run_config(tiny_model, simulate={"seeds": 3}, review={"sample": 8}), run_copy, log=log)
    assert log.ran() == {"review"}
    assert any("review: redoing (changed: review.sample)" in m for m in log)
    assert list((run_copy / "stages" / ".superseded").glob("review-*/review.sqlite"))

    log = Log()  # a new sampling temperature: eval and everything downstream of it, not the training
    run(
        tiny_run_config(tiny_model, simulate={"seeds": 3}, review={"sample": 8}, generation={"temperature": 0.5}),
        run_copy,
        log=log,
    )
    assert log.ran() == {"eval", "review", "simulate"} and log.skipped() == {"data", "train"}
    assert (run_copy / "train" / "model" / "adapters.json").stat().st_mtime_ns == model_stamp


def _serve_votes(db: Path, then: str) -> subprocess.Popen:
    """A review server in another process: it records a vote on each of the first three items (acknowledged:
    committed, in the WAL), then either dies at once (``then="killed"``, no checkpoint) or keeps its
    connection open (``then="serving"``)."""
    script = (
        "import os, sys, time\n"
        "from voicetune.review.store import ReviewStore\n"
        f"store = ReviewStore({str(db)!r})\n"
        "for item in store.items()[:3]:\n"
        "    store.record_vote(reviewer=item.reviewer, item_id=item.id, shown='1', mode='listen', "
        "seconds_on_item=5.0)\n"
        "print('voted', flush=True)\n"
        f"os._exit(0) if {then == 'killed'} else time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "voted"
    return server


def test_a_redone_review_set_keeps_its_votes_and_never_moves_under_a_live_server(run_copy, tiny_model):
    from voicetune.review.store import ReviewStore

    db = run_copy / "review" / "review.sqlite"
    _serve_votes(db, "killed").wait()
    assert Path(f"{db}-wal").stat().st_size > 0  # the votes are in the WAL alone
    log = Log()  # review.sample changed (as the README documents): the set is redone, the old one moved aside
    run(tiny_run_config(tiny_model, review={"sample": 8}), run_copy, log=log)
    assert log.ran() == {"review"}
    (moved,) = (run_copy / "stages" / ".superseded").glob("review-*/review.sqlite")
    assert len(ReviewStore(moved).votes()) == 3  # moved with its WAL: every acknowledged vote is in the old set
    assert ReviewStore(db).votes() == [] and len(ReviewStore(db).pairs()) == 8  # and none replayed into the new one

    server = _serve_votes(db, "serving")
    try:
        with pytest.raises(VoicetuneError, match="in use by another process") as error:
            run(tiny_run_config(tiny_model, review={"sample": 6}), run_copy, log=lambda _: None)
        assert "\n" not in str(error.value)
        assert len(list((run_copy / "stages" / ".superseded").glob("review-*"))) == 1  # nothing moved under the server
    finally:
        server.kill()
        server.wait()
    assert len(ReviewStore(db).votes()) == 3


def test_the_report_says_when_the_evaluation_is_missing(run_copy):
    shutil.rmtree(run_copy / "eval")  # moved or deleted after the run: its record still says done
    summary = report_run(run_copy)
    assert summary["missing"] == [{"stage": "eval", "files": ["eval/summary.json", "eval/pairs.jsonl"]}]
    assert summary["timings"]["eval"]["status"] == "missing" and summary["timings"]["train"]["status"] == "done"
    assert summary["eval"] is None and not [v for v in summary["headline"] if v["proof"] == "judge"]
    page, text = (run_copy / "report.html").read_text(), (run_copy / "report.md").read_text()
    assert 'id="missing-eval"' in page and "the evaluation (the judge&#39;s figures) is missing" in page
    assert (
        "the evaluation (the judge's figures) is missing: eval/summary.json, eval/pairs.jsonl are not in the run folder"
        in text
    )
    assert "| eval | " in text and "| output missing |" in text


def test_a_stage_whose_output_is_gone_is_redone(run_copy, tiny_model):
    (run_copy / "simulate" / "summary.json").unlink()  # its record says done
    log = Log()
    run(tiny_run_config(tiny_model), run_copy, log=log)
    assert log.ran() == {"simulate"} and any("simulate/summary.json is missing: redoing it" in m for m in log)
    assert (run_copy / "simulate" / "summary.json").is_file()


def test_report_without_votes_says_so_and_gives_the_links(run_copy):
    summary = report_run(run_copy)
    page = (run_copy / "report.html").read_text()
    assert summary["review"]["votes"] == 0 and "agreement" not in summary["review"]
    assert "No votes yet" in page and f"voicetune review serve --db {run_copy / 'review' / 'review.sqlite'}" in page
    # no secret of the review set is in the report, which may be shared
    from voicetune.review.store import ReviewStore

    store = ReviewStore(run_copy / "review" / "review.sqlite")
    secrets = [store.meta()["admin_token"], *store.reviewers().values()]
    for name in summary["review"]["reviewers"]:
        assert name in page
    assert not any(s in page or s in json.dumps(summary) for s in secrets)
    assert "No votes yet" in (run_copy / "report.md").read_text()


def test_report_after_votes_adds_the_reviewers_beside_the_judge(run_copy):
    from voicetune.review.store import ReviewStore

    store = ReviewStore(run_copy / "review" / "review.sqlite")
    items = store.items()
    for index, item in enumerate(items):  # every reviewer prefers response 1 except on every third item
        store.record_vote(
            reviewer=item.reviewer,
            item_id=item.id,
            shown="2" if index % 3 == 0 else "1",
            mode="listen",
            seconds_on_item=20.0,
        )
    summary = report_run(run_copy)
    agreement = summary["review"]["agreement"]
    assert summary["review"]["votes"] == len(items) == agreement["n_votes"]
    humans = [v for v in summary["headline"] if v["proof"] == "humans"]
    assert humans and {v["baseline"] for v in humans} <= {"base", "prompted", "draft+pipecat", "draft+voicetune"}
    for verdict in humans:  # the headline's figure is review_agreement's win rate for that comparison
        row = next(r for r in agreement["comparisons"] if r["system_b"] == verdict["baseline"])
        assert verdict["value"] == row["win_rate"] and verdict["n"] == row["n"]
    page = (run_copy / "report.html").read_text()
    assert "No votes yet" not in page and "Judge vs reviewers: κ" in page
    assert "reviewers: win rate" in page


def test_the_report_is_one_file_that_needs_nothing_else(run_copy):
    report_run(run_copy)
    page = (run_copy / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](https?:|//|file:|[^"'#d][^"']*\.(png|mp3|wav|css|js))""", page)
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 5  # win rates, criteria, speaking time, training, calls
    assert page.count('src="data:audio/mpeg;base64,') >= 2  # samples from the review set play its audio
    assert all(
        (run_copy / "plots" / f"{name}.png").is_file()
        for name in ("win_rates", "criteria", "speaking_time", "training", "calls")
    )


def test_an_llm_judge_judges_the_same_responses_again(run_copy, tiny_model):
    from fake_openai import FakeChatServer, chat_reply

    verdict = json.dumps(
        {name: "A" for name in ("non_repetition", "conciseness", "clarity", "humanness", "faithfulness", "overall")}
        | {"rationale": "A is shorter."}
    )
    server = FakeChatServer(lambda body: (200, chat_reply(verdict)))
    try:
        before = {p.name: p.read_bytes() for p in (run_copy / "eval" / "responses").glob("*.jsonl")}
        log = Log()
        run(
            tiny_run_config(
                tiny_model, eval={"llm_judge": {"kind": "llm", "endpoints": [server.url], "models": ["fake"]}}
            ),
            run_copy,
            log=log,
        )
    finally:
        server.close()
    assert log.ran() == {"eval"}  # the judged pairs did not change, so neither the review set nor the calls
    assert {
        p.name: p.read_bytes() for p in (run_copy / "eval" / "responses").glob("*.jsonl")
    } == before  # nothing generated again
    assert not (run_copy / "eval-llm" / "responses").exists() and server.calls > 0
    summary = json.loads((run_copy / "summary.json").read_text())
    # always "A" in both orders: position-biased, so each pair reconciles to a tie
    assert summary["eval_llm"]["judge"]["name"] == "llm:fake" and all(
        c["win_rate"] == 0.5 for c in summary["eval_llm"]["comparisons"]
    )


def test_changed_thresholds_after_the_results_are_flagged(run_copy, tiny_model):
    config = tiny_run_config(tiny_model, thresholds={"win_rate": 0.3})
    run(config, run_copy, log=lambda _: None)  # every stage is up to date; only the bar moved
    summary = json.loads((run_copy / "summary.json").read_text())
    assert summary["thresholds"]["changed_after_results"] is True
    assert (
        summary["thresholds"]["thresholds"]["win_rate"] == 0.3
        and summary["thresholds"]["earlier"][0]["thresholds"]["win_rate"] == 0.6
    )
    assert "changed" in (run_copy / "report.html").read_text()


# ---------------------------------------------------------------------------------------------------------
# The headline's verdicts and sentences


def test_judge_verdicts_against_the_bar():
    thresholds = RunConfig().thresholds
    rows = [
        {"system_a": "tuned", "system_b": "base", "win_rate": 0.71, "ci_low": 0.67, "ci_high": 0.75, "n": 150},
        {"system_a": "tuned", "system_b": "prompted", "win_rate": 0.55, "ci_low": 0.45, "ci_high": 0.65, "n": 150},
        {"system_a": "base", "system_b": "prompted", "win_rate": 0.9, "ci_low": 0.8, "ci_high": 0.95, "n": 150},
    ]
    base, prompted = judge_verdicts(rows, thresholds)  # only the tuned model's comparisons
    assert base.meets is True and base.includes_null is False
    assert prompted.meets is False and prompted.includes_null is True
    assert sentence(base) == "judge: tuned beats base 71% [67, 75] of 150 pairs — meets ≥ 60%"
    assert sentence(prompted).endswith("misses ≥ 60% (the interval includes 50%: no clear preference either way)")


def test_call_verdicts_repeat_requests_duration_and_resolution():
    thresholds = RunConfig().thresholds
    row = {
        "a": "tuned",
        "b": "base",
        "calls": 40,
        "repeat_requests": {"change": -0.34, "ci": [-0.41, -0.27]},
        "turns": {"change": 0.02, "ci": [-0.05, 0.08]},
        "duration_seconds": {"change": 0.03, "ci": [-0.02, 0.07]},
        "resolution": {"difference": -0.005, "lower_bound": -0.031, "margin": 0.02, "non_inferior": False},
    }
    repeats, duration_, resolution = call_verdicts([row], thresholds)
    assert repeats.meets and not repeats.includes_null
    assert duration_.meets is False and duration_.includes_null
    assert resolution.meets is False and resolution.includes_null
    assert sentence(repeats) == "calls: repeat requests vs base -34% [-41, -27] over 40 calls — meets ≤ -10%"
    assert sentence(resolution).startswith(
        "calls: resolution vs base -0.5 pt (lower bound -3.1 pt), non-inferior at 2 pt: no"
    )


def test_percentages_never_print_minus_zero():
    assert pct(-0.004, signed=True) == "+0%" and pct(0.713) == "71%"


def test_a_verdict_without_data_is_pending():
    verdict = Verdict(proof="humans", metric="win_rate", kind="win_rate", baseline="base", threshold=0.6)
    assert "no data yet" in sentence(verdict)


# ---------------------------------------------------------------------------------------------------------
# The display's estimate


def test_the_estimate_corrects_by_how_fast_the_run_goes():
    from voicetune.progress import RunDisplay

    display = RunDisplay("run", [("a", 100.0), ("b", 50.0), ("c", 10.0)])
    assert display.remaining() == pytest.approx(160.0, abs=1)
    display.finish("a", 200.0, ran=True)  # twice as slow as planned: the rest is expected twice as long
    assert display.speed() == pytest.approx(2.0)
    assert display.remaining() == pytest.approx(120.0, abs=1)
    display.finish("b", 0.0, ran=False)  # skipped (up to date): costs nothing and does not change the speed
    assert display.speed() == pytest.approx(2.0) and display.remaining() == pytest.approx(20.0, abs=1)


# ---------------------------------------------------------------------------------------------------------
# The CLI


def test_run_and_report_commands_fail_in_one_line(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text("simulate: {seeds: 0}\n")
    code, _, err = cli("run", "bad.yaml", "--out", "r")
    assert code == 2 and err.count("\n") == 1 and "simulate.seeds" in err
    code, _, err = cli("run", "missing.yaml")
    assert code == 2 and "missing.yaml" in err
    (tmp_path / "notarun").mkdir()
    code, _, err = cli("report", "notarun")
    assert code == 2 and err.count("\n") == 1 and "not a run directory" in err
    code, out, _ = cli("run", "--help-config")
    assert code == 0 and "thresholds.win_rate" in out and "simulate.caller_model.repair_interval_seconds" in out


def test_report_command_rebuilds_a_run(cli, run_copy):
    (run_copy / "report.html").unlink()
    code, out, err = cli("report", str(run_copy))
    assert code == 0, err
    assert (run_copy / "report.html").is_file() and "0 review votes" in out


# ---------------------------------------------------------------------------------------------------------
# The report in a real browser


def test_the_report_in_headless_chromium(run_copy):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (make install installs it)")
    report_run(run_copy)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--mute-audio", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((run_copy / "report.html").as_uri())
        assert page.locator("#headline").is_visible() and page.locator("table.headline").is_visible()
        assert "judge: win rate" in page.locator("table.headline").inner_text()
        images = page.locator(".plots img")
        assert images.count() == 5
        assert all(
            images.nth(i).evaluate("img => img.complete && img.naturalWidth > 100") for i in range(images.count())
        )
        audio = page.locator("audio")
        assert audio.count() >= 2
        seconds = audio.first.evaluate(
            "a => new Promise((done, fail) => { a.preload = 'auto'; a.addEventListener('loadedmetadata', () => "
            "done(a.duration));"
            " a.addEventListener('error', () => fail(a.error && a.error.code)); a.load(); })"
        )
        assert seconds > 0.5  # the embedded MP3 decodes: a spoken response, not silence
        screenshot = os.environ.get("VOICETUNE_SCREENSHOT")
        if screenshot:
            page.screenshot(path=screenshot, full_page=True)
        browser.close()
