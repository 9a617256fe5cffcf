"""Text helpers the corruptions share: sentences and clauses, case matching, replacing a span (with its "a"/"an"
kept in agreement), tidy spacing, and the snippet a reason quotes."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from num2words import num2words

from voicetune.quality.text import sentence_spans, words
from voicetune.verbalize import inflect_engine

#: A rewritten response and one plain sentence saying why it is worse.
Rewrite = tuple[str, str]

APOS = "['’]"
_LEADING_NUMBER = re.compile(r"\$?(\d{1,3}(?:,\d{3})+|\d+)")


def sentences_of(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, sentence)`` for each sentence of ``text`` (the project's splitter)."""
    return [(start, end, text[start:end]) for start, end in sentence_spans(text)]


def at_sentence_start(text: str, index: int) -> bool:
    """Whether ``text[index:]`` opens a sentence."""
    return not text[:index].strip() or any(start == index for start, _ in sentence_spans(text))


def clause_bounds(sentence: str, index: int) -> tuple[int, int]:
    """The clause of ``sentence`` around ``index``: between commas, semicolons, colons and dashes."""
    left = max(sentence.rfind(ch, 0, index) for ch in ",;:—") + 1
    rights = [i for i in (sentence.find(ch, index) for ch in ",;:—") if i != -1]
    return left, min(rights) if rights else len(sentence)


def match_case(source: str, replacement: str) -> str:
    """``replacement`` with the capitalisation of ``source`` ("Refunded" -> "Charged")."""
    if not replacement or not source:
        return replacement
    if source.isupper() and len(source) > 1 and replacement.isalpha():
        return replacement.upper()
    if source[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def tidy(text: str) -> str:
    """Single spaces, no space before punctuation, no doubled punctuation, a capital first letter."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r",\s*([.;:!?])", r"\1", text)
    text = re.sub(r"([.!?])\s*\.", r"\1", text)
    text = re.sub(r"^\s*[,;:]\s*", "", text)
    text = text.strip()
    if text and text[0].islower():
        text = capitalised(text)
    return text


def replace(text: str, start: int, end: int, new: str) -> str:
    """Replace ``text[start:end]`` by ``new``, capitalised when it opens a sentence, with tidy spacing."""
    if new and at_sentence_start(text, start):
        new = capitalised(new)
    return tidy(text[:start] + new + text[end:])


def article_for(word: str) -> str:
    """ "a" or "an" before ``word`` (by its first sound, as ``inflect`` hears it; a figure as it is said)."""
    number = _LEADING_NUMBER.match(word)
    spoken = num2words(int(number.group(1).replace(",", ""))) if number else word
    return str(inflect_engine().a(spoken)).split(" ", 1)[0]


def replace_with_article(text: str, start: int, end: int, new: str, tidy_up: bool = True) -> str:
    """Like :func:`replace`, and the "a"/"an" right before the span made to agree with ``new``.

    ``tidy_up=False`` leaves spacing alone, so that earlier offsets into ``text`` stay valid (several replacements
    made from the end backwards).
    """
    article = re.search(r"\b(a|an|A|An)\s+$", text[:start])
    if article and new:
        fixed = match_case(article.group(1), article_for(new))
        text = text[: article.start(1)] + fixed + text[article.end(1) :]
        shift = len(fixed) - len(article.group(1))
        start, end = start + shift, end + shift
    if tidy_up:
        return replace(text, start, end, new)
    if new and at_sentence_start(text, start):
        new = capitalised(new)
    return text[:start] + new + text[end:]


def diff_span(old: str, new: str) -> tuple[int, int]:
    """The span of ``new`` that differs from ``old``."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, max(prefix, len(new) - suffix)


def snippet(text: str, start: int, end: int, max_words: int = 12) -> str:
    """The clause around ``text[start:end]`` (between punctuation), at most ``max_words`` words."""
    left = max(text.rfind(ch, 0, start) for ch in ".;:!?,")
    right_candidates = [i for i in (text.find(ch, end) for ch in ".;:!?,") if i != -1]
    right = min(right_candidates) if right_candidates else len(text)
    clause = text[left + 1 : right].strip()
    if clause.endswith((" a", " p")) and text[right : right + 3] == ".m.":
        clause += ".m."  # keep an abbreviation ("a.m.") whole
    tokens = clause.split()
    if len(tokens) > max_words:
        # centre the window on the change
        offset = len(text[left + 1 : start].split())
        low = max(0, min(offset - max_words // 3, len(tokens) - max_words))
        tokens = tokens[low : low + max_words]
    return " ".join(tokens)


def changed_snippet(old: str, new: str) -> str:
    """The clause of ``new`` around where it differs from ``old``."""
    return snippet(new, *diff_span(old, new))


def shorten(text: str, max_words: int = 14) -> str:
    tokens = text.split()
    return text if len(tokens) <= max_words else " ".join(tokens[:max_words]) + " ..."


def normal(text: str) -> str:
    """The words of ``text``, lower case, one space apart (to tell a real change from punctuation)."""
    return " ".join(words(text))


def best_option(options: Sequence[tuple[Any, str, str]], rng: random.Random) -> Rewrite | None:
    """One of the best-ranked ``(rank, text, why)`` options, drawn with ``rng``."""
    if not options:
        return None
    best = min(rank for rank, _, _ in options)
    _, text, why = rng.choice([o for o in options if o[0] == best])
    return text, why
