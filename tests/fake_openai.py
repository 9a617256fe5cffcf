"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 for tests: it answers each request with what a
function of the request body returns, and counts the requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_reply(text: str) -> dict:
    """A chat-completions reply saying ``text``."""
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


class FakeChatServer:
    """Serves ``answer(body) -> (status, reply or None)`` at ``url`` (``.../v1``); ``calls`` counts requests and
    ``bodies`` keeps them."""

    def __init__(self, answer: Callable[[dict], tuple[int, dict | None]]):
        self.calls = 0
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.calls += 1
                server.bodies.append(body)
                status, reply = answer(body)
                self.send_response(status)
                if reply is None:
                    self.end_headers()
                    return
                payload = json.dumps(reply).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
