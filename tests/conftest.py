"""Shared fixtures (the third-party sample data beside the repository, the real CLI in a subprocess) and the fast
tier: which tests are marked `slow`."""

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

# voicetune after the environment above: huggingface_hub reads HF_HUB_OFFLINE when it is first imported.
from voicetune import cli as cli_module  # noqa: E402
from voicetune.models.llama_server import LlamaServer, server_available  # noqa: E402
from voicetune.models.loading import resolve_model  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# Terminal settings that change how rich lays out the CLI's output: drop them so every run sees the same
# (non-interactive, 80-column, no colour) console a CI job or a pipe gets.
_CONSOLE_ENV = (
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
)


# The fast tier (`make test-fast`, `pytest -m "not slow"`) leaves out every test marked `slow` here: those that need
# the embedded model (or any transformers model), the llama.cpp server, a browser or a speech engine, and those
# measured at over about a second. Whole modules first, then the fixtures that bring something heavy in, then the
# few tests that need it without a fixture or were measured slow, one by one (a parametrized test by its name).
SLOW_MODULES = {
    "test_llama_server.py",  # the llama.cpp server
    "test_review_browser.py",  # chromium through playwright
    "test_run.py",  # whole runs: training, generation, the report in a browser
    "test_train.py",  # training on the tiny model
    # the property suites: hundreds of hypothesis examples through the importers, the CLI and the two web apps
    "test_properties.py",
    "test_review_properties.py",
    "test_serve_properties.py",
}
SLOW_FIXTURES = {
    "embedded_dir",  # the embedded GGUF converted to a transformers directory
    "tiny_model",  # a transformers model built from it
    "llama_server",  # the llama.cpp server
    "run_cli",  # the CLI in a fresh interpreter: seconds per call before any work
    "synth",  # test_tts: the TTS engines
    "synthesizers",  # test_channel: the TTS engines
    "transcriber",  # test_channel: the ASR model
    "exported",  # test_export: the embedded model through llama.cpp's converter and quantizer
}
SLOW_TESTS = {
    # the embedded model, its tokenizer, or a transformers model
    "test_serve.py::test_the_real_embedded_model_streams_over_http",
    "test_serve.py::test_preparing_the_prompt_cache_changes_nothing_but_the_time",
    "test_serve.py::test_facts_past_the_real_models_context_are_a_4xx",
    "test_verbalize.py::test_prompt_numbers_lets_digits_come_only_from_the_prompt",
    "test_meaning.py::test_the_offline_model_hears_a_contradiction",
    "test_meaning.py::test_a_model_without_an_entailment_label_is_refused",
    "test_meaning.py::test_any_hugging_face_nli_model_plugs_in",
    "test_learned_judge.py::test_train_save_load_and_judge_pairs",
    "test_learned_judge.py::test_the_test_half_is_never_trained_on",
    # a speech engine, or llama.cpp's converter
    "test_channel.py::test_speech_channel_reads_markdown_aloud",
    "test_channel.py::test_cache_reused_and_keyed_by_settings",
    "test_channel.py::test_interrupted_run_keeps_what_it_finished",
    "test_pipecat_integration.py::test_a_real_pipecat_tts_speaks_the_sentences",
    "test_simulate.py::test_the_speech_channel_garbles_markdown_and_the_caller_hears_the_transcript",
    "test_export.py::test_failed_conversion_leaves_nothing",
    # measured at over a second: simulations, load, crash and timing tests, and the learned judge behind the judge,
    # score and eval commands (each call re-reads the packaged labels; the first in a session also loads it)
    "test_simulate.py::test_sensitivity_reruns_each_parameter_at_half_and_one_and_a_half",
    "test_simulate.py::test_the_spoken_references_beat_the_drafts_read_aloud",
    "test_simulate.py::test_identical_systems_differ_by_exactly_zero_and_runs_are_deterministic",
    "test_simulate.py::test_replay_of_real_tau_bench_conversations",
    "test_simulate.py::test_the_llm_caller_decides_the_repeat_requests",
    "test_review_app.py::test_load_20_reviewers_50_votes_each_nothing_lost_or_doubled",
    "test_review_app.py::test_a_killed_server_loses_no_acknowledged_vote",
    "test_review_app.py::test_admin_page_and_exports",
    "test_pipecat_integration.py::test_an_interruption_drops_the_reply",
    "test_threads.py::test_a_spinning_process_is_measured_and_our_own_work_is_not",
    "test_labelled.py::test_benchmark_runs_on_a_users_file",
    "test_learned_judge.py::test_the_packaged_labels_are_large_blind_and_split_by_conversation",
    "test_serve.py::test_best_of_n_returns_the_candidate_the_scorer_rates_highest",
    "test_decode.py::test_eval_summary_has_contradiction_and_fallback_rates",
    "test_scorer.py::test_builtin_references_beat_their_drafts",
    "test_input_contract.py::test_score_record_without_the_field_names_file_and_line_and_is_skippable",
    "test_input_contract.py::test_line_separators_round_trip_and_are_written_escaped",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[judge-parent is a file]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[judge-a directory]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[judge-unwritable]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[score-parent is a file]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[score-a directory]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[score-unwritable]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[eval-parent is a file]",
    "test_input_contract.py::test_unwritable_output_is_one_error_line[eval-unwritable]",
    "test_input_contract.py::test_a_config_that_would_crash_later_is_one_line_now[run-text0-nested too deeply]",
    "test_input_contract.py::test_a_config_that_would_crash_later_is_one_line_now[simulate-text0-nested too deeply]",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m "not slow"`` a module slow as a whole is not even imported (torch, trl, hypothesis: seconds)."""
    if config.getoption("markexpr") == "not slow" and collection_path.name in SLOW_MODULES:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests above ``slow``: ``pytest -m "not slow"`` is the fast tier. A name in SLOW_TESTS is
    ``module::function`` (every parameter) or ``module::function[id]`` (one)."""
    for item in items:
        module = item.path.name
        names = {f"{module}::{item.name}", f"{module}::{getattr(item, 'originalname', item.name)}"}
        if module in SLOW_MODULES or SLOW_FIXTURES.intersection(item.fixturenames) or names & SLOW_TESTS:
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
    if not server_available():
        if os.environ.get("VOICETUNE_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail("llama-cpp-python[server] is not installed: run make install")
        pytest.skip("llama-cpp-python[server] is not installed")
    with LlamaServer(threads=2) as url:
        yield url


@pytest.fixture(scope="session")
def embedded_dir() -> str:
    """The embedded default model converted to a plain directory (once; cached between runs)."""
    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_dir) -> str:
    """A 2-layer Llama with random weights and the embedded model's tokenizer and chat template."""
    import torch  # noqa: PLC0415 (heavy: torch)
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: PLC0415 (heavy: transformers)

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
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
    import uvicorn  # noqa: PLC0415 (heavy: uvicorn)

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
    from voicetune.review.app import create_app  # noqa: PLC0415 (heavy: fastapi)

    return lambda db: _serve_app(create_app(db))
