"""The tuned voice as a component: the conversation so far and the agent's written draft in, what to say
aloud out, sentence by sentence.

:class:`Voice` is what ``voicetune serve`` serves and what the Pipecat processor calls in-process. It wraps a
generation backend (transformers, llama.cpp, vLLM or an OpenAI-compatible endpoint) with the prompt every
other stage uses (:func:`voicetune.models.prompts.build_messages`) and, optionally, the decoders of
:mod:`voicetune.judge.decode`: best-of-N (the candidate the scorer rates highest) and the guard (the
draft said faithfully, ``draft+voicetune``, when the judge calls no candidate usable).

Streaming yields sentence-sized chunks (:func:`sentence_chunks`) so that a TTS can start on the first one.
Plain decoding streams as the model writes; best-of-N and the guard must see whole candidates first, so they
stream the chosen response after it is chosen.
"""

from __future__ import annotations

import importlib.util
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voicetune.errors import VoicetuneError
from voicetune.judge.decode import pick
from voicetune.models.generate import (
    DEFAULT_SAMPLING,
    HTTPBackend,
    LlamaCppBackend,
    SamplingConfig,
    TransformersBackend,
    VLLMBackend,
)
from voicetune.models.loading import EMBEDDED, embedded_gguf
from voicetune.models.prompts import DRAFT_CHARS, _clip, build_messages, compact_draft, load_style_prompt
from voicetune.quality import score_response
from voicetune.quality.text import sentence_spans
from voicetune.records import Message, Turn
from voicetune.threads import apply_threads

BACKENDS = ("auto", "transformers", "llama.cpp", "vllm")


@dataclass
class Spoken:
    """What the voice says for one turn, and how it was chosen.

    ``fallback``: the guard refused every candidate and this is the draft said faithfully; ``refused``: why each
    refused candidate was refused (candidate index -> finding kinds); ``scores``: the scorer's qualities of
    the response, when asked for or when the decoders scored it; ``seconds``: generation and choice.
    """

    text: str
    fallback: bool = False
    candidates: int = 1
    refused: dict[int, list[str]] = field(default_factory=dict)
    scores: dict[str, float] | None = None
    seconds: float = 0.0

    def meta(self) -> dict:
        """The response's metadata as a server returns it."""
        return {
            "fallback": self.fallback,
            "candidates": self.candidates,
            "refused": {str(k): v for k, v in self.refused.items()},
            "seconds": round(self.seconds, 3),
        }


#: Where the first chunk may end before its sentence does: a comma, semicolon, colon or dash, then a space.
CLAUSE_END = re.compile(r"(?<=[,;:\u2014])\s+|\s+(?=\u2013\s)")


def sentence_chunks(pieces: Iterable[str], first_clause_words: int | None = 4) -> Iterator[str]:
    """Sentence-sized chunks of streamed text: each sentence as soon as the next one begins (the same sentence
    boundaries the scorer uses), and the rest at the end.

    The first chunk may end earlier, at a clause break (a comma, semicolon, colon or dash) after at least
    ``first_clause_words`` words: a TTS can start speaking "Sure, your flight leaves at eight," while the
    model still writes the rest of the sentence, which takes the sentence's decoding off the first chunk's
    latency. ``None`` keeps whole sentences only."""
    buffer, first = "", first_clause_words is not None
    for piece in pieces:
        buffer += piece
        if first:
            least = first_clause_words or 0
            clause = next((m for m in CLAUSE_END.finditer(buffer) if len(buffer[: m.start()].split()) >= least), None)
            spans = sentence_spans(buffer)
            if clause is not None and (len(spans) < 2 or clause.start() < spans[0][1]):
                yield buffer[: clause.start()].strip()
                buffer, first = buffer[clause.end() :], False
        spans = sentence_spans(buffer)
        if len(spans) > 1:
            for start, end in spans[:-1]:
                yield buffer[start:end].strip()
                first = False
            buffer = buffer[spans[-1][0] :]
    if buffer.strip():
        yield buffer.strip()


#: Why a blank draft is refused (:func:`blank`; the server says the same).
BLANK_DRAFT = "the draft is blank (only spaces, control or invisible characters): there is nothing to say"


def blank(text: str | None) -> bool:
    """Whether a draft has nothing to say: no letter, digit, punctuation mark or symbol, only spaces, control
    characters (NUL) and invisible ones (zero-width spaces and joiners, byte-order marks, lone combining marks).
    Given one, a model invents a reply, and the guard passes it (no fact to drop)."""
    return not any(unicodedata.category(c)[0] in "LNPS" for c in text or "")


class PromptTooLong(VoicetuneError):
    """The request's prompt does not fit the model's context: the client's to fix (fewer or shorter facts, a draft
    of fewer tokens), so the server answers it with a 4xx, not a 500."""


#: What backends say when a prompt does not fit their context: llama.cpp "Requested tokens (N) exceed context window
#: of M" (generation) and "llama_decode returned 1" (no room in its cache: a prefill), vLLM "longer than the maximum
#: model length".
_TOO_LONG = re.compile(r"exceed context window|llama_decode returned 1|maximum model length|maximum context length")


def _fitting(error: BaseException) -> BaseException:
    """``error``, or a :class:`PromptTooLong` when it says that the prompt does not fit the model's context."""
    if isinstance(error, (ValueError, RuntimeError)) and _TOO_LONG.search(str(error)):
        return PromptTooLong(
            f"the request does not fit the model's context ({error}): send fewer or shorter facts or a shorter draft"
        )
    return error


def _refuse_too_long(error: BaseException) -> None:
    if (refusal := _fitting(error)) is not error:
        raise refusal from None


def _speakable(turn: Turn) -> None:
    if blank(turn.draft):
        raise VoicetuneError(BLANK_DRAFT)


def make_turn(
    history: Sequence[Message | dict], draft: str, facts: Sequence[str] | None = None, domain: str = "general"
) -> Turn:
    """The turn record of a request (the same record every stage reads)."""
    return Turn(
        id="request",
        domain=domain,
        history=[m if isinstance(m, Message) else Message.model_validate(m) for m in history],
        draft=draft,
        facts=list(facts) if facts is not None else None,
    )


class Voice:
    """A backend, a prompt and a decoder: ``speak(turn)`` gives the whole response, ``stream(turn)`` its
    sentences as they come. Calls are serialised (one generation at a time), so one Voice serves many threads.
    A blank draft (:func:`blank`) is refused, and a prompt longer than the model's context is a
    :class:`PromptTooLong`: both are :class:`~voicetune.errors.VoicetuneError`, the caller's to fix.

    Args:
        backend: anything with ``generate(prompts, sampling)`` (and, to stream as it writes, ``stream(messages,
        sampling)``).
        name: the model's name in replies.
        style_prompt: a system prompt (None: the one the model was trained with, none).
        sampling: temperature, top-p, the longest response and the seed.
        best_of: candidates to sample; the one the judge rates highest is kept (usable first, then style).
        guard: fall back to the draft said faithfully (:func:`voicetune.verbalize.speak_draft`) when the learned judge
        calls no candidate usable at its guard
            threshold (with ``selector="rubric"``: when every candidate drops a required fact or contradicts the draft).
        scorer: the scorer config of the judge's rubric features and of ``scores`` (default: the default scorer).
        selector: ``learned`` (the listeners' judge, the default) or ``rubric`` (the rules alone) for best-of-N and the
        guard.
    """

    def __init__(
        self,
        backend,
        *,
        name: str = "voicetune",
        style_prompt: str | None = None,
        sampling: SamplingConfig | None = None,
        best_of: int = 1,
        guard: bool = False,
        scorer=None,
        selector: str = "learned",
    ):
        if best_of < 1:
            raise VoicetuneError(f"--best-of must be at least 1, got {best_of}")
        self.backend, self.name, self.style_prompt = backend, name, style_prompt
        self.sampling = sampling or SamplingConfig()
        if selector not in ("learned", "rubric"):
            raise VoicetuneError(f"selector must be learned or rubric, not '{selector}'")
        self.best_of, self.guard, self.scorer, self.selector = best_of, guard, scorer, selector
        self.lock = threading.Lock()

    @property
    def decoded(self) -> bool:
        """Whether responses are chosen among candidates (so they are streamed only once chosen)."""
        return self.best_of > 1 or self.guard

    def _sampling(self, seed: int | None) -> SamplingConfig:
        if seed is None:
            return self.sampling
        return SamplingConfig(**{**self.sampling.__dict__, "seed": seed})

    def speak(self, turn: Turn, *, scores: bool = False, seed: int | None = None) -> Spoken:
        """The whole response for ``turn`` (with the scorer's qualities when ``scores``)."""
        _speakable(turn)
        started = time.perf_counter()
        messages = build_messages(turn, self.style_prompt)
        with self.lock:
            try:
                candidates = self.backend.generate([messages] * self.best_of, self._sampling(seed))
            except Exception as error:
                _refuse_too_long(error)
                raise
        spoken = self._choose(turn, candidates)
        if scores and spoken.scores is None:
            spoken.scores = _scores(turn, spoken.text, self.scorer)
        spoken.seconds = time.perf_counter() - started
        return spoken

    def _choose(self, turn: Turn, candidates: list[str]) -> Spoken:
        if not self.decoded:
            return Spoken(text=candidates[0])

        decoded = pick(turn, candidates, self.scorer, guard=self.guard, selector=self.selector)
        return Spoken(
            text=decoded.text,
            fallback=decoded.fallback,
            candidates=len(candidates),
            refused=decoded.refused,
            scores=_scores(turn, decoded.text, self.scorer),
        )

    def prepare(self, turn: Turn, draft_so_far: str | None = None) -> int:
        """Evaluate the coming request's prompt as far as it is known (``turn``'s persona and conversation, and
        ``draft_so_far``, by default the whole draft) into the backend's cache, so that the request itself only
        evaluates what came after: called while the LLM still writes the draft, it takes the prompt's cost off
        the first chunk's latency. Only backends that keep a prompt cache (llama.cpp) do anything; returns the
        tokens evaluated (0 when the voice is busy).

        The draft is clipped as :func:`~voicetune.models.prompts.build_messages` clips it for the request (its
        first ``DRAFT_CHARS`` characters, the ellipsis that marks the cut left off, so the prefix stays a prefix):
        preparing never evaluates more than the request would, however long the draft so far."""
        if not hasattr(self.backend, "prefill") or not self.lock.acquire(blocking=False):
            return 0
        try:
            text = (turn.draft or "") if draft_so_far is None else draft_so_far
            marker = "\u2063DRAFT\u2063"  # invisible separators: never in a real draft
            messages = build_messages(turn.model_copy(update={"draft": marker, "facts": None}), self.style_prompt)
            said = _clip(compact_draft(text), DRAFT_CHARS).removesuffix("\u2026") if text.strip() else ""
            try:
                return self.backend.prefill(messages, marker, said)
            except Exception as error:
                _refuse_too_long(error)
                raise
        finally:
            self.lock.release()

    def stream(self, turn: Turn, *, scores: bool = False, seed: int | None = None) -> Iterator[str | Spoken]:
        """The response's sentences as strings, as soon as each is complete, then the :class:`Spoken` record.

        Generation runs in a thread of its own holding the voice's lock, so a reader that stops early (a
        client that hangs up) never leaves the voice locked."""
        _speakable(turn)
        if self.decoded or not hasattr(self.backend, "stream"):
            spoken = self.speak(turn, scores=scores, seed=seed)
            yield from sentence_chunks([spoken.text])
            yield spoken
            return
        started = time.perf_counter()
        messages = build_messages(turn, self.style_prompt)
        pieces: queue.Queue = queue.Queue()
        end = object()

        def produce() -> None:
            try:
                with self.lock:
                    for piece in self.backend.stream(messages, self._sampling(seed)):
                        pieces.put(piece)
            except BaseException as error:  # handed to the reader, which raises it
                pieces.put(_fitting(error))
            pieces.put(end)

        threading.Thread(target=produce, daemon=True).start()

        def read() -> Iterator[str]:
            while (item := pieces.get()) is not end:
                if isinstance(item, BaseException):
                    raise item
                yield item

        said = []
        for chunk in sentence_chunks(read()):
            said.append(chunk)
            yield chunk
        spoken = Spoken(text=" ".join(said))
        if scores:
            spoken.scores = _scores(turn, spoken.text, self.scorer)
        spoken.seconds = time.perf_counter() - started
        yield spoken


def _scores(turn: Turn, text: str, scorer) -> dict[str, float]:
    return score_response(turn, text, scorer).scores


def _gguf_file(path: Path) -> Path:
    """``path``, once it is seen to begin as a GGUF file does (``GGUF``): llama.cpp would fail on anything else with
    a traceback. A missing file is left to the backend, which says so."""
    if path.is_file():
        try:
            with path.open("rb") as handle:
                magic = handle.read(4)
        except OSError as error:
            raise VoicetuneError(f"{path}: {error.strerror or error}") from None
        if magic != b"GGUF":
            raise VoicetuneError(
                f"{path}: not a GGUF file (it does not begin with 'GGUF'); "
                f"make one with: voicetune export MODEL --gguf {path.name}"
            )
    return path


def check_backend(backend: str) -> None:
    """Refuse a ``--backend`` that is none of :data:`BACKENDS` or ``endpoint:URL`` (before anything is loaded or
    bound)."""
    if backend not in BACKENDS and not backend.startswith("endpoint:"):
        raise VoicetuneError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)} or endpoint:URL")


def load_backend(
    model: str, backend: str = "auto", *, threads: int | None = None, batch_size: int = 8, api_model: str | None = None
):
    """The generation backend ``voicetune serve`` names: ``transformers`` (a model directory, hub id or the
    embedded model), ``llama.cpp`` (a ``.gguf`` file, or the embedded model's GGUF), ``vllm``,
    ``endpoint:URL`` (an OpenAI-compatible server; ``model`` is the name it expects), or ``auto``: llama.cpp
    for a ``.gguf`` file when llama-cpp-python is installed, else transformers."""
    if backend.startswith("endpoint:"):
        return HTTPBackend(backend.removeprefix("endpoint:"), api_model or model)
    check_backend(backend)
    is_gguf = model.endswith(".gguf") or model in EMBEDDED
    if backend == "auto":
        backend = "llama.cpp" if is_gguf and importlib.util.find_spec("llama_cpp") is not None else "transformers"
    if backend == "llama.cpp":
        if not is_gguf:
            raise VoicetuneError(
                f"--backend llama.cpp needs a GGUF file; export {model} first: voicetune export {model} --gguf "
                "MODEL.gguf"
            )
        if model in EMBEDDED:
            return LlamaCppBackend(embedded_gguf(model), threads=threads)
        path = _gguf_file(Path(model))
        try:
            return LlamaCppBackend(path, threads=threads)
        except (ValueError, RuntimeError) as error:  # llama-cpp-python's "Failed to load model from file"
            raise VoicetuneError(
                f"{path}: llama.cpp cannot load this GGUF file ({error}); is it truncated? export it again"
            ) from None
    if backend == "vllm":
        return VLLMBackend(model)
    return TransformersBackend(model, batch_size=batch_size)


def load_voice(
    model: str,
    backend: str = "auto",
    *,
    best_of: int = 1,
    guard: bool = False,
    style: str | None = None,
    temperature: float = DEFAULT_SAMPLING.temperature,
    max_new_tokens: int = DEFAULT_SAMPLING.max_new_tokens,
    seed: int = 0,
    threads: int | None = None,
    scorer=None,
    api_model: str | None = None,
) -> Voice:
    """A :class:`Voice` for a model spec and backend (see :func:`load_backend`); ``style``: a system prompt
    file or ``default`` (the voice style prompt), for a model not trained on spoken targets."""
    apply_threads(threads)
    sampling = SamplingConfig.at(temperature, max_new_tokens=max_new_tokens, seed=seed)
    return Voice(
        load_backend(model, backend, threads=threads, api_model=api_model),
        name=Path(model).name if "/" in model else model,
        style_prompt=load_style_prompt(style),
        sampling=sampling,
        best_of=best_of,
        guard=guard,
        scorer=scorer,
    )
