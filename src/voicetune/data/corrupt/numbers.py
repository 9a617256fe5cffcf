"""Numbers said in words: finding a run of number words, reading it (``text2num``) and saying a number the way a
response says it (``num2words``), American style: "one thousand two hundred sixty-eight", "a hundred and five"."""

from __future__ import annotations

import re
from functools import lru_cache

from num2words import num2words
from text_to_num import text2num

SMALL = [num2words(n) for n in range(20)]  # "zero" ... "nineteen"
TENS = [num2words(n) for n in range(20, 100, 10)]  # "twenty" ... "ninety"
DIGIT_WORDS = frozenset(SMALL[:10])
#: Every word that is a whole number below a hundred on its own.
NUMBER_WORDS = frozenset(SMALL + TENS)
_SCALES = frozenset({"hundred", "thousand", "million"})
NUM_WORD = (
    rf"(?:(?:{'|'.join(TENS)})(?:-(?:{'|'.join(SMALL[1:10])}))?|{'|'.join(sorted(SMALL, key=len, reverse=True))}"
    r"|oh|hundred|thousand|million)"
)
#: A run of number words: "seven forty-five", "a hundred and forty-three", "four oh five".
RUN = re.compile(
    rf"(?i)(?<![\w-])(?:a\s+(?=(?:hundred|thousand)\b))?{NUM_WORD}\b"
    rf"(?:(?:\s+|(?:(?<=hundred)|(?<=thousand)|(?<=million))(?:\s+and\s+|,\s+))(?:a\s+(?=hundred\b))?{NUM_WORD}\b)*"
)
#: Day ordinals ("first" ... "thirty-first") and their numbers.
ORDINALS = {num2words(day, to="ordinal"): day for day in range(1, 32)}
ORDINAL_ALTERNATION = "|".join(sorted(ORDINALS, key=len, reverse=True))


def say(n: int, a_style: bool = False, and_style: bool = False) -> str:
    """A whole number in words, American style ("one thousand two hundred sixty-eight"); ``a_style``: "a hundred",
    ``and_style``: "a hundred and five"."""
    spoken = num2words(n).replace(",", "")
    if not and_style:
        spoken = spoken.replace(" and ", " ")
    if a_style:
        spoken = re.sub(r"^one (?=(?:hundred|thousand|million)\b)", "a ", spoken)
    return spoken


def say_two(n: int) -> str:
    """The second half of a clock time or a price said in two parts: "oh five", "forty-five"."""
    return f"oh {SMALL[n]}" if n < 10 else say(n)


def _cardinal(tokens: list[str]) -> int | None:
    """The whole number ``tokens`` say together ("a", "hundred", "five" -> 105), or ``None``."""
    if not tokens or tokens[0] in _SCALES or "oh" in tokens or tokens[0] == "zero" and len(tokens) > 1:
        return None  # "hundred" alone is no number; "oh" and "zero" are digits read out ("zero two" is two numbers)
    try:
        return int(text2num(" ".join("one" if token == "a" else token for token in tokens), "en"))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def segments(run: str) -> tuple[tuple[int, bool, int], ...] | None:
    """The numbers a run of number words says one after another, each the longest that reads as one number:
    ``(value, said with "oh", word count)``; ``None`` when some word starts no number.

    "seven forty-five" -> ((7, False, 1), (45, False, 1)); "four oh five" -> ((4, ...), (5, True, 2)).
    """
    tokens = [t for t in re.findall(r"[a-z]+(?:-[a-z]+)?", run.lower()) if t != "and"]
    out: list[tuple[int, bool, int]] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "oh":
            digit = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1] in DIGIT_WORDS else None
            out.append((SMALL.index(digit), True, 2) if digit else (0, True, 1))
            i += 2 if digit else 1
            continue
        for j in range(len(tokens), i, -1):
            value = _cardinal(tokens[i:j])
            if value is not None:
                out.append((value, False, j - i))
                i = j
                break
        else:
            return None
    return tuple(out)
