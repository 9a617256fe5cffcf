"""Generation backends: transformers (batched, on this machine) and any OpenAI-compatible HTTP server.

Both fill ``response`` on turn records. :func:`generate_file` makes a run resumable: finished rows are
appended to ``OUT.partial`` as they complete, and a re-run skips the ids already there.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voicetune.errors import VoicetuneError
from voicetune.models.loading import is_adapter_stack, load_model, load_tokenizer, merged_folder, resolve_model
from voicetune.models.prompts import build_messages
from voicetune.progress import bar
from voicetune.provenance import digest
from voicetune.records import (
    Turn,
    atomic_write_text,
    dumps,
    ensure_dir,
    jsonl_lines,
    load_records,
    printable,
    refuse_overwriting_input,
)
from voicetune.threads import choose_threads


@dataclass
class SamplingConfig:
    """How a model is sampled: the one definition (its defaults are the evaluation's, and the training's
    candidate sampling, the speak server's and every command's unless a config says otherwise). Sampling is on
    by default: greedy decoding of the small default model degenerates on some prompts."""

    max_new_tokens: int = 96
    temperature: float = 0.7
    top_p: float = 0.9
    do_sample: bool = True
    seed: int = 0
    #: Digits only from the prompt (:class:`voicetune.models.constrain.PromptNumbers`; transformers backend).
    numbers_from_prompt: bool = False

    def __post_init__(self) -> None:
        # torch and numpy take 0..2**32-1; llama.cpp reads -1 (and 2**32-1) as "random": refuse rather than wrap.
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise VoicetuneError(f"seed {self.seed!r}: must be a whole number from 0 to {MAX_SEED}")

    @classmethod
    def at(cls, temperature: float, **settings: Any) -> SamplingConfig:
        """Sampling at ``temperature``, greedy at 0: the one reading of a command's or config's temperature."""
        return cls(temperature=max(temperature, 1e-5), do_sample=temperature > 0, **settings)


# : The largest sampling seed (torch's and numpy's range; the seeds of a batch count up from it, see
# :func:`request_seed`).
MAX_SEED = 2**32 - 1


#: The defaults, for config fields and command options that take them.
DEFAULT_SAMPLING = SamplingConfig()


def request_seed(seed: int, index: int = 0) -> int:
    """The seed of the ``index``-th request of a batch seeded with ``seed``, for a llama.cpp or OpenAI-compatible
    server: below 2**32 - 1, which llama.cpp reads as "random" (so a batch near the top wraps to 0, reproducibly)."""
    return (seed + index) % 0xFFFFFFFF


def _unconstrained(sampling: SamplingConfig, backend: str) -> None:
    """Backends without the number constraint refuse it rather than ignore it."""
    if sampling.numbers_from_prompt:
        raise VoicetuneError(
            f"+numbers (digits only from the prompt) needs a transformers model; the {backend} backend cannot "
            "constrain decoding"
        )


class TransformersBackend:
    """Batched generation with transformers: left-padded batches of prompts of similar length."""

    def __init__(self, model_spec: str, batch_size: int = 16, dtype: str = "auto"):
        self.model = load_model(model_spec, dtype)
        self.tokenizer = load_tokenizer(model_spec)
        self.batch_size = batch_size

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        prompts: Sequence[list[dict[str, str]]],
        sampling: SamplingConfig,
        on_batch: Callable[[list[int], list[str]], None] | None = None,
    ) -> list[str]:
        """Responses for ``prompts`` (chat messages), in order. Prompts are sorted by length so a batch
        wastes little on padding; ``on_batch(indexes, texts)`` is called as each batch finishes."""
        import torch  # noqa: PLC0415 (heavy: torch)

        texts = [self.prompt_text(m) for m in prompts]
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        results: list[str] = [""] * len(texts)
        generator_device = self.model.device
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = self.tokenizer(
                [texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(generator_device)
            torch.manual_seed(sampling.seed + start)
            with torch.inference_mode():
                output = self.model.generate(
                    **encoded, **self._sampling_args(sampling, [texts[i] for i in batch], encoded["input_ids"].shape[1])
                )
            decoded = self.tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
            for index, text in zip(batch, decoded, strict=True):
                results[index] = text.strip()
            if on_batch:
                on_batch(batch, [results[i] for i in batch])
        return results

    def _sampling_args(self, sampling: SamplingConfig, prompts: Sequence[str] = (), prompt_length: int = 0) -> dict:
        """``model.generate``'s sampling arguments (the one place they are set, batched or streamed); with
        ``numbers_from_prompt``, the logits processor that keeps each row's digits to its prompt's."""
        args = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sampling.do_sample,
            "temperature": sampling.temperature if sampling.do_sample else None,
            "top_p": sampling.top_p if sampling.do_sample else None,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sampling.numbers_from_prompt:
            from transformers import LogitsProcessorList  # noqa: PLC0415 (heavy: transformers)

            from voicetune.models.constrain import PromptNumbers  # noqa: PLC0415 (heavy: torch, transformers)

            args["logits_processor"] = LogitsProcessorList([PromptNumbers(self.tokenizer, prompts, prompt_length)])
        return args

    def stream(self, messages: list[dict[str, str]], sampling: SamplingConfig) -> Iterator[str]:
        """One response, piece by piece as the model writes it (a thread generates, this yields)."""
        import torch  # noqa: PLC0415 (heavy: torch)
        from transformers import TextIteratorStreamer  # noqa: PLC0415 (heavy: transformers)

        prompt = self.prompt_text(messages)
        encoded = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            torch.manual_seed(sampling.seed)
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **encoded,
                        streamer=streamer,
                        **self._sampling_args(sampling, [prompt], encoded["input_ids"].shape[1]),
                    )
            except BaseException as error:  # surfaced to the reader below, never lost in the thread
                failure.append(error)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if failure:
            raise failure[0]


class LlamaCppBackend:
    """A GGUF model in-process with llama.cpp (``llama-cpp-python``): the chat template stored in the file,
    streaming, and the free cores as threads. One generation at a time (callers serialise)."""

    def __init__(self, gguf: str | Path, n_ctx: int = 2048, threads: int | None = None):
        try:
            from llama_cpp import Llama  # noqa: PLC0415 (heavy: llama_cpp)
        except ImportError:
            raise VoicetuneError(
                "the llama.cpp backend needs llama-cpp-python: pip install 'voicetune[server]' (make install-test "
                "builds it)"
            ) from None

        path = Path(gguf)
        if not path.is_file():
            raise VoicetuneError(f"{gguf}: no such GGUF file")
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=choose_threads(threads), verbose=False)

    def _formatter(self):
        """The chat formatter llama-cpp-python builds from the file's own template (the same prompt text)."""
        if getattr(self, "_chat_formatter", None) is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # noqa: PLC0415 (heavy: llama_cpp)

            model, eos, bos = self.llm._model, self.llm.token_eos(), self.llm.token_bos()
            self._chat_formatter = Jinja2ChatFormatter(
                template=self.llm.metadata["tokenizer.chat_template"],
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        return self._chat_formatter

    def prefill(self, messages: list[dict[str, str]], marker: str, text: str = "") -> int:
        """Evaluate the prompt of ``messages`` up to ``marker`` (then ``text``) into the KV cache now, so that a
        request whose prompt begins the same way only evaluates the rest (llama.cpp reuses the longest common
        prefix). A voice pipeline calls this while its LLM is still writing the draft. Returns the tokens
        evaluated."""
        if "tokenizer.chat_template" not in self.llm.metadata:
            return 0
        formatted = self._formatter()(messages=messages)
        cut = formatted.prompt.find(marker)
        if cut < 0:
            return 0
        tokens = self.llm.tokenize(
            (formatted.prompt[:cut] + text).encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        tokens = tokens[:-1]  # the last token may merge with what follows: leave it to the request
        common = self.llm.longest_token_prefix(self.llm._input_ids, tokens)  # type: ignore[arg-type]  # an ndarray of token ids
        if common >= len(tokens):
            return 0
        self.llm.n_tokens = common  # eval() drops the cache past n_tokens, then appends
        self.llm.eval(tokens[common:])
        return len(tokens) - common

    def _request(self, messages: list[dict[str, str]], sampling: SamplingConfig, seed: int, stream: bool):
        return self.llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]  # role/content dicts, as llama.cpp's TypedDicts are
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature if sampling.do_sample else 0.0,
            top_p=sampling.top_p,
            seed=request_seed(seed),
            stream=stream,
        )

    def stream(self, messages: list[dict[str, str]], sampling: SamplingConfig) -> Iterator[str]:
        _unconstrained(sampling, "llama.cpp")
        for chunk in self._request(messages, sampling, sampling.seed, stream=True):
            piece = chunk["choices"][0].get("delta", {}).get("content")
            if piece:
                yield piece

    def generate(
        self,
        prompts: Sequence[list[dict[str, str]]],
        sampling: SamplingConfig,
        on_batch: Callable[[list[int], list[str]], None] | None = None,
    ) -> list[str]:
        _unconstrained(sampling, "llama.cpp")
        results = []
        for index, messages in enumerate(prompts):
            reply = self._request(messages, sampling, sampling.seed + index, stream=False)
            results.append((reply["choices"][0]["message"].get("content") or "").strip())
            if on_batch:
                on_batch([index], [results[-1]])
        return results


class HTTPBackend:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, llama.cpp server, hosted models), with
    concurrent requests, retries with exponential backoff and a timeout: each try has ``timeout`` seconds from
    sending the request to the last byte of the reply, however slowly the server sends it (connecting and each
    read of the reply's headers are bounded by ``timeout`` too).
    The API key comes from the ``OPENAI_API_KEY`` environment variable (or ``api_key_env``).

    Raises:
        VoicetuneError: at construction, an endpoint that is not an ``http(s)://host`` URL, a timeout that is
            not a positive number of seconds, or a concurrency below 1.
    """

    def __init__(
        self,
        endpoint: str,
        model: str,
        concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 4,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        try:
            parts = urllib.parse.urlsplit(endpoint.strip())
            valid = (
                parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
            )
        except ValueError:  # a port that is not a number, a malformed IPv6 address
            valid = False
        if not valid:
            raise VoicetuneError(
                f"{printable(endpoint)!r}: not an endpoint URL; expected http://HOST[:PORT][/v1] or https://..."
            )
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise VoicetuneError(f"{endpoint}: the timeout must be a positive number of seconds, got {timeout!r}")
        if concurrency < 1:
            raise VoicetuneError(f"{endpoint}: the concurrency must be at least 1, got {concurrency!r}")
        endpoint = endpoint.strip()
        self.url = endpoint.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/chat/completions" if self.url.endswith("/v1") else "/v1/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.api_key = os.environ.get(api_key_env, "")

    def complete(self, messages: list[dict[str, str]], sampling: SamplingConfig, seed: int) -> str:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature if sampling.do_sample else 0.0,
            "top_p": sampling.top_p,
            "seed": request_seed(seed),
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=dumps(body).encode(), headers=headers, method="POST")
        delay = 1.0
        for attempt in range(self.retries + 1):
            try:
                data = json.loads(self._post(request))
                return self._content(data)
            except urllib.error.HTTPError as error:
                if error.code in (401, 403):
                    raise VoicetuneError(f"{self.url}: the endpoint rejected the API key (HTTP {error.code})") from None
                if error.code < 500 and error.code != 429 or attempt == self.retries:
                    raise VoicetuneError(f"{self.url}: HTTP {error.code} {error.reason}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt == self.retries:
                    reason = getattr(error, "reason", error)
                    raise VoicetuneError(f"{self.url}: unreachable or too slow ({reason})") from None
            except ValueError as error:
                raise VoicetuneError(
                    f"{self.url}: not an OpenAI-compatible chat completion reply (not JSON: {error})"
                ) from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _post(self, request: urllib.request.Request) -> bytes:
        """The reply body, read against one deadline for the whole request: each socket read may take only
        the time left, so a server that trickles bytes cannot hold a request past ``timeout``."""
        deadline = time.monotonic() + self.timeout
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            sock = getattr(getattr(getattr(reply, "fp", None), "raw", None), "_sock", None)
            chunks: list[bytes] = []
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no complete reply within {self.timeout:g} s")
                if sock is not None:
                    sock.settimeout(left)
                try:
                    chunk = reply.read1(65536)
                except TimeoutError:  # the read used up the time left
                    raise TimeoutError(f"no complete reply within {self.timeout:g} s") from None
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def _content(self, data) -> str:
        """The text of a chat completion reply; anything else is one error naming the URL."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            if not isinstance(data, dict):
                found = f"a JSON {type(data).__name__}"
            elif "choices" not in data:
                found = "no 'choices'"
            elif isinstance(choices, list) and choices:
                found = f"'choices' is a list of {type(choices[0]).__name__}"
            else:
                found = f"'choices' is {json.dumps(choices)[:40]}"
            raise VoicetuneError(
                f"{self.url}: not an OpenAI-compatible chat completion reply ({found}, expected a list of choices)"
            )
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise VoicetuneError(
                f"{self.url}: not an OpenAI-compatible chat completion reply (choices[0].message is "
                f"{type(message).__name__})"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise VoicetuneError(
                f"{self.url}: not an OpenAI-compatible chat completion reply (choices[0].message.content is "
                f"{type(content).__name__}, expected a string)"
            )
        content = (content or "").strip()
        try:
            content.encode("utf-8")
        except UnicodeEncodeError:
            raise VoicetuneError(
                f"{self.url}: the reply's text is not valid Unicode (a lone surrogate escape such as \\ud800)"
            ) from None
        return content

    def generate(
        self,
        prompts: Sequence[list[dict[str, str]]],
        sampling: SamplingConfig,
        on_batch: Callable[[list[int], list[str]], None] | None = None,
    ) -> list[str]:
        _unconstrained(sampling, "HTTP")
        results: list[str] = [""] * len(prompts)
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(self.complete, p, sampling, sampling.seed + i): i for i, p in enumerate(prompts)}
            try:
                for future, index in futures.items():
                    results[index] = future.result()
                    if on_batch:
                        on_batch([index], [results[index]])
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # a dead endpoint: stop now, not after every retry
                raise
        return results


class VLLMBackend:
    """vLLM in-process, for large sampling jobs on a GPU (used automatically when vllm is installed and a GPU
    is present). Not exercised by the CPU test suite: this machine has neither."""

    def __init__(self, model_spec: str):
        import torch  # noqa: PLC0415 (heavy: torch)
        from vllm import LLM  # noqa: PLC0415 (heavy: vllm)

        # vLLM reserves a share of the GPU's memory up front; in one process with training (voicetune run) the
        # trainer's cached blocks must be released first, and the share leaves room for the next trainer.
        torch.cuda.empty_cache()
        share = float(os.environ.get("VOICETUNE_VLLM_GPU_MEMORY", "0.5"))
        resolved = resolve_model(model_spec)  # an adapter stack: its merged model, written once into the cache
        self.llm = LLM(
            model=str(merged_folder(resolved)) if is_adapter_stack(resolved) else resolved, gpu_memory_utilization=share
        )

    def generate(self, prompts, sampling: SamplingConfig, on_batch=None) -> list[str]:
        from vllm import SamplingParams  # noqa: PLC0415 (heavy: vllm)

        _unconstrained(sampling, "vLLM")
        params = SamplingParams(
            max_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature if sampling.do_sample else 0.0,
            top_p=sampling.top_p,
            seed=request_seed(sampling.seed),
        )
        outputs = self.llm.chat(list(prompts), params, use_tqdm=False)
        texts = [o.outputs[0].text.strip() for o in outputs]
        if on_batch:
            on_batch(list(range(len(texts))), texts)
        return texts


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch  # noqa: PLC0415 (heavy: torch)

    return torch.cuda.is_available()


def make_backend(
    model: str | None = None, endpoint: str | None = None, api_model: str | None = None, batch_size: int = 16
):
    """The backend a user asked for: ``--endpoint URL --api-model NAME`` for HTTP, vLLM on a GPU when it is
    installed, else transformers."""
    if endpoint:
        if not api_model:
            raise VoicetuneError("--endpoint needs --api-model NAME (the model name the server expects)")
        return HTTPBackend(endpoint, api_model)
    if _vllm_usable():
        return VLLMBackend(model or "smollm2-135m")
    return TransformersBackend(model or "smollm2-135m", batch_size=batch_size)


def generate_file(
    backend,
    input_path: str | Path,
    output_path: str | Path,
    style_prompt: str | None = None,
    sampling: SamplingConfig | None = None,
    progress: bool = True,
) -> list[Turn]:
    """Fill ``response`` for every turn of ``input_path`` and write ``output_path``; resumable.

    Rows are appended to ``OUTPUT.partial`` as batches finish; a re-run keeps those (and the rows of a
    finished ``output_path``) and generates only the rest; the final file is written atomically.
    """
    sampling = sampling or SamplingConfig()
    output_path = Path(output_path)
    refuse_overwriting_input(output_path, input_path)
    turns = load_records(input_path, unique_ids=True)  # a repeated id would pair one turn with another's response
    return generate_turns(backend, turns, output_path, style_prompt, sampling, progress)


def _prompt_key(turn: Turn | dict, style_prompt: str | None) -> str | None:
    """A hash of the chat messages a turn is answered from (None for a row that is not a turn)."""
    if isinstance(turn, dict):
        try:
            turn = Turn.model_validate({k: v for k, v in turn.items() if k != "response"})
        except ValidationError:
            return None
    return digest(build_messages(turn, style_prompt))


def generate_turns(
    backend,
    turns: Sequence[Turn],
    output_path: Path,
    style_prompt: str | None,
    sampling: SamplingConfig,
    progress: bool = True,
) -> list[Turn]:
    if str(output_path) in ("", ".") or output_path.is_dir():
        raise VoicetuneError(f"{output_path}: is a directory, expected a file to write")
    partial = output_path.with_name(output_path.name + ".partial")
    # A row is reused only when it was made from the same prompt: a turn whose history, draft or facts
    # changed under the same id is generated again.
    wanted = {t.id: _prompt_key(t, style_prompt) for t in turns}
    done: dict[str, str] = {}
    if output_path.exists() and not partial.exists():  # a finished earlier run: reuse the rows it has
        for _, line in jsonl_lines(output_path.read_text(encoding="utf-8")):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(row, dict)
                and row.get("id") in wanted
                and row.get("response") is not None
                and _prompt_key(row, style_prompt) == wanted[row["id"]]
            ):
                done[row["id"]] = row["response"]
    if partial.exists():
        for _, line in jsonl_lines(partial.read_text(encoding="utf-8")):
            try:
                row = json.loads(line)
                if row.get("prompt") == wanted.get(row["id"]):  # made from this turn's prompt, not an older one
                    done[row["id"]] = row["response"]
            except (ValueError, KeyError, AttributeError, TypeError):
                continue  # a line cut short by a kill: generate it again
    todo = [t for t in turns if t.id not in done]
    if todo:
        ensure_dir(partial.parent, for_file=output_path)
        try:
            sink_file = partial.open("a", encoding="utf-8")
        except OSError as error:
            raise VoicetuneError(f"{partial}: cannot write ({error.strerror or error})") from None
        with sink_file as sink, bar(len(todo), "generating", progress) as advance:

            def save(indexes: list[int], texts: list[str]) -> None:
                for index, text in zip(indexes, texts, strict=True):
                    sink.write(dumps({"id": todo[index].id, "prompt": wanted[todo[index].id], "response": text}) + "\n")
                    done[todo[index].id] = text
                sink.flush()
                advance(len(indexes))

            backend.generate([build_messages(t, style_prompt) for t in todo], sampling, on_batch=save)
    result = [t.model_copy(update={"response": done[t.id]}) for t in turns]
    atomic_write_text(output_path, "".join(dumps(t.model_dump(exclude_none=True)) + "\n" for t in result))
    partial.unlink(missing_ok=True)
    return result
