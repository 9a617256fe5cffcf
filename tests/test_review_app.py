"""The review set and app: creation (sampling, assignment, repeats), the API a reviewer's browser uses, the
security cases, durability, a load test over real HTTP and the CLI."""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from voicetune.records import Message, Pair, write_records
from voicetune.review.create import assign, create_review_set, stratified_sample
from voicetune.review.store import ReviewStore, canonical

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from voicetune.review.app import create_app, csrf_token  # noqa: E402

XSS = "<script>alert('x')</script> Your refund is $45."


def _pairs(n: int, domains=("airline", "retail"), comparisons=(("tuned", "base"), ("tuned", "prompted"))) -> list[Pair]:
    pairs = []
    for i in range(n):
        a, b = comparisons[i % len(comparisons)]
        pairs.append(
            Pair(
                id=f"c{i}#{a}-vs-{b}#s0",
                domain=domains[(i // len(comparisons)) % len(domains)],
                history=[Message(role="user", text=f"Caller question number {i}?")],
                response_a=XSS if i == 0 else f"Sure, item {i} is done.",
                response_b=f"I apologize. Item {i}, let me check that for you now.",
                system_a=a,
                system_b=b,
                winner="a" if i % 3 else "b",
                criteria={"conciseness": "a", "clarity": "tie"},
                meta={"context_id": f"c{i}"},
            )
        )
    return pairs


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "eval"
    write_records(folder / "pairs.jsonl", _pairs(12))
    return folder


@pytest.fixture
def review(tmp_path: Path, eval_dir: Path):
    made = create_review_set(
        eval_dir, tmp_path / "review.sqlite", ["alice", "bob", "carol"], overlap=2, repeat_share=0.25, engine="browser"
    )
    return made


def _client(made) -> TestClient:
    return TestClient(create_app(made.db), base_url="http://127.0.0.1:8000")


def _form(page: str) -> dict:
    """The hidden fields of the vote form of an item page."""
    return dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.split('id="vote"')[1].split("</form>")[0])
    )


# creation ------------------------------------------------------------------------------------------------
def test_stratified_sample_keeps_each_stratum_share():
    pairs = _pairs(40)
    chosen = stratified_sample(pairs, 10, seed=1)
    strata = Counter((p.domain, p.system_b) for p in chosen)
    assert len(chosen) == 10 and len(set(p.id for p in chosen)) == 10
    assert sorted(strata.values()) == [2, 2, 3, 3]  # four equal strata of 10 each: 2.5 each, largest remainder
    assert stratified_sample(pairs, None) == pairs and stratified_sample(pairs, 100) == pairs


def test_assign_gives_each_pair_k_reviewers_and_repeats_in_the_other_order():
    rows = assign([f"p{i}" for i in range(30)], ["a", "b", "c"], overlap=2, repeat_share=0.1, seed=3)
    first = [r for r in rows if r[4] == 1]
    per_pair = Counter(r[2] for r in first)
    assert set(per_pair.values()) == {2}
    assert Counter(r[0] for r in first) == {"a": 20, "b": 20, "c": 20}  # the load is even
    for reviewer, position, pair_id, swapped, showing in rows:
        if showing == 2:
            original = next(r for r in first if r[0] == reviewer and r[2] == pair_id)
            assert swapped != original[3] and position > original[1]
    assert Counter(r[0] for r in rows if r[4] == 2) == {"a": 2, "b": 2, "c": 2}  # ceil(0.1 * 20)
    assert len({r[3] for r in first}) == 2  # both orders occur


def test_create_refuses_to_overwrite_and_bad_input(tmp_path: Path, eval_dir: Path, review):
    from voicetune.errors import VoicetuneError

    with pytest.raises(VoicetuneError, match="never overwritten"):
        create_review_set(eval_dir, review.db, ["alice"], engine="browser")
    with pytest.raises(VoicetuneError, match="overlap"):
        create_review_set(eval_dir, tmp_path / "x.sqlite", ["alice"], overlap=2, engine="browser")
    with pytest.raises(VoicetuneError, match="no pairs.jsonl"):
        create_review_set(tmp_path, tmp_path / "y.sqlite", ["alice"], engine="browser")
    assert not (tmp_path / "x.sqlite").exists() and not (tmp_path / "y.sqlite").exists()


def test_canonical_maps_the_shown_verdict_back_through_the_order():
    assert [canonical(v, False) for v in ("1", "2", "tie")] == ["a", "b", "tie"]
    assert [canonical(v, True) for v in ("1", "2", "tie")] == ["b", "a", "tie"]


# the reviewer's flow ------------------------------------------------------------------------------------
def test_vote_resume_replay_and_undo(review):
    client = _client(review)
    token = review.tokens["alice"]
    store = ReviewStore(review.db)
    items = store.items("alice")
    first = client.get(f"/r/{token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"/r/{token}/item/{items[0].id}"
    page = client.get(first.headers["location"]).text
    # blind: no system name or pair id in the page; listen-first: votes disabled, text hidden
    assert "tuned" not in page and "base" not in page and items[0].pair_id not in page
    assert page.count("disabled>") == 3 and page.count("hidden>") == 2
    form = _form(page)
    posted = client.post(
        f"/r/{token}/vote",
        data={
            **form,
            "verdict": "1",
            "clarity": "2",
            "comment": "good",
            "plays_1": "1",
            "plays_2": "2",
            "seconds": "7.5",
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303
    again = client.post(f"/r/{token}/vote", data={**form, "verdict": "2"}, follow_redirects=False)  # a replayed post
    assert again.status_code == 303
    votes = store.votes("alice")
    assert len(votes) == 1 and votes[0].shown == "1" and votes[0].winner == canonical("1", items[0].swapped)
    assert votes[0].criteria == {"clarity": canonical("2", items[0].swapped)} and votes[0].plays == {"1": 1, "2": 2}
    assert votes[0].seconds_on_item == 7.5 and votes[0].mode == "listen" and votes[0].comment == "good"
    # resume: the next unvoted item
    assert client.get(f"/r/{token}", follow_redirects=False).headers["location"] == f"/r/{token}/item/{items[1].id}"
    # undo: an event, the item comes back
    page2 = client.get(f"/r/{token}/item/{items[1].id}").text
    undo_form = dict(
        re.findall(
            r'<input type="hidden" name="(\w+)" value="([^"]*)"', page2.split('id="undo"')[1].split("</form>")[0]
        )
    )
    undone = client.post(f"/r/{token}/undo", data=undo_form, follow_redirects=False)
    assert undone.headers["location"] == f"/r/{token}/item/{items[0].id}"
    assert store.votes("alice") == []
    kinds = [e["kind"] for e in store.events()]
    assert kinds == ["vote", "undo"]  # nothing deleted
    assert client.post(f"/r/{token}/undo", data=undo_form, follow_redirects=False).status_code == 303  # replayed undo
    assert [e["kind"] for e in store.events()] == ["vote", "undo"]


def test_restarted_server_keeps_every_vote(review):
    token = review.tokens["bob"]
    client = _client(review)
    for _ in range(3):
        page = client.get(f"/r/{token}").text
        client.post(f"/r/{token}/vote", data={**_form(page), "verdict": "0"})
    fresh = _client(review)  # a new app on the same file, as after a restart
    assert len(ReviewStore(review.db).votes("bob")) == 3
    assert "3 of" in fresh.get(f"/r/{token}").text


def test_read_mode_shows_text_and_enables_votes(review):
    client = _client(review)
    admin = review.admin_token
    client.post(
        f"/admin/{admin}/mode",
        data={"csrf": csrf_token(ReviewStore(review.db).meta()["secret"], admin), "mode": "read"},
    )
    page = client.get(f"/r/{review.tokens['carol']}").text
    assert "disabled>" not in page and "hidden>" not in page and _form(page)["mode"] == "read"


# security ------------------------------------------------------------------------------------------------
def test_a_reviewer_sees_and_votes_only_on_their_own_items(review):
    client = _client(review)
    store = ReviewStore(review.db)
    alice, bob = review.tokens["alice"], review.tokens["bob"]
    bobs = store.items("bob")[0]
    assert client.get(f"/r/{alice}/item/{bobs.id}").status_code == 403
    assert client.get(f"/r/{alice}/audio/{bobs.id}/1").status_code == 403
    page = client.get(f"/r/{alice}").text
    form = _form(page)
    stolen = client.post(f"/r/{alice}/vote", data={**form, "item_id": str(bobs.id), "verdict": "1"})
    assert stolen.status_code == 403
    assert client.get("/r/not-a-token").status_code == 403
    assert client.get(f"/admin/{alice}").status_code == 403
    assert client.get(f"/admin/{alice}/export.csv").status_code == 403
    assert client.get(f"/admin/{review.admin_token}").status_code == 200
    assert store.votes() == []
    # a token is not a key to another's CSRF token either
    assert client.post(f"/r/{bob}/vote", data={**form, "item_id": str(bobs.id), "verdict": "1"}).status_code == 403


def test_csrf_origin_and_validation(review):
    client = _client(review)
    token = review.tokens["alice"]
    form = _form(client.get(f"/r/{token}").text)
    assert client.post(f"/r/{token}/vote", data={**form, "csrf": "0" * 64, "verdict": "1"}).status_code == 403
    assert (
        client.post(
            f"/r/{token}/vote", data={**form, "verdict": "1"}, headers={"Origin": "https://evil.example"}
        ).status_code
        == 403
    )
    assert client.post(f"/r/{token}/vote", data={**form, "verdict": "7"}).status_code == 422
    assert client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "clarity": "maybe"}).status_code == 422
    assert client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "plays_1": "-3"}).status_code == 422
    assert (
        client.post(
            f"/r/{token}/vote", data={k: v for k, v in form.items() if k != "csrf"} | {"verdict": "1"}
        ).status_code
        == 422
    )
    assert ReviewStore(review.db).votes() == []
    ok = client.post(
        f"/r/{token}/vote",
        data={**form, "verdict": "1"},
        headers={"Origin": "http://127.0.0.1:8000"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_text_is_escaped_and_headers_lock_the_page_down(review):
    client = _client(review)
    store = ReviewStore(review.db)
    owner, item = next((i.reviewer, i) for i in store.items() if i.pair_id.startswith("c0#"))
    response = client.get(f"/r/{review.tokens[owner]}/item/{item.id}")
    assert "<script>alert" not in response.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["referrer-policy"] == "no-referrer" and response.headers["x-frame-options"] == "DENY"


def test_admin_page_and_exports(review):
    client = _client(review)
    for name in ("alice", "bob"):
        token = review.tokens[name]
        for _ in range(4):
            client.post(
                f"/r/{token}/vote", data={**_form(client.get(f"/r/{token}").text), "verdict": "1", "seconds": "0.3"}
            )
    admin = client.get(f"/admin/{review.admin_token}").text
    assert "alice" in admin and "Cohen" in admin and "implausibly fast" in admin
    csv_text = client.get(f"/admin/{review.admin_token}/export.csv").text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("reviewer,pair_id,comparison") and len(lines) == 9
    jsonl = client.get(f"/admin/{review.admin_token}/export.jsonl").text.strip().splitlines()
    assert len(jsonl) == 8 and '"winner_system"' in jsonl[0]


def _error(response) -> str:
    """The one error line of an error page (the app's documented error shape), after checking its form."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html"), response.text[:300]
    lines = re.findall(r'<p id="error">(.*?)</p>', response.text, re.S)
    assert len(lines) == 1 and lines[0].strip() and "\n" not in lines[0], response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return lines[0]


def test_a_token_that_is_not_ascii_is_refused_not_a_500(review):
    """`hmac.compare_digest` raises TypeError on a non-ASCII str: a token or CSRF field like "é" was a 500."""
    client = _client(review)
    admin, token = review.admin_token, review.tokens["alice"]
    csrf = csrf_token(ReviewStore(review.db).meta()["secret"], admin)
    form = _form(client.get(f"/r/{token}").text)
    for bad in ("é", "tökén-ünïcode", "😀" * 40, admin + "é"):
        for path in (f"/admin/{bad}", f"/admin/{bad}/export.csv", f"/r/{bad}", f"/r/{bad}/done"):
            assert "not valid" in _error(client.get(path))
        assert "not valid" in _error(client.post(f"/admin/{bad}/mode", data={"csrf": csrf, "mode": "read"}))
        assert "CSRF" in _error(client.post(f"/admin/{admin}/mode", data={"csrf": bad, "mode": "read"}))
        assert "CSRF" in _error(client.post(f"/r/{token}/vote", data={**form, "csrf": bad, "verdict": "1"}))
        assert "CSRF" in _error(client.post(f"/r/{token}/undo", data={"csrf": bad, "event_id": "0123456789"}))
    foreign = client.post(
        f"/r/{token}/vote",
        data={**form, "verdict": "1"},
        headers={"Origin": "http://\xe9vil.example".encode("latin-1")},
    )
    assert "cross-site" in _error(foreign)
    assert ReviewStore(review.db).events() == [] and ReviewStore(review.db).meta()["mode"] == "listen"


def test_an_item_id_beyond_64_bits_is_404_or_422_not_a_500(review):
    """An id SQLite cannot hold raised OverflowError (a 500) in a path or a form field: now every id is bounded."""
    client = _client(review)
    token = review.tokens["alice"]
    form = _form(client.get(f"/r/{token}").text)
    for bad in (2**63, 2**64, 10**30, -1, 0, "abc", "1e3", "١"):
        assert "no such page" in _error(client.get(f"/r/{token}/item/{bad}"))
        assert "no such page" in _error(client.get(f"/r/{token}/audio/{bad}/1"))
        assert "item_id" in _error(client.post(f"/r/{token}/vote", data={**form, "item_id": str(bad), "verdict": "1"}))
    assert "slot" in _error(client.get(f"/r/{token}/audio/{form['item_id']}/{2**70}"))
    assert "not yours" in _error(client.get(f"/r/{token}/item/{2**63 - 1}"))  # in range, but no item of hers
    assert ReviewStore(review.db).events() == []


def test_every_client_error_is_a_4xx_error_page(review):
    """Unknown paths, wrong methods, missing or unbounded fields, broken bodies: the error page with one line and
    a 4xx status, never FastAPI's JSON (which the app does not document) nor a 500."""
    client = _client(review)
    token = review.tokens["alice"]
    form = _form(client.get(f"/r/{token}").text)
    assert _error(client.get("/no/such/page")) == "no such page" and client.get("/admin").status_code == 404
    wrong = client.put(f"/r/{token}/vote", data=form)
    assert wrong.status_code == 405 and "PUT" in _error(wrong) and wrong.headers["allow"] == "POST"
    assert _error(client.get(f"/r/{token}/vote")).startswith("GET")
    assert _error(client.post(f"/r/{token}/vote", data=form)) == "form field &#39;verdict&#39; is missing"
    assert client.post(f"/r/{token}/vote", data={}).status_code == 422
    assert "comment" in _error(client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "comment": "x" * 2001}))
    assert "verdict" in _error(client.post(f"/r/{token}/vote", data={**form, "verdict": "1" * 10000}))
    assert "event_id" in _error(
        client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "event_id": "not an id!"})
    )
    assert "seconds" in _error(client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "seconds": "nan"}))
    assert "mode" in _error(client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "mode": "sing"}))
    big = client.post(f"/r/{token}/vote", data={**form, "verdict": "1", "comment": "x" * 100_000})
    assert big.status_code == 413 and "64 KiB" in _error(big)
    url_form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post(f"/r/{token}/vote", content=b"\xff\xfe=\xff&%%%", headers=url_form).status_code == 422
    broken = client.post(
        f"/r/{token}/vote", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert broken.status_code == 400 and _error(broken)
    upload = client.post(f"/r/{token}/vote", data={**form, "verdict": "1"}, files={"comment": ("c.txt", b"hi")})
    assert "comment" in _error(upload)
    assert ReviewStore(review.db).events() == []
    assert client.post(f"/r/{token}/vote", data={**form, "verdict": "1"}, follow_redirects=False).status_code == 303


# load: 20 reviewers x 50 votes over real HTTP -------------------------------------------------------------
@pytest.fixture
def live_server(tmp_path: Path, review_server):
    """A real uvicorn server on 127.0.0.1 over a set of 20 reviewers with 50 items each."""
    folder = tmp_path / "big"
    write_records(folder / "pairs.jsonl", _pairs(500))
    made = create_review_set(
        folder,
        tmp_path / "load.sqlite",
        [f"r{i:02d}" for i in range(20)],
        overlap=2,
        repeat_share=0.0,
        engine="browser",
    )
    with review_server(made.db) as base:
        yield made, base


def test_load_20_reviewers_50_votes_each_nothing_lost_or_doubled(live_server):
    import httpx

    made, base = live_server
    store = ReviewStore(made.db)

    def reviewer(name: str) -> int:
        token = made.tokens[name]
        sent = 0
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(50):
                page = client.get(f"/r/{token}", follow_redirects=True)
                form = _form(page.text)
                data = {**form, "verdict": "120"[n % 3]}
                assert client.post(f"/r/{token}/vote", data=data).status_code in (200, 303)
                if n % 10 == 0:  # a retried post (a double click, a flaky network): stored once
                    client.post(f"/r/{token}/vote", data=data)
                sent += 1
        return sent

    with ThreadPoolExecutor(max_workers=20) as pool:
        sent = sum(pool.map(reviewer, list(made.tokens)))
    votes = store.votes()
    assert sent == 1000 and len(votes) == 1000
    assert len({(v.reviewer, v.item_id) for v in votes}) == 1000  # one per item, none doubled
    assert len([e for e in store.events() if e["kind"] == "vote"]) == 1000  # retries stored nothing
    assert Counter(v.reviewer for v in votes) == {name: 50 for name in made.tokens}


# CLI ---------------------------------------------------------------------------------------------------
def test_cli_create_prints_links_and_errors_exit_2(run_cli, tmp_path: Path, eval_dir: Path):
    db = tmp_path / "cli.sqlite"
    made = run_cli(
        "review",
        "create",
        "--from",
        str(eval_dir),
        "--db",
        str(db),
        "--reviewers",
        "ann,ben",
        "--sample",
        "6",
        "--tts",
        "browser",
    )
    assert made.returncode == 0, made.stderr
    assert len(re.findall(r"http://127\.0\.0\.1:8000/r/\S+", made.stdout)) == 2 and "/admin/" in made.stdout
    assert ReviewStore(db).items()  # the set exists
    again = run_cli("review", "create", "--from", str(eval_dir), "--db", str(db), "--reviewers", "ann")
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "never overwritten" in again.stderr
    empty = run_cli("review", "agreement", "--db", str(db))
    assert empty.returncode == 2 and "no votes yet" in empty.stderr
    missing = run_cli("review", "serve", "--db", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2 and "the review database does not exist" in missing.stderr


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_audio_is_stored_once_and_served_in_the_items_order(tmp_path: Path, eval_dir: Path):
    made = create_review_set(
        eval_dir, tmp_path / "audio.sqlite", ["alice"], sample=3, repeat_share=0.0, engine="espeak"
    )
    store = ReviewStore(made.db)
    client = _client(made)
    item = store.items("alice")[0]
    pair = store.pair(item.pair_id)
    first = client.get(f"/r/{made.tokens['alice']}/audio/{item.id}/1")
    assert first.status_code == 200 and first.content[:4] == b"RIFF"
    expected = store.audio(pair["audio_b" if item.swapped else "audio_a"])[1]
    assert first.content == expected
    assert len(store.audio_seconds()) == len({t for p in store.pairs() for t in (p["response_a"], p["response_b"])})


def test_cli_agreement_and_exports(run_cli, tmp_path: Path, eval_dir: Path, review):
    import json

    store = ReviewStore(review.db)
    for item in store.items():
        judge = store.pair(item.pair_id)["judge"]["winner"]  # vote as the judge did, shown order respected
        shown = {"a": "2" if item.swapped else "1", "b": "1" if item.swapped else "2"}[judge]
        store.record_vote(reviewer=item.reviewer, item_id=item.id, shown=shown, mode="listen", seconds_on_item=30.0)
    (eval_dir / "summary.json").write_text(
        json.dumps({"comparisons": [{"system_a": "tuned", "system_b": "base", "win_rate": 0.61}]})
    )
    result = run_cli("review", "agreement", "--db", str(review.db), "--eval", str(eval_dir))
    assert result.returncode == 0, result.stderr
    report = json.loads(Path(str(review.db) + ".agreement.json").read_text())
    overall = report["human_vs_judge"]["overall"]
    assert overall["percent_agreement"] == 1.0 and overall["kappa"] == 1.0 and overall["n"] == 24
    assert report["self_consistency"]["overall"]["rate"] == 1.0  # repeats answered the same way through the swap
    tuned_base = next(c for c in report["comparisons"] if c["comparison"] == "tuned-vs-base")
    assert tuned_base["eval_win_rate"] == 0.61 and tuned_base["win_rate"] == tuned_base["judge_win_rate"]
    assert "## Human vs judge" in result.stdout and "kappa" in result.stdout
    csv_path = tmp_path / "votes.csv"
    assert (
        run_cli("review", "export", "--db", str(review.db), "--format", "csv", "--out", str(csv_path)).returncode == 0
    )
    assert len(csv_path.read_text().strip().splitlines()) == 1 + len(store.items())
    project = tmp_path / "ls"
    assert (
        run_cli(
            "review", "export", "--db", str(review.db), "--format", "label-studio", "--out", str(project)
        ).returncode
        == 0
    )
    assert len(json.loads((project / "tasks.json").read_text())) == len(store.pairs())
    bad = run_cli("review", "export", "--db", str(review.db), "--format", "xml", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "label-studio" in bad.stderr


def test_votes_export_as_listener_labels_a_judge_reads(run_cli, tmp_path: Path, review):
    """`review export --format labels` writes each vote as a preference with its context (from --contexts), the
    format `voicetune judge train --labels` reads; without --contexts it is one clear line."""
    from voicetune.judge.learned import read_labels
    from voicetune.records import Turn

    store = ReviewStore(review.db)
    for item in store.items()[:6]:
        store.record_vote(reviewer=item.reviewer, item_id=item.id, shown="1", mode="listen", seconds_on_item=10.0)
    contexts = tmp_path / "turns.jsonl"
    write_records(
        contexts,
        [
            Turn(
                id=f"c{i}",
                history=[Message(role="user", text=f"Caller question number {i}?")],
                draft=f"Item {i} is **done**.",
            )
            for i in range(12)
        ],
    )
    out = tmp_path / "votes.jsonl"
    result = run_cli(
        "review", "export", "--db", str(review.db), "--format", "labels", "--contexts", str(contexts), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    rows = [__import__("json").loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(r["kind"] == "vote" and r["draft"].startswith("Item") for r in rows)
    good = tmp_path / "labels.jsonl"
    good.write_text('{"id": "x", "draft": "Done.", "response": "It is done.", "usable": true}\n' + out.read_text())
    responses, preferences = read_labels(good)
    assert len(responses) == 1 and len(preferences) == 6 and {p.winner for p in preferences} <= {"a", "b"}
    missing = run_cli(
        "review", "export", "--db", str(review.db), "--format", "labels", "--out", str(tmp_path / "y.jsonl")
    )
    assert missing.returncode == 2 and "--contexts" in missing.stderr and "Traceback" not in missing.stderr


def test_a_killed_server_loses_no_acknowledged_vote(tmp_path: Path, eval_dir: Path, review):
    """Votes the server answered (303) are committed: SIGKILL the server process mid-review, and every one
    is in the database; a new server resumes each reviewer at their next unvoted item."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "voicetune.cli", "review", "serve", "--db", str(review.db), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    acknowledged = 0
    try:
        for _ in range(300):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            token = review.tokens["carol"]
            for _ in range(5):
                form = _form(client.get(f"/r/{token}", follow_redirects=True).text)
                if client.post(f"/r/{token}/vote", data={**form, "verdict": "2"}).status_code == 303:
                    acknowledged += 1
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert acknowledged == 5 and len(ReviewStore(review.db).votes("carol")) == 5
    client = _client(review)
    items = ReviewStore(review.db).items("carol")
    assert (
        client.get(f"/r/{review.tokens['carol']}", follow_redirects=False)
        .headers["location"]
        .endswith(f"/item/{items[5].id}")
    )


def test_cli_import_from_label_studio(run_cli, tmp_path: Path, review):
    """`review import` reads a Label Studio JSON export of the exported project into the same database."""
    import json

    project = tmp_path / "ls"
    assert (
        run_cli(
            "review", "export", "--db", str(review.db), "--format", "label-studio", "--out", str(project)
        ).returncode
        == 0
    )
    tasks = json.loads((project / "tasks.json").read_text())
    exported = [
        {
            "id": n,
            "data": task["data"],
            "annotations": [
                {
                    "id": 100 + n,
                    "completed_by": {"id": 7, "email": "dana@example.com"},
                    "was_cancelled": False,
                    "lead_time": 20.0,
                    "created_at": "2026-11-29T10:00:00Z",
                    "result": [
                        {
                            "from_name": "verdict",
                            "to_name": "conversation",
                            "type": "choices",
                            "value": {"choices": ["1"]},
                        }
                    ],
                }
            ],
        }
        for n, task in enumerate(tasks[:3])
    ]
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(exported))
    first = run_cli("review", "import", "--db", str(review.db), str(export_file))
    assert first.returncode == 0, first.stderr
    assert "3 votes imported" in first.stderr
    votes = ReviewStore(review.db).votes("dana")
    assert len(votes) == 3 and {v.source for v in votes} == {"label-studio"}
    for vote, task in zip(
        sorted(votes, key=lambda v: [t["data"]["pair_id"] for t in tasks[:3]].index(v.pair_id)), tasks[:3], strict=False
    ):
        assert vote.winner == ("a" if task["data"]["order"] == "ab" else "b")  # "1" through the task's order
    again = run_cli("review", "import", "--db", str(review.db), str(export_file))
    assert "0 votes imported, 3 already there" in again.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    failed = run_cli("review", "import", "--db", str(review.db), str(broken))
    assert failed.returncode == 2 and "broken.json" in failed.stderr


def test_a_killed_create_resumes_with_the_audio_it_made(tmp_path: Path, eval_dir: Path, monkeypatch):
    """Synthesis is the slow part of `create`: clips are committed one by one into DB.partial, and a re-run
    with the same inputs and voice synthesises only the rest; no review database exists until it is done."""
    import voicetune.tts as tts

    spoken: list[str] = []

    def speak(self, text):
        if len(spoken) == 5 and not hasattr(speak, "killed"):
            speak.killed = True
            raise KeyboardInterrupt
        spoken.append(text)
        return tts.Speech(wav=b"RIFF-fake", seconds=1.0, engine="espeak")

    monkeypatch.setattr(tts.Synthesizer, "speak", speak)
    monkeypatch.setattr(
        tts.Synthesizer, "__init__", lambda self, engine="auto", **kw: setattr(self, "engine", "espeak")
    )
    monkeypatch.setattr(tts.Synthesizer, "describe", lambda self: {"engine": "espeak", "voice": "test"})
    db = tmp_path / "r.sqlite"
    with pytest.raises(KeyboardInterrupt):
        create_review_set(eval_dir, db, ["alice"], sample=6)
    assert not db.exists() and Path(str(db) + ".partial").exists()
    made = create_review_set(eval_dir, db, ["alice"], sample=6)
    distinct = len({t for p in ReviewStore(made.db).pairs() for t in (p["response_a"], p["response_b"])})
    assert len(spoken) == distinct and len(set(spoken)) == distinct  # nothing synthesised twice
    assert not Path(str(db) + ".partial").exists()


def test_the_review_database_is_owner_only_and_the_csv_cannot_carry_formulas(review):
    import csv
    import io
    import stat

    from voicetune.review.export import votes_csv

    assert stat.S_IMODE(review.db.stat().st_mode) == 0o600  # tokens and the CSRF secret live in it
    store = ReviewStore(review.db)
    item = store.items()[0]
    store.record_vote(
        reviewer=item.reviewer,
        item_id=item.id,
        shown="1",
        mode="listen",
        seconds_on_item=5.0,
        comment='=HYPERLINK("http://evil.example","click")',
    )
    second = store.items()[1]  # a bare carriage return would start a new row whose first cell is a formula
    store.record_vote(reviewer=second.reviewer, item_id=second.id, shown="1", mode="listen", comment="\r=1+1")
    written = votes_csv(store)
    rows = list(
        csv.DictReader(io.StringIO(written.replace("\r\n", "\n").replace("\r", "\n")))
    )  # as a spreadsheet splits lines
    assert len(rows) == 2 and all(None not in row for row in rows)
    assert rows[0]["comment"] == '\'=HYPERLINK("http://evil.example","click")'
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row.values() if cell)
    assert float(rows[0]["seconds_on_item"]) == 5.0  # numbers stay numbers


def test_vote_exports_are_owner_only_even_over_a_readable_file(run_cli, review, tmp_path):
    import stat

    for format in ("csv", "jsonl"):
        out = tmp_path / f"votes.{format}"
        out.write_text("old")
        out.chmod(0o644)
        result = run_cli("review", "export", "--db", str(review.db), "--format", format, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600  # reviewers' verdicts and comments


def test_review_serve_refuses_a_port_out_of_range_in_one_line(run_cli, review):
    result = run_cli("review", "serve", "--db", str(review.db), "--port", "99999")
    assert (
        result.returncode == 2
        and "--port" in result.stderr
        and "65535" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )


def test_a_training_seed_out_of_range_fails_at_validation():
    from voicetune.errors import VoicetuneError
    from voicetune.train.config import load_config

    for seed in (-1, 10**20):
        with pytest.raises(VoicetuneError, match="seed"):
            load_config(None, {"seed": seed})


# the CLI's paths and ports (issue 24) ----------------------------------------------------------------------
def _one_line_error(code: int, err: str) -> str:
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    return err


def test_export_and_agreement_never_write_over_the_database(cli, tmp_path: Path, eval_dir: Path, review):
    """`--out` naming the database, its -wal or -shm file, a symlink or a hard link to it, or the same file by a
    relative path replaced the votes with a CSV: now one line, exit 2, and every vote is still there."""
    import os

    store = ReviewStore(review.db)
    item = store.items()[0]
    store.record_vote(reviewer=item.reviewer, item_id=item.id, shown="1", mode="listen", seconds_on_item=5.0)
    (tmp_path / "link.sqlite").symlink_to(review.db)
    os.link(review.db, tmp_path / "hard.sqlite")
    for out in (review.db, "review.sqlite", "link.sqlite", "hard.sqlite", f"{review.db}-wal", "review.sqlite-shm"):
        for command in (("export", "--format", "csv"), ("export", "--format", "jsonl"), ("agreement",)):
            code, _, err = cli("review", *command, "--db", review.db, "--out", out)
            assert re.search("overwrite|corrupt", _one_line_error(code, err))
    # a Label Studio project is a folder: a database named like one of its files is refused too
    inside = create_review_set(eval_dir, tmp_path / "project" / "tasks.json", ["ann"], engine="browser").db
    code, _, err = cli("review", "export", "--db", inside, "--format", "label-studio", "--out", "project")
    assert "overwrite" in _one_line_error(code, err) and ReviewStore(inside).items()
    for out in ("review.sqlite-wal", "link.sqlite"):  # the project folder made where the WAL goes, or over a link
        code, _, err = cli("review", "export", "--db", review.db, "--format", "label-studio", "--out", out)
        assert re.search("overwrite|corrupt|review database's file", _one_line_error(code, err))
    assert not Path("review.sqlite-wal").is_dir()
    contexts = tmp_path / "turns.jsonl"
    contexts.write_text("")
    code, _, err = cli(
        "review", "export", "--db", review.db, "--format", "labels", "--contexts", contexts, "--out", contexts
    )
    assert "overwrite" in _one_line_error(code, err)
    (eval_dir / "summary.json").write_text('{"comparisons": []}')
    code, _, err = cli("review", "agreement", "--db", review.db, "--eval", eval_dir, "--out", eval_dir / "summary.json")
    assert (
        "overwrite" in _one_line_error(code, err) and (eval_dir / "summary.json").read_text() == '{"comparisons": []}'
    )
    assert len(ReviewStore(review.db).votes()) == 1 and (tmp_path / "link.sqlite").is_symlink()
    assert cli("review", "export", "--db", review.db, "--out", "votes.csv")[0] == 0  # another path is fine


def test_review_paths_missing_looping_or_of_the_wrong_kind_are_one_clear_line(
    cli, tmp_path: Path, eval_dir: Path, review
):
    """A missing --db folder said nothing of the folder, a symlink loop read as a missing file, and `create` into
    a new folder failed naming DB.partial: each is one line naming the path, exit 2 (or, for create, works)."""
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "file.txt").write_text("x")
    for command in (("serve",), ("agreement",), ("export", "--out", "x.csv"), ("import", "x.json")):
        code, _, err = cli("review", *command, "--db", "nosuchdir/review.sqlite")
        assert (
            err == "error: nosuchdir/review.sqlite: the review database does not exist (its folder nosuchdir does not "
            "exist)\n"
        )
        code, _, err = cli("review", *command, "--db", "file.txt/review.sqlite")
        assert "file.txt/review.sqlite: the review database does not exist (its folder file.txt is a file)" in err
        assert "loop1: is a symlink loop" in _one_line_error(*cli("review", *command, "--db", "loop1")[::2])
        assert "eval: is a folder, not a review database" in _one_line_error(
            *cli("review", *command, "--db", "eval")[::2]
        )
    assert not (tmp_path / "x.csv").exists()
    store = ReviewStore(review.db)
    item = store.items()[0]
    store.record_vote(reviewer=item.reviewer, item_id=item.id, shown="1", mode="listen", seconds_on_item=5.0)
    for command in (("export",), ("export", "--format", "label-studio"), ("agreement",)):
        assert "loop1: is a symlink loop" in _one_line_error(
            *cli("review", *command, "--db", review.db, "--out", "loop1")[::2]
        )
    assert "eval: is a directory, expected a file" in _one_line_error(
        *cli("review", "export", "--db", review.db, "--out", "eval")[::2]
    )
    assert "eval: is a directory, expected a file" in _one_line_error(
        *cli("review", "agreement", "--db", review.db, "--out", "eval")[::2]
    )
    code, _, err = cli("review", "export", "--db", review.db, "--format", "label-studio", "--out", "file.txt")
    assert "file.txt: is a file, expected a folder" in _one_line_error(code, err)
    create = ("review", "create", "--from", eval_dir, "--reviewers", "ann", "--tts", "browser", "--db")
    assert (
        cli(*create, "new/deeper/review.sqlite")[0] == 0 and ReviewStore(tmp_path / "new/deeper/review.sqlite").items()
    )
    assert "never overwritten" in _one_line_error(*cli(*create, "loop1")[::2])
    code, _, err = cli("review", "create", "--from", "loop1", "--reviewers", "ann", "--db", "other.sqlite")
    assert "loop1: is a symlink loop" in _one_line_error(code, err)
    assert Path("loop1").is_symlink() and not Path("other.sqlite").exists()


def test_review_serve_on_a_port_in_use_is_one_line_before_any_link(cli, review):
    """uvicorn found the port taken after the links and "serving ..." were printed, and exited 3: the port is
    now bound first."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out, err = cli("review", "serve", "--db", review.db, "--port", taken.getsockname()[1])
    assert "is already in use" in _one_line_error(code, err) and out == "" and "serving" not in err


def test_review_serve_off_loopback_warns_what_protects_it(cli, review, monkeypatch):
    import socket

    import voicetune.review.app as review_app

    served: list[socket.socket] = []
    monkeypatch.setattr(review_app, "serve", lambda db, host, port, sock=None, **_: served.append(sock))
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)):
        code, out, err = cli("review", "serve", "--db", review.db, "--host", host, "--port", port)
        assert code == 0 and out.count("/r/") == 3
        warnings = [line for line in err.splitlines() if line.startswith("warning")]
        assert len(warnings) == warned
        if warned:
            assert "plain HTTP" in warnings[0] and "secret links are the only protection" in warnings[0]
        served.pop().close()  # the socket serve() was handed, bound before the links were printed


def test_an_event_id_used_by_another_post_is_refused_not_silently_dropped(review):
    from voicetune.review.store import ReplayConflict

    store = ReviewStore(review.db)
    mine = [item for item in store.items() if item.reviewer == store.items()[0].reviewer]
    other = next(item for item in store.items() if item.reviewer != mine[0].reviewer)
    assert store.record_vote(reviewer=mine[0].reviewer, item_id=mine[0].id, shown="1", mode="listen", event_id="e" * 12)
    assert not store.record_vote(
        reviewer=mine[0].reviewer, item_id=mine[0].id, shown="1", mode="listen", event_id="e" * 12
    )  # a retry
    with pytest.raises(ReplayConflict):  # the same id on another item: not a retry, and not a stored vote either
        store.record_vote(reviewer=mine[1].reviewer, item_id=mine[1].id, shown="2", mode="listen", event_id="e" * 12)
    with pytest.raises(ReplayConflict):  # another reviewer's undo with a vote's id
        store.undo_last(other.reviewer, "e" * 12)
    assert len(store.votes()) == 1
