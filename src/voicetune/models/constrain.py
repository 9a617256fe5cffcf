"""Decoding that cannot invent a number: a logits processor that lets digits come only from the prompt.

A small policy's worst failure is a wrong number said fluently ("your refund of $1,240"): the listener cannot
tell it from a right one. :class:`PromptNumbers` makes that impossible rather than unlikely. Every number of
the prompt (the persona, the caller's last words, the draft and its must-say list) is split into its digit
runs (``"$1,095.55"`` -> ``1``, ``095``, ``55``; ``"06:00"`` -> ``06``, ``00`` and ``6``, ``0``); while the
model writes a digit run, a digit token is allowed only when the run it makes is a prefix of one of those runs.
Numbers up to :data:`FREE_NUMBERS` are always allowed (counts, and codes said digit by digit). Numbers said as
words are not constrained: the learned judge and the guard still check those.

Used by ``MODEL+numbers`` systems (``voicetune eval``) on the transformers backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

#: Digit runs up to this value are always allowed: small counts ("2 bags") and single spelled digits.
FREE_NUMBERS = 10


def digit_runs(text: str) -> frozenset[str]:
    """The runs of digits in ``text``, each also without its leading zeros ("06" -> "06" and "6")."""
    runs: set[str] = set()
    current = ""
    for ch in text + " ":
        if ch.isdigit():
            current += ch
        elif current:
            runs.add(current)
            runs.add(current.lstrip("0") or "0")
            current = ""
    return frozenset(runs)


class PromptNumbers(LogitsProcessor):
    """Masks every digit token that would start or extend a digit run found in no prompt of its row.

    Args:
        tokenizer: the model's tokenizer (digit tokens are found once, by their decoded text).
        prompts: each row's prompt text, in the batch's order.
        prompt_length: the padded prompt length of the batch (generated tokens start there).
    """

    def __init__(self, tokenizer, prompts: Sequence[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.allowed = [digit_runs(p) for p in prompts]
        self.prefixes = [frozenset(run[:i] for run in runs for i in range(1, len(run) + 1)) for runs in self.allowed]
        self.digit_tokens = _digit_tokens(tokenizer)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            written = self.tokenizer.decode(input_ids[row, self.prompt_length :], skip_special_tokens=True)
            tail = _trailing_digits(written)
            banned = []
            for token_id, (digits, joins) in self.digit_tokens.items():
                run = (tail + digits) if joins else digits
                if not (run in self.prefixes[row] or (run.isdigit() and int(run) <= FREE_NUMBERS)):
                    banned.append(token_id)
            if banned:
                scores[row, banned] = float("-inf")
        return scores


def _trailing_digits(text: str) -> str:
    end = len(text)
    start = end
    while start > 0 and text[start - 1].isdigit():
        start -= 1
    return text[start:end]


_CACHE: dict[int, dict[int, tuple[str, bool]]] = {}


def _digit_tokens(tokenizer) -> dict[int, tuple[str, bool]]:
    """Token id -> (its leading digits, whether it continues the run before it: no space in front), for
    every token whose text starts with a digit (after at most one space)."""
    key = id(tokenizer)
    if key not in _CACHE:
        found: dict[int, tuple[str, bool]] = {}
        for token_id in range(len(tokenizer)):
            text = tokenizer.decode([token_id])
            stripped = text.lstrip(" ")
            if not stripped[:1].isdigit() or len(text) - len(stripped) > 1:
                continue
            digits = stripped[: len(stripped) - len(stripped.lstrip("0123456789"))]
            found[token_id] = (digits, text == stripped)
        _CACHE[key] = found
    return _CACHE[key]
