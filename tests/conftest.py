"""Shared fixtures: the third-party sample data beside the repository, and the real CLI in a subprocess."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model or dataset is ever fetched from a hub
# The NLI check costs about 0.05 s per sentence pair: scoring every built-in turn with it would take the suite past
# its budget. Tests of the NLI path ask for it explicitly (a config with meaning.model 'aegis'; tests/test_meaning.py).
os.environ["VOICETUNE_NLI_MODEL"] = "none"

# The automatic thread count depends on what else the machine is doing (voicetune.threads), and says so on
# stderr when it holds back; tests of the CLI's exact output must not depend on the load: every core, always.
# tests/test_threads.py sets and clears the variable itself.
os.environ.setdefault("VOICETUNE_THREADS", str(os.cpu_count() or 1))

REPO_ROOT = Path(__file__).resolve().parents[1]

# Terminal settings that change how rich lays out the CLI's output: drop them so every run sees the same
# (non-interactive, 80-column, no colour) console a CI job or a pipe gets.
_CONSOLE_ENV = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


# The fast tier (`make test-fast`, `pytest -m "not slow"`) leaves out every test marked `slow` here: those that need
# the embedded model, the llama.cpp server, a browser or a speech engine, and those measured at over a second.
# Whole modules first, then the fixtures that load something heavy, then the few measured one by one.
SLOW_MODULES = {
    "test_llama_server.py",  # the llama.cpp server
    "test_review_browser.py",  # chromium through playwright
    "test_run.py",  # whole runs: training, generation, the report in a browser
    "test_train.py",  # training on the tiny model
}
SLOW_FIXTURES = {
    "embedded_dir",  # the embedded GGUF converted to a transformers directory
    "tiny_model",  # a transformers model built from it
    "llama_server",  # the llama.cpp server
}
SLOW_TESTS: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests (above) ``slow``; ``-m "not slow"`` runs the rest."""
    for item in items:
        if (
            item.path.name in SLOW_MODULES
            or SLOW_FIXTURES.intersection(item.fixturenames)
            or item.nodeid.split("[")[0] in SLOW_TESTS
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` relative to the repository root; the test is skipped when it is absent."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is absent")
    return path


@pytest.fixture
def run_cli():
    """Run ``python -m voicetune.cli ARGS...`` and return the CompletedProcess (text, captured)."""

    def run(*args, cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if key not in _CONSOLE_ENV}
        env["HF_HUB_OFFLINE"] = "1"
        env["NO_COLOR"] = "1"
        return subprocess.run(
            [sys.executable, "-m", "voicetune.cli", *(str(a) for a in args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def llama_server():
    """The embedded GGUF served by a real llama.cpp server on 127.0.0.1 (``llama-cpp-python[server]``, built
    by ``make install``); yields its ``/v1`` URL. Skipped where it is not installed, except under ``make test``
    (``VOICETUNE_REQUIRE_LLAMA_SERVER=1``), which must exercise it."""
    from voicetune.models.llama_server import LlamaServer, server_available

    if not server_available():
        if os.environ.get("VOICETUNE_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail("llama-cpp-python[server] is not installed: run make install")
        pytest.skip("llama-cpp-python[server] is not installed")
    with LlamaServer(threads=2) as url:
        yield url


@pytest.fixture(scope="session")
def embedded_dir() -> str:
    """The embedded default model converted to a plain directory (once; cached between runs)."""
    from voicetune.models.loading import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_dir) -> str:
    """A 2-layer Llama with random weights and the embedded model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run ``voicetune ARGS`` in-process through ``cli.main`` in ``tmp_path``: (exit code, stdout, stderr).
    An exception other than SystemExit (a traceback) fails the test by itself."""
    from voicetune import cli as cli_module

    monkeypatch.chdir(tmp_path)

    def run(*args):
        capsys.readouterr()
        try:
            cli_module.main([str(a) for a in args])
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@contextlib.contextmanager
def _serve_app(app):
    """Serve an ASGI app with uvicorn on a free port of 127.0.0.1 in a thread; yields the base URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def app_server():
    """``with app_server(app) as url:`` serves any ASGI app (uvicorn, a free port, a thread) for the block."""
    return _serve_app


@pytest.fixture
def review_server():
    """``with review_server(db) as url:`` serves a review database's app (see :func:`app_server`)."""
    from voicetune.review.app import create_app

    return lambda db: _serve_app(create_app(db))
