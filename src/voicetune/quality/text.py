"""Text helpers shared by the facts matcher and the quality metrics: tokens, sentences, spoken numbers.

Everything here is a pure function; the hot ones are cached because a scorer sees the same history
messages and drafts many times (every candidate of a context, every turn of a conversation).
"""

from __future__ import annotations

import re
from functools import lru_cache

from text_to_num import alpha2digit

WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
#: A sentence ends at . ! or ? before white space and a capital, a digit or a quote (not after Mr., Dr., etc. or
#: a.m./p.m. unless a time zone follows), and at every line break.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])|\s*\n\s*")
_NO_BREAK_BEFORE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|vs|etc)\.|\b[ap]\.m\.)$")
_TIME_ZONE = re.compile(r"(?:Eastern|Central|Pacific|Mountain|ET|CT|PT|MT|EST|CST|PST|MST)\b")
MARKDOWN_LINE = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+|#{1,6}\s)", re.M)

_DIGIT_WORDS = (
    "zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|[0-9]+"
)
# "two oh one" is how people read a zero inside a number; text2num does not know it.
_OH_AFTER_DIGIT = re.compile(rf"\b((?:{_DIGIT_WORDS})[\s,-]+)oh\b", re.I)
_OH_BEFORE_DIGITS = re.compile(rf"\boh(?=[\s,-]+(?:{_DIGIT_WORDS})[\s,-]+(?:{_DIGIT_WORDS})\b)", re.I)
# "two thousand, one hundred": a pause inside one number, not two numbers.
_COMMA_IN_NUMBER = re.compile(
    r"\b(thousand|million|billion),(?=\s+(?:one|two|three|four|five|six|seven|eight|nine|a)\b)", re.I
)
_REPEATED_DIGIT = re.compile(
    r"\b(double|triple)[\s-]+(zero|one|two|three|four|five|six|seven|eight|nine|[0-9])\b", re.I
)
_NUMBER_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion first second third double triple".split()
)
_ORDINAL_WORDS = frozenset(
    "fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth "
    "seventeenth eighteenth nineteenth twentieth thirtieth".split()
)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
# text2num reads "forty and three" as 43 (British usage); in American speech "and" joins numbers only after
# "hundred", "thousand" or "million".
_LOOSE_AND = re.compile(r"(?<!hundred )(?<!thousand )(?<!million )(?<!billion )\band\b", re.I)
# "fifteen-dollar", "twenty-four-month": split a hyphen unless it joins the parts of one number.
_WORD_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?!(?:one|two|three|four|five|six|seven|eight|nine)\b)(?=[A-Za-z])", re.I)


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens (letters and digits, apostrophes kept inside words, possessive 's dropped)."""
    lowered = text.lower().replace("’", "'")
    found = WORD.findall(lowered)
    return tuple(w.removesuffix("'s") for w in found) if "'s" in lowered else tuple(found)


@lru_cache(maxsize=65536)
def sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` of each sentence or line of ``text`` (the project's one sentence splitter): the end
    excludes the white space after it; blank pieces are left out."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start : match.start()]
        abbreviation = _NO_BREAK_BEFORE.search(before) and (
            not before.endswith(".m.") or _TIME_ZONE.match(text, match.end())
        )
        if abbreviation and "\n" not in match.group():
            continue
        if before.strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return tuple(spans)


@lru_cache(maxsize=65536)
def sentences(text: str) -> tuple[str, ...]:
    """The sentences and lines of ``text`` (:func:`sentence_spans`), stripped."""
    return tuple(text[start:end].strip() for start, end in sentence_spans(text))


@lru_cache(maxsize=65536)
def spoken_to_digits(text: str) -> str:
    """Rewrite spoken numbers as digits so spoken and written forms compare equal.

    "one thousand ninety-five dollars and fifty-five cents" -> "1095 dollars and 55 cents";
    "five five five, two oh one" -> "5 5 5, 2 0 1"; thousands separators are removed ("1,095" -> "1095").
    """
    tokens = set(words(text))
    if tokens.isdisjoint(_NUMBER_WORDS) and not any(t.endswith("th") and t in _ORDINAL_WORDS for t in tokens):
        return _THOUSANDS.sub("", text) if "," in text else text
    if not tokens.isdisjoint(("double", "triple")):
        text = _REPEATED_DIGIT.sub(
            lambda m: " ".join([m.group(2)] * (2 if m.group(1).lower() == "double" else 3)), text
        )
    if "oh" in tokens:
        text = _OH_AFTER_DIGIT.sub(r"\1zero", _OH_AFTER_DIGIT.sub(r"\1zero", _OH_BEFORE_DIGITS.sub("zero", text)))
    if not tokens.isdisjoint(("thousand", "million", "billion")):
        text = _COMMA_IN_NUMBER.sub(r"\1", text)
    if "and" in tokens:
        text = _LOOSE_AND.sub("\x00", text)
    if "-" in text:
        text = _WORD_HYPHEN.sub(" ", text)
    text = alpha2digit(text, "en", threshold=0).replace("\x00", "and")
    return _THOUSANDS.sub("", text) if "," in text else text


@lru_cache(maxsize=65536)
def compact(text: str) -> str:
    """Lower-case letters and digits only: how a spelled-out code ("H A T 0 6 9") compares to "HAT069"."""
    return re.sub(r"[^a-z0-9]", "", text.lower())
