"""A local OpenAI-compatible server for a GGUF model (llama.cpp through ``llama-cpp-python[server]``).

It gives the embedded default model a real endpoint on 127.0.0.1: the LLM judge, the ``endpoint:`` system
and the HTTP generation backend are tested against it, and the backend benchmark compares it with the
transformers backend. ``pip install 'voicetune[server]'`` (``make install`` builds it once into the venv).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.models.loading import embedded_gguf
from voicetune.threads import choose_threads


def server_available() -> bool:
    """Whether ``llama-cpp-python[server]`` is installed."""
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """``with LlamaServer(gguf) as url:`` serves the model at ``url`` (``http://127.0.0.1:PORT/v1``) under the
    name ``alias`` until the block ends. The server's log goes to a temporary file, quoted if it fails."""

    def __init__(
        self,
        gguf: str | Path | None = None,
        alias: str = "smollm2-135m",
        n_ctx: int = 4096,
        threads: int | None = None,
        startup_timeout: float = 180.0,
    ):
        if gguf is None:
            gguf = embedded_gguf()
        self.gguf, self.alias, self.n_ctx, self.threads, self.startup_timeout = (
            Path(gguf),
            alias,
            n_ctx,
            threads,
            startup_timeout,
        )
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> str:
        if not server_available():
            raise VoicetuneError("the llama.cpp server needs llama-cpp-python[server]: pip install 'voicetune[server]'")
        port = _free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="llama-server-", suffix=".log", delete=False)
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.gguf),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
        ]
        command += ["--n_threads", str(choose_threads(self.threads))]  # the free cores: busy ones slow every thread
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as reply:
                    if json.loads(reply.read()).get("data"):
                        return self.url
            except (OSError, ValueError):
                time.sleep(0.5)
        self.__exit__()
        self.log.seek(0)
        tail = " ".join(self.log.read().split())[-300:]
        raise VoicetuneError(f"the llama.cpp server for {self.gguf} did not start: {tail}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
