"""Corruption generator: realistic, clearly worse versions of a good spoken response.

A voice agent's spoken response is judged against its turn's context (the written draft, the history, the
tool results). This module takes a good response (usually a person's spoken reference) and rewrites it into
versions a careful listener would judge worse on *faithfulness*: the polarity of the main claim flipped, two
amounts swapped, the wrong action, the wrong item, a question turned into "already done", a needed fact
dropped, a number invented. Each corruption stays fluent spoken English in the response's own register
(numbers in words when the response says them in words) and carries a one-line reason for a listener.

Uses: labelled evaluation pairs for the voice-quality judge (:func:`synthetic_pairs`), and hard negatives for
preference training. Everything is rule based and deterministic given a seed; no model is called.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Sequence

from num2words import num2words

from voicetune.quality.facts import MONEY, TIME, Fact, classify_fact, context_numbers, extract_facts, fact_conveyed, spoken_view
from voicetune.quality.text import words
from voicetune.records import Pair, Turn

#: Every kind of corruption, in a fixed order, with what it does.
KINDS: dict[str, str] = {
    "negation": "flip the polarity of the main claim (has/hasn't, can/can't, is/isn't, found/couldn't find)",
    "swap_amounts": "exchange two amounts the response states, or replace one with another number from the draft",
    "wrong_action": "replace the action with a different one (refund->charge, cancel->confirm, upgrade->downgrade)",
    "wrong_item": "replace an item, name, place or date with a different one from the context, or a sibling",
    "done_not_asked": "turn a question or confirmation request into a statement that it is already done",
    "drop_fact": "remove the clause or sentence carrying a fact the caller needs (an amount, date, time, code)",
    "invent_number": "change one number, amount, time or date to a nearby value that is nowhere in the context",
    "repeat_sentence": "say a sentence with content a second time, the way a looping model does (\"That's right, ...\")",
}
#: The kinds that break faithfulness: the judge's labelled pairs are made of these (:func:`synthetic_pairs`).
JUDGE_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "repeat_sentence")

_FAILURE_CLASS = {
    "negation": "contradiction",
    "swap_amounts": "contradiction",
    "wrong_action": "contradiction",
    "wrong_item": "contradiction",
    "done_not_asked": "contradiction",
    "drop_fact": "dropped_fact",
    "invent_number": "invented",
    "repeat_sentence": "repetition",
}


@dataclass(frozen=True)
class Corruption:
    """A corrupted response: its ``kind`` (a key of :data:`KINDS`), the corrupted ``text``, ``why`` it is worse
    (one plain sentence for a listener), the ``quality`` it violates and its ``failure_class``
    (``contradiction``, ``dropped_fact``, ``invented`` or ``repetition``)."""

    kind: str
    text: str
    why: str
    quality: str = "faithfulness"
    failure_class: str = "contradiction"


# ---------------------------------------------------------------------------------------------------------
# Text helpers

_APOS = "['’]"
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")
_NO_BREAK_BEFORE = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|vs|etc)\.|\b[ap]\.m\.)$")
_TIME_ZONE = re.compile(r"(?:Eastern|Central|Pacific|Mountain|ET|CT|PT|MT|EST|CST|PST|MST)\b")


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence (end excludes the white space after it)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[start : match.start()]
        if _NO_BREAK_BEFORE.search(before) and (not before.endswith(".m.") or _TIME_ZONE.match(text, match.end())):
            continue
        spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def _match_case(source: str, replacement: str) -> str:
    """``replacement`` with the capitalisation of ``source`` ("Refunded" -> "Charged")."""
    if not replacement or not source:
        return replacement
    if source.isupper() and len(source) > 1 and replacement.isalpha():
        return replacement.upper()
    if source[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def _at_sentence_start(text: str, index: int) -> bool:
    before = text[:index].rstrip()
    return not before or before[-1] in ".!?" and not _NO_BREAK_BEFORE.search(before)


def _replace(text: str, start: int, end: int, new: str) -> str:
    """Replace ``text[start:end]`` by ``new``, capitalised when it opens a sentence, with tidy spacing."""
    if new and _at_sentence_start(text, start):
        new = new[0].upper() + new[1:]
    out = text[:start] + new + text[end:]
    return _tidy(out)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r",\s*([.;:!?])", r"\1", text)
    text = re.sub(r"([.!?])\s*\.", r"\1", text)
    text = re.sub(r"^\s*[,;:]\s*", "", text)
    text = text.strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text


def _article_for(word: str) -> str:
    """"a" or "an" before ``word`` (by its first sound, roughly)."""
    low = word.lower()
    vowel = low[:1] in ("a", "e", "i", "o") or (low.startswith("u") and not low.startswith(("uni", "use", "usu"))) or low.startswith(("hour", "honest"))
    return "an" if vowel else "a"


def _replace_with_article(text: str, start: int, end: int, new: str, tidy: bool = True) -> str:
    """Like :func:`_replace`, and the "a"/"an" right before the span made to agree with ``new``.

    ``tidy=False`` leaves spacing alone, so that earlier offsets into ``text`` stay valid (several replacements
    made from the end backwards).
    """
    article = re.search(r"\b(a|an|A|An)\s+$", text[:start])
    if article and new:
        fixed = _match_case(article.group(1), _article_for(new))
        text = text[: article.start(1)] + fixed + text[article.end(1) :]
        shift = len(fixed) - len(article.group(1))
        start, end = start + shift, end + shift
    if not tidy:
        if new and _at_sentence_start(text, start):
            new = new[0].upper() + new[1:]
        return text[:start] + new + text[end:]
    return _replace(text, start, end, new)


def _snippet(text: str, start: int, end: int, max_words: int = 12) -> str:
    """The clause around ``text[start:end]`` (between punctuation), at most ``max_words`` words."""
    left = max(text.rfind(ch, 0, start) for ch in ".;:!?,")
    right_candidates = [i for i in (text.find(ch, end) for ch in ".;:!?,") if i != -1]
    right = min(right_candidates) if right_candidates else len(text)
    clause = text[left + 1 : right].strip()
    # keep an abbreviation ("a.m.") whole
    if clause.endswith((" a", " p")) and text[right : right + 3] in (".m.",):
        clause += ".m."
    tokens = clause.split()
    if len(tokens) > max_words:
        # centre the window on the change
        offset = len(text[left + 1 : start].split())
        lo = max(0, min(offset - max_words // 3, len(tokens) - max_words))
        tokens = tokens[lo : lo + max_words]
    return " ".join(tokens)



# Verb forms. A small table of irregular verbs; everything else follows the spelling rules.
_IRREGULAR = {
    # base: (past, participle)
    "be": ("was", "been"), "bring": ("brought", "brought"), "buy": ("bought", "bought"), "come": ("came", "come"),
    "cut": ("cut", "cut"), "do": ("did", "done"), "find": ("found", "found"), "freeze": ("froze", "frozen"),
    "get": ("got", "gotten"), "give": ("gave", "given"), "go": ("went", "gone"), "hang": ("hung", "hung"),
    "have": ("had", "had"), "hold": ("held", "held"), "keep": ("kept", "kept"), "leave": ("left", "left"),
    "let": ("let", "let"), "make": ("made", "made"), "mean": ("meant", "meant"), "pay": ("paid", "paid"),
    "put": ("put", "put"), "read": ("read", "read"), "resend": ("resent", "resent"), "reset": ("reset", "reset"),
    "run": ("ran", "run"), "say": ("said", "said"), "see": ("saw", "seen"), "sell": ("sold", "sold"),
    "send": ("sent", "sent"), "set": ("set", "set"), "show": ("showed", "shown"), "split": ("split", "split"),
    "take": ("took", "taken"), "tell": ("told", "told"), "withdraw": ("withdrew", "withdrawn"), "write": ("wrote", "written"),
    "shut": ("shut", "shut"), "stand": ("stood", "stood"), "spend": ("spent", "spent"), "lose": ("lost", "lost"),
    "hit": ("hit", "hit"), "drive": ("drove", "driven"), "begin": ("began", "begun"), "choose": ("chose", "chosen"),
}
_DOUBLE_FINAL = {"cancel", "transfer", "ship", "stop", "drop", "plan", "submit", "refer", "prefer", "swap", "flag", "tag", "tap", "wrap", "zip", "admit", "permit", "equip", "label"}


def _past(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb][0]
    return _regular_ed(verb)


def _participle(verb: str) -> str:
    if verb in _IRREGULAR:
        return _IRREGULAR[verb][1]
    return _regular_ed(verb)


def _regular_ed(verb: str) -> str:
    if verb in _DOUBLE_FINAL:
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and len(verb) > 1 and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _third(verb: str) -> str:
    special = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if verb in special:
        return special[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and len(verb) > 1 and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


# ---------------------------------------------------------------------------------------------------------
# Numbers: find the amounts, times, dates and counts a response says (in words or digits) and say new ones
# in the same style.

_SMALL = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_VALUE = {w: i for i, w in enumerate(_SMALL)}
_VALUE.update({w: 20 + 10 * i for i, w in enumerate(_TENS)})
_NUM_WORD = (
    rf"(?:(?:{'|'.join(_TENS)})(?:-(?:{'|'.join(_SMALL[1:10])}))?|{'|'.join(sorted(_SMALL, key=len, reverse=True))}"
    r"|oh|hundred|thousand|million)"
)
_RUN = re.compile(
    rf"(?i)(?<![\w-])(?:a\s+(?=(?:hundred|thousand)\b))?{_NUM_WORD}\b"
    rf"(?:(?:\s+|(?:(?<=hundred)|(?<=thousand)|(?<=million))(?:\s+and\s+|,\s+))(?:a\s+(?=hundred\b))?{_NUM_WORD}\b)*"
)
_ORDINALS = {num2words(i, to="ordinal"): i for i in range(1, 32)}
_ORDINAL = re.compile(r"(?i)\b(" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + r")\b")
_MONTH_NAMES = "January February March April May June July August September October November December".split()
_MONTH_BEFORE = re.compile(r"\b(" + "|".join(_MONTH_NAMES) + r")\s+(?:the\s+)?$")
_MARKER = re.compile(
    r"\s*(?P<m>a\.m\.|p\.m\.|[AaPp][Mm]\b|in the (?:morning|afternoon|evening)|at night|tonight|this (?:morning|afternoon|evening)|o'clock)"
)
_TIME_PREP = re.compile(r"\b(?:at|by|until|till|from|around|after|before|between)\s+$", re.I)
_UNIT_STOP = frozenset(
    "a an the and or to of in on at for by with from as is are was were be it its that this these those you your i "
    "we our my their he she they them his her so but if then than per each every more less plus minus off up down "
    "out over under into onto about around after before until through back total altogether instead now today "
    "tomorrow tonight yesterday too also only just even still there here what which who when where why how "
    "has have had will would can could should may might must does do did gets get got goes comes makes takes "
    "works runs means needs left right later earlier early late ahead apart away".split()
)
# A number after one of these names a thing ("row six", "option two", "level one"), it is not an amount.
_IDENTIFIER_BEFORE = re.compile(
    r"(?i)(?:row|seat|gate|terminal|option|line|level|suite|apartment|apt|carousel|flight|room|step|steps|part|parts|"
    r"unit|extension|door|floor|number|press|dial|lane|box|model|version|pro|plus|max|series|chapter|page)\s+$"
)
_UNIT_PREFIX = frozenset("business calendar working extra more additional consecutive monthly".split())
_MONEY_NEXT_OK = frozenset(
    "a an each per for on more plus in off total altogether back instead with to and or so but after before at "
    "from the this that your less".split()
)


@dataclass
class _Amount:
    """One amount said in a response: where, what kind, its value and how it is said."""

    start: int
    end: int
    kind: str  # money | time | date | count
    value: object  # money: cents (int); time: (hour 1-12, minute); date: day; count: int
    style: str
    a_style: bool = False  # "a hundred" rather than "one hundred"
    and_style: bool = False  # "a hundred and five"
    unit: str = ""  # count: the noun after it ("day" for "days")
    unit_text: str = ""  # count: the words after it as said ("business days")
    half: str = ""  # time: "am" / "pm" when the response says which half of the day
    month: int | None = None  # date: the month said with it
    low: int | None = None  # count/date/time: a range's other end below (the new value must stay above it)
    high: int | None = None  # ... and above
    in_range: bool = False
    text: str = ""


def _say(n: int, a_style: bool = False, and_style: bool = False) -> str:
    """A whole number in words, American style ("one thousand two hundred sixty-eight")."""
    if n < 20:
        return _SMALL[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS[tens - 2] + (f"-{_SMALL[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "a hundred" if hundreds == 1 and a_style else f"{_SMALL[hundreds]} hundred"
        return head + ((" and " if and_style else " ") + _say(rest) if rest else "")
    for scale, name in ((10**6, "million"), (1000, "thousand")):
        if n >= scale:
            count, rest = divmod(n, scale)
            head = f"a {name}" if count == 1 and a_style else f"{_say(count, False, and_style)} {name}"
            if not rest:
                return head
            return head + (" and " if and_style and rest < 100 else " ") + _say(rest, False, and_style)
    raise ValueError(n)


def _say_two(n: int) -> str:
    """The second half of a clock time or a price said in two parts: "oh five", "forty-five"."""
    return f"oh {_SMALL[n]}" if n < 10 else _say(n)


def _parse_below_hundred(tokens: list[str], i: int) -> tuple[int, int]:
    if i >= len(tokens):
        return 0, i
    token = tokens[i]
    if "-" in token:
        tens, unit = token.split("-", 1)
        return _VALUE[tens] + _VALUE[unit], i + 1
    if token in _VALUE:
        return _VALUE[token], i + 1
    return 0, i


def _parse_below_thousand(tokens: list[str], i: int) -> tuple[int, int]:
    if i + 1 < len(tokens) and tokens[i + 1] == "hundred":
        if tokens[i] == "a":
            head = 1
        else:
            head, k = _parse_below_hundred(tokens, i)
            if k == i:
                return 0, i
        rest, k = _parse_below_hundred(tokens, i + 2)
        return head * 100 + rest, k
    if i < len(tokens) and tokens[i] == "a" and i + 1 < len(tokens) and tokens[i + 1] == "thousand":
        return 1, i + 1
    return _parse_below_hundred(tokens, i)


def _parse_cardinal(tokens: list[str], i: int) -> tuple[int, int]:
    """The longest whole number said from ``tokens[i]``: ``(value, next index)``; next index ``i``: none."""
    total, j, last_scale = 0, i, None
    while j < len(tokens):
        value, k = _parse_below_thousand(tokens, j)
        if k == j:
            break
        if k < len(tokens) and tokens[k] in ("thousand", "million"):
            scale = 1000 if tokens[k] == "thousand" else 10**6
            if last_scale is not None and scale >= last_scale:
                total += value
                j = k
                break
            total += value * scale
            j, last_scale = k + 1, scale
            continue
        total += value
        j = k
        break
    return total, j


def _segments(run: str) -> list[tuple[int, bool, int]] | None:
    """The numbers a run of number words says one after another: ``(value, said with "oh", word count)``.

    "seven forty-five" -> [(7, False, 1), (45, False, 1)]; "four oh five" -> [(4, ...), (5, True, 2)].
    """
    tokens = [t for t in re.findall(r"[a-z]+(?:-[a-z]+)?", run.lower()) if t != "and"]
    out: list[tuple[int, bool, int]] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "oh":
            if i + 1 < len(tokens) and tokens[i + 1] in _SMALL[0:10]:
                out.append((_VALUE[tokens[i + 1]], True, 2))
                i += 2
            else:
                out.append((0, True, 1))
                i += 1
            continue
        value, j = _parse_cardinal(tokens, i)
        if j == i:
            return None
        out.append((value, False, j - i))
        i = j
    return out


def _draft_money(draft: str) -> frozenset[int]:
    """Money amounts (in cents) a written draft states."""
    found = set()
    for match in MONEY.finditer(draft or ""):
        number = re.search(r"\d[\d,]*(?:\.\d{1,2})?", match.group(0)).group(0).replace(",", "")
        dollars, _, cents = number.partition(".")
        found.add(int(dollars) * 100 + (int((cents + "00")[:2]) if cents else 0))
    return frozenset(found)


def _draft_times(draft: str) -> frozenset[tuple[int, int]]:
    """Clock times (hour 1-12, minute) a written draft states."""
    found = set()
    for match in TIME.finditer(draft or ""):
        hour_min = re.match(r"\s*(\d{1,2})(?::(\d{2}))?", match.group(0))
        hour, minute = int(hour_min.group(1)), int(hour_min.group(2) or 0)
        found.add((hour % 12 or 12, minute))
    for match in re.finditer(r"\b(\d{1,2}):(\d{2})\b", draft or ""):
        found.add((int(match.group(1)) % 12 or 12, int(match.group(2))))
    return frozenset(found)


def _draft_times_with_half(draft: str) -> frozenset[tuple[int, int, str]]:
    """Clock times a written draft states, with "am"/"pm" when it says which."""
    found = set()
    for match in TIME.finditer(draft or ""):
        hour_min = re.match(r"\s*(\d{1,2})(?::(\d{2}))?", match.group(0))
        hour, minute = int(hour_min.group(1)), int(hour_min.group(2) or 0)
        half = re.search(r"([AaPp])\.?\s?[Mm]", match.group(0))
        found.add((hour % 12 or 12, minute, ("am" if half.group(1).lower() == "a" else "pm") if half else ("pm" if hour >= 13 else "")))
    return frozenset(found)


_RANGE_WORD = r"(?:to|until|till|through|and|-|–)"


def _in_time_range(before: str, after: str) -> bool:
    """Whether a clock time is one end of a range ("from nine to one", "ten to noon", "eight to five")."""
    number = _NUM_WORD + r"|noon|midnight|\d"
    return bool(
        re.match(rf"(?i)\s*(?:(?:a\.m\.|p\.m\.|in the \w+|at night)\s+)?{_RANGE_WORD}\s+(?:{number})", after)
        or re.search(rf"(?i)(?:{number})\w*(?:\s+(?:a\.m\.|p\.m\.|in the \w+|at night))?\s+{_RANGE_WORD}\s+$", before)
    )


def _half_from_marker(marker: str) -> str:
    """"am" / "pm" for the words after a clock time ("a.m.", "in the evening", "tonight"), else ""."""
    marker = marker.lower()
    if "morning" in marker or re.match(r"a\.?m\b", marker):
        return "am"
    if any(word in marker for word in ("afternoon", "evening", "night")) or re.match(r"p\.?m\b", marker):
        return "pm"
    return ""


def _is_capitalised_name(text: str, start: int, run: str) -> bool:
    """A capitalised number word inside a sentence is part of a name ("Essentials Five", "Terminal Four")."""
    return run[:1].isupper() and not _at_sentence_start(text, start)


@lru_cache(maxsize=4096)
def _amounts(text: str, draft: str = "") -> tuple[_Amount, ...]:
    """Every money amount, clock time, date and count the text says, with how it says it.

    Codes, phone numbers and card digits (digit by digit), addresses, seat numbers, years and names are left
    out: changing them is not what these corruptions are about. The draft tells a price said in two parts
    ("sixty-two eighty-five") from a clock time ("seven forty-five").
    """
    money_in_draft = _draft_money(draft)
    times_in_draft = _draft_times(draft)
    found: list[_Amount] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(amount: _Amount) -> None:
        amount.text = text[amount.start : amount.end]
        found.append(amount)
        taken.append((amount.start, amount.end))

    # Dates said with ordinals: "March fourteenth", "the twenty-second".
    for match in _ORDINAL.finditer(text):
        before = text[: match.start()]
        month = _MONTH_BEFORE.search(before)
        after = text[match.end() :]
        the_day = re.search(r"\bthe\s+$", before) and re.match(
            r"\s*(?:[,.;:!?)]|$|\s(?:at|of|to|through|and|or|each|every|instead|after|before|works|is|it|then|until|in|from|with|when|so)\b)", after
        )
        if month or the_day:
            day = _ORDINALS[match.group(1).lower()]
            add(_Amount(match.start(), match.end(), "date", day, "ordinal", month=_MONTH_NAMES.index(month.group(1)) + 1 if month else None))

    # Money, times and counts in digits.
    for match in re.finditer(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?", text):
        cents = int(match.group(1).replace(",", "")) * 100 + int(match.group(2) or 0)
        add(_Amount(match.start(), match.end(), "money", cents, "sym_cents" if match.group(2) else "sym", text=match.group(0)))
    for match in re.finditer(r"\b(\d{1,2}):(\d{2})(?:\s?([AaPp])\.?\s?[Mm]\.?)?", text):
        if free(match.start(), match.end()):
            half = (match.group(3) or "").lower()
            add(_Amount(match.start(), match.start() + len(f"{match.group(1)}:{match.group(2)}"), "time", (int(match.group(1)) % 12 or 12, int(match.group(2))), "digits", half={"a": "am", "p": "pm"}.get(half, "")))
    for match in re.finditer(r"\b(\d{1,2})\s?([AaPp])\.?[Mm]\b\.?", text):
        if free(match.start(), match.end()):
            add(_Amount(match.start(), match.start() + len(match.group(1)), "time", (int(match.group(1)) % 12 or 12, 0), "digits", half="am" if match.group(2).lower() == "a" else "pm"))
    for match in re.finditer(r"\b(" + "|".join(_MONTH_NAMES) + r")\s+(\d{1,2})(st|nd|rd|th)?\b", text):
        if free(match.start(2), match.end()):
            add(_Amount(match.start(2), match.end(), "date", int(match.group(2)), "digits_ord" if match.group(3) else "digits", month=_MONTH_NAMES.index(match.group(1)) + 1))
    for match in re.finditer(r"(?<![\w$.,:/#-])(\d{1,3}(?:,\d{3})+|\d+)(?![\w.,:/-]\d|\w)(\s+dollars?\b)?", text):
        if not free(match.start(), match.end()):
            continue
        value = int(match.group(1).replace(",", ""))
        if match.group(2):
            add(_Amount(match.start(), match.end(), "money", value * 100, "num_dollars"))
            continue
        unit = re.match(r"\s+([a-z]+)", text[match.end() :])
        if unit and unit.group(1) not in _UNIT_STOP and value >= 2 and not _IDENTIFIER_BEFORE.search(text[: match.start()]):
            add(_Amount(match.start(), match.end(), "count", value, "digits", unit=_unit(unit.group(1)), unit_text=unit.group(1)))

    # Numbers in words. Say "a hundred" / "hundred and" where the text does.
    text_a_style = bool(re.search(r"\ba (?:hundred|thousand)\b", text, re.I))
    text_and_style = bool(re.search(r"\b(?:hundred|thousand) and\b", text, re.I))
    runs = [m for m in _RUN.finditer(text) if free(m.start(), m.end())]
    for index, match in enumerate(runs):
        run = match.group(0)
        start, end = match.start(), match.end()
        if not free(start, end):
            continue
        before, after = text[:start], text[end:]
        if re.search(r"\bpoint\s+$", before, re.I) or re.match(r"\s+point\b", after, re.I) or after.startswith(("-", "'", "’")) and not re.match(r"-dollar\b", after):
            continue
        if _is_capitalised_name(text, start, run) or _IDENTIFIER_BEFORE.search(before):
            continue
        if re.match(r"\s+(?:[A-Z]\b|[A-Z][a-z]+\s+(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Court|Ct|Way|Drive|Dr|Boulevard|Blvd|Plaza|Place|Terrace)\b|[A-Z][a-z]+\b(?!\s+(?:" + "|".join(_MONTH_NAMES) + r")))", after) and not re.match(r"\s+(?:" + "|".join(_MONTH_NAMES) + "|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b", after):
            continue  # an address, a seat, a name: "fifty-six Wexford Road", "fourteen A"
        segments = _segments(run)
        if not segments:
            continue
        lower = run.lower()
        a_style = lower.startswith("a ") or text_a_style
        and_style = " and " in lower or text_and_style
        if len(segments) == 1:
            value, oh, _ = segments[0]
            if oh:
                continue
            # money: "X dollars (and Y cents)", "X-dollar", "X dollar fee", "Y cents"
            dollars = re.match(r"(\s+dollars?\b|-dollar\b)", after)
            if dollars:
                span_end = end + len(dollars.group(1))
                style = "adj" if dollars.group(1).startswith("-") else ("d" if dollars.group(1).strip().endswith("s") else "adj_sp")
                cents = 0
                nxt = runs[index + 1] if index + 1 < len(runs) else None
                tail = re.match(r",?\s+and\s+", text[span_end:])
                if style == "d" and tail and nxt is not None and nxt.start() == span_end + tail.end():
                    cents_words = re.match(r"\s+cents?\b", text[nxt.end() :])
                    cents_segments = _segments(nxt.group(0))
                    if cents_words and cents_segments and len(cents_segments) == 1:
                        cents = cents_segments[0][0]
                        span_end = nxt.end() + cents_words.end()
                        style = "dc"
                if style == "adj_sp" and re.match(r"\s+dollar\s+and\b", after):
                    continue
                add(_Amount(start, span_end, "money", value * 100 + cents, style, a_style, and_style))
                continue
            if re.match(r"\s+cents?\b", after):
                if value < 100 and not re.search(r"dollars?\s+and\s+$", before):
                    add(_Amount(start, end + re.match(r"\s+cents?\b", after).end(), "money", value, "cents"))
                continue
            marker = _MARKER.match(after)
            next_word = re.match(r"\s+([A-Za-z]+)", after)
            next_token = next_word.group(1).lower() if next_word else None
            is_time = 1 <= value <= 12 and (
                (marker and not re.match(r"\s*this (?:morning|afternoon|evening)", after) or marker and marker.group("m").startswith("this"))
                or (_TIME_PREP.search(before) and (value, 0) in times_in_draft)
                or (re.match(r"\s+(?:to|until|till|and|-)\s+(?:noon|midnight)\b", after))
                or (_TIME_PREP.search(before) and re.match(r"\s+(?:to|until|till|and|-)\s+\S", after) and any(h == value for h, _ in times_in_draft))
            )
            if is_time:
                in_range = _in_time_range(before, after)
                half = ""
                if marker:
                    m = marker.group("m").lower()
                    half = _half_from_marker(m)
                add(_Amount(start, end, "time", (value, 0), "h", half=half, in_range=in_range))
                continue
            if value * 100 in money_in_draft and value >= 10 and (next_token is None or next_token in _MONEY_NEXT_OK or not next_word) and not re.search(r"\b(?:the|a|an)\s+$", before):
                add(_Amount(start, end, "money", value * 100, "bare", a_style, and_style))
                continue
            if value >= 2 and next_token and next_token not in _UNIT_STOP and not next_word.group(1)[0].isupper() and re.match(r"\s+[a-z]", after):
                unit_words = re.match(r"\s+([a-z]+)(?:\s+([a-z]+))?", after)
                unit_text = unit_words.group(1)
                if unit_text in _UNIT_PREFIX and unit_words.group(2):
                    unit_text += " " + unit_words.group(2)
                add(_Amount(start, end, "count", value, "words", a_style, and_style, unit=_unit(unit_text), unit_text=unit_text))
                continue
            range_next = re.match(r"\s+(?:to|or|and|-)\s+", after)
            if value >= 2 and range_next and index + 1 < len(runs) and runs[index + 1].start() == end + range_next.end():
                add(_Amount(start, end, "count", value, "words", a_style, and_style, unit="?range", in_range=True))
            continue
        if len(segments) == 2:
            (first, first_oh, first_words), (second, second_oh, second_words) = segments
            if first_oh or second_words > 2 or not (second_oh or 10 <= second <= 99):
                continue
            cents_value = first * 100 + second
            marker = _MARKER.match(after)
            if cents_value in money_in_draft and not marker:
                add(_Amount(start, end, "money", cents_value, "pair", a_style, and_style))
                continue
            if 1 <= first <= 12 and first_words == 1 and second <= 59 and (marker or (first, second) in times_in_draft or _TIME_PREP.search(before)):
                half = ""
                if marker:
                    m = marker.group("m").lower()
                    half = _half_from_marker(m)
                add(_Amount(start, end, "time", (first, second), "hm", half=half, in_range=_in_time_range(before, after)))
                continue
            if re.match(r"\s+(?:late |return |change )?(?:fee|charge|credit|a month|each|per)\b", after) and first >= 1 and not second_oh:
                add(_Amount(start, end, "money", cents_value, "pair", a_style, and_style))
            continue
    # Ranges: "three to five business days", "from nine to one": the ends keep their order.
    found.sort(key=lambda a: a.start)
    for left, right in zip(found, found[1:]):
        gap = text[left.end : right.start]
        if left.kind == right.kind or (left.unit == "?range" and right.kind == "count"):
            if re.fullmatch(r"\s*(?:to|-|–|until|till|through)\s*(?:the\s+)?|\s+(?:or|and)\s+(?:the\s+)?", gap):
                if left.unit == "?range":
                    left.kind, left.unit, left.unit_text = right.kind, right.unit, right.unit_text
                if left.kind in ("count", "date") and isinstance(left.value, int) and isinstance(right.value, int) and left.value < right.value:
                    left.high, right.low = right.value, left.value
                    left.in_range = right.in_range = True
                elif left.kind == "time":
                    left.in_range = right.in_range = True
                    if not left.half:
                        left.half = right.half if right.half == "am" else left.half
    return tuple(a for a in found if a.unit != "?range")


def _unit(word: str) -> str:
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ses") or word.endswith("xes"):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _render(amount: _Amount, value: object) -> str | None:
    """Say ``value`` the way ``amount`` was said; ``None`` when that style cannot say it."""
    style, a, a_and = amount.style, amount.a_style, amount.and_style
    if amount.kind == "money":
        dollars, cents = divmod(int(value), 100)
        if style in ("sym", "sym_cents"):
            if style == "sym" and cents:
                return f"${dollars:,}.{cents:02d}" if "," in amount.text else f"${dollars}.{cents:02d}"
            text = f"${dollars:,}" if "," in amount.text else f"${dollars}"
            return text + (f".{cents:02d}" if style == "sym_cents" else "")
        if style == "num_dollars":
            return None if cents else f"{dollars} dollars"
        if style == "cents":
            return f"{_say(cents)} cent{'s' if cents != 1 else ''}" if dollars == 0 and cents else None
        if dollars == 0:
            return None
        say = _say(dollars, a, a_and)
        if style in ("d", "dc"):
            main = f"{say} dollar{'s' if dollars != 1 else ''}"
            return f"{main} and {_say(cents)} cent{'s' if cents != 1 else ''}" if cents else main
        if style == "adj":
            return None if cents else f"{say}-dollar"
        if style == "adj_sp":
            return None if cents else f"{say} dollar"
        if style in ("pair", "bare"):
            if not cents:
                return say
            old_dollars = int(amount.value) // 100
            if cents < 10 or (dollars >= 100) != (old_dollars >= 100):
                return None  # "a hundred fifty-six oh five" is not how anyone says a price
            return f"{say} {_say_two(cents)}"
        return None
    if amount.kind == "time":
        hour, minute = value
        if style == "digits":
            return f"{hour}:{minute:02d}" if ":" in amount.text or minute else f"{hour}"
        return f"{_say(hour)} {_say_two(minute)}" if minute else _say(hour)
    if amount.kind == "date":
        day = int(value)
        if style == "ordinal":
            return num2words(day, to="ordinal")
        if style == "digits_ord":
            return num2words(day, to="ordinal_num")
        return str(day)
    if amount.kind == "count":
        count = int(value)
        if style == "digits":
            return f"{count:,}" if "," in amount.text else str(count)
        return _say(count, a, a_and)
    return None


def _said(amount: _Amount, value: object) -> str:
    """How ``value`` reads in the response's own words, for a reason ("eighty-five dollars")."""
    rendered = _render(amount, value) or str(value)
    if amount.kind == "money" and amount.style in ("pair", "bare", "adj", "adj_sp"):
        rendered = _render(_Amount(0, 0, "money", value, "dc", amount.a_style, amount.and_style), value) or rendered
    if amount.kind == "time":
        rendered += {"am": " a.m.", "pm": " p.m."}.get(amount.half, "")
    if amount.kind == "date":
        if amount.month:
            rendered = f"{_MONTH_NAMES[amount.month - 1]} {rendered}"
        elif amount.style == "ordinal":
            rendered = f"the {rendered}"
    if amount.kind == "count" and amount.unit_text:
        unit_text = amount.unit_text
        if int(value) == 1 and unit_text.endswith("s"):
            unit_text = unit_text[:-1]
        rendered += " " + unit_text
    return rendered


# ---------------------------------------------------------------------------------------------------------
# The context a response is judged against


def _turn_texts(turn: Turn | None) -> tuple[str, ...]:
    """The texts a response may take facts from: the draft, the facts, the history, the tool results."""
    if turn is None:
        return ()
    texts = [turn.draft or ""]
    texts += list(turn.facts or [])
    texts += [message.text for message in turn.history]
    texts += list(turn.tool_results)
    return tuple(t for t in texts if t)


@lru_cache(maxsize=2048)
def _known_numbers(texts: tuple[str, ...]) -> frozenset[str]:
    known: set[str] = set()
    for text in texts:
        known |= context_numbers(text)
    return frozenset(known)


@lru_cache(maxsize=2048)
def _known_times(texts: tuple[str, ...]) -> frozenset[tuple[int, int]]:
    known: set[tuple[int, int]] = set()
    for text in texts:
        known |= {(hour % 12 or 12, minute) for hour, minute in spoken_view(text).times}
        known |= _draft_times(text)
    return frozenset(known)


@lru_cache(maxsize=2048)
def _known_days(texts: tuple[str, ...]) -> frozenset[int]:
    known: set[int] = set()
    for text in texts:
        view = spoken_view(text)
        known |= {day for _, day in view.dates} | set(view.days)
        known |= {int(d) for d in re.findall(r"\b\d{4}-\d{2}-(\d{2})\b", text)}
        known |= {int(d) for d in re.findall(r"\b\d{1,2}/(\d{1,2})\b", text)}
    return frozenset(known)


def _draft(turn: Turn | None) -> str:
    return (turn.draft or "") if turn is not None else ""


def _sentences_of(text: str) -> list[tuple[int, int, str]]:
    return [(s, e, text[s:e]) for s, e in _sentence_spans(text)]


# ---------------------------------------------------------------------------------------------------------
# negation

# Clauses whose polarity is not a claim about the caller's case: feelings, hedges, courtesies, spelling.
_NEG_SKIP_CLAUSE = re.compile(
    r"(?i)\b(?:I'm sorry|sorry|I'm afraid|afraid|I know|I understand|I get (?:it|why)|I hope|I wish|honest|honestly|"
    r"if you'd like|you'd like|I'd like|would you like|you'd rather|I'd rather|let me|let's|you're welcome|don't worry|"
    r"no worries|no problem|no rush|no harm|not a bother|no trouble|I'll need|we'll go|I'll walk|I'll hang|"
    r"take your time|I'll be|makes sense|that's fine|that's it|that's fair|that's alright|"
    r"it's true|good catch|good news|good thinking|I hear you|happy to|glad|enjoy|thanks|thank you|"
    r"heads up|you're doing|that explains|sounds like|worth|depending|depends|could be|can do|"
    r"fair enough|spot on|exactly|go on|about|around|up to|roughly|approximately|likely|probably|maybe|usually|"
    r"typically|normally|often|might|may|as in|as always|for me to|anyone|a long time|a lot|really|what a|"
    r"bad|awful|annoying|frustrating|worrying|miserable|terrible|great|wonderful|exciting|lovely|unwelcome|"
    r"a pain|stressful|smart|nice|perfect|kinder|far too|ready when|the easiest|the simplest|best bet|the main rule|"
    r"first thing|here's|here it is|there it is|there you are|here are|here is|there you go|what's|"
    r"instead of|rather than|right away|right now|I'm pulling|I'll check|I can check|I'll take|you're right|that's right)\b"
)
_PLEASANTRY = re.compile(r"^(?:Enjoy|Have a|Good luck|Take care|Safe travels|Happy|Glad|Congrat|Hope|I hope|Stay|Bye|See you|Anytime|You're welcome|My pleasure)\b")
_IMPERATIVE_START = re.compile(
    r"^(?i:(?:Just|Please|Now|Then|First|So|Once you land),?\s+)?(?i:Let|Tell|Look|Go|Bring|Call|Make sure|Keep|Check|Head|Try|Give|Pop|Grab|"
    r"Take|Send|Put|Get|Have|Turn|Come|Read|Unplug|Pick|Open|Tap|Hold|Email|Text|Drop|Box|Ask|Stop|Mind|"
    r"Toss|Fill|Switch|Start|Pay|Dial|Wait|Restart|Plug|Write|Say|Use|Leave|Don't|Do not|Be|Reply|Visit|Grab)\b"
)
_SUBORDINATE_BEFORE = re.compile(
    r"(?i)\b(?:if|when|whenever|once|unless|since|before|after|while|because|until|whether|than|though|although|"
    r"so that|in case|as long as|even|only|mostly|just|nothing|nobody|none|neither|no one|what|where|how)\b"
    r"|\bso\s+(?:I|you|we|they|he|she|it|there|that|nobody|your|the)\b"
)
_CODE_AFTER = re.compile(r"^\s+(?:[A-Z]\b|(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\s+(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|hundred)\b)")
_NEGATIVE_AHEAD = re.compile(r"(?i)^\s*(?:\w+\s+){0,2}?(?:not|no|never|nothing|none|nobody|n't|non-\w+)\b")
_ANSWER = re.compile(r"^(Yes|Yeah|Yep|No|Nope)\b(?!\s+(?:problem|worries|rush|trouble|need|harm|way|longer))[,.!:]?\s*")
_ADVERBS = frozenset("also still just only usually normally always automatically already now really often typically actually then".split())
_NON_SUBJECT = frozenset(
    "to the a an of for in on at by with from into onto be been being is are was were will would can could should may "
    "might must have has had do does did not never please and or but if so that's it's there's here's as than per each "
    "your my our their his her its this these those which what who that".split()
) | frozenset(_VALUE)
_MAIN_VERBS = frozenset(
    "apply arrive come cover expire include match post ship work count qualify need cost renew show affect change "
    "require allow get land run go take add charge pay drop close open start end stay keep mean help reach "
    "hold accept earn fit carry waive process deliver settle transfer offer list say expect kick roll cancel block "
    "clear reset".split()
)
_INTRANSITIVE = frozenset("arrive come go work land run stay start end expire post ship close open settle".split())
_VERB_FORMS: dict[str, tuple[str, str]] = {}
for _verb in sorted(_MAIN_VERBS):
    _VERB_FORMS[_third(_verb)] = (_verb, "third")
    _VERB_FORMS.setdefault(_past(_verb), (_verb, "past"))
_NO_MASS = frozenset("interest access signal money data service coverage penalty charges fees credits".split())
_PHRASE_FLIPS = [
    (r"\bat no (?:extra |additional )?(?:cost|charge)\b", "for an extra fee"),
    (r"\bfree of charge\b", "for a fee"),
    (r"\bno additional cost\b", "an additional cost"),
    (r"\bno longer\b", "still"),
    (r"\bnot required\b", "required"),
    (r"\bnot guaranteed\b", "guaranteed"),
    (r"\bnot covered\b", "covered"),
]
_LEXICAL_FLIPS = {
    "approved": "denied", "denied": "approved", "declined": "approved", "in-network": "out-of-network",
    "out-of-network": "in-network", "available": "unavailable", "unavailable": "available", "valid": "invalid",
    "eligible": "ineligible", "ineligible": "eligible", "always": "never", "active": "inactive",
    "non-refundable": "refundable", "refundable": "non-refundable", "non-transferable": "transferable",
}
_ANSWER_FLIP = {"yes": "no", "yeah": "no", "yep": "nope", "no": "yes", "nope": "yep"}
_CONTRACTION = re.compile(rf"\b(I|you|we|they|it|he|she|that|there|who)({_APOS})(s|re|ve|ll|d|m)\b", re.I)
_NOUN_S = re.compile(rf"\b([A-Za-z]{{3,}})({_APOS})s\s+(?=(?:(?:already|now|just|still)\s+)?(?:on|off|done|in|been|cancelled|waived|applied|set|open|closed|gone|ready|frozen|\w+ed)\b)")
_PARTICIPLES = frozenset(participle for _, participle in _IRREGULAR.values()) - {"read", "set", "put", "cut", "let", "hit", "shut", "reset", "split", "come", "run"}


def _looks_participle(word: str) -> bool:
    """"cancelled", "taken", "paid": a past participle (roughly)."""
    if word in _PARTICIPLES:
        return True
    if word in ("need", "feed", "speed", "bleed", "proceed", "succeed", "exceed", "seed", "children", "even", "open", "often", "seven", "eleven", "ten", "when", "then", "between", "screen", "green", "token"):
        return False
    return word.endswith(("ed", "en"))


_MODAL_BEFORE = re.compile(rf"\b(?:to|do|does|did|will|would|could|should|can|may|might|must|{_APOS}d|{_APOS}ll|n{_APOS}t|not)\s+$", re.I)


def _neg_candidates(sentence: str) -> list[tuple[int, int, str]]:
    """Ways to flip one claim of a sentence: ``(start, end, replacement)``, in order of position."""
    out: list[tuple[int, int, str]] = []

    def add(start: int, end: int, new: str) -> None:
        out.append((start, end, new))

    for pattern, new in _PHRASE_FLIPS:
        for m in re.finditer(pattern, sentence, re.I):
            add(m.start(), m.end(), _match_case(m.group(0), new))
    for m in re.finditer(rf"\b(can{_APOS}t|cannot|can not)\b", sentence, re.I):
        add(m.start(), m.end(), _match_case(m.group(0), "can"))
    for m in re.finditer(rf"\b(won{_APOS}t|will not)\b", sentence, re.I):
        add(m.start(), m.end(), _match_case(m.group(0), "will"))
    for m in re.finditer(rf"\b(is|are|was|were|would|could|should|has|have|had|does|do|did)(n{_APOS}t| not)\b(\s+\w+)?", sentence, re.I):
        aux, rest = m.group(1), m.group(3) or ""
        low = aux.lower()
        if low in ("does", "do", "did"):
            verb = rest.strip().lower()
            if not verb or not verb.isalpha() or verb in _VALUE:
                continue
            if low == "do" and re.search(r"(?:^|[,;:.!?]\s*)$", sentence[: m.start()]):
                continue  # an instruction: "Don't cancel Corvid yourself"
            form = {"does": _third, "did": _past}.get(low, lambda v: v)(verb)
            add(m.start(), m.end(), _match_case(aux, form))
            continue
        add(m.start(), m.end() - len(rest), aux)
    for m in re.finditer(rf"\b(I|you|we|they|it|he|she|that|there|who)({_APOS})(s|re|m)\s+not\b", sentence, re.I):
        add(m.start(), m.end(), m.group(1) + m.group(2) + m.group(3))
    for m in re.finditer(rf"\b([a-z]+)({_APOS})s\s+not\b", sentence):
        if m.group(1).lower() not in ("it", "that", "there", "he", "she", "who", "what", "here", "let"):
            add(m.start(), m.end(), m.group(1) + m.group(2) + "s")
    for m in re.finditer(r"\bnever\s+(\w+)", sentence):
        add(m.start(), m.start() + len("never "), "")
    for m in re.finditer(r"\bno\s+([a-z][\w-]*)", sentence):
        noun = m.group(1)
        if noun in ("need", "problem", "rush", "worries", "harm", "trouble", "one", "longer", "way", "more", "matter", "bother") or noun in _UNIT_STOP:
            continue
        if noun in _NO_MASS or noun.endswith("s") and not noun.endswith("ss"):
            add(m.start(), m.start() + 3, "")
        else:
            add(m.start(), m.start() + 2, _article_for(noun))
    for m in re.finditer(r"\b(does|do|did)\s+(?!not\b)([a-z]+)\b", sentence):
        if m.group(2) in _UNIT_STOP or m.group(2) in _VALUE or m.group(2).endswith("s") or re.search(r"(?:^|[,;:.!?]\s*)$", sentence[: m.start()]):
            continue
        add(m.start(), m.end(1), m.group(1) + "n't")
    for m in re.finditer(r"\b(is|are|was|were)\b(?!n)", sentence):
        if not _NEGATIVE_AHEAD.match(sentence[m.end():]) and not re.match(r"\s+that\b", sentence[m.end():]):
            add(m.start(), m.end(), m.group(1) + "n't")
    for m in re.finditer(rf"\b(can|will|would|could|should)\b(?!{_APOS}t)(?!\s+(?:I|you|we|he|she|they|it)\b)", sentence):
        if _NEGATIVE_AHEAD.match(sentence[m.end():]):
            continue
        add(m.start(), m.end(), {"can": "can't", "will": "won't"}.get(m.group(1), m.group(1) + "n't"))
    for m in re.finditer(r"\b(has|have|had)\s+(\w+)", sentence):
        aux, nxt = m.group(1), m.group(2).lower()
        if _NEGATIVE_AHEAD.match(sentence[m.end(1):]) or _MODAL_BEFORE.search(sentence[: m.start()]):
            continue
        if nxt in ("been", "got", "already", "just", "gone") or _looks_participle(nxt):
            add(m.start(), m.end(1), aux + "n't")
        elif nxt.isalpha():
            add(m.start(), m.end(1), {"has": "doesn't have", "have": "don't have", "had": "didn't have"}[aux])
    for m in _CONTRACTION.finditer(sentence):
        pronoun, apostrophe, short = m.group(1), m.group(2), m.group(3).lower()
        rest = sentence[m.end():]
        if _NEGATIVE_AHEAD.match(rest) or _CODE_AFTER.match(rest):
            continue
        following = [w.lower() for w in re.findall(r"[A-Za-z]+", rest)[:3]]
        while following and following[0] in _ADVERBS:
            following.pop(0)
        nxt = following[0] if following else ""
        if short == "s":
            if pronoun.lower() == "who":
                continue
            new = "hasn't" if nxt in ("been", "got", "gone") else "isn't"
            add(m.start(), m.end(), f"{pronoun} {new}")
        elif short == "re":
            add(m.start(), m.end(), f"{pronoun} aren't")
        elif short == "ve":
            add(m.start(), m.end(), f"{pronoun} haven't")
        elif short == "ll":
            add(m.start(), m.end(), f"{pronoun} won't")
        elif short == "d":
            new = "hadn't" if nxt in ("already", "been", "got") or _looks_participle(nxt) else "wouldn't"
            add(m.start(), m.end(), f"{pronoun} {new}")
        elif short == "m":
            add(m.start(), m.end(), f"{pronoun}{apostrophe}m not")
    for m in _NOUN_S.finditer(sentence):
        if m.group(1).lower() in ("let", "here", "what", "that", "it", "there", "who", "he", "she", "where", "how", "everything", "everyone"):
            continue
        following = [w.lower() for w in re.findall(r"[A-Za-z]+", sentence[m.end():])[:3]]
        while following and following[0] in _ADVERBS:
            following.pop(0)
        new = "hasn't" if following and following[0] in ("been", "gone", "got") else "isn't"
        add(m.start(), m.end(), f"{m.group(1)} {new} ")
    for m in re.finditer(r"\b([a-z]+)\b", sentence):
        form = m.group(1)
        if form not in _VERB_FORMS:
            continue
        verb, tense = _VERB_FORMS[form]
        # a subject before it in its clause (skipping adverbs), and no auxiliary: "the card still gets there"
        left, _ = _clause_bounds(sentence, m.start())
        before = re.findall(r"[A-Za-z'’-]+", sentence[left : m.start()])
        while before and before[-1].lower() in _ADVERBS:
            before.pop()
        if not before or before[-1].lower() in _NON_SUBJECT or before[-1].lower().endswith(("'s", "’s", "'ve", "'re", "n't")):
            continue
        after = sentence[m.end():]
        if re.match(r"\s+(?:is|are|was|were|has|have|will|can|would|'s)\b", after):
            continue
        if tense == "past" and form.endswith("ed") and re.match(r"\s+(?:by|to|from)\b", after):
            continue
        if tense == "past" and re.match(r"\s*(?:[,.;:!?]|$)", after) and verb not in _INTRANSITIVE:
            continue  # "call history included": a participle, not a past tense
        add(m.start(), m.end(), ("doesn't " if tense == "third" else "didn't ") + verb)
    for m in re.finditer(rf"\b(Everything|everything|Everyone|everyone)(?:{_APOS}s| is)\b", sentence):
        add(m.start(), m.end(), _match_case(m.group(1), "nothing" if m.group(1).lower() == "everything" else "no one") + "'s")
    for m in re.finditer(r"\b([Ff]ound it)\b", sentence):
        add(m.start(), m.end(), _match_case(m.group(0), "couldn't find it"))
    for word, new in _LEXICAL_FLIPS.items():
        for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", sentence, re.I):
            add(m.start(), m.end(), _match_case(m.group(0), new))
    out.sort(key=lambda c: (c[0], -(c[1] - c[0])))
    return out


def _clause_bounds(sentence: str, index: int) -> tuple[int, int]:
    """The clause of ``sentence`` around ``index``: between commas, semicolons, colons and dashes."""
    left = max(sentence.rfind(ch, 0, index) for ch in ",;:—") + 1
    rights = [i for i in (sentence.find(ch, index) for ch in ",;:—") if i != -1]
    return left, min(rights) if rights else len(sentence)


def _negation_ok(sentence: str, start: int, end: int, new: str) -> bool:
    """Whether flipping ``sentence[start:end]`` to ``new`` flips a plain claim (not a courtesy, a hedge, a
    subordinate clause, a code being read out)."""
    left, right = _clause_bounds(sentence, start)
    clause = sentence[left:right]
    prefix = sentence[left:start]
    if _NEG_SKIP_CLAUSE.search(clause) or _SUBORDINATE_BEFORE.search(sentence[left:end]):
        return False
    if re.fullmatch(r"\s*(?:Inside|Below|Above|Attached|Included|Enclosed|Also|Here|There)\s+", prefix) or (
        re.match(r"\s*(?:On|In|At|Under|Inside|Below|Above|Behind|Beside|Near|Next to)\b", prefix) and not re.search(r"\b(?:I|you|we|they|he|she|it|there|this|that)\b", prefix, re.I)
        and re.fullmatch(r"(?:is|are|was|were)n't", new)
    ):
        return False  # "Inside is a square pattern", "On the back is a long number": a fronted place, not a subject
    if re.search(r"\b(?:that|which|who)\s+$", prefix):
        return False  # a relative clause: "a nonstop ... that lands at nine oh two"
    if _CODE_AFTER.match(sentence[end:]):
        return False  # "Your code is Z C five ...": a code read out, not a claim
    if re.match(r"\s+(?:only|just|about|around|probably|likely|usually|mostly)\b", sentence[end:]):
        return False  # "It's only an estimate" -> "It isn't only an estimate" says nothing clear
    made_positive = not re.search(r"n't|\bnot\b|\bno\b|\bnever\b|couldn't|\bun|\bin(?:active|valid|eligible)|out-of|non-", new)
    if made_positive and re.search(r"\b(?:until|any|anything|anyone|either|at all)\b|\bin\s+[\w-]+\s+(?:days|weeks|months|years)\b|\ba thing\b", sentence[end:right]):
        return False  # "doesn't mature until July", "hasn't been restarted in forty-one days" have no positive twin
    if re.match(r"\s*(?:[,.;:!?]|$)", sentence[end:]) and re.match(r"^\s*(?!(?:I|you|we|they|he|she|it)\b)\w", prefix) and new.endswith("n't"):
        return False  # "Ten to noon it is": a fronted phrase
    return True


def _first_negation(sentence: str, skip_until: int = 0) -> tuple[int, int, str] | None:
    for start, end, new in _neg_candidates(sentence):
        if start < skip_until:
            continue
        if _negation_ok(sentence, start, end, new) and sentence[:start] + new + sentence[end:] != sentence:
            return start, end, new
    return None


def _has_content(sentence: str) -> bool:
    """A sentence that says something about the caller's case: an amount, a date, a name, a number."""
    return bool(_amounts(sentence)) or len(sentence.split()) >= 7


def _negation(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    sentences = _sentences_of(response)
    picks: list[tuple[int, str, int]] = []  # (preference, new text, position)
    for position, (s_start, s_end, sentence) in enumerate(sentences):
        if sentence.rstrip().endswith("?") or _PLEASANTRY.match(sentence) or _IMPERATIVE_START.match(sentence):
            continue
        answer = _ANSWER.match(sentence)
        if answer and answer.end() >= len(sentence.rstrip()):
            # a bare "Yes." flips with the next sentence's claim
            if position + 1 < len(sentences):
                n_start, n_end, following = sentences[position + 1]
                if following.rstrip().endswith("?"):
                    continue
                pick = _first_negation(following)
                if pick:
                    start, end, new = pick
                    flipped = _match_case(answer.group(1), _ANSWER_FLIP[answer.group(1).lower()])
                    text = response[:s_start] + flipped + sentence[len(answer.group(1)) :] + response[s_end:n_start] + following[:start] + new + following[end:] + response[n_end:]
                    picks.append((0, text, position))
            continue
        pick = _first_negation(sentence, answer.end() if answer else 0)
        if not pick:
            continue
        start, end, new = pick
        changed = sentence[:start] + new + sentence[end:]
        if answer:
            first_clause_end = min([i for i in (sentence.find(ch, answer.end()) for ch in ",;:—") if i != -1] or [len(sentence)])
            if start < first_clause_end:
                flipped = _match_case(answer.group(1), _ANSWER_FLIP[answer.group(1).lower()])
                changed = flipped + changed[len(answer.group(1)) :]
        text = response[:s_start] + changed + response[s_end:]
        picks.append((0 if _has_content(sentence) else 1, text, position))
    if not picks:
        return None
    picks.sort(key=lambda p: (p[0], p[2]))
    text = _tidy(picks[0][1])
    # "isn't already in your checking" -> "isn't in your checking"; "has been moved ... yet" -> "... moved"
    text = re.sub(rf"\b((?:is|are|was|were|has|have|had|does|do|did|wo|ca|could|would|should)n{_APOS}t)\s+(?:already|still|just|also|now)\s+", r"\1 ", text)
    text = re.sub(rf"\b((?:I|you|we|they|it|he|she){_APOS}m not|(?:I|you|we|they|he|she|it) (?:won|wouldn|haven|hadn|aren|isn){_APOS}t)\s+(?:already|still|just|also|now)\s+", r"\1 ", text)
    change_start, change_end = _diff_span(response, text)
    if not re.search(r"n't|\bnot\b", text[max(0, change_start - 4) : change_end + 1]):
        text = re.sub(r"(\b(?:has|have|had|is|are) been [^,.;]*?) yet\b", r"\1", text)
    else:
        clause_end = min([i for i in (text.find(ch, change_end) for ch in ",;:.!?") if i != -1] or [len(text)])
        negated = re.sub(r"\b(?:too|as well)\b", "either", text[change_start:clause_end])
        negated = re.sub(r"\s+\b(?:still|already)\b(?=\s)", "", negated)
        text = text[:change_start] + negated + text[clause_end:]
    if _normal(text) == _normal(response):
        return None
    clause = _snippet(text, *_diff_span(response, text))
    return Corruption("negation", text, f'Reverses the claim: says "{clause}", the opposite of what the draft says.', failure_class=_FAILURE_CLASS["negation"])


def _diff_span(old: str, new: str) -> tuple[int, int]:
    """The span of ``new`` that differs from ``old``."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, max(prefix, len(new) - suffix)


# ---------------------------------------------------------------------------------------------------------
# swap_amounts and invent_number

_KIND_RANK = {"money": 0, "count": 1, "time": 2, "date": 3}


def _fits_range(amount: _Amount, value: object) -> bool:
    """Whether ``value`` keeps a range in order ("three to five days": the three stays under five)."""
    if amount.kind == "time":
        return True
    if not isinstance(value, int):
        return True
    if amount.low is not None and value <= amount.low:
        return False
    if amount.high is not None and value >= amount.high:
        return False
    return True


def _with_values(response: str, changes: list[tuple[_Amount, str]]) -> str:
    text = response
    for amount, new in sorted(changes, key=lambda change: -change[0].start):
        text = _replace_with_article(text, amount.start, amount.end, new, tidy=False)
    return _tidy(text)


def _swap_amounts(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    draft = _draft(turn)
    amounts = list(_amounts(response, draft))
    options: list[tuple[tuple[int, int], str, str]] = []
    for i, a in enumerate(amounts):
        for b in amounts[i + 1 :]:
            if a.kind != b.kind or a.value == b.value or (a.kind == "count" and a.unit != b.unit):
                continue
            gap = response[a.end : b.start]
            if a.in_range and b.in_range and re.fullmatch(r"\s*(?:to|-|–|until|till|or|and)\s*", gap):
                continue  # the two ends of one range: "five to seven" -> "seven to five" is just odd
            neutral = r"the|other|another|one|and|or|a|an|at|on|then|both|either|each|plus|" + "|".join(_MONTH_NAMES + _WEEKDAYS)
            if not re.sub(rf"(?i)\b(?:{neutral})\b|[\s,;:-]", "", gap):
                continue  # "one on the twenty-eighth, the other on the thirtieth": swapping says the same thing
            if not (_fits_range(a, b.value) and _fits_range(b, a.value)):
                continue
            if a.kind == "time" and (a.half != b.half or a.in_range or b.in_range):
                continue  # "after three forty tonight", "from one to one" are not swaps anyone would make
            if a.kind == "date" and ((a.month is None) != (b.month is None) or a.in_range or b.in_range):
                continue
            new_a, new_b = _render(a, b.value), _render(b, a.value)
            if not new_a or not new_b or new_a == a.text and new_b == b.text:
                continue
            text = _with_values(response, [(a, new_a), (b, new_b)])
            why = f"Swaps two figures: says {_said(a, b.value)} where the draft has {_said(a, a.value)}, and the other way round."
            options.append(((_far_apart(a.value, b.value), 0, _KIND_RANK[a.kind]), text, why))
    if turn is not None and not any(rank[0] == 0 for rank, _, _ in options):
        said = {(a.kind, a.value) for a in amounts}
        said_numbers = context_numbers(response)
        for a in amounts:
            if a.kind == "time" and a.in_range:
                continue
            for value in _draft_alternatives(a, draft):
                if (a.kind, value) in said or value == a.value or not _fits_range(a, value):
                    continue
                if a.kind in ("money", "count") and str(int(value) // (100 if a.kind == "money" else 1)) in said_numbers:
                    continue  # already said for something else in this response
                new = _render(a, value)
                if not new:
                    continue
                text = _with_values(response, [(a, new)])
                why = f"Says {_said(a, value)} where the draft says {_said(a, a.value)}; {_said(a, value)} is a different figure in the draft."
                options.append(((_far_apart(a.value, value), 1, _KIND_RANK[a.kind]), text, why))
    # a swap within the response first, a figure taken from the draft next; figures of one size before
    # figures far apart ("a fee of twenty-five thousand dollars" is a mix-up nobody would make)
    return _best_option("swap_amounts", [o for o in options if o[1] != response and o[0][0] < 2], rng)


def _best_option(kind: str, options: list[tuple], rng: random.Random) -> Corruption | None:
    """One of the best-ranked ``(rank, text, why)`` options, drawn with ``rng``, as a corruption of ``kind``."""
    if not options:
        return None
    best = min(rank for rank, _, _ in options)
    _, text, why = rng.choice([o for o in options if o[0] == best])
    return Corruption(kind, text, why, failure_class=_FAILURE_CLASS[kind])


def _far_apart(a: object, b: object) -> int:
    """0 for two amounts of about one size, 1 when they differ by more than five times (a fee and a
    balance), 2 by more than fifty (a wire fee and a daily limit): the realistic mix-up is between
    figures of one size, and the last is never made."""
    if isinstance(a, int) and isinstance(b, int) and min(a, b) > 0:
        ratio = max(a, b) / min(a, b)
        return 2 if ratio > 50 else int(ratio > 5)
    return 0


def _draft_alternatives(amount: _Amount, draft: str) -> list[object]:
    """Other figures of the same kind in the draft, to put in place of ``amount``."""
    if amount.kind == "money":
        return sorted(_draft_money(draft))
    if amount.kind == "time":
        return sorted((hour, minute) for hour, minute, half in _draft_times_with_half(draft) if not amount.half or not half or half == amount.half)
    if amount.kind == "count" and amount.unit:
        unit = re.escape(amount.unit)
        return sorted({int(n.replace(",", "")) for n in re.findall(rf"\b(\d{{1,3}}(?:,\d{{3}})+|\d+)[ -]{unit}s?\b", draft, re.I)} - {0, 1})
    if amount.kind == "date" and amount.month:
        days = set()
        for month, day in re.findall(r"\b\d{4}-(\d{2})-(\d{2})\b", draft):
            if int(month) == amount.month:
                days.add(int(day))
        for month_name, day in re.findall(r"\b(" + "|".join(m[:3] for m in _MONTH_NAMES) + r")[a-z]*\.?\s+(\d{1,2})\b", draft):
            if [m[:3] for m in _MONTH_NAMES].index(month_name) + 1 == amount.month:
                days.add(int(day))
        return sorted(days)
    return []


def _nearby(amount: _Amount) -> list[object]:
    """Plausible wrong values near ``amount``'s, most natural first (75 -> 85 dollars, 7:45 -> 8:15)."""
    value = amount.value
    if amount.kind == "money":
        dollars, cents = divmod(int(value), 100)
        if dollars == 0:
            return [max(1, cents + d) for d in (10, -10, 5, 20) if 0 < cents + d < 100]
        if dollars < 10:
            steps = (2, 3, -2, 5)
        elif dollars < 100:
            steps = (10, -10, 5, -5, 20) if dollars % 5 == 0 else (10, -10, 2, -2, 20)
        elif dollars < 1000:
            steps = (10, -10, 20, -20, 50) if dollars % 10 else (50, -50, 20, -20, 100)
        else:
            steps = (100, -100, 200, -200, 1000)
        return [(dollars + step) * 100 + cents for step in steps if dollars + step > 0]
    if amount.kind == "time":
        hour, minute = value
        minutes = (hour % 12) * 60 + minute
        steps = (30, -30, 15, -15, 60) if minute else (60, -60, 120, -120)
        out = []
        for step in steps:
            new = minutes + step
            if amount.half and not 0 <= new < 720:
                continue  # would cross noon or midnight: "eleven forty-five a.m." must not become "twelve fifteen a.m."
            new %= 720
            new_hour, new_minute = divmod(new, 60)
            out.append((new_hour or 12, new_minute))
        return out
    if amount.kind == "date":
        return [int(value) + d for d in (1, -1, 2, -2, 3, 7, -7) if 1 <= int(value) + d <= 28]
    if amount.kind == "count":
        n = int(value)
        if amount.unit == "percent":
            steps = (5, -5, 10, -10)
        elif n < 10:
            steps = (1, 2, -1, 3)
        elif n < 20:
            steps = (5, -5, 10) if n % 5 == 0 else (2, -2, 3, -3)
        elif n < 100:
            steps = (5, -5, 10, -10) if n % 5 == 0 else (2, -2, 3, -3)
        else:
            step = 10 ** max(1, len(str(n)) - 2)
            steps = (step, -step, 2 * step, -2 * step)
        return [n + s for s in steps if n + s >= 2 and (amount.unit != "percent" or n + s <= 100)]
    return []


def _is_known(amount: _Amount, value: object, texts: tuple[str, ...], response: str) -> bool:
    """Whether ``value`` appears anywhere in the context (or already in the response)."""
    numbers = _known_numbers(texts + (response,))
    if amount.kind == "money":
        dollars, cents = divmod(int(value), 100)
        return str(dollars) in numbers or (cents and f"{dollars}.{cents:02d}".rstrip("0") in numbers)
    if amount.kind == "time":
        hour, minute = value
        return (hour, minute) in _known_times(texts + (response,)) or (minute and str(hour * 100 + minute) in numbers)
    if amount.kind == "date":
        return int(value) in _known_days(texts + (response,))
    return str(value) in numbers


def _invent_number(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    draft = _draft(turn)
    texts = _turn_texts(turn)
    amounts = list(_amounts(response, draft))

    def tier(amount: _Amount) -> int:
        if amount.kind == "count":
            return 3 if int(amount.value) > 10 else 4
        return _KIND_RANK[amount.kind]

    by_tier: dict[int, list[_Amount]] = {}
    for amount in amounts:
        by_tier.setdefault(tier(amount), []).append(amount)
    for level in sorted(by_tier):
        candidates = list(by_tier[level])
        rng.shuffle(candidates)
        for amount in candidates:
            if amount.kind == "time" and amount.in_range:
                continue
            for value in _nearby(amount):
                if value == amount.value or not _fits_range(amount, value) or _is_known(amount, value, texts, response):
                    continue
                new = _render(amount, value)
                if not new or new == amount.text:
                    continue
                text = _with_values(response, [(amount, new)])
                why = f"Says {_said(amount, value)} instead of {_said(amount, amount.value)}; that figure is nowhere in the draft."
                return Corruption("invent_number", text, why, failure_class=_FAILURE_CLASS["invent_number"])
    return None


# ---------------------------------------------------------------------------------------------------------
# wrong_action

_ACTION_WORDS = {
    "refund": "charge", "refunded": "charged", "charged": "refunded", "charge": "refund",
    "cancel": "confirm", "cancelled": "confirmed", "canceled": "confirmed",
    "rebook": "refund", "rebooked": "refunded",
    "exchange": "return", "exchanged": "returned",
    "upgrade": "downgrade", "upgraded": "downgraded", "downgrade": "upgrade", "downgraded": "upgraded",
    "delivered": "returned",
    "locked": "unlocked", "unlocked": "locked", "unlock": "lock", "frozen": "unfrozen", "unfrozen": "frozen",
    "suspend": "reactivate", "suspended": "reactivated", "blocked": "unblocked", "unblocked": "blocked",
    "activated": "deactivated", "deactivated": "activated",
    "waive": "charge", "waived": "charged",
    "approved": "denied", "approve": "deny", "denied": "approved",
    "submitted": "withdrawn", "filed": "withdrawn",
    "placed": "cancelled", "opened": "closed",
    "renew": "close", "renewed": "closed",
    "reschedule": "cancel", "rescheduled": "cancelled",
    "credited": "charged", "credit": "charge",
    "accepted": "declined", "declined": "accepted",
    "enabled": "disabled", "disabled": "enabled",
    "increase": "decrease", "increased": "decreased", "decrease": "increase", "decreased": "increased",
    "deposited": "withdrawn", "transferred": "cancelled", "reinstated": "cancelled",
    "book": "cancel", "booked": "cancelled", "shipped": "cancelled",
    "add": "remove", "added": "removed", "remove": "add", "removed": "added",
}
_ACTION_PATTERN = re.compile(r"(?<![\w-])(" + "|".join(sorted(_ACTION_WORDS, key=len, reverse=True)) + r")(?![\w-])", re.I)
_BE_BEFORE = re.compile(rf"(?:\b(?:is|are|was|were|be|been|being|get|got)|{_APOS}s|{_APOS}re)\s+(?:\w+ly\s+|all\s+|now\s+|just\s+|already\s+)?$", re.I)
# The action is the agent's, or the state it left the case in: "I've cancelled", "it's refunded", "Added both",
# "I can waive", "want me to charge". A word in any other role ("an event being cancelled", "a fare booked
# more than a day ago", "people who want to unlock the phone") is left alone.
_AGENT_BEFORE = re.compile(
    rf"(?:\b(?:is|are|was|were|be|been|get|got|has|have|had|I|we|me to|and I|I can|we can|I could|I will|we will|I would|"
    rf"I'll|we'll|I've|we've|I'd|we'd|I'm|we're|it|they|all|both)|{_APOS}(?:s|re|ve|ll|d|m))"
    rf"\s+(?:(?:already|just|now|all|been|also|fully|automatically|successfully|officially|gone ahead and|go ahead and)\s+)*$",
    re.I,
)
_NOT_ACTION_CLAUSE = re.compile(r"(?i)\b(?:which|who|when|if|once|while|whether|until|unless|than|since|because|before|after|being)\b")


def _action_candidates(response: str) -> list[tuple[int, int, str, str, str]]:
    """``(start, end, replacement, old word, new word)`` for every action the response says was or will be
    taken."""
    out: list[tuple[int, int, str, str, str]] = []
    for m in _ACTION_PATTERN.finditer(response):
        word = m.group(1)
        low = word.lower()
        new = _ACTION_WORDS[low]
        before, after = response[: m.start()], response[m.end() :]
        clause_start = max(before.rfind(ch) for ch in ",;:.!?—") + 1
        prefix = before[clause_start:]
        sentence_prefix = before[max(before.rfind(ch) for ch in ".!?:;") + 1 :]
        base_form = low in ("refund", "charge", "cancel", "rebook", "exchange", "upgrade", "downgrade", "unlock", "suspend", "waive", "approve", "renew", "reschedule", "credit", "increase", "decrease", "book", "add", "remove")
        at_start = not base_form and (not sentence_prefix.strip() or re.fullmatch(r"\s*(?:All|Both|Just|Now|Already|And)\s+", sentence_prefix) is not None)
        if _NOT_ACTION_CLAUSE.search(prefix):
            continue
        if re.match(r"\s+(?:as|down)\b", after):
            continue  # "denied as not covered", "locked down"
        if low == "book" and not re.match(r"\s+(?:it|that|them|the|him|her)\b", after):
            continue  # "book you a visit" -> "cancel you a visit" is not English
        sentence_end = min([i for i in (response.find(ch, m.end()) for ch in ".!?") if i != -1] or [len(response)])
        if low in ("refund", "refunded", "credited", "credit") and re.search(r"\bback\b", response[m.end() : sentence_end]):
            continue  # "the refund would be ... back to your card": a charge does not come back
        if new[:5] in response[clause_start:sentence_end].lower() and low not in ("add", "remove", "added", "removed"):
            continue  # "rebook for free, or take a full refund": the other option is already there
        if low in ("refund", "charge") and re.search(r"\b(?:the|your|The|Your)\s+$", before):
            # the noun: "the refund goes to your Visa" -> "the charge goes to your Visa"
            if not re.match(rf"(?:{_APOS}s\b|\s+(?:goes|lands|is|will|should|would|comes|has|was)\b)", after):
                continue
        elif not (at_start or _AGENT_BEFORE.search(before)):
            continue
        if low in ("locked", "lock", "unlock") and re.match(r"\s+(?:it\s+)?in\b", after):
            continue  # "locked in": agreed, not locked
        if low in ("book", "add", "remove", "file", "cancel", "charge", "credit") and not re.match(r"\s+(?:you|it|him|her|them|a|an|the|that|those|this|both|one|alerts?|your|his|her|their|\w+)\b", after):
            continue
        if low in ("add", "remove") and re.match(r"\s+(?:up|on)\b", after):
            continue
        replacement = _match_case(word, new)
        end = m.end()
        if low == "booked" and _BE_BEFORE.search(before):
            replacement = _match_case(word, "waitlisted")  # "you're booked" -> "you're waitlisted"
        if low == "shipped" and re.search(rf"\b(?:has|have|hasn{_APOS}t|haven{_APOS}t|had)\s+(?:already\s+|just\s+)?$", before, re.I):
            replacement = _match_case(word, "been cancelled")
        if low in ("add", "added", "remove", "removed"):
            # "added them to that visit" -> "removed them from that visit"
            tail = response[m.end() : m.end() + 60]
            preposition = re.search(r"^(?:\s+[\w'’-]+){0,5}?\s+(to|onto|from|off)\b", tail)
            if preposition:
                swap = {"to": "from", "onto": "from", "from": "to", "off": "to"}[preposition.group(1)]
                replacement += tail[: preposition.start(1)] + swap
                end = m.end() + preposition.end(1)
        out.append((m.start(), end, replacement, low, replacement.split()[0].lower()))
    switch = [
        (r"\b(turn|turned|switch|switched|turning|switching)\s+on\b", lambda m: f"{m.group(1)} off", "on", "off"),
        (r"\b(turn|turned|switch|switched|turning|switching)\s+off\b", lambda m: f"{m.group(1)} on", "off", "on"),
        (rf"\b(is|are|{_APOS}s|{_APOS}re)\s+on\b(?=\s*(?:now\b|for\b|[,.;!]|$))", lambda m: f"{m.group(1)} off", "on", "off"),
        (r"\b(put|putting)\s+you\s+through\b(?!\s+to\b)", lambda m: f"{m.group(1)} you on hold", "putting the caller through", "putting them on hold"),
        (r"\b(Connecting|connecting|Transferring|transferring)\s+you\b(?!\s+(?:to|straight|directly)\b)", lambda m: _match_case(m.group(1), "putting") + " you on hold", "connecting the caller", "putting them on hold"),
        (r"\b(signed|sign|signing)\s+up\s+for\b", lambda m: {"signed": "unsubscribed", "sign": "unsubscribe", "signing": "unsubscribing"}[m.group(1)] + " from", "signed up", "unsubscribed"),
        (r"\b(pick|picking)\s+(it|them)\s+up\b", lambda m: {"pick": "drop", "picking": "dropping"}[m.group(1)] + f" {m.group(2)} off", "pick up", "drop off"),
        (r"\b(saves|save|saving)\s+(?=you\b)", lambda m: {"save": "cost", "saves": "costs", "saving": "costing"}[m.group(1)] + " ", "save", "cost"),
    ]
    for pattern, make, old, new in switch:
        for m in re.finditer(pattern, response):
            out.append((m.start(), m.end(), make(m), old, new))
    out.sort(key=lambda c: c[0])
    kept: list[tuple[int, int, str, str, str]] = []
    for candidate in out:
        if not kept or candidate[0] >= kept[-1][1]:
            kept.append(candidate)
    return kept


def _wrong_action(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    candidates = _action_candidates(response)
    if not candidates:
        return None
    sentences = _sentence_spans(response)

    def is_question(index: int) -> bool:
        return any(s <= index < e and response[s:e].rstrip().endswith("?") for s, e in sentences)

    statements = [c for c in candidates if not is_question(c[0])] or candidates
    first_sentence = next(i for i, (s, e) in enumerate(sentences) if any(s <= c[0] < e for c in statements))
    s, e = sentences[first_sentence]
    pool = [c for c in statements if s <= c[0] < e]
    start, end, new, old, new_word = rng.choice(pool)
    text = _replace_with_article(response, start, end, new)
    if _normal(text) == _normal(response):
        return None
    snippet = _snippet(text, *_diff_span(response, text))
    why = f'Gets the action wrong: "{snippet}", but the draft says {old}, not {new_word}.'
    return Corruption("wrong_action", text, why, failure_class=_FAILURE_CLASS["wrong_action"])


# ---------------------------------------------------------------------------------------------------------
# wrong_item

_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_CITIES = [
    "Atlanta", "Austin", "Baltimore", "Boston", "Charlotte", "Chicago", "Cincinnati", "Cleveland", "Columbus", "Dallas",
    "Denver", "Detroit", "El Paso", "Harrisburg", "Honolulu", "Houston", "Indianapolis", "Jacksonville", "Kansas City",
    "Las Vegas", "Los Angeles", "Louisville", "Memphis", "Miami", "Milwaukee", "Minneapolis", "Nashville", "New Orleans",
    "New York", "Newark", "Oakland", "Oklahoma City", "Omaha", "Orlando", "Philadelphia", "Phoenix", "Pittsburgh",
    "Portland", "Raleigh", "Sacramento", "Salt Lake City", "San Antonio", "San Diego", "San Francisco", "San Jose",
    "Savannah", "Seattle", "Spokane", "St. Louis", "Tampa", "Tucson", "Tulsa", "Toronto", "Vancouver", "Montreal",
    "London", "Paris", "Madrid", "Lisbon", "Rome", "Berlin", "Dublin", "Cancun", "Mexico City", "Hue", "Hanoi",
]
_COUNTRIES = ["Portugal", "Spain", "France", "Italy", "Germany", "Morocco", "Mexico", "Canada", "Japan", "Vietnam", "Ireland", "Greece", "Brazil"]
_SURNAMES = ["Patel", "Nguyen", "Garcia", "Murphy", "Chen", "Brooks", "Reyes", "Foster", "Hughes", "Bennett", "Carter", "Morales", "Sullivan", "Park", "Novak"]
_FIRST_NAMES = ["Karen", "Michael", "Sandra", "David", "Linda", "James", "Angela", "Robert", "Susan", "Kevin", "Maria", "Steven"]
_MEDICATIONS = ["lisinopril", "metformin", "atorvastatin", "levothyroxine", "amlodipine", "zolpidem", "omeprazole", "sertraline", "losartan", "simvastatin", "gabapentin", "albuterol"]

# group: (members, case-sensitive, how a sibling is chosen: "adjacent" (ordered) or "any", strength)
_ITEM_GROUPS: dict[str, tuple[list[str], bool, str, int]] = {
    "weekday": (_WEEKDAYS, True, "adjacent", 2),
    "month": (_MONTH_NAMES, True, "adjacent", 2),
    "city": (_CITIES, True, "any", 2),
    "country": (_COUNTRIES, True, "any", 2),
    "card": (["Visa", "Mastercard", "American Express", "Amex", "Discover"], True, "any", 2),
    "tier": (["Silver", "Gold", "Platinum"], True, "any", 2),
    "cabin": (["Economy", "Premium", "Business", "First Class"], True, "any", 2),
    "account": (["checking", "savings"], False, "any", 2),
    "seat": (["window", "aisle"], False, "any", 2),
    "size": (["small", "medium", "large", "extra large"], False, "any", 2),
    "color": (["black", "white", "red", "blue", "navy", "green", "gray", "grey", "pink", "purple", "brown", "beige", "sage", "rust", "teal", "olive", "charcoal", "oatmeal", "ivory"], False, "any", 2),
    "medication": (_MEDICATIONS, False, "any", 2),
    "body": (["knee", "shoulder", "hip", "ankle", "wrist", "elbow"], False, "any", 2),
    "side": (["left", "right"], False, "any", 2),
    "relday": (["today", "tomorrow"], False, "any", 2),
    "format": (["hardcover", "paperback", "audiobook", "ebook"], False, "any", 2),
    "daypart": (["morning", "afternoon", "evening"], False, "any", 3),
    "ampm": (["a.m.", "p.m."], False, "any", 3),
    "channel": (["text", "email"], False, "any", 3),
}
_CLOSING = re.compile(r"^(?:Enjoy|Have a|Good luck|Thanks|Thank you|Take care|Safe travels|Happy|Glad|Congrat|Hope|I hope|Stay|Bye|See you|Anytime|You're welcome|My pleasure)\b")


def _group_pattern(members: list[str], case_sensitive: bool) -> re.Pattern:
    alternation = "|".join(re.escape(m) for m in sorted(members, key=len, reverse=True))
    return re.compile(rf"(?<![\w.-])({alternation})(?![\w-])" + ("" if "a.m." in members else ""), 0 if case_sensitive else re.I)


_GROUP_PATTERNS = {name: _group_pattern(members, case) for name, (members, case, _, _) in _ITEM_GROUPS.items()}


def _group_ok(group: str, text: str, start: int, end: int, context: str) -> bool:
    """Whether a match really is an item of its group here ("left" the side, not "left" the verb)."""
    before, after = text[:start], text[end:]
    word = text[start:end].lower()
    if group not in ("city", "country", "card", "weekday", "month") and text[start].isupper() and not _at_sentence_start(text, start):
        if re.search(r"[A-Z][\w-]*\s+$", before) or re.match(r"\s+[A-Z][A-Za-z]", after):
            return False  # part of a name: "Forest Green", "Premium SMS Block"
        return bool(re.match(r"\s+(?:the\s+)?(?:\d|" + "|".join(_ORDINALS) + r")", after, re.I))
    if group == "side":
        return bool(re.search(r"\b(?:your|the|his|her|my|their)\s+$", before, re.I)) and bool(re.match(r"\s+(?:knee|hand|side|arm|leg|ear|eye|foot|shoulder|hip|wrist|ankle|elbow|lane|turn|lung|kidney|breast)\b", after))
    if group == "size":
        return bool(re.search(r"\bsize", context, re.I)) and not re.match(r"\s+(?:fee|amount|number|print|business|bill|one|ones|charge|stuff)\b", after)
    if group == "account":
        return bool(re.match(r"\s+(?:account|ending)\b", after)) or bool(re.search(r"\b(?:your|the|from|to|into|Federal|Everyday|Joint|Basic|Premier|Student)\s+$", before)) and not re.match(r"\s+(?:whether|if|that|the|your|on|in)\b", after)
    if group == "seat":
        return bool(re.search(r"\bseat|\baisle\b|\bby the window", text, re.I)) and not re.match(r"\s+(?:seat\s+)?(?:of|to)\b", after) and not re.search(r"(?:-day|day|delivery|time|grace|booking|service|return)\s+$", before)
    if group == "channel":
        if word == "text":
            return bool(re.search(r"\b(?:a|an|the|by|via)\s+$", before)) and not re.match(r"\s+(?:with|from)\b", after)
        return bool(re.search(r"\b(?:a|an|the|by|via)\s+$", before)) and not re.match(r"\s+(?:from|called|address)\b", after)
    if group == "daypart":
        return bool(re.search(r"\b(?:in the|this|tomorrow|Friday|Monday|Tuesday|Wednesday|Thursday|Saturday|Sunday|a|one)\s+$", before, re.I)) or bool(re.match(r"\s+(?:window|slot|flight|appointment)", after))
    if group == "color":
        return not re.match(r"\s+(?:and|or)\s+white\b", after) and not re.search(r"\b(?:in the|black and|white and)\s+$", before)
    if group == "relday":
        return not re.search(r"\b(?:the rest of|as of|same as|as)\s+$", before)
    if group == "cabin" and word == "business":
        return not re.match(r"\s+days?\b", after)
    if group == "body":
        return bool(re.search(r"\b(?:left|right|your|the|his|her)\s+$", before))
    return True


def _day_fits(month: str, after: str) -> bool:
    """Whether the day said right after a month name ("thirty-first") exists in ``month``."""
    following = re.match(r"\s+(?:the\s+)?(\d{1,2}|" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + r")\b", after, re.I)
    if not following:
        return True
    day = int(following.group(1)) if following.group(1).isdigit() else _ORDINALS[following.group(1).lower()]
    return day <= _month_length(month)


def _month_length(month: str) -> int:
    return 29 if month == "February" else 30 if month in ("April", "June", "September", "November") else 31


def _sibling(group: str, value: str, rng: random.Random, avoid: set[str], day: int | None = None, text: str = "") -> str | None:
    members, case_sensitive, how, _ = _ITEM_GROUPS[group]
    canon = {m.lower(): m for m in members}
    current = canon.get(value.lower(), value)
    if how == "adjacent":
        i = members.index(current)
        options = [members[(i + 1) % len(members)], members[(i - 1) % len(members)]]
        if group == "month" and day is not None:
            options = [o for o in options if day <= _month_length(o)]
    else:
        options = [m for m in members if m.lower() != current.lower()]
        if group == "color":
            options = [m for m in options if m not in ("grey", "gray") or current.lower() not in ("grey", "gray")]
    options = [o for o in options if o.lower() not in avoid and not re.search(rf"\b{re.escape(o)}\b", text, re.I)]
    if not options:
        return None
    return rng.choice(options)


_COMMON_HEADS = frozenset(
    "The This That Your Our A An It We You I If On In At For And But Or So Then Thanks Thank Hi Hello Good Happy "
    "Yes No Doctor Dr Mr Mrs Ms Miss Saint St Here There What When Where Which Who How Just Please Once Since "
    "Both All Each Every Its Their His Her My Sorry Great Perfect Nice Okay Right Not Only Also Still Let Now".split()
)
_TITLED = re.compile(r"\b(Doctor|Dr\.|Mr\.|Mrs\.|Ms\.|Miss)\s+((?:[A-Z][a-z]+\s+)?[A-Z][a-z'’-]+)")
_CAP_PHRASE = re.compile(r"\b([A-Z][a-z]+(?:\s+(?:[A-Z][a-z]+|One|Two|Three|Four|Five|Six|Seven|Eight|Nine|Ten|Hundred|Thousand)){1,2})\b")


def _wrong_item(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    draft = _draft(turn)
    texts = _turn_texts(turn)
    context = " ".join(texts)
    response_low = response.lower()
    options: list[tuple[int, str, str]] = []  # (priority, text, why)
    sentences = _sentence_spans(response)

    def in_pleasantry(index: int) -> bool:
        return any(s <= index < e and _CLOSING.match(response[s:e]) for s, e in sentences)

    def add(priority: int, start: int, end: int, new: str, old: str, second: tuple[int, int, str] | None = None) -> None:
        if second is None:
            text = _replace_with_article(response, start, end, new)
            why = f"Says {new} instead of {old}; the draft says {old}."
        else:
            s2, e2, new2 = second
            first, later = sorted([(start, end, new), (s2, e2, new2)])
            text = _replace_with_article(response, later[0], later[1], later[2], tidy=False)
            text = _tidy(_replace_with_article(text, first[0], first[1], first[2], tidy=False))
            why = f"Mixes up {old} and {new}: the response puts each where the draft has the other."
        if text != response:
            options.append((priority, text, why))

    for group, pattern in _GROUP_PATTERNS.items():
        members, case_sensitive, how, strength = _ITEM_GROUPS[group]
        found = [m for m in pattern.finditer(response) if _group_ok(group, response, m.start(), m.end(), draft + " " + response) and not in_pleasantry(m.start())]
        if not found:
            continue
        said = {m.group(1).lower() for m in found}
        if group in ("color",) and said <= {"gray", "grey"}:
            pass
        # two different members in the response: swap them
        distinct: dict[str, re.Match] = {}
        for m in found:
            distinct.setdefault(m.group(1).lower(), m)
        if len(distinct) >= 2 and group not in ("daypart", "ampm", "channel", "color"):
            a, b = list(distinct.values())[:2]
            if group == "month" and not (_day_fits(b.group(1), response[a.end() :]) and _day_fits(a.group(1), response[b.end() :])):
                a = b = None  # "April thirty-first" is no date
        else:
            a = b = None
        if a is not None:
            if {a.group(1).lower(), b.group(1).lower()} != {"gray", "grey"}:
                add(0, a.start(), a.end(), _match_case(a.group(1), b.group(1)) if not case_sensitive else b.group(1), a.group(1), (b.start(), b.end(), _match_case(b.group(1), a.group(1)) if not case_sensitive else a.group(1)))
        # a member the context names, other than the one said
        context_members = {m.group(1) for m in pattern.finditer(context) if _group_ok(group, context, m.start(), m.end(), context)}
        target = rng.choice(found)
        old = target.group(1)
        alternatives = sorted({c for c in context_members if c.lower() not in said and c.lower() != old.lower() and not ({c.lower(), old.lower()} <= {"gray", "grey"})})
        if group == "month":
            alternatives = [c for c in alternatives if _day_fits(c, response[target.end() :])]
        if alternatives and group not in ("ampm",):
            new = rng.choice(alternatives)
            add(1, target.start(), target.end(), new if case_sensitive else _match_case(old, new.lower()), old)
        day = None
        if group == "month":
            following = re.match(r"\s+(?:the\s+)?(\d{1,2}|" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + r")", response[target.end():], re.I)
            if following:
                day = int(following.group(1)) if following.group(1).isdigit() else _ORDINALS[following.group(1).lower()]
        sibling = _sibling(group, old, rng, said | {c.lower() for c in context_members}, day, response)
        if sibling:
            new = sibling if case_sensitive else _match_case(old, sibling)
            add(strength, target.start(), target.end(), new, old)
    # titled names: "Doctor Helen Ruiz" -> another doctor from the context, or a different surname
    def person(name: str) -> str:
        return re.sub(rf"{_APOS}s$", "", name)

    for match in _TITLED.finditer(response):
        title, name = match.group(1), person(match.group(2))
        weak = 1 if in_pleasantry(match.start()) else 0
        surname = name.split()[-1]
        doctor = title in ("Doctor", "Dr.")
        others = []
        for m in _TITLED.finditer(context + " " + response):
            if (m.group(1) in ("Doctor", "Dr.")) == doctor and person(m.group(2)).split()[-1] != surname:
                others.append(person(m.group(2)))
        others = sorted(set(others))
        in_response = [o for o in others if o.split()[-1] in response]
        if in_response:
            other = in_response[0]
            other_match = re.search(rf"\b{re.escape(other)}\b", response)
            if other_match and other_match.start() > match.end():
                add(0 + weak * 3, match.start(2), match.start(2) + len(name), other, name, (other_match.start(), other_match.end(), name))
        elif others:
            other = rng.choice(others)
            add(1 + weak * 2, match.start(2), match.start(2) + len(name), other, name)
        surname_pool = [s for s in _SURNAMES if s not in context and s not in response and s[0] != surname[0]]
        if surname_pool:
            new = " ".join(name.split()[:-1] + [rng.choice(surname_pool)])
            add(2 + weak, match.start(2), match.start(2) + len(name), new, name)
    # names and plans sharing a first word: "Essentials Five" / "Essentials Ten"
    phrases: dict[str, list[re.Match]] = {}
    for match in _CAP_PHRASE.finditer(response):
        head = match.group(1).split()[0]
        if head in _COMMON_HEADS or head in _MONTH_NAMES or head in _WEEKDAYS:
            continue
        phrases.setdefault(head, []).append(match)
    for head, matches in phrases.items():
        distinct = {}
        for m in matches:
            distinct.setdefault(m.group(1), m)
        if len(distinct) >= 2:
            a, b = list(distinct.values())[:2]
            add(0, a.start(), a.end(), b.group(1), a.group(1), (b.start(), b.end(), a.group(1)))
            continue
        said_phrase = matches[0].group(1)
        in_context = sorted({m.group(1) for m in _CAP_PHRASE.finditer(draft) if m.group(1).split()[0] == head and m.group(1) not in distinct and not re.search(r"\d", m.group(1))})
        in_context = [
            c for c in in_context
            if len(c.split()) == len(said_phrase.split()) and c not in response
            and not _abbreviates(c.split()[1], said_phrase.split()[1])  # "Pell St" is "Pell Street"
        ]
        if in_context:
            add(1, matches[0].start(), matches[0].end(), rng.choice(in_context), matches[0].group(1))
    # the caller's first name
    names = {f.text for f in _context_names(turn)}
    vocative = re.compile(r"(?:^|[.!?]\s+|,\s+)([A-Z][a-z]+)(?=[.!?]|,\s)")
    for match in vocative.finditer(response):
        if match.group(1) in names:
            pool = [n for n in _FIRST_NAMES if n not in context and n[0] != match.group(1)[0]]
            if pool:
                add(3, match.start(1), match.end(1), rng.choice(pool), match.group(1))
            break
    return _best_option("wrong_item", options, rng)


def _abbreviates(a: str, b: str) -> bool:
    """Whether one word is the other's abbreviation ("St" / "Street", "Blvd" / "Boulevard")."""
    short, long = sorted((a.rstrip("."), b.rstrip(".")), key=len)
    return short[:1].lower() == long[:1].lower() and (len(short) <= 4 or long.lower().startswith(short.lower()))


def _context_names(turn: Turn | None) -> list[Fact]:
    """The caller's (and other people's) first names the draft uses: "Thank you, Keisha", "Hi Dorothy"."""
    if turn is None:
        return []
    found = [f for f in extract_facts(turn.draft or "") if f.kind == "name"]
    titled = {m.group(2).split()[-1] for m in _TITLED.finditer(" ".join(_turn_texts(turn)))}
    return [f for f in found if f.text not in titled and f.text not in _CITIES and f.text not in _COUNTRIES]


# ---------------------------------------------------------------------------------------------------------
# done_not_asked

_HARMLESS_VERBS = frozenset(
    "have get ask grab see look check say read repeat spell help hear explain go_over walk confirm pick choose be tell "
    "find hold wait know start_over try keep".split()
)
_ASK = [
    re.compile(r"^(?:(?:do|would) you (?:still )?(?:want|like)|want|wanna) me to (?P<vp>.+)$", re.I),
    re.compile(r"^(?:shall|should|can|may) I (?P<vp>.+)$", re.I),
    re.compile(r"^(?:okay|ok|alright|all right) (?:to|if I) (?P<vp>.+)$", re.I),
    re.compile(r"^(?:(?:do|would) you (?:still )?(?:want|like)|want) to (?P<vp>.+)$", re.I),
]
_ASK_OBJECT = re.compile(r"^(?:(?:do|would) you (?:want|like)|want) (?P<obj>that|those|it|them|that one|either of those|both|both of those)(?P<on> on)?(?P<rest>(?: now| too| instead[^?]*| as well)?)$", re.I)
_ASK_PARTICIPLE = re.compile(r"^(?:(?:do|would) you (?:want|like)|want) (?P<np>(?:your|the|that|it|this|those|them)\b[^?]*?) (?P<pp>[a-z]+ed)(?P<rest>(?: too| now| as well)?)$", re.I)
_IMPERATIVE = re.compile(r"^(?P<vp>(?:send|do (?:both|it|that|this)|add|book|cancel|file|submit|charge|move|switch|set up|lock|transfer|process|place|waive|refund|go ahead)\b.*)$", re.I)
_DRAFT_ASKS = re.compile(r"\?|\b(?:confirm|would you like|shall I|should I|proceed|let me know|do you want|go ahead)\b", re.I)
_OFFER = re.compile(r"\bI (?:can|could|would|'d|’d|will|'ll|’ll) (?!not\b|n't\b)(?P<vp>[^.;?!]+)", re.I)


def _done(vp: str) -> str | None:
    """"send the redirect to Northline now" -> "sent the redirect to Northline"; ``None`` for a question that
    only asks for information ("have your name")."""
    vp = vp.strip()
    vp = re.sub(r"\s+(?:now|right now|for you now|today)$", "", vp)
    vp = re.sub(r"\s+first$", "", vp)
    match = re.match(r"(go ahead)(?:\s+and\s+(.+))?$", vp, re.I)
    if match:
        if match.group(2):
            rest = _done(match.group(2))
            return f"gone ahead and {rest}" if rest else None
        return "gone ahead with it"
    if re.match(r"proceed\b", vp, re.I):
        return "gone ahead with it"
    tokens = vp.split(" ", 1)
    verb = tokens[0].lower()
    rest = tokens[1] if len(tokens) > 1 else ""
    if not verb.isalpha() or verb in _HARMLESS_VERBS or (verb == "go" and rest.startswith("over")):
        return None
    if verb in ("get", "have") or re.match(r"(?:your|you)\b", rest) and verb in ("take", "get"):
        return None
    done = _participle(verb)
    # "change that and then set up AutoPay": the second verb too
    rest = re.sub(r"\b(and (?:then )?)([a-z]+)\b", lambda m: m.group(1) + (_participle(m.group(2)) if m.group(2) in _KNOWN_BASES else m.group(2)), rest)
    if not rest:
        rest = "it" if verb in ("cancel", "book", "file", "send", "submit", "add", "charge", "process", "place") else ""
    return f"{done} {rest}".strip()


_KNOWN_BASES = frozenset(set(_IRREGULAR) | {"cancel", "transfer", "add", "book", "charge", "change", "move", "file", "submit", "switch", "lock", "mark", "use", "apply", "mail", "email", "text", "update", "waive", "refund", "start", "open", "close", "remove", "order", "schedule", "reschedule", "upgrade", "request", "place", "process"})


def _statement(question: str, before: str) -> tuple[str, str] | None:
    """The "already done" statement for a question asking to act, and the kind of question it was."""
    q = question.strip().rstrip("?").strip()
    q = re.sub(r"^(?:so|and|then|okay|ok|great|perfect|alright),?\s+", "", q, flags=re.I)
    if " or " in q.lower():
        return None
    if re.search(r"\b(?:transfer|put|connect)\s+you\b", q, re.I) and not re.search(r"\bcallback\b", q, re.I):
        return ("I'm putting you through now", "transfer")
    match = _ASK_OBJECT.match(q)
    if match:
        obj = match.group("obj").lower()
        obj = "both of those" if obj.startswith("either") else obj
        if match.group("on"):
            return (f"I've turned {obj} on{match.group('rest')}", "object")
        return (f"I've gone ahead and set {obj} up{match.group('rest')}", "object")
    match = _ASK_PARTICIPLE.match(q)
    if match:
        return (f"I've {match.group('pp').lower()} {match.group('np')}{match.group('rest')}", "participle")
    for pattern in _ASK:
        match = pattern.match(q)
        if match:
            vp = match.group("vp")
            if re.fullmatch(r"(?:do (?:that|it|both|this)|go ahead|proceed)(?: for you)?(?: now)?", vp, re.I):
                offer = list(_OFFER.finditer(before))
                if offer:
                    return ("__offer__", vp)
            done = _done(vp)
            return (f"I've {done}", "ask") if done else None
    match = _IMPERATIVE.match(q)
    if match:
        done = _done(match.group("vp"))
        return (f"I've {done}", "imperative") if done else None
    return None


def _done_not_asked(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    if turn is not None and turn.draft and not _DRAFT_ASKS.search(turn.draft):
        return None  # the draft does not ask, so saying it is done may be right
    for s_start, s_end in reversed(_sentence_spans(response)):
        sentence = response[s_start:s_end]
        if not sentence.rstrip().endswith("?"):
            continue
        # the question may follow a clause: "There's still a pet request on it; shall I take that off?"
        cut = max(sentence.rfind(";"), sentence.rfind(":"), _last_comma_before_ask(sentence))
        prefix, question = (sentence[: cut + 1], sentence[cut + 1 :]) if cut >= 0 else ("", sentence)
        if re.match(r"^\s*(?:Before I do|Just to confirm)", prefix):
            prefix = ""
        result = _statement(question, response[:s_start] + prefix)
        if result is None:
            continue
        statement, how = result
        if statement == "__offer__":
            before = response[:s_start]
            offer = list(_OFFER.finditer(before))[-1]
            done = _done(offer.group("vp"))
            if not done:
                continue
            new_before = before[: offer.start()] + f"I've {done}" + before[offer.end() :]
            text = _tidy(new_before.rstrip() + " " + response[s_end:].lstrip())
            text = _tidy(text)
            if not text.endswith((".", "!", "?")):
                text += "."
            changed = f"I've {done}"
        else:
            joiner = "; " if prefix.rstrip().endswith(";") else (": " if prefix.rstrip().endswith(":") else (", " if prefix.rstrip().endswith(",") else " "))
            if prefix.strip():
                statement_text = prefix.rstrip().rstrip(",;:") + joiner.rstrip() + " " + (statement if joiner.strip() else statement[0].upper() + statement[1:]) + "."
            else:
                statement_text = statement[0].upper() + statement[1:] + "."
            text = _tidy(response[:s_start] + statement_text + response[s_end:])
            changed = statement
        if text == response:
            continue
        why = f'Claims it is already done ("{_shorten(changed, 10)}"), but the draft only asks the caller first.'
        return Corruption("done_not_asked", text, why, failure_class=_FAILURE_CLASS["done_not_asked"])
    return None


def _last_comma_before_ask(sentence: str) -> int:
    match = None
    for match in re.finditer(r",\s+(?=(?:shall|should|can|may) I\b|(?:do you )?want me to\b|want\b|okay to\b)", sentence, re.I):
        pass
    return match.start() if match else -1


# ---------------------------------------------------------------------------------------------------------
# drop_fact

_TYPED_KINDS = ("money", "time", "date", "code", "number", "composite", "phone", "email")


def _needed_facts(response: str, turn: Turn | None) -> list[Fact]:
    """Facts of the turn the response conveys: the record's ``facts`` (or those in its draft), typed first."""
    if turn is None:
        return []
    facts = [classify_fact(t) for t in turn.facts or []] if turn.facts else [f for f in extract_facts(turn.draft or "") if f.required]
    facts = [f for f in facts if f.kind not in ("internal_id", "name") and fact_conveyed(f, response)]
    typed = [f for f in facts if f.kind in _TYPED_KINDS]
    return typed or [f for f in facts if f.kind == "phrase"]


_CLAUSE_LIKE = re.compile(rf"(?i)\b(?:is|are|was|were|be|been|have|has|had|can|will|would|could|should|do|does|did|get|gets|got|goes|comes|takes|found|see|need|needs|owe|pay|works|starts)\b|{_APOS}(?:s|re|ve|ll|d|m)\b|\b(?:I|you|we|they|he|she|it)\s+\w+")
_TRAILING = re.compile(r"(?:,\s+(?:and|but|plus|with|then)\b|;\s+|,\s+(?=(?:and then|from)\b)|\s+—\s+)", re.I)
_SUBJECT_START = re.compile(rf"(?:(?i:I|you|we|they|he|she|there|the|your|our|my|his|her|their|both|each|every|all|one)|[A-Z][a-z]+)(?:{_APOS}\w+)?\b")
_DANGLING_START = re.compile(r"(?i)^(?:so|but|or|which|though|while|because|that|it|this|they|those|these|then|if|plus|and)\b")


def _removals(response: str) -> list[tuple[str, str]]:
    """Shorter versions of a response, each without one clause or sentence: ``(text, what was removed)``.

    Clauses first (a trailing "and ..." clause, an amount between commas, a leading clause when what is left
    stands on its own), then whole sentences. Every version must still read as sentences, not fragments.
    """
    out: list[tuple[str, str]] = []
    sentences = _sentence_spans(response)
    for s_start, s_end in sentences:
        sentence = response[s_start:s_end]
        body_end = len(sentence.rstrip(".!?"))
        cuts = [m for m in _TRAILING.finditer(sentence)]
        # a colon ends a clause that stands on its own ("Here it is: ..."), not a lead-in ("Her flight: ...")
        colon = re.search(r":\s+", sentence)
        if colon and _CLAUSE_LIKE.search(sentence[: colon.start()]) and not re.match(r"(?i)\s*just to\b", sentence):
            cuts.append(colon)
            cuts.sort(key=lambda m: m.start())
        bounds = [0] + [m.start() for m in cuts] + [body_end]
        for i in range(1, len(bounds) - 1):
            start, end = bounds[i], bounds[i + 1]
            removed = sentence[start:end]
            if removed.lstrip().startswith(":") and end != body_end:
                continue  # "Here's the snag: X, and Y" without X is "Here's the snag, and Y"
            new_sentence = sentence[:start] + sentence[end:]
            if end == body_end and sentence.rstrip().endswith("?") and not re.match(r"(?i)^\s*(?:can|could|would|will|do|does|did|is|are|what|which|when|where|how|who|shall|should)\b", sentence[:start]):
                new_sentence = new_sentence.rstrip().rstrip("?") + "."  # the question went with the clause
            out.append((_tidy(response[:s_start] + new_sentence + response[s_end:]), removed.strip(" ,;:—")))
        # the first clause, when the rest stands on its own: "X, and you're upgraded." -> "You're upgraded."
        if len(bounds) > 2:
            first_end = bounds[1]
            rest = sentence[first_end:]
            lead = re.match(r"[,;:—]?\s*(?:(?:and|then)\s+)?", rest, re.I)
            new_sentence = rest[lead.end() :]
            if new_sentence and not sentence.rstrip().endswith("?") and not _DANGLING_START.match(new_sentence) and _CLAUSE_LIKE.search(new_sentence.split(",")[0]) and _SUBJECT_START.match(new_sentence):
                new_sentence = new_sentence[0].upper() + new_sentence[1:]
                out.append((_tidy(response[:s_start] + new_sentence + response[s_end:]), sentence[:first_end].strip()))
        # an amount between commas: "I can refund the lamp and the shipping, a hundred forty-three fifty, to..."
        for m in re.finditer(r",\s+([^,]+),", sentence):
            inner = m.group(1)
            amounts = _amounts(inner)
            leftover = inner
            for amount in amounts:
                leftover = leftover.replace(amount.text, " ")
            if amounts and all(a.kind in ("money", "time", "date") for a in amounts) and not re.sub(r"(?i)\b(?:about|around|roughly|just|only|or|the)\b", "", leftover).strip():
                new_sentence = sentence[: m.start()] + " " + sentence[m.end() :].lstrip()
                out.append((_tidy(response[:s_start] + new_sentence + response[s_end:]), inner))
    if len(sentences) > 1:
        for index, (s_start, s_end) in enumerate(sentences):
            text = _tidy(response[:s_start] + response[s_end:])
            following = response[sentences[index + 1][0] : sentences[index + 1][1]] if index + 1 < len(sentences) else ""
            if following and re.match(r"(?i)^(?:so|but|or|and|that one|those|it's in|which)\b", following):
                continue  # the next sentence leans on this one
            out.append((text, response[s_start:s_end].strip()))
    return out


def _drop_fact(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    facts = _needed_facts(response, turn)
    if not facts:
        return None
    order = list(facts)
    rng.shuffle(order)
    removals = _removals(response)
    for fact in order:
        for text, removed in removals:
            if text == response or fact_conveyed(fact, text) or len(words(text)) < 2:
                continue
            if not fact_conveyed(fact, removed):
                continue
            if re.match(r"^(?:and|but|so|or|then|plus|which)\b", text, re.I) or text.rstrip().endswith((",", ":", ";")):
                continue
            shown = removed.rstrip(".!?")
            shown = re.sub(r"^(?:and|but|so|plus|which|with|then|or)\s+", "", shown, flags=re.I)
            why = f'Leaves out "{_shorten(shown)}", which the caller needs (the draft gives {fact.text}).'
            return Corruption("drop_fact", text, why, failure_class=_FAILURE_CLASS["drop_fact"])
    return None


# ---------------------------------------------------------------------------------------------------------
# repeat_sentence

_REPEAT_LEADS = ("That's right, ", "So, ", "Again, ", "Like I said, ", "")


def _repeat_sentence(response: str, turn: Turn | None, rng: random.Random) -> Corruption | None:
    """Say the response's most informative sentence again at the end, as a looping model does."""
    sentences = [(s, e, text) for s, e, text in _sentences_of(response) if len(words(text)) >= 4]
    if not sentences:
        return None
    most = max(len(_amounts(text)) + len(words(text)) / 100 for _, _, text in sentences)
    choices = [text for _, _, text in sentences if len(_amounts(text)) + len(words(text)) / 100 == most]
    sentence = rng.choice(choices).strip()
    if sentence[-1] not in ".!?":
        sentence += "."
    lead = rng.choice(_REPEAT_LEADS)
    first_word = sentence.split(" ", 1)[0]
    if lead and first_word not in ("I", "I'm", "I've", "I'll", "I'd") and not first_word[1:2].isupper():
        sentence = sentence[0].lower() + sentence[1:]
    text = response.rstrip()
    if text[-1] not in ".!?":
        text += "."
    why = f'Says "{_shorten(sentence)}" twice: the caller hears the same thing again.'
    return Corruption("repeat_sentence", f"{text} {lead}{sentence}", why, quality="non_repetition", failure_class="repetition")


def _shorten(text: str, max_words: int = 14) -> str:
    tokens = text.split()
    return text if len(tokens) <= max_words else " ".join(tokens[:max_words]) + " ..."


# ---------------------------------------------------------------------------------------------------------
# Public API

_HANDLERS: dict[str, Callable[[str, Turn | None, random.Random], Corruption | None]] = {
    "negation": _negation,
    "swap_amounts": _swap_amounts,
    "wrong_action": _wrong_action,
    "wrong_item": _wrong_item,
    "done_not_asked": _done_not_asked,
    "drop_fact": _drop_fact,
    "invent_number": _invent_number,
    "repeat_sentence": _repeat_sentence,
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown corruption kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def corrupt(response: str, turn: Turn | None, kind: str, rng: random.Random) -> Corruption | None:
    """Corrupt ``response`` (a good spoken answer to ``turn``) in one way, ``kind`` (a key of :data:`KINDS`).

    Returns a :class:`Corruption` whose text differs from the response, stays fluent spoken English in the
    response's style, and is wrong with respect to the turn's draft; or ``None`` when this kind does not
    apply (no amount to swap, no question to turn into "done", ...). ``rng`` picks among equally good
    options, so the same seed gives the same result. The turn (its draft, facts, history and tool results)
    tells which figures are real and supplies plausible wrong ones; ``None`` works with less context.

    Raises:
        ValueError: an unknown ``kind``, naming the valid ones.
    """
    _check_kind(kind)
    if not response or not response.strip():
        return None
    result = _HANDLERS[kind](response, turn, rng)
    if result is None or _normal(result.text) == _normal(response) or not result.text.strip():
        return None
    return result


def _normal(text: str) -> str:
    return " ".join(words(text))


def _rng(seed: int, *parts: str) -> random.Random:
    """A generator for one decision, seeded by the seed and what is decided (stable across runs and orders)."""
    return random.Random(":".join([str(seed), *parts]))


def corruptions(response: str, turn: Turn | None, kinds: Iterable[str] = tuple(KINDS), seed: int = 0) -> list[Corruption]:
    """Every corruption of ``kinds`` that applies to ``response``, one per kind, in the order of ``kinds``.

    Deterministic for a given ``seed``: each kind draws from its own generator, so adding or removing a kind
    changes no other kind's result.
    """
    kinds = tuple(kinds)
    for kind in kinds:
        _check_kind(kind)
    out = []
    for kind in kinds:
        result = corrupt(response, turn, kind, _rng(seed, kind))
        if result is not None:
            out.append(result)
    return out


def synthetic_pairs(turns: Sequence[Turn], seed: int = 0, per_turn: int = 1, kinds: Iterable[str] | None = None) -> list[Pair]:
    """Labelled pairs for the judge (and hard negatives for preference training): each turn's reference
    against a corruption of it.

    For every turn with a ``reference``, up to ``per_turn`` applicable kinds are chosen, the least used so far
    first (ties broken by a seeded rotation), so that all kinds are covered about evenly. Each pair has the
    turn's context, the reference and the corruption in a seeded random order, id ``syn-<turn id>-<kind>``,
    and ``meta`` with ``label`` (the reference's slot), ``quality``, ``failure_class``, ``corruption``,
    ``why``, ``source`` ("synthetic") and ``from_turn`` (plus the turn's ``tool_results`` when it has any).
    """
    kinds = tuple(JUDGE_KINDS if kinds is None else kinds)
    for kind in kinds:
        _check_kind(kind)
    if per_turn < 1:
        raise ValueError(f"per_turn must be at least 1, got {per_turn}")
    rotation = list(kinds)
    random.Random(f"{seed}:rotation").shuffle(rotation)
    used = {kind: 0 for kind in kinds}
    pairs: list[Pair] = []
    for index, turn in enumerate(turns):
        reference = turn.reference
        if not reference or not reference.strip():
            continue
        available: dict[str, Corruption] = {}
        for kind in kinds:
            result = corrupt(reference, turn, kind, _rng(seed, turn.id, kind))
            if result is not None:
                available[kind] = result
        ranked = sorted(available, key=lambda k: (used[k], (rotation.index(k) - index) % len(rotation)))
        for kind in ranked[:per_turn]:
            used[kind] += 1
            corruption = available[kind]
            reference_first = _rng(seed, turn.id, kind, "order").random() < 0.5
            meta = {
                "label": "a" if reference_first else "b",
                "quality": corruption.quality,
                "failure_class": corruption.failure_class,
                "corruption": corruption.kind,
                "why": corruption.why,
                "source": "synthetic",
                "from_turn": turn.id,
            }
            if turn.tool_results:
                meta["tool_results"] = list(turn.meta.get("tool_results") or [])
            pairs.append(
                Pair(
                    id=f"syn-{turn.id}-{kind}",
                    domain=turn.domain,
                    system=turn.system,
                    history=[m.model_copy() for m in turn.history],
                    draft=turn.draft,
                    facts=list(turn.facts) if turn.facts is not None else None,
                    response_a=reference if reference_first else corruption.text,
                    response_b=corruption.text if reference_first else reference,
                    meta=meta,
                )
            )
    return pairs
