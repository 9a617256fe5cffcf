"""The amounts a response says (money, clock times, dates, counts; in words or digits), and saying a new value
the way the response said the old one. Codes, phone numbers and card digits (read digit by digit), addresses, seat
numbers, years and names are left out: changing them is not what these corruptions are about."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import lru_cache

from num2words import num2words

from voicetune.data.corrupt.context import draft_money, draft_times
from voicetune.data.corrupt.numbers import NUM_WORD, ORDINAL_ALTERNATION, ORDINALS, RUN, say, say_two, segments
from voicetune.data.corrupt.text import at_sentence_start, replace_with_article, tidy
from voicetune.verbalize import inflect_engine

MONTH_NAMES = list(calendar.month_name)[1:]
WEEKDAYS = list(calendar.day_name)
_MONTHS = "|".join(MONTH_NAMES)
_ORDINAL = re.compile(rf"(?i)\b({ORDINAL_ALTERNATION})\b")
_MONTH_BEFORE = re.compile(rf"\b({_MONTHS})\s+(?:the\s+)?$")
_THE_DAY_AFTER = re.compile(
    r"\s*(?:[,.;:!?)]|$|\s(?:at|of|to|through|and|or|each|every|instead|after|before|works|is|it|then|until|in|from|with"
    r"|when|so)\b)"
)
_MARKER = re.compile(
    r"\s*(?P<m>a\.m\.|p\.m\.|[AaPp][Mm]\b|in the (?:morning|afternoon|evening)|at night|tonight"
    r"|this (?:morning|afternoon|evening)|o'clock)"
)
_TIME_PREP = re.compile(r"\b(?:at|by|until|till|from|around|after|before|between)\s+$", re.I)
#: Words after a number that are not its unit ("two of them", "five to seven").
UNIT_STOP = frozenset(
    "a an the and or to of in on at for by with from as is are was were be it its that this these those you your i "
    "we our my their he she they them his her so but if then than per each every more less plus minus off up down "
    "out over under into onto about around after before until through back total altogether instead now today "
    "tomorrow tonight yesterday too also only just even still there here what which who when where why how "
    "has have had will would can could should may might must does do did gets get got goes comes makes takes "
    "works runs means needs left right later earlier early late ahead apart away".split()
)
# A number after one of these names a thing ("row six", "option two", "level one"), it is not an amount.
_IDENTIFIER_BEFORE = re.compile(
    r"(?i)(?:row|seat|gate|terminal|option|line|level|suite|apartment|apt|carousel|flight|room|step|steps|part|parts|"
    r"unit|extension|door|floor|number|press|dial|lane|box|model|version|pro|plus|max|series|chapter|page)\s+$"
)
_UNIT_PREFIX = frozenset("business calendar working extra more additional consecutive monthly".split())
_MONEY_NEXT_OK = frozenset(
    "a an each per for on more plus in off total altogether back instead with to and or so but after before at "
    "from the this that your less".split()
)
_PLACE_AFTER = re.compile(
    r"\s+(?:[A-Z]\b|[A-Z][a-z]+\s+(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Court|Ct|Way|Drive|Dr|Boulevard|Blvd|Plaza|"
    rf"Place|Terrace)\b|[A-Z][a-z]+\b(?!\s+(?:{_MONTHS})))"
)
_DATE_AFTER = re.compile(rf"\s+(?:{_MONTHS}|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_RANGE_WORD = r"(?:to|until|till|through|and|-|–)"
_CLOCK_WORD = rf"(?:{NUM_WORD}|noon|midnight|\d)"
_RANGE_AFTER = re.compile(rf"(?i)\s*(?:(?:a\.m\.|p\.m\.|in the \w+|at night)\s+)?{_RANGE_WORD}\s+{_CLOCK_WORD}")
_RANGE_BEFORE = re.compile(rf"(?i){_CLOCK_WORD}\w*(?:\s+(?:a\.m\.|p\.m\.|in the \w+|at night))?\s+{_RANGE_WORD}\s+$")
_RANGE_GAP = re.compile(r"\s*(?:to|-|–|until|till|through)\s*(?:the\s+)?|\s+(?:or|and)\s+(?:the\s+)?")
#: The order in which kinds of amount are preferred for a change.
KIND_RANK = {"money": 0, "count": 1, "time": 2, "date": 3}


@dataclass
class Amount:
    """One amount said in a response: where, what kind, its value and how it is said."""

    start: int
    end: int
    kind: str  # money | time | date | count
    value: int | tuple[int, int]  # money: cents; time: (hour 1-12, minute); date: day; count: the count
    style: str
    a_style: bool = False  # "a hundred" rather than "one hundred"
    and_style: bool = False  # "a hundred and five"
    unit: str = ""  # count: the noun after it ("day" for "days")
    unit_text: str = ""  # count: the words after it as said ("business days")
    half: str = ""  # time: "am" / "pm" when the response says which half of the day
    month: int | None = None  # date: the month said with it
    low: int | None = None  # count/date: a range's other end below (the new value must stay above it)
    high: int | None = None  # ... and above
    in_range: bool = False
    text: str = ""

    @property
    def number(self) -> int:
        """The value of a money amount (cents), a date (day) or a count."""
        return self.value if isinstance(self.value, int) else 0


def unit_of(words: str) -> str:
    """The singular of the noun after a count ("business days" -> "business day")."""
    words = words.lower()
    return inflect_engine().singular_noun(words) or words


def _half_from_marker(marker: str) -> str:
    """ "am" / "pm" for the words after a clock time ("a.m.", "in the evening", "tonight"), else ""."""
    marker = marker.lower()
    if "morning" in marker or re.match(r"a\.?m\b", marker):
        return "am"
    if any(word in marker for word in ("afternoon", "evening", "night")) or re.match(r"p\.?m\b", marker):
        return "pm"
    return ""


def _in_time_range(before: str, after: str) -> bool:
    """Whether a clock time is one end of a range ("from nine to one", "ten to noon", "eight to five")."""
    return bool(_RANGE_AFTER.match(after) or _RANGE_BEFORE.search(before))


class _Scan:
    """Finds the amounts of one text, each span taken once, in order of confidence: dates said with ordinals,
    figures in digits, then runs of number words."""

    def __init__(self, text: str, draft: str):
        self.text = text
        self.money_in_draft = draft_money(draft)
        self.times_in_draft = draft_times(draft)
        # say "a hundred" / "hundred and" where the text does
        self.a_style = bool(re.search(r"\ba (?:hundred|thousand)\b", text, re.I))
        self.and_style = bool(re.search(r"\b(?:hundred|thousand) and\b", text, re.I))
        self.found: list[Amount] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= a.start or start >= a.end for a in self.found)

    def add(self, amount: Amount) -> None:
        amount.text = self.text[amount.start : amount.end]
        self.found.append(amount)

    def ordinal_dates(self) -> None:
        """Dates said with ordinals: "March fourteenth", "the twenty-second"."""
        for match in _ORDINAL.finditer(self.text):
            before, after = self.text[: match.start()], self.text[match.end() :]
            month = _MONTH_BEFORE.search(before)
            if month or re.search(r"\bthe\s+$", before) and _THE_DAY_AFTER.match(after):
                day = ORDINALS[match.group(1).lower()]
                month_number = MONTH_NAMES.index(month.group(1)) + 1 if month else None
                self.add(Amount(match.start(), match.end(), "date", day, "ordinal", month=month_number))

    def digit_money_and_times(self) -> None:
        """ "$75", "$1,095.50", "7:45 AM", "9am"."""
        text = self.text
        for match in re.finditer(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?", text):
            cents = int(match.group(1).replace(",", "")) * 100 + int(match.group(2) or 0)
            self.add(Amount(match.start(), match.end(), "money", cents, "sym_cents" if match.group(2) else "sym"))
        for match in re.finditer(r"\b(\d{1,2}):(\d{2})(?:\s?([AaPp])\.?\s?[Mm]\.?)?", text):
            if self.free(match.start(), match.end()):
                half = {"a": "am", "p": "pm"}.get((match.group(3) or "").lower(), "")
                clock = (int(match.group(1)) % 12 or 12, int(match.group(2)))
                end = match.start() + len(f"{match.group(1)}:{match.group(2)}")
                self.add(Amount(match.start(), end, "time", clock, "digits", half=half))
        for match in re.finditer(r"\b(\d{1,2})\s?([AaPp])\.?[Mm]\b\.?", text):
            if self.free(match.start(), match.end()):
                half = "am" if match.group(2).lower() == "a" else "pm"
                clock = (int(match.group(1)) % 12 or 12, 0)
                self.add(Amount(match.start(), match.start() + len(match.group(1)), "time", clock, "digits", half=half))

    def digit_dates_and_counts(self) -> None:
        """ "March 14", "March 14th", "40 dollars", "3 business days"."""
        text = self.text
        for match in re.finditer(rf"\b({_MONTHS})\s+(\d{{1,2}})(st|nd|rd|th)?\b", text):
            if self.free(match.start(2), match.end()):
                month = MONTH_NAMES.index(match.group(1)) + 1
                style = "digits_ord" if match.group(3) else "digits"
                self.add(Amount(match.start(2), match.end(), "date", int(match.group(2)), style, month=month))
        for match in re.finditer(r"(?<![\w$.,:/#-])(\d{1,3}(?:,\d{3})+|\d+)(?![\w.,:/-]\d|\w)(\s+dollars?\b)?", text):
            if not self.free(match.start(), match.end()):
                continue
            value = int(match.group(1).replace(",", ""))
            if match.group(2):
                self.add(Amount(match.start(), match.end(), "money", value * 100, "num_dollars"))
                continue
            unit = re.match(r"\s+([a-z]+)", text[match.end() :])
            if (
                unit
                and unit.group(1) not in UNIT_STOP
                and value >= 2
                and not _IDENTIFIER_BEFORE.search(text[: match.start()])
            ):
                word = unit.group(1)
                self.add(
                    Amount(match.start(), match.end(), "count", value, "digits", unit=unit_of(word), unit_text=word)
                )

    def word_runs(self) -> None:
        """Runs of number words: money, clock times and counts."""
        runs = [m for m in RUN.finditer(self.text) if self.free(m.start(), m.end())]
        for index, match in enumerate(runs):
            if not self.free(match.start(), match.end()) or self._not_an_amount(match):
                continue
            said = segments(match.group(0))
            if not said:
                continue
            lower = match.group(0).lower()
            a_style, and_style = lower.startswith("a ") or self.a_style, " and " in lower or self.and_style
            if len(said) == 1 and not said[0][1]:
                self._one_number(runs, index, said[0][0], a_style, and_style)
            elif len(said) == 2:
                self._two_numbers(match, said, a_style, and_style)

    def _not_an_amount(self, match: re.Match[str]) -> bool:
        """A decimal, part of a word or a name, an identifier, an address or a seat."""
        text, start, end = self.text, match.start(), match.end()
        before, after = text[:start], text[end:]
        if re.search(r"\bpoint\s+$", before, re.I) or re.match(r"\s+point\b", after, re.I):
            return True
        if after.startswith(("-", "'", "’")) and not re.match(r"-dollar\b", after):
            return True
        if match.group(0)[:1].isupper() and not at_sentence_start(text, start):
            return True  # a capitalised number word inside a sentence is part of a name ("Terminal Four")
        if _IDENTIFIER_BEFORE.search(before):
            return True
        # an address, a seat, a name: "fifty-six Wexford Road", "fourteen A"
        return bool(_PLACE_AFTER.match(after)) and not _DATE_AFTER.match(after)

    def _one_number(self, runs: list[re.Match[str]], index: int, value: int, a_style: bool, and_style: bool) -> None:
        """One number: money ("forty dollars", "ninety cents", a figure the draft has), a clock time, a count, or
        the low end of a range whose unit comes after the high end ("three to five days")."""
        match = runs[index]
        start, end = match.start(), match.end()
        before, after = self.text[:start], self.text[end:]
        if re.match(r"(\s+dollars?\b|-dollar\b)", after):
            self._dollars(runs, index, value, a_style, and_style)
            return
        cents = re.match(r"\s+cents?\b", after)
        if cents:
            if value < 100 and not re.search(r"dollars?\s+and\s+$", before):
                self.add(Amount(start, end + cents.end(), "money", value, "cents"))
            return
        if self._clock_hour(match, value):
            return
        next_word = re.match(r"\s+([A-Za-z]+)", after)
        next_token = next_word.group(1).lower() if next_word else None
        if (
            value * 100 in self.money_in_draft
            and value >= 10
            and (next_token is None or next_token in _MONEY_NEXT_OK)
            and not re.search(r"\b(?:the|a|an)\s+$", before)
        ):
            self.add(Amount(start, end, "money", value * 100, "bare", a_style, and_style))
            return
        if value >= 2 and next_token and next_token not in UNIT_STOP and re.match(r"\s+[a-z]", after):
            unit_words = re.match(r"\s+([a-z]+)(?:\s+([a-z]+))?", after)
            assert unit_words is not None  # the line above matched a lower-case word
            unit_text = unit_words.group(1)
            if unit_text in _UNIT_PREFIX and unit_words.group(2):
                unit_text += " " + unit_words.group(2)
            unit = unit_of(unit_text)
            self.add(Amount(start, end, "count", value, "words", a_style, and_style, unit=unit, unit_text=unit_text))
            return
        range_next = re.match(r"\s+(?:to|or|and|-)\s+", after)
        if value >= 2 and range_next and index + 1 < len(runs) and runs[index + 1].start() == end + range_next.end():
            self.add(Amount(start, end, "count", value, "words", a_style, and_style, unit="?range", in_range=True))

    def _dollars(self, runs: list[re.Match[str]], index: int, value: int, a_style: bool, and_style: bool) -> None:
        """ "forty dollars", "forty dollars and fifty cents", "a forty-dollar fee", "a forty dollar fee"."""
        match = runs[index]
        after = self.text[match.end() :]
        dollars = re.match(r"(\s+dollars?\b|-dollar\b)", after)
        assert dollars is not None  # the caller matched it
        span_end = match.end() + len(dollars.group(1))
        style = (
            "adj" if dollars.group(1).startswith("-") else ("d" if dollars.group(1).strip().endswith("s") else "adj_sp")
        )
        cents = 0
        following = runs[index + 1] if index + 1 < len(runs) else None
        tail = re.match(r",?\s+and\s+", self.text[span_end:])
        if style == "d" and tail and following is not None and following.start() == span_end + tail.end():
            cents_words = re.match(r"\s+cents?\b", self.text[following.end() :])
            cents_said = segments(following.group(0))
            if cents_words and cents_said and len(cents_said) == 1:
                cents = cents_said[0][0]
                span_end = following.end() + cents_words.end()
                style = "dc"
        if style == "adj_sp" and re.match(r"\s+dollar\s+and\b", after):
            return
        self.add(Amount(match.start(), span_end, "money", value * 100 + cents, style, a_style, and_style))

    def _clock_hour(self, match: re.Match[str], value: int) -> bool:
        """A clock time said as an hour ("at nine a.m.", "nine to noon", "from nine" when the draft has 9:00)."""
        start, end = match.start(), match.end()
        before, after = self.text[:start], self.text[end:]
        marker = _MARKER.match(after)
        hours_in_draft = {hour for hour, _ in self.times_in_draft}
        is_time = 1 <= value <= 12 and bool(
            marker
            or _TIME_PREP.search(before)
            and (value, 0) in self.times_in_draft
            or re.match(r"\s+(?:to|until|till|and|-)\s+(?:noon|midnight)\b", after)
            or _TIME_PREP.search(before)
            and re.match(r"\s+(?:to|until|till|and|-)\s+\S", after)
            and value in hours_in_draft
        )
        if is_time:
            half = _half_from_marker(marker.group("m")) if marker else ""
            self.add(Amount(start, end, "time", (value, 0), "h", half=half, in_range=_in_time_range(before, after)))
        return is_time

    def _two_numbers(
        self, match: re.Match[str], said: tuple[tuple[int, bool, int], ...], a_style: bool, and_style: bool
    ) -> None:
        """Two numbers in a row: a price said in two parts ("sixty-two eighty-five") or a clock time ("seven
        forty-five"), told apart by the draft, the words around and the range of the second."""
        (first, first_oh, first_words), (second, second_oh, second_words) = said
        if first_oh or second_words > 2 or not (second_oh or 10 <= second <= 99):
            return
        start, end = match.start(), match.end()
        before, after = self.text[:start], self.text[end:]
        cents = first * 100 + second
        marker = _MARKER.match(after)
        if cents in self.money_in_draft and not marker:
            self.add(Amount(start, end, "money", cents, "pair", a_style, and_style))
            return
        clock_like = 1 <= first <= 12 and first_words == 1 and second <= 59
        if clock_like and (marker or (first, second) in self.times_in_draft or _TIME_PREP.search(before)):
            half = _half_from_marker(marker.group("m")) if marker else ""
            self.add(
                Amount(start, end, "time", (first, second), "hm", half=half, in_range=_in_time_range(before, after))
            )
            return
        fee = re.match(r"\s+(?:late |return |change )?(?:fee|charge|credit|a month|each|per)\b", after)
        if fee and first >= 1 and not second_oh:
            self.add(Amount(start, end, "money", cents, "pair", a_style, and_style))

    def linked(self) -> tuple[Amount, ...]:
        """The amounts in order, with ranges ("three to five business days", "from nine to one") marked so that
        their ends keep their order."""
        found = sorted(self.found, key=lambda a: a.start)
        for left, right in zip(found, found[1:], strict=False):
            if not (left.kind == right.kind or left.unit == "?range" and right.kind == "count"):
                continue
            if not _RANGE_GAP.fullmatch(self.text, left.end, right.start):
                continue
            if left.unit == "?range":
                left.kind, left.unit, left.unit_text = right.kind, right.unit, right.unit_text
            if left.kind in ("count", "date") and left.number < right.number:
                left.high, right.low = right.number, left.number
                left.in_range = right.in_range = True
            elif left.kind == "time":
                left.in_range = right.in_range = True
                if not left.half and right.half == "am":
                    left.half = "am"
        return tuple(a for a in found if a.unit != "?range")


@lru_cache(maxsize=4096)
def amounts(text: str, draft: str = "") -> tuple[Amount, ...]:
    """Every money amount, clock time, date and count ``text`` says, with how it says it. The draft tells a price
    said in two parts ("sixty-two eighty-five") from a clock time ("seven forty-five")."""
    scan = _Scan(text, draft)
    scan.ordinal_dates()
    scan.digit_money_and_times()
    scan.digit_dates_and_counts()
    scan.word_runs()
    return scan.linked()


def _render_money(amount: Amount, value: int) -> str | None:
    style = amount.style
    dollars, cents = divmod(value, 100)
    if style in ("sym", "sym_cents"):
        figure = f"${dollars:,}" if "," in amount.text else f"${dollars}"
        return figure + (f".{cents:02d}" if style == "sym_cents" or cents else "")
    if style == "num_dollars":
        return None if cents else f"{dollars} dollars"
    if style == "cents":
        return f"{say(cents)} cent{'s' if cents != 1 else ''}" if dollars == 0 and cents else None
    if dollars == 0:
        return None
    said = say(dollars, amount.a_style, amount.and_style)
    if style in ("d", "dc"):
        main = f"{said} dollar{'s' if dollars != 1 else ''}"
        return f"{main} and {say(cents)} cent{'s' if cents != 1 else ''}" if cents else main
    if style in ("adj", "adj_sp"):
        return None if cents else f"{said}{'-' if style == 'adj' else ' '}dollar"
    if style in ("pair", "bare"):
        if not cents:
            return said
        if cents < 10 or (dollars >= 100) != (amount.number // 100 >= 100):
            return None  # "a hundred fifty-six oh five" is not how anyone says a price
        return f"{said} {say_two(cents)}"
    return None


def render(amount: Amount, value: int | tuple[int, int]) -> str | None:
    """Say ``value`` the way ``amount`` was said; ``None`` when that style cannot say it."""
    if isinstance(value, tuple):
        hour, minute = value
        if amount.style == "digits":
            return f"{hour}:{minute:02d}" if ":" in amount.text or minute else f"{hour}"
        return f"{say(hour)} {say_two(minute)}" if minute else say(hour)
    if amount.kind == "money":
        return _render_money(amount, value)
    if amount.kind == "date":
        if amount.style == "ordinal":
            return str(num2words(value, to="ordinal"))
        return str(num2words(value, to="ordinal_num")) if amount.style == "digits_ord" else str(value)
    if amount.kind == "count":
        if amount.style == "digits":
            return f"{value:,}" if "," in amount.text else str(value)
        return say(value, amount.a_style, amount.and_style)
    return None


def said_as(amount: Amount, value: int | tuple[int, int]) -> str:
    """How ``value`` reads in the response's own words, for a reason ("eighty-five dollars", "March 14")."""
    rendered = render(amount, value) or str(value)
    if amount.kind == "money" and amount.style in ("pair", "bare", "adj", "adj_sp"):
        rendered = render(Amount(0, 0, "money", value, "dc", amount.a_style, amount.and_style), value) or rendered
    if amount.kind == "time":
        rendered += {"am": " a.m.", "pm": " p.m."}.get(amount.half, "")
    if amount.kind == "date":
        if amount.month:
            rendered = f"{MONTH_NAMES[amount.month - 1]} {rendered}"
        elif amount.style == "ordinal":
            rendered = f"the {rendered}"
    if amount.kind == "count" and amount.unit_text:
        rendered += " " + amount.unit_text
    return rendered


def fits_range(amount: Amount, value: int | tuple[int, int]) -> bool:
    """Whether ``value`` keeps a range in order ("three to five days": the three stays under five)."""
    if amount.kind == "time" or not isinstance(value, int):
        return True
    return not (amount.low is not None and value <= amount.low or amount.high is not None and value >= amount.high)


def with_values(response: str, changes: list[tuple[Amount, str]]) -> str:
    """``response`` with each amount said as its new text (from the end backwards, so offsets stay valid)."""
    text = response
    for amount, new in sorted(changes, key=lambda change: -change[0].start):
        text = replace_with_article(text, amount.start, amount.end, new, tidy_up=False)
    return tidy(text)
