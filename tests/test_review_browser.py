"""The review app in a real browser: headless Chromium (Debian's, never a downloaded one) driven by Playwright.

A reviewer opens their link, both responses play to the end (listen-first: the votes unlock only then), votes
with the keyboard, undoes, votes again; the database then holds exactly the votes cast, the undo as an
event, the order shown and the play counts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from voicetune.records import Message, Pair, write_records
from voicetune.review.create import create_review_set
from voicetune.review.store import ReviewStore

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make install adds it)"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def review_set(tmp_path: Path):
    pairs = [
        Pair(
            id=f"c{i}#tuned-vs-base#s0",
            domain="airline",
            history=[Message(role="user", text="Can I change my flight?")],
            response_a=f"Yes. Flight {i} moved.",
            response_b=f"Sure thing, number {i}.",
            system_a="tuned",
            system_b="base",
            winner="a",
            criteria={"conciseness": "a"},
            meta={"context_id": f"c{i}"},
        )
        for i in range(3)
    ]
    write_records(tmp_path / "eval" / "pairs.jsonl", pairs)
    return create_review_set(
        tmp_path / "eval", tmp_path / "review.sqlite", ["alice"], repeat_share=0.0, engine="espeak"
    )


def _unlocked(page, timeout=30_000) -> None:
    """Wait until both responses were played to the end and the vote buttons are enabled."""
    page.wait_for_selector("#review.unlocked", timeout=timeout)


def test_listen_vote_undo_vote_again_with_the_keyboard(review_set, review_server, tmp_path: Path):
    store = ReviewStore(review_set.db)
    items = store.items("alice")
    with review_server(review_set.db) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/r/{review_set.tokens['alice']}")
        assert page.url.endswith(f"/item/{items[0].id}")
        # listen-first: before listening, the text is hidden and the votes are disabled
        assert page.locator("#text1").is_hidden() and page.locator("button[name=verdict][value='1']").is_disabled()
        page.keyboard.press("1")  # ignored while locked
        assert page.url.endswith(f"/item/{items[0].id}")
        _unlocked(page)  # autoplay: response 1, then response 2, each to the end
        assert page.locator("#text1").is_visible() and page.locator("#status2").inner_text() == "played to the end"
        screenshot = Path(os.environ.get("VOICETUNE_SCREENSHOT", tmp_path / "review.png"))
        page.screenshot(path=str(screenshot), full_page=True)
        page.keyboard.press("1")
        page.wait_for_url(f"**/item/{items[1].id}")
        page.keyboard.press("u")  # undo: back to the first item
        page.wait_for_url(f"**/item/{items[0].id}")
        _unlocked(page)
        page.keyboard.press("ArrowRight")  # response 2 this time
        page.wait_for_url(f"**/item/{items[1].id}")
        _unlocked(page)
        page.keyboard.press("ArrowDown")  # a tie
        page.wait_for_url(f"**/item/{items[2].id}")
        browser.close()
    assert errors == []
    assert screenshot.stat().st_size > 10_000
    votes = store.votes("alice")
    assert [(v.item_id, v.shown) for v in votes] == [(items[0].id, "2"), (items[1].id, "tie")]
    assert votes[0].winner == ("a" if items[0].swapped else "b") and votes[0].mode == "listen"
    assert votes[0].plays == {"1": 1, "2": 1} and votes[0].seconds_on_item >= 0.9 * votes[0].audio_seconds
    assert [e["kind"] for e in store.events()] == ["vote", "undo", "vote", "vote"]
