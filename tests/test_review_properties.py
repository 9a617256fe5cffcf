"""Property-based tests (hypothesis) of the review app's forms and paths: whatever a client sends (item ids of
any size or none, tokens and CSRF fields in any script, empty or huge, any verdict, mode, comment, event id,
body and content type), the answer is a page (200), a redirect (303 after a post, 307 for a trailing slash) or
the error page with one line and a 4xx status, never a 500; a refused request records no event; and after each
one a valid reviewer is still served her item page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from voicetune.records import QUALITIES, Message, Pair, write_records  # noqa: E402
from voicetune.review.app import create_app, csrf_token  # noqa: E402
from voicetune.review.create import create_review_set  # noqa: E402
from voicetune.review.store import ReviewStore  # noqa: E402

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_ID = 2**63 - 1  # SQLite's largest integer: ids around it probe the overflow


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """A small set (two reviewers, six pairs, no audio) served by one TestClient for the whole module."""
    folder: Path = tmp_path_factory.mktemp("review")
    write_records(
        folder / "eval" / "pairs.jsonl",
        [
            Pair(
                id=f"c{i}",
                domain="retail",
                history=[Message(role="user", text=f"Question {i}?")],
                winner="a",
                response_a=f"Sure, item {i} is done.",
                response_b=f"Item {i}: let me check.",
                system_a="tuned",
                system_b="base",
            )
            for i in range(6)
        ],
    )
    made = create_review_set(
        folder / "eval", folder / "review.sqlite", ["alice", "bob"], overlap=1, repeat_share=0.0, engine="browser"
    )
    store = ReviewStore(made.db)
    roles = {**made.tokens, "admin": made.admin_token}
    return {
        "client": TestClient(create_app(made.db), base_url="http://127.0.0.1:8000"),
        "store": store,
        "roles": roles,
        "csrf": {role: csrf_token(store.meta()["secret"], token) for role, token in roles.items()},
        "items": {name: [item.id for item in store.items(name)] for name in made.tokens},
    }


# Text of every kind: any Unicode scalar value (lone surrogates are not text and cannot be sent), with what broke
# things made likely: non-ASCII, NUL, line breaks, a formula start, HTML and URL metacharacters.
_CHARS = st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(list("é😀\x00\n\r\u2028=<>&'%+/ ")))
TEXT = st.text(_CHARS, max_size=40)
HUGE_TEXT = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "😀", "1"]), st.integers(1000, 30_000))
INTS = st.one_of(st.integers(-10, 50), st.integers(MAX_ID - 2, MAX_ID + 2), st.integers(-(2**80), 2**80))
NUMBERS = st.one_of(INTS.map(str), st.floats().map(str), st.sampled_from(["", "1e400", "0x10", "١"]))
ANY_VALUE = st.one_of(TEXT, NUMBERS, HUGE_TEXT)
#: A token: one of the set's by role ("@alice", resolved in the test), or junk (empty, non-ASCII, huge).
TOKEN = st.one_of(st.sampled_from(["@alice", "@bob", "@admin"]), st.just(""), TEXT, HUGE_TEXT.map(lambda t: t[:4000]))
#: Mostly the valid token, so that most forms are valid but for the few fields a test changes.
MOSTLY = {role: st.one_of(st.just(f"@{role}"), TOKEN) for role in ("alice", "admin")}
CSRF_OF = st.sampled_from(["alice", "alice", "bob", "admin"])
LATIN_1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30).map(lambda t: t.encode("latin-1"))
ORIGIN = st.one_of(st.none(), st.sampled_from(["http://127.0.0.1:8000", "null", "https://evil.example"]), LATIN_1)
VOTE_FIELD = st.sampled_from(
    [
        "item_id",
        "verdict",
        "csrf",
        "event_id",
        "mode",
        "comment",
        "plays_1",
        "plays_2",
        "seconds",
        *QUALITIES,
        "unknown",
    ]
)


def _resolve(review: dict, token: str) -> str:
    return review["roles"].get(token[1:], token) if token.startswith("@") else token


def _segment(value: str) -> str:
    return quote(value, safe="")


def _answered(response) -> None:
    """A page or a redirect, or the app's error page: a 4xx with exactly one error line. Never a 500."""
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: how many were valid, which refused
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("text/html"), response.text[:300]
        lines = re.findall(r'<p id="error">(.*?)</p>', response.text, re.S)
        assert len(lines) == 1 and lines[0].strip() and "\n" not in lines[0], response.text[:500]
    else:
        assert response.status_code in (200, 303, 307), response.status_code  # 307: "/r/TOKEN/" to "/r/TOKEN"


def _still_serves(review: dict) -> None:
    """A valid reviewer is still served her item page."""
    page = review["client"].get(f"/r/{review['roles']['alice']}/item/{review['items']['alice'][0]}")
    assert page.status_code == 200 and 'id="error"' not in page.text


def _events(review: dict) -> int:
    return len(review["store"].events())


def _post(review: dict, path: str, fields: dict, origin: str | bytes | None):
    headers = {"Origin": origin} if origin is not None else {}
    return review["client"].post(path, data=fields, headers=headers, follow_redirects=False)


def _post_records_nothing_if_refused(review, path: str, fields: dict, dropped: set, origin) -> None:
    """Post ``fields`` less ``dropped``: a valid answer or a 4xx; a refused post records no event; the app still
    serves."""
    before = _events(review)
    response = _post(review, path, {key: value for key, value in fields.items() if key not in dropped}, origin)
    _answered(response)
    if response.status_code >= 400:
        assert _events(review) == before, f"a refused post to {path} was recorded"
    _still_serves(review)


@SETTINGS
@given(
    token=MOSTLY["alice"],
    owner=st.sampled_from(["alice", "alice", "bob"]),
    position=st.integers(0, 2),
    verdict=st.sampled_from(["0", "1", "2", "tie"]),
    csrf_of=CSRF_OF,
    origin=ORIGIN,
    event_id=st.uuids(),
    changed=st.dictionaries(VOTE_FIELD, ANY_VALUE, max_size=3),
    dropped=st.sets(VOTE_FIELD, max_size=2),
)
@example(
    token="@alice",
    owner="alice",
    position=1,
    verdict="2",
    csrf_of="alice",
    changed={"comment": "=1+1 é"},
    dropped=set(),
    origin="http://127.0.0.1:8000",
    event_id=UUID(int=1),
)  # a valid vote (303) is always tried
def test_a_vote_post_is_a_redirect_or_a_4xx_never_a_500(
    review, token, owner, position, verdict, csrf_of, changed, dropped, origin, event_id
):
    fields = {
        "item_id": str(review["items"][owner][position]),
        "verdict": verdict,
        "csrf": review["csrf"][csrf_of],
        "event_id": event_id.hex,
        "mode": "listen",
        "comment": "",
        **changed,
    }
    _post_records_nothing_if_refused(review, f"/r/{_segment(_resolve(review, token))}/vote", fields, dropped, origin)


@SETTINGS
@given(
    token=MOSTLY["alice"],
    csrf_of=CSRF_OF,
    dropped=st.sets(st.sampled_from(["csrf", "event_id"])),
    origin=ORIGIN,
    changed=st.dictionaries(st.sampled_from(["csrf", "event_id", "x"]), ANY_VALUE, max_size=2),
    event_id=st.uuids(),
)
def test_an_undo_post_is_a_redirect_or_a_4xx_never_a_500(review, token, csrf_of, dropped, origin, changed, event_id):
    fields = {"csrf": review["csrf"][csrf_of], "event_id": event_id.hex, **changed}
    _post_records_nothing_if_refused(review, f"/r/{_segment(_resolve(review, token))}/undo", fields, dropped, origin)


@SETTINGS
@given(
    token=MOSTLY["admin"],
    csrf_of=st.sampled_from(["admin", "admin", "alice"]),
    origin=ORIGIN,
    mode=st.one_of(st.sampled_from(["listen", "read"]), ANY_VALUE),
    dropped=st.sets(st.sampled_from(["csrf", "mode"])),
    changed=st.dictionaries(st.sampled_from(["csrf", "mode", "x"]), ANY_VALUE, max_size=2),
)
@example(token="@admin", csrf_of="admin", origin=None, mode="listen", dropped=set(), changed={})  # valid: a 303
def test_the_admin_mode_post_is_a_redirect_or_a_4xx_never_a_500(review, token, csrf_of, origin, mode, dropped, changed):
    before = review["store"].meta()["mode"]
    fields = {"csrf": review["csrf"][csrf_of], "mode": mode, **changed}
    response = _post(
        review,
        f"/admin/{_segment(_resolve(review, token))}/mode",
        {key: value for key, value in fields.items() if key not in dropped},
        origin,
    )
    _answered(response)
    if response.status_code >= 400:
        assert review["store"].meta()["mode"] == before, "a refused request changed the mode"
    _still_serves(review)


PAGES = ["item", "audio", "done", "admin", "export.csv", "export.jsonl", "export.xml", "static"]


@SETTINGS
@given(
    token=st.one_of(st.sampled_from(["@alice", "@bob", "@admin"]), TOKEN),
    kind=st.one_of(st.sampled_from(PAGES), TEXT),
    item=st.one_of(st.sampled_from(["alice", "bob"]), NUMBERS, TEXT),
    slot=st.one_of(st.sampled_from(["1", "2"]), NUMBERS, TEXT),
)
def test_every_page_answers_200_a_redirect_or_a_4xx_never_a_500(review, token, kind, item, slot):
    token = _segment(_resolve(review, token))
    item = str(review["items"][item][0]) if item in review["items"] else _segment(item)
    path = {
        "item": f"/r/{token}/item/{item}",
        "audio": f"/r/{token}/audio/{item}/{_segment(slot)}",
        "done": f"/r/{token}/done",
        "admin": f"/admin/{token}",
        "static": f"/static/{token}",
    }.get(kind)
    path = path or (f"/admin/{token}/{_segment(kind)}" if kind.startswith("export") else f"/r/{token}/{_segment(kind)}")
    before = _events(review)
    _answered(review["client"].get(path, follow_redirects=False))
    assert _events(review) == before
    _still_serves(review)


@SETTINGS
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=st.sampled_from(["/", "/r/@alice", "/r/@alice/vote", "/r/@alice/undo", "/admin/@admin/mode", "/nowhere"]),
    body=st.one_of(st.binary(max_size=300), ANY_VALUE.map(lambda t: t.encode())),
    content_type=st.sampled_from(
        [
            None,
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "application/json",
            "text/plain; charset=latin-1",
        ]
    ),
)
def test_any_method_body_and_content_type_is_answered_never_a_500(review, method, path, body, content_type):
    path = re.sub(r"@(\w+)", lambda match: review["roles"][match.group(1)], path)
    before = _events(review)
    headers = {"Content-Type": content_type} if content_type else {}
    response = review["client"].request(method, path, content=body, headers=headers, follow_redirects=False)
    if method == "HEAD":  # no body to hold the error line
        assert response.status_code < 500
    else:
        _answered(response)
    assert _events(review) == before  # no body here carries a valid CSRF token and event id
    _still_serves(review)
