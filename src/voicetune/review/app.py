"""The review web app: FastAPI, server-rendered HTML, one small script, no build step.

Routes (``TOKEN`` is a reviewer's secret, ``ADMIN`` the admin's; a wrong or foreign token answers 403):

- ``GET /r/TOKEN``: the reviewer's next unvoted item (resume), or the done page.
- ``GET /r/TOKEN/item/ID``: one pair: the conversation so far as text, the two responses as audio players 1
  and 2 (in the item's recorded order). In listen mode the responses' text stays hidden and the votes stay
  disabled until both were played to the end.
- ``GET /r/TOKEN/audio/ID/SLOT``: the audio of response 1 or 2 of an item (no pair id or system name is
  ever in a page or a URL: the review is blind).
- ``POST /r/TOKEN/vote`` and ``POST /r/TOKEN/undo``: a verdict, or undo of the last one (an event, never a
  deletion). Each form carries a per-reviewer CSRF token and a one-time ``event_id``, so a replayed post is
  stored once; a cross-site post (foreign ``Origin``) is refused.
- ``GET /admin/ADMIN``: progress per reviewer, live agreement, flagged reviewers, the set's mode (toggle),
  export links ``/admin/ADMIN/export.csv`` and ``.jsonl``.

Every error is the error page: a 4xx status for anything a client sent wrong (403 a token that is not valid,
404 an unknown page or an id that is no item, 405 a wrong method, 413 a body over 64 KiB, 422 a form field
missing or out of bounds) and one line naming what is wrong in ``<p id="error">``; never a 500 for a request.
Every form field has a type and bounds (pydantic, through FastAPI's ``Form``), tokens are compared as bytes
in constant time, and item ids stay in SQLite's 64-bit range.

All text goes through Jinja2's autoescaping; the Content-Security-Policy allows scripts from this origin
only, so a response that contains ``<script>`` is shown as text and could not run anyway; the token-bearing
URLs are never sent as a referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import time
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from voicetune import web
from voicetune.records import QUALITIES
from voicetune.review.agreement import flag_reviewers, review_agreement
from voicetune.review.export import votes_csv, votes_jsonl
from voicetune.review.store import ReplayConflict, ReviewStore, new_event_id

_HERE = Path(__file__).parent
KEYS_HELP = (
    "1 or ← picks response 1, 2 or → picks response 2, 0 or ↓ is a tie; space plays or pauses; u undoes the last vote."
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; img-src "
    "'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: SQLite's largest integer: an id beyond it is no item (and would overflow the query).
MAX_ID = 2**63 - 1
#: A vote form is under 1 KiB plus its comment (2,000 characters, at most 24 KB percent-encoded).
MAX_BODY = 64 * 1024
#: What a link token looks like (``secrets.token_urlsafe``); anything else is refused before any lookup.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")

ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
Verdict = Literal["0", "1", "2", "tie"]
Criterion = Literal["", "0", "1", "2", "tie"]  # "" is no opinion
Mode = Literal["listen", "read"]
# required form fields, their bounds in Annotated (FastAPI drops Annotated constraints when a Form() is the default)
FormItemId = Annotated[int, Form(ge=1, le=MAX_ID)]
EventId = Annotated[str, Form(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Csrf = Annotated[str, Form(max_length=128)]


def csrf_token(secret: str, token: str) -> str:
    """The CSRF token of one reviewer's (or the admin's) forms: an HMAC of their secret link token."""
    return hmac.new(secret.encode(), f"csrf:{token}".encode(), hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of a token a client sent with the real one. As bytes: ``compare_digest`` raises
    TypeError on a ``str`` that is not ASCII, so a token like ``é`` would otherwise be a 500."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _error_line(error: RequestValidationError) -> tuple[int, str]:
    """The status and one line for a request FastAPI could not validate: a path parameter out of bounds (an
    item id beyond 64 bits, slot 3) is a page that does not exist (404); a form field is named (422)."""
    problem = error.errors()[0]
    where, *name = problem.get("loc") or ("body",)
    field = ".".join(str(part) for part in name) or "the form"
    if where == "path":
        return 404, f"no such page ({field}: {problem['msg']})"
    if problem.get("type") == "missing":
        return 422, f"form field '{field}' is missing"
    return 422, f"form field '{field}': {problem['msg']}"


def create_app(db_path: str | Path):
    """The FastAPI app serving the review set in ``db_path``."""
    store = ReviewStore(db_path)
    settings = store.meta()
    secret = settings["secret"]
    admin_token = settings["admin_token"]
    templates = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")), autoescape=select_autoescape(default=True)
    )
    templates.globals.update(pct=_pct, num=_num)
    app = FastAPI(title="voicetune review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(web.BodyLimit, limit=MAX_BODY)
    static = {name: (_HERE / "static" / name).read_bytes() for name in ("review.js", "review.css")}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for key, value in _HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(template).render(**context), status_code=status)

    def reviewer_of(token: str) -> str:
        name = store.reviewer_for(token) if _TOKEN.fullmatch(token) else None
        if name is None:
            raise HTTPException(403, "this link is not valid")
        return name

    def check_post(request: Request, token: str, csrf: str) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise HTTPException(403, "cross-site form post refused")
        if not same_secret(csrf, csrf_token(secret, token)):
            raise HTTPException(403, "the form's CSRF token is not valid; reload the page")

    def own_item(name: str, item_id: int):
        item = store.item(item_id)
        if item is None or item.reviewer != name:
            raise HTTPException(403, "this item is not yours")
        return item

    def error_page(status: int, message: str, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        response = page("error.html", status=status, status_code=status, message=" ".join(str(message).split()))
        response.headers.update(headers or {})
        return response

    # Starlette's HTTPException, not only FastAPI's: the router raises it for an unknown path (404) or method
    # (405), the form parser for a broken multipart body (400), the body limit for a large one (413)
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = error.detail
        if message == _phrase(error.status_code):  # the framework's bare phrase: say what it means here
            allowed = (error.headers or {}).get("Allow", "")
            meaning = {404: "no such page", 405: f"{request.method} is not allowed here (only {allowed})"}
            message = meaning.get(error.status_code, message)
        return error_page(error.status_code, message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        return error_page(*_error_line(error))

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):  # a bug: the page, never a traceback
        return error_page(500, "internal error (the server's log has the details)")

    @app.get("/static/{name}")
    def static_file(name: str):
        if name not in static:
            raise HTTPException(404, "not found")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(static[name], media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=PlainTextResponse)
    def root():
        return "voicetune review: open the link you were given."

    @app.get("/r/{token}")
    def next_item(token: str):
        name = reviewer_of(token)
        voted = store.voted_items(name)
        for item in store.items(name):
            if item.id not in voted:
                return RedirectResponse(f"/r/{token}/item/{item.id}", status_code=303)
        return RedirectResponse(f"/r/{token}/done", status_code=303)

    @app.get("/r/{token}/done")
    def done(token: str):
        name = reviewer_of(token)
        total = len(store.items(name))
        return page(
            "done.html", token=token, name=name, total=total, csrf=csrf_token(secret, token), undo_id=new_event_id()
        )

    @app.get("/r/{token}/item/{item_id}")
    def show_item(token: str, item_id: ItemId):
        name = reviewer_of(token)
        item = own_item(name, item_id)
        pair = store.pair(item.pair_id)
        items = store.items(name)
        voted = store.voted_items(name)
        texts = [pair["response_a"], pair["response_b"]]
        if item.swapped:
            texts.reverse()
        mode = store.meta().get("mode", "listen")
        return page(
            "item.html",
            token=token,
            name=name,
            item=item,
            history=pair["history"][-6:],
            texts=texts,
            mode=mode,
            has_audio=pair["audio_a"] is not None,
            qualities=[(q, q.replace("_", "-")) for q in QUALITIES],
            done=len(voted),
            total=len(items),
            position=items.index(item) + 1,
            already=item.id in voted,
            csrf=csrf_token(secret, token),
            event_id=new_event_id(),
            undo_id=new_event_id(),
            keys_help=KEYS_HELP,
            can_undo=bool(voted),
        )

    @app.get("/r/{token}/audio/{item_id}/{slot}")
    def audio(token: str, item_id: ItemId, slot: Annotated[int, PathParam(ge=1, le=2)]):
        name = reviewer_of(token)
        item = own_item(name, item_id)
        pair = store.pair(item.pair_id)
        side = ("b", "a") if item.swapped else ("a", "b")
        found = store.audio(pair[f"audio_{side[slot - 1]}"] or "")
        if found is None:
            raise HTTPException(404, "this set has no stored audio (the browser speaks the text)")
        mime, data = found
        return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/r/{token}/vote")
    def vote(
        request: Request,
        token: str,
        item_id: FormItemId,
        verdict: Annotated[Verdict, Form()],
        csrf: Csrf,
        event_id: EventId,
        mode: Annotated[Mode, Form()] = "listen",
        comment: Annotated[str, Form(max_length=2000)] = "",
        plays_1: Annotated[int, Form(ge=0, le=1000)] = 0,
        plays_2: Annotated[int, Form(ge=0, le=1000)] = 0,
        seconds: Annotated[float | None, Form(ge=0, le=86400)] = None,
        non_repetition: Annotated[Criterion, Form()] = "",
        conciseness: Annotated[Criterion, Form()] = "",
        clarity: Annotated[Criterion, Form()] = "",
        humanness: Annotated[Criterion, Form()] = "",
        faithfulness: Annotated[Criterion, Form()] = "",
    ):
        check_post(request, token, csrf)
        name = reviewer_of(token)
        own_item(name, item_id)
        shown = "tie" if verdict == "0" else verdict
        criteria_in = dict(zip(QUALITIES, (non_repetition, conciseness, clarity, humanness, faithfulness), strict=True))
        criteria = {q: "tie" if v == "0" else v for q, v in criteria_in.items() if v}
        try:
            store.record_vote(
                reviewer=name,
                item_id=item_id,
                shown=shown,
                mode=mode,
                event_id=event_id,
                criteria=criteria,
                comment=comment.strip(),
                plays={"1": plays_1, "2": plays_2},
                seconds_on_item=seconds,
            )
        except ReplayConflict as error:
            raise HTTPException(409, str(error)) from None
        return RedirectResponse(f"/r/{token}", status_code=303)

    @app.post("/r/{token}/undo")
    def undo(request: Request, token: str, csrf: Csrf, event_id: EventId):
        check_post(request, token, csrf)
        name = reviewer_of(token)
        try:
            item_id = store.undo_last(name, event_id)
        except ReplayConflict as error:
            raise HTTPException(409, str(error)) from None
        return RedirectResponse(f"/r/{token}/item/{item_id}" if item_id is not None else f"/r/{token}", status_code=303)

    def admin_guard(token: str) -> None:
        if not (_TOKEN.fullmatch(token) and same_secret(token, admin_token)):
            raise HTTPException(403, "this link is not valid")

    @app.get("/admin/{token}")
    def admin(token: str):
        admin_guard(token)
        votes = store.votes()
        items = store.items()
        progress = []
        for name in store.reviewers():
            mine = [i for i in items if i.reviewer == name]
            done_count = sum(v.reviewer == name for v in votes)
            progress.append(
                {"name": name, "done": done_count, "total": len(mine), "share": done_count / len(mine) if mine else 0.0}
            )
        report = review_agreement(votes, store.judge_verdicts()) if votes else None
        return page(
            "admin.html",
            token=token,
            progress=progress,
            report=report,
            flags=flag_reviewers(votes),
            mode=store.meta().get("mode", "listen"),
            csrf=csrf_token(secret, token),
            now=time.strftime("%H:%M:%S"),
        )

    @app.post("/admin/{token}/mode")
    def toggle_mode(request: Request, token: str, csrf: Csrf, mode: Annotated[Mode, Form()]):
        admin_guard(token)
        check_post(request, token, csrf)
        store.set_meta("mode", mode)
        return RedirectResponse(f"/admin/{token}", status_code=303)

    @app.get("/admin/{token}/export.{kind}")
    def export(token: str, kind: str):
        admin_guard(token)
        if kind not in ("csv", "jsonl"):
            raise HTTPException(404, "export is .csv or .jsonl")
        body = votes_csv(store) if kind == "csv" else votes_jsonl(store)
        media = "text/csv" if kind == "csv" else "application/jsonl"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="votes.{kind}"'})

    return app


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def serve(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    sock: socket.socket | None = None,
) -> None:
    """Run the app with uvicorn until interrupted, on ``sock`` (bound by :func:`voicetune.web.bind`) or a socket
    bound now."""
    web.run(create_app(db_path), sock or web.bind(host, port), log_level)
