"""Judges for evaluation: the rubric, an LLM over any OpenAI-compatible endpoint, and a panel of judges.

Every judge (see :mod:`voicetune.judge.registry` for the protocol and the rubric) has ``name`` and ``judge_many(pairs)
-> list[Judgement]``: a verdict per criterion and overall
for the responses *in the order shown* (``a`` is the first). Running both orders and reconciling them is the
evaluation's job (:mod:`voicetune.evaluate.compare`), so that every judge gets the same position-bias check.

An LLM answer is parsed as JSON first, then by a tolerant reading of "criterion: A/B/tie" lines; an answer
that yields no overall verdict is a :class:`Judgement` with ``error`` set, which the statistics count and
never turn into a tie. Raw answers are cached in SQLite (:class:`voicetune.models.chat.ChatCache`), so a re-run costs
nothing and
a killed run resumes from the answers it already has.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from voicetune.models.chat import CachedChat, ChatCache
from voicetune.models.prompts import compact_draft
from voicetune.progress import bar
from voicetune.provenance import digest
from voicetune.records import QUALITIES, Pair, Verdict

#: What the judges give a verdict on: the five qualities and the overall preference.
CRITERIA: tuple[str, ...] = (*QUALITIES, "overall")


@dataclass
class Judgement:
    """One judge's verdicts on one ordered pair (``a`` = the response shown first)."""

    winner: Verdict | None
    criteria: dict[str, Verdict] = field(default_factory=dict)
    rationale: str | None = None
    error: str | None = None


# --------------------------------------------------------------------------------------------------------
# LLM judge: prompt, parsing, cache

_SYSTEM = (
    "You compare two replies a phone agent could say aloud to a caller. The caller only hears the reply: "
    "there is no screen, so markdown, lists, symbols and long enumerations do not work. Judge for a listener."
)
_CRITERIA_TEXT = {
    "non_repetition": "says nothing twice and does not repeat what the caller has already heard",
    "conciseness": "short enough to follow by ear, without filler",
    "clarity": "easy to follow when heard: no markdown or symbols read out, one thing at a time",
    "humanness": "sounds like a person on the phone, not like written text or a script",
    "faithfulness": "gets every fact of the draft across correctly and invents nothing",
    "overall": "which reply the caller is better served by hearing",
}


def judge_messages(pair: Pair) -> list[dict[str, str]]:
    """The chat messages asking for a verdict per criterion and overall, as JSON."""
    caller = " ".join(pair.last_user_text.split())[:400]
    lines = [f'The caller just said: "{caller}"' if caller else "The call is starting.", ""]
    lines += ["What the agent has to convey (its written draft):", '"""', compact_draft(pair.draft or ""), '"""', ""]
    lines += [
        "Reply A:",
        '"""',
        pair.response_a.strip(),
        '"""',
        "",
        "Reply B:",
        '"""',
        pair.response_b.strip(),
        '"""',
        "",
    ]
    lines.append('For each criterion, which reply is better for a caller listening: "A", "B" or "tie"?')
    lines += [f"- {name}: {text}" for name, text in _CRITERIA_TEXT.items()]
    template = ", ".join(f'"{name}": "A|B|tie"' for name in CRITERIA)
    lines.append(f'Answer with JSON only: {{{template}, "rationale": "one short sentence"}}')
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def prompt_fingerprint() -> str:
    """A hash of the LLM judge's instructions (system prompt and criteria): what a run's manifest records."""
    probe = Pair(
        id="probe", history=[{"role": "user", "text": "CALLER"}], draft="DRAFT", response_a="A", response_b="B"
    )
    return digest(judge_messages(probe))


_VERDICT_WORDS: dict[str, Verdict] = {
    "a": "a",
    "reply a": "a",
    "response a": "a",
    "1": "a",
    "first": "a",
    "b": "b",
    "reply b": "b",
    "response b": "b",
    "2": "b",
    "second": "b",
    "tie": "tie",
    "equal": "tie",
    "both": "tie",
    "neither": "tie",
    "same": "tie",
    "draw": "tie",
    "none": "tie",
}
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)
_KEY_ALIASES = {
    "winner": "overall",
    "preferred": "overall",
    "better": "overall",
    "verdict": "overall",
    "answer": "overall",
}


def _normalise_key(key: str) -> str:
    key = re.sub(r"[\s-]+", "_", key.strip().lower())
    return _KEY_ALIASES.get(key, key)


def _verdict(value: object) -> Verdict | None:
    text = re.sub(r"[^a-z0-9 ]", "", str(value).strip().lower())
    return _VERDICT_WORDS.get(text)


def _line_pattern(name: str) -> re.Pattern:
    words = name.replace("_", r"[\s_-]?")
    return re.compile(
        rf"\b{words}\b(?:\s+is)?[\s\"'*:=\-]*(?:reply|response)?\s*\"?\b((?-i:A|B)|tie|equal|both|neither)\b", re.I
    )


_LINE_PATTERNS = {name: _line_pattern(name) for name in (*CRITERIA, "winner", "answer")}


def parse_judgement(text: str) -> Judgement:
    """Read a judge's answer: the first JSON object, else "criterion: A/B/tie" lines anywhere in the text.

    Verdict words are read tolerantly ("A", "Reply B", "tie", "equal"); an answer without an overall verdict
    (``overall`` or ``winner``) is returned with ``error`` set.
    """
    criteria: dict[str, Verdict] = {}
    rationale = None
    match = _JSON_OBJECT.search(text or "")
    if match:
        data = None
        for candidate in (match.group(0), match.group(0).replace("'", '"')):
            try:
                data = json.loads(candidate)
                break
            except ValueError:
                continue
        if isinstance(data, dict):
            for key, value in data.items():
                name = _normalise_key(str(key))
                verdict = _verdict(value)
                if name in CRITERIA and verdict:
                    criteria[name] = verdict
                elif name in ("rationale", "reason", "explanation") and isinstance(value, str):
                    rationale = value.strip() or None
    if "overall" not in criteria:
        for name, pattern in _LINE_PATTERNS.items():
            found = pattern.search(text or "")
            key = _KEY_ALIASES.get(name, name)
            verdict = _verdict(found.group(1)) if found else None
            if verdict and key not in criteria:
                criteria[key] = verdict
        if rationale is None and criteria:
            rationale = " ".join((text or "").split())[:300] or None
    if "overall" not in criteria:
        first_line = next((line for line in (text or "").splitlines() if line.strip()), "")
        bare = re.fullmatch(r"\s*(?:\*\*)?(?:reply |response )?(A|B|tie)\b[.!*]*\s*", first_line, re.I)
        if bare and (verdict := _verdict(bare.group(1))):
            criteria["overall"] = verdict  # a bare verdict first: the overall preference
    if "overall" not in criteria:
        snippet = " ".join((text or "").split())[:80]
        return Judgement(None, {}, None, error=f"no overall verdict in the judge's answer: {snippet!r}")
    return Judgement(criteria["overall"], criteria, rationale)


class LLMJudge:
    """A judge model behind an OpenAI-compatible endpoint (greedy decoding; answers cached).

    The API key comes from ``api_key_env`` (default ``OPENAI_API_KEY``); an unreachable or slow endpoint, or
    one that rejects the key, stops the run with one line naming the URL (cached answers are kept).
    """

    def __init__(
        self,
        endpoint: str,
        model: str,
        cache: ChatCache | None = None,
        concurrency: int = 4,
        timeout: float = 120.0,
        retries: int = 3,
        max_tokens: int = 200,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        self.model = model
        self.name = f"llm:{model}"
        self.chat = CachedChat(
            endpoint,
            model,
            purpose=self.name,
            cache=cache,
            max_tokens=max_tokens,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            api_key_env=api_key_env,
        )

    @property
    def requests(self) -> int:
        return self.chat.requests

    def answer(self, pair: Pair) -> str:
        return self.chat.ask(judge_messages(pair))

    def judge_many(self, pairs: Sequence[Pair], progress: bool = False) -> list[Judgement]:
        results: list[Judgement | None] = [None] * len(pairs)
        with (
            ThreadPoolExecutor(self.chat.concurrency) as pool,
            bar(len(pairs), f"judging ({self.model})", progress) as advance,
        ):
            futures = {pool.submit(self.answer, pair): index for index, pair in enumerate(pairs)}
            try:
                for future, index in futures.items():
                    results[index] = parse_judgement(future.result())
                    advance(1)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # a dead endpoint: stop now, not after every retry
                raise
        return results  # type: ignore[return-value]


class PanelJudge:
    """Several judges; on each criterion the verdict most of them give wins (no majority: a tie).
    A judge whose answer could not be parsed abstains; when all abstain, the pair is an error."""

    def __init__(self, judges: Sequence):
        self.judges = list(judges)
        self.name = "panel(" + ",".join(j.name for j in self.judges) + ")"

    def judge_many(self, pairs: Sequence[Pair], progress: bool = False) -> list[Judgement]:
        per_judge = [judge.judge_many(pairs, progress) for judge in self.judges]
        results = []
        for votes in zip(*per_judge, strict=True):
            valid = [v for v in votes if v.error is None]
            if not valid:
                results.append(Judgement(None, {}, None, error="; ".join(v.error for v in votes if v.error)))
                continue
            criteria: dict[str, Verdict] = {}
            for name in CRITERIA:
                counted = Counter(v.criteria[name] for v in valid if name in v.criteria)
                if counted:
                    (top, top_count), *rest = counted.most_common()
                    criteria[name] = top if top_count * 2 > sum(counted.values()) else "tie"
            rationale = " | ".join(
                f"{j.name}: {v.rationale}" for j, v in zip(self.judges, votes, strict=True) if v.rationale
            )
            results.append(Judgement(criteria.get("overall", "tie"), criteria, rationale or None))
        return results
