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

All text goes through Jinja2's autoescaping; the Content-Security-Policy allows scripts from this origin
only, so a response that contains ``<script>`` is shown as text and could not run anyway; the token-bearing
URLs are never sent as a referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from voicetune.records import QUALITIES
from voicetune.review.store import ReviewStore, new_event_id

_HERE = Path(__file__).parent
KEYS_HELP = "1 or ← picks response 1, 2 or → picks response 2, 0 or ↓ is a tie; space plays or pauses; u undoes the last vote."
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def csrf_token(secret: str, token: str) -> str:
    """The CSRF token of one reviewer's (or the admin's) forms: an HMAC of their secret link token."""
    return hmac.new(secret.encode(), f"csrf:{token}".encode(), hashlib.sha256).hexdigest()


def create_app(db_path: str | Path):
    """The FastAPI app serving the review set in ``db_path``."""
    store = ReviewStore(db_path)
    settings = store.meta()
    secret = settings["secret"]
    admin_token = settings["admin_token"]
    templates = Environment(loader=FileSystemLoader(str(_HERE / "templates")), autoescape=select_autoescape(default=True))
    templates.globals.update(pct=_pct, num=_num)
    app = FastAPI(title="voicetune review", docs_url=None, redoc_url=None, openapi_url=None)
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
        name = store.reviewer_for(token)
        if name is None:
            raise HTTPException(403, "this link is not valid")
        return name

    def check_post(request: Request, token: str, csrf: str) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise HTTPException(403, "cross-site form post refused")
        if not hmac.compare_digest(csrf, csrf_token(secret, token)):
            raise HTTPException(403, "the form's CSRF token is not valid; reload the page")

    def own_item(name: str, item_id: int):
        item = store.item(item_id)
        if item is None or item.reviewer != name:
            raise HTTPException(403, "this item is not yours")
        return item

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return page("error.html", status=error.status_code, status_code=error.status_code, message=error.detail)

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
        return page("done.html", token=token, name=name, total=total, csrf=csrf_token(secret, token), undo_id=new_event_id())

    @app.get("/r/{token}/item/{item_id}")
    def show_item(token: str, item_id: int):
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
            "item.html", token=token, name=name, item=item, history=pair["history"][-6:], texts=texts, mode=mode,
            has_audio=pair["audio_a"] is not None, qualities=[(q, q.replace("_", "-")) for q in QUALITIES],
            done=len(voted), total=len(items), position=items.index(item) + 1, already=item.id in voted,
            csrf=csrf_token(secret, token), event_id=new_event_id(), undo_id=new_event_id(), keys_help=KEYS_HELP,
            can_undo=bool(voted),
        )

    @app.get("/r/{token}/audio/{item_id}/{slot}")
    def audio(token: str, item_id: int, slot: int):
        name = reviewer_of(token)
        item = own_item(name, item_id)
        if slot not in (1, 2):
            raise HTTPException(404, "no such response")
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
        item_id: int = Form(...),
        verdict: str = Form(...),
        csrf: str = Form(...),
        event_id: str = Form(..., min_length=8, max_length=64),
        mode: str = Form("listen"),
        comment: str = Form("", max_length=2000),
        plays_1: int = Form(0, ge=0, le=1000),
        plays_2: int = Form(0, ge=0, le=1000),
        seconds: float | None = Form(None, ge=0, le=86400),
        non_repetition: str = Form(""),
        conciseness: str = Form(""),
        clarity: str = Form(""),
        humanness: str = Form(""),
        faithfulness: str = Form(""),
    ):
        check_post(request, token, csrf)
        name = reviewer_of(token)
        own_item(name, item_id)
        shown = {"0": "tie", "tie": "tie", "1": "1", "2": "2"}.get(verdict)
        criteria_in = dict(zip(QUALITIES, (non_repetition, conciseness, clarity, humanness, faithfulness)))
        criteria = {q: {"0": "tie"}.get(v, v) for q, v in criteria_in.items() if v}
        if shown is None or any(v not in ("1", "2", "tie") for v in criteria.values()) or mode not in ("listen", "read"):
            raise HTTPException(422, "a verdict is 1, 2 or 0 (tie), and the mode listen or read")
        store.record_vote(
            reviewer=name, item_id=item_id, shown=shown, mode=mode, event_id=event_id, criteria=criteria,
            comment=comment.strip(), plays={"1": plays_1, "2": plays_2}, seconds_on_item=seconds,
        )
        return RedirectResponse(f"/r/{token}", status_code=303)

    @app.post("/r/{token}/undo")
    def undo(request: Request, token: str, csrf: str = Form(...), event_id: str = Form(..., min_length=8, max_length=64)):
        check_post(request, token, csrf)
        name = reviewer_of(token)
        item_id = store.undo_last(name, event_id)
        return RedirectResponse(f"/r/{token}/item/{item_id}" if item_id is not None else f"/r/{token}", status_code=303)

    def admin_guard(token: str) -> None:
        if not hmac.compare_digest(token, admin_token):
            raise HTTPException(403, "this link is not valid")

    @app.get("/admin/{token}")
    def admin(token: str):
        admin_guard(token)
        from voicetune.review.agreement import flag_reviewers, review_agreement

        votes = store.votes()
        items = store.items()
        progress = []
        for name in store.reviewers():
            mine = [i for i in items if i.reviewer == name]
            done_count = sum(v.reviewer == name for v in votes)
            progress.append({"name": name, "done": done_count, "total": len(mine), "share": done_count / len(mine) if mine else 0.0})
        report = review_agreement(votes, store.judge_verdicts()) if votes else None
        return page("admin.html", token=token, progress=progress, report=report, flags=flag_reviewers(votes),
                    mode=store.meta().get("mode", "listen"), csrf=csrf_token(secret, token), now=time.strftime("%H:%M:%S"))

    @app.post("/admin/{token}/mode")
    def toggle_mode(request: Request, token: str, csrf: str = Form(...), mode: str = Form(...)):
        admin_guard(token)
        check_post(request, token, csrf)
        if mode not in ("listen", "read"):
            raise HTTPException(422, "mode is listen or read")
        store.set_meta("mode", mode)
        return RedirectResponse(f"/admin/{token}", status_code=303)

    @app.get("/admin/{token}/export.{kind}")
    def export(token: str, kind: str):
        admin_guard(token)
        from voicetune.review.export import votes_csv, votes_jsonl

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


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(db_path), host=host, port=port, log_level=log_level)
