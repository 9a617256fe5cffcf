"""What the two HTTP servers (the speak server, ``voicetune serve``, and the review app, ``voicetune review serve``)
share: a socket bound before anything says "serving", the loopback test behind their warnings, a bounded request
body, and uvicorn serving a bound socket."""

from __future__ import annotations

import errno
import ipaddress
import socket

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voicetune.errors import VoicetuneError


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, ``localhost``)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` as uvicorn binds one, made before a model loads or a link is printed: a port
    in use, a host that is not this machine's or a privileged port is one line (:class:`VoicetuneError`), where
    uvicorn logged it and exited 3 after "serving ..."; uvicorn then serves this very socket, so none can take it
    between."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        raise VoicetuneError(
            f"--host {host}: not an address to listen on ({getattr(error, 'strerror', None) or error})"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # as uvicorn does: a port in TIME_WAIT is free, a live one is not
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        hint = {
            errno.EADDRINUSE: f"--port {port}: {host}:{port} is already in use (another server? choose another --port)",
            errno.EADDRNOTAVAIL: f"--host {host}: not an address of this machine",
            errno.EACCES: f"--port {port}: binding it needs privileges (ports under 1024 do; choose another --port)",
        }
        raise VoicetuneError(
            hint.get(error.errno or 0, f"--host {host} --port {port}: cannot listen ({error.strerror or error})")
        ) from None
    return sock


def run(app: ASGIApp, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn on the bound ``sock`` until interrupted, then close it."""
    import uvicorn  # noqa: PLC0415 (heavy: uvicorn, imported only by the commands that serve)

    with sock:
        uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with a 413 ``HTTPException`` (by its
    declared ``Content-Length`` on the first read, or as soon as a chunked body grows past it), raised where the
    route reads its body so that the app's own error handler answers it in the app's error shape. Nothing is ever
    parsed out of an unbounded body. (FastAPI's ``max_body_size`` answers in plain text, outside either shape.)"""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        too_large = f"the request body is over {self.limit // 1024} KiB ({self.limit} bytes)"
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared.isdigit() and (len(declared) > 15 or int(declared) > self.limit):
                raise HTTPException(413, too_large)
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited, send)
