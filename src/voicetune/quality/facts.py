"""Must-convey facts: extract them from a draft, and find them in a response in their spoken forms.

A draft written for a screen says "$1,095.55", "06:00 AM", "2024-05-20", "#W4923227"; a good spoken
response says "one thousand ninety-five dollars and fifty-five cents", "six in the morning", "May
twentieth", "W four nine two three two two seven". Both sides are brought to one canonical form: spoken
numbers become digits (text2num), codes are compared letters-and-digits only, money and times by value.

Internal identifiers (``credit_card_8554680``, ``mia_li_3668``) and URLs are never must-convey: a person
would not read them out. Facts inside a long enumeration past its third item are optional: a good spoken
response gives the first few and offers the rest.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from markdown_it import MarkdownIt
from num2words import num2words

from voicetune.quality.config import DEFAULT_CONFIG, FactRules
from voicetune.quality.text import compact, spoken_to_digits, words
from voicetune.records import Context

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?"
    r"|Nov(?:ember)?|Dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)?"
_AMPM = r"(?:[AaPp]\.?\s?[Mm]\.?)"

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+|\b[a-z0-9-]+\.(?:com|org|net|io|co)(?:/\S*)?\b", re.I)
INTERNAL_ID = re.compile(r"\b[A-Za-z]+(?:_[A-Za-z0-9]+)+\b")
PHONE = re.compile(r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_AMOUNT = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?"
MONEY = re.compile(rf"(?:[$€£]\s?{_AMOUNT}|\b{_AMOUNT}\s?(?:dollars|USD|usd)\b)")
TIME = re.compile(rf"\b\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:\s?{_AMPM})?(?![\w])|\b\d{{1,2}}\s?{_AMPM}(?![\w])")
DATE = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b"
    rf"|\b{_MONTH}\.?\s+\d{{1,2}}{_ORD}\b(?:,?\s+\d{{4}})?|\b\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?"
)
CODE = re.compile(r"#\s?[A-Za-z0-9-]{3,}\b|\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]+(?:-[A-Z0-9]+)*\b|\b\d{6,}\b")
NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?(?![\w])")
NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+([A-Z][a-z]+)|\b(?:[Tt]hank you|[Tt]hanks|Hi|Hello|Dear),?\s+([A-Z][a-z]+)\b"
)
LIST_ITEM = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.M)  # "1." at a line start: numbering, never a fact

#: The order in which spans are claimed: an email's digits are not also a number, and so on.
_EXTRACTORS = (
    ("email", EMAIL),
    ("phone", PHONE),
    ("money", MONEY),
    ("time", TIME),
    ("date", DATE),
    ("code", CODE),
    ("number", NUMBER),
)
_NOT_NAMES = {"for", "you", "so", "again", "there", "everyone", "sir", "madam", "and", "the"}
_STOPWORDS = frozenset(
    "a an the of to in on at for and or but is are was were be been it its this that these those your you i we "
    "my our with by from as will would can could please".split()
)
#: How many items of an enumeration a listener can take in; later items' facts are optional (the default of
#: ``ScorerConfig.facts.spoken_list_limit``).
SPOKEN_LIST_LIMIT = 3
#: Single counts up to this are not must-convey facts (the default of ``ScorerConfig.facts.trivial_count``).
TRIVIAL_COUNT = 1
#: Numbers up to this (not money) are never "invented" (``ScorerConfig.faithfulness.small_count_limit``).
SMALL_COUNT_LIMIT = 10


@dataclass(frozen=True)
class Fact:
    """One must-convey item: its text as written, its kind, and whether a response must carry it."""

    text: str
    kind: str
    required: bool = True
    parts: tuple[Fact, ...] = ()  # for a "composite" fact: the typed items it is made of

    @property
    def weight(self) -> float:
        """Free-text facts count half: their paraphrases can only be matched loosely (the default of
        ``ScorerConfig.faithfulness.phrase_fact_weight``, which the scorer uses)."""
        return 0.5 if self.kind == "phrase" else 1.0


def classify_fact(text: str) -> Fact:
    """Type a fact given as a string (a record's ``facts``).

    A string that is one typed item ("$1,095.55", "HAT069") gets that kind; a string that contains typed
    items ("Fri 5/17 2:30 PM", "7.4 GB of 10 GB") is a ``composite`` of them, conveyed when all of them
    are; a capitalised word is a ``name``; anything else is a ``phrase`` matched by its content words.
    """
    stripped = text.strip()
    if INTERNAL_ID.fullmatch(stripped):
        return Fact(stripped, "internal_id", required=False)
    for kind, pattern in _EXTRACTORS:
        match = pattern.fullmatch(stripped)
        if match:
            return Fact(stripped, kind)
    if re.fullmatch(r"\d+(?:[ -]\d+)+", stripped):  # "071 904 382": one number read in groups
        return Fact(stripped, "code")
    parts = tuple(Fact(f.text, f.kind) for f in extract_facts(stripped) if f.kind != "name")
    if not parts:
        single = re.fullmatch(r"[*#]?\s?(\d+)", stripped)  # "*86", "#5"
        if single:
            parts = (Fact(single.group(1), "number"),)
    if len(parts) == 1 and len(compact(parts[0].text)) >= 0.6 * len(compact(stripped)):
        return parts[0]
    if parts:
        return Fact(stripped, "composite", parts=parts)
    if stripped[:1].isupper() and stripped.isalpha() and len(stripped) > 1:
        return Fact(stripped, "name")
    return Fact(stripped, "phrase")


#: One pass finds every fact; at each position the first alternative wins, so an email's digits are not
#: also a number, a URL or an internal id is never a fact, and list markers ("1.") are skipped.
_FACT_SCAN = re.compile(
    "|".join(
        f"(?P<{kind}>{pattern})"
        for kind, pattern in (
            ("email", EMAIL.pattern),
            ("url", f"(?i:{URL.pattern})"),
            ("internal_id", INTERNAL_ID.pattern),
            ("marker", LIST_MARKER.pattern),
            ("phone", PHONE.pattern),
            ("money", MONEY.pattern),
            ("time", TIME.pattern),
            ("date", DATE.pattern),
            ("code", CODE.pattern),
            ("number", NUMBER.pattern),
        )
    ),
    re.M,
)
_NEVER_FACTS = frozenset({"url", "internal_id", "marker"})
#: Every fact has one of these characters; scanning only the text around them is several times faster.
_FACT_HINT = re.compile(r"[\d@$€£]")
_WINDOW = 16


def _fact_windows(draft: str) -> list[tuple[int, int]]:
    """Spans of ``draft`` around digits, '@' and currency signs, widened to whole tokens and merged."""
    windows: list[list[int]] = []
    length = len(draft)
    for hint in _FACT_HINT.finditer(draft):
        position = hint.start()
        if windows and position + _WINDOW <= windows[-1][1]:
            continue
        start = max(0, position - _WINDOW)
        while start > 0 and not draft[start - 1].isspace():
            start -= 1
        end = min(length, position + _WINDOW)
        while end < length and not draft[end].isspace():
            end += 1
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    return [(start, end) for start, end in windows]


@lru_cache(maxsize=16384)
def extract_facts(
    draft: str, spoken_list_limit: int = SPOKEN_LIST_LIMIT, trivial_count: int = TRIVIAL_COUNT
) -> tuple[Fact, ...]:
    """Find the must-convey facts in a draft: money, phone numbers, emails, times, dates, codes, numbers, names.

    List markers ("1.", "2.") are not facts; internal ids and URLs never are, nor single counts up to
    ``trivial_count``. Facts in enumeration items past ``spoken_list_limit`` are returned with
    ``required=False``.
    """
    structure = _list_structure(draft)
    line_starts = [row.start for row in structure]
    line_items = [0 if row.table else row.item for row in structure]
    found: list[tuple[int, Fact]] = []
    seen: set[tuple[str, str]] = set()
    for match in (m for start, end in _fact_windows(draft) for m in _FACT_SCAN.finditer(draft, start, end)):
        kind = match.lastgroup or ""
        if kind in _NEVER_FACTS:
            continue
        text = match.group(0).strip().rstrip(".")
        if kind == "number" and _is_trivial_number(text, trivial_count):
            continue
        key = (kind, compact(text))
        if key not in seen:
            seen.add(key)
            item = line_items[bisect_right(line_starts, match.start()) - 1]
            found.append((match.start(), Fact(text, kind, required=item <= spoken_list_limit)))
    for match in NAME.finditer(draft):
        name = match.group(1) or match.group(2)
        if name.lower() not in _NOT_NAMES and ("name", name.lower()) not in seen:
            seen.add(("name", name.lower()))
            found.append((match.start(), Fact(name, "name")))
    return tuple(fact for _, fact in sorted(found, key=lambda pair: pair[0]))


#: Words that open a step of a procedure ("1. Restart the router"): a numbered or bulleted list whose items
#: mostly open with one is a procedure, read a step or two at a time.
_STEP_VERBS = frozenset(
    "add allow check choose click close confirm connect dial disable disconnect download enable enter find follow "
    "go hold insert install log make move navigate open pair plug power press pull put reinsert remove reset "
    "restart return scroll select set sign switch tap toggle try turn unplug update upload verify visit wait".split()
)
_ITEM_TEXT = re.compile(r"^(?:[-*•]|\d+[.)])\s+(?:\*\*)?", re.M)


_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
#: A list item that is a field of one record: "- Fare: $212.40", "- **Status:** in transit".
_FIELD = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?:\*\*)?[A-Za-z][\w ./()#'-]{0,30}?(?:\*\*)?:(?:\*\*)?\s")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]*-[\s:|-]*\|?\s*$")


@dataclass
class _Row:
    start: int  # the line's offset in the draft
    line_index: int = 0
    item: int = 0  # its item number in an enumeration (bullets, numbers or table rows; 0: none)
    nested: bool = False  # indented under an item
    enumeration: list | None = None  # the item numbers' rows of its enumeration
    procedure: bool = False  # its enumeration is a procedure
    fields: bool = False  # its enumeration is the fields of one record ("- Fare: $212.40"), not a list of items
    table: bool = False  # a table's row


#: A "•" bullet is read as markdown's "-" (the same length, so offsets hold).
_BULLET = re.compile(r"^(\s*)•(?=\s)", re.M)
_MARKDOWN = MarkdownIt("commonmark").enable("table")
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@lru_cache(maxsize=4096)
def _list_structure(draft: str) -> list[_Row]:
    """Each line of a draft, placed in its enumeration, from the markdown's own blocks (markdown-it tokens, the
    one list parser): the items of a bulleted or numbered list (with the lines under them) and the data rows of
    a table (not its header or rule). Lists and tables that follow each other are one enumeration; a paragraph,
    heading or other block between them ends it, and so does a line markdown would take into an item or a table
    lazily (not indented, or without a pipe): drafts mean it as prose."""
    lines = _LINES.findall(draft)
    rows: list[_Row] = []
    offset = 0
    for index, line in enumerate(lines):
        rows.append(_Row(offset, line_index=index))
        offset += len(line)
    item = 0
    enumeration: list[_Row] = []
    for block, tokens, span in _top_level_blocks(_BULLET.sub(r"\1-", draft)):
        if block not in ("list", "table"):
            item, enumeration = 0, []
            continue
        for start, end in _members(block, tokens, span):
            if block == "table" and "|" not in lines[start]:  # a line the table took in lazily: prose
                item, enumeration = 0, []
                continue
            item += 1
            for line_index in range(start, min(end, len(rows))):
                line, row = lines[line_index], rows[line_index]
                nested = line_index > start and block == "list"
                if nested and not line.strip():
                    continue
                if nested and not line[0].isspace():  # a lazy continuation line ("**Total:** $54.12"): prose
                    item, enumeration = 0, []
                    break
                row.nested = nested
                row.item, row.table, row.enumeration = item, block == "table", enumeration
                if not row.nested:
                    enumeration.append(row)
    for row in rows:
        members = row.enumeration or []
        if members and sum(1 for m in members if _FIELD.match(lines[m.line_index])) * 2 >= len(members):
            row.fields = True
        if len(members) >= 3:
            openers = [words(_ITEM_TEXT.sub("", lines[m.line_index], count=1))[:1] for m in members]
            row.procedure = sum(1 for w in openers if w and w[0] in _STEP_VERBS) * 2 >= len(members)
    return rows or [_Row(0)]


def _top_level_blocks(text: str) -> list[tuple[str, Any, Any]]:
    """The top-level blocks of a markdown text: (``list``/``table``/``other``, its tokens' span)."""
    tokens = _MARKDOWN.parse(text)
    blocks = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        close = index
        if token.nesting == 1:
            depth = 0
            for close in range(index, len(tokens)):
                depth += tokens[close].nesting
                if depth == 0:
                    break
        kind = {"bullet_list_open": "list", "ordered_list_open": "list", "table_open": "table"}.get(token.type, "other")
        blocks.append((kind, tokens, (index, close)))
        index = close + 1
    return blocks


def _members(block: str, tokens: Any, span: Any) -> list[tuple[int, int]]:
    """The line ranges of a list's top-level items, or of a table's data rows."""
    first, last = span
    level = tokens[first].level + 1
    if block == "list":
        return [tuple(t.map) for t in tokens[first:last] if t.type == "list_item_open" and t.level == level and t.map]
    in_body = False
    rows = []
    for token in tokens[first:last]:
        in_body = in_body or token.type == "tbody_open"
        if in_body and token.type == "tr_open" and token.map:
            rows.append(tuple(token.map))
    return rows


@lru_cache(maxsize=16384)
def caller_needs(
    facts: tuple[Fact, ...],
    draft: str,
    earlier: tuple[str, ...] = (),
    spoken_list_limit: int = SPOKEN_LIST_LIMIT,
    procedure_steps: int = 2,
    item_details: bool = True,
    long_code_chars: int = 10,
) -> tuple[Fact, ...]:
    """Which of a draft's facts the caller needs to hear now: the others stay, with ``required=False``.

    Optional (a good spoken answer may leave them out, or offer them):

    - facts the caller already has: said earlier in the call by the caller or by the agent (``earlier``, the
      history's texts), like the order number the caller just gave or the route they asked about;
    - in a list of items (not the fields of one record: "- Fare: $212.40", "- Seat: 23B", which are all facts),
      facts of items past the first ``spoken_list_limit``; every fact of an enumeration longer than
      that (bullets, numbered items or the rows of a markdown table), since an answer gives a few of its items and
      offers the rest; and the attributes of a listed item (every fact of an item after its first, and those of
      lines indented under it): an answer names the items and offers the details (these two unless
      ``item_details`` is False);
    - facts of procedure steps past the first ``procedure_steps`` (a list whose items mostly open with a verb:
      "1. Restart the router"): an answer gives a step or two and walks the caller through the rest;
    - codes longer than ``long_code_chars`` letters and digits (a tracking number): no one takes them in by ear,
      so an answer offers to send or spell them.

    Internal ids and URLs are never facts (:func:`extract_facts`); the last four digits of a card are, unless the
    caller said them.
    """
    if not facts:
        return facts
    structure = _list_structure(draft)
    starts = [row.start for row in structure]
    positions = _fact_positions(facts, draft)
    seen_in_item: set[tuple[int, int]] = set()  # (enumeration, item) whose first fact was seen
    result = []
    for fact, position in zip(facts, positions, strict=True):
        row = structure[bisect_right(starts, position) - 1] if position is not None else None
        required = True if row is not None else fact.required  # the list rules below decide, not extract_facts
        if required and row is not None and row.item and not row.fields:
            size = len(row.enumeration or ())
            if item_details and (row.nested or (id(row.enumeration), row.item) in seen_in_item):
                required = False  # an attribute of a listed item
            elif item_details and size > spoken_list_limit:
                required = False  # a long list: an answer gives a few of its items and offers the rest
            elif row.procedure and row.item > procedure_steps:
                required = False
            elif row.item > spoken_list_limit:
                required = False
        if row is not None and row.item:
            seen_in_item.add((id(row.enumeration), row.item))
        if required and fact.kind == "code" and len(compact(fact.text)) > long_code_chars:
            required = False
        if required and fact.kind != "phrase" and any(_conveyed(fact, text) for text in earlier if text):
            required = False  # the caller already has it
        result.append(fact if required == fact.required else Fact(fact.text, fact.kind, required, fact.parts))
    return tuple(result)


_LABEL_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")


def fact_label(fact: Fact, draft: str) -> frozenset[str]:
    """The words a draft puts just before a fact on its line ("Tracking", "Est. delivery", "change fee"), lower
    case: how an answer names the fact when it offers it instead of reading it."""
    position = draft.find(fact.text)
    if position < 0:
        return frozenset()
    line_start = draft.rfind("\n", 0, position) + 1
    before = _LABEL_WORDS.findall(draft[max(line_start, position - 40) : position])
    return frozenset(w.lower() for w in before[-3:])


def _fact_positions(facts: tuple[Fact, ...], draft: str) -> list[int | None]:
    """Where each fact first occurs in the draft (None when it does not, as for curated facts)."""
    return [found if (found := draft.find(fact.text)) >= 0 else None for fact in facts]


def _int(digits: str) -> int:
    """``int()`` of a digit string that may be absurdly long (a pasted blob of digits): runs past 4,000 digits,
    which no spoken quantity has, are cut so Python's integer-parsing limit never stops the scorer."""
    return int(digits[:4000]) if len(digits) > 4000 else int(digits)


def _is_trivial_number(text: str, limit: int = TRIVIAL_COUNT) -> bool:
    """Single small counts ("1 passenger") are worth saying but not worth gating a response on."""
    return text.isdigit() and _int(text) <= limit


# ---------------------------------------------------------------------------------------------------------
# Matching in a response
#
# A response is analysed once (cached) into sets of the values it says: numbers, adjacent number pairs
# ("1095 and 55 cents", "2 30"), clock hours, (month, day) dates. Each fact is then a set lookup, which
# keeps the scorer fast enough to be a training reward.

_NUMBER_TOKEN = re.compile(r"\d+(?:\.\d+)?")
_PAIR_GAP = re.compile(r"(?:\s*(?:dollars?|bucks)?,?\s*(?:and\s+)?|:|\s*\.\s*)")
_CLOCK_SUFFIX = re.compile(
    r"(?::00)?\s*(?:a\.?\s?m\b|p\.?\s?m\b|o'?clock|in the (?:morning|afternoon|evening)|at "
    r"night|tonight|sharp|\s*(?:to|-|–|until|till|and)\s*(?:\d{1,2}(?::\d{2})?\s*(?:a\.?\s?m\b|p\.?\s?m\b|o'?clock|in "
    r"the|at night)|noon|midnight))"
)
_CLOCK_PREFIX = re.compile(r"(?:\bat|\bby|\buntil|\bfrom|\bafter|\bbefore|\baround|\bto|\btill)\s+$")
_NAMED_TIME = re.compile(r"\b(half|quarter) (past|to) (\d{1,2})\b")
_MONTH_NAME = re.compile(
    rf"\b({_MONTH})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b",
    re.I,
)
_NUMERIC_DATE = re.compile(r"\b\d{4}-(\d{1,2})-(\d{1,2})\b|(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d])")
_ORDINAL_DAY = re.compile(r"\bthe (\d{1,2})(?:st|nd|rd|th)\b")
# "T C, then seven seven two four, then Q as in queen" / "read more, all one word, then ten"
_SPELLING_FILLER = re.compile(r"\b(?:then|dash|hyphen|space|(?:all )?one word|as in \w+|like \w+|for \w+)\b", re.I)
_DIGIT_GAP = re.compile(r"(?<=\d)[ ,-]+(?=\d)")


class SpokenView:
    """What a response says, brought to canonical form once so that every fact is matched against it.

    Each part is computed on first use (a response checked only for amounts never parses times), then kept.
    """

    def __init__(self, text: str):
        self.text = text  # as given
        self.digits = spoken_to_digits(text).lower()  # spoken numbers as digits, lower case
        self._tokens = list(_NUMBER_TOKEN.finditer(self.digits)) if _HAS_DIGIT.search(self.digits) else []

    @cached_property
    def numbers(self) -> frozenset[str]:
        """Canonical numbers said ("1095.55", "121", "8")."""
        return frozenset(_canonical(m.group(0)) for m in self._tokens)

    @cached_property
    def words(self) -> frozenset[str]:
        return frozenset(words(self.digits))

    @cached_property
    def compact(self) -> str:
        """Letters and digits only."""
        return compact(self.digits)

    @cached_property
    def joined(self) -> str:
        """Digit groups said apart joined up ("12 07" -> "1207", "555 201 8890" -> "5552018890")."""
        return _DIGIT_GAP.sub("", self.digits) if self._tokens else self.digits

    @cached_property
    def spelled(self) -> str:
        """Letters and digits only, with the words people put between spelled parts removed."""
        return _spelled(self.text) if _SPELLING_FILLER.search(self.text) else self.compact

    @cached_property
    def pairs(self) -> frozenset[tuple[str, str]]:
        """Adjacent numbers: ("1095", "55") from "1095 dollars and 55 cents", ("2", "30") from "2 30"."""
        digits, tokens = self.digits, self._tokens
        pairs = set()
        for match, following in zip(tokens, tokens[1:], strict=False):
            if following.start() - match.end() <= 16 and _PAIR_GAP.fullmatch(digits, match.end(), following.start()):
                pairs.add((match.group(0), following.group(0)))
        return frozenset(pairs)

    @cached_property
    def times(self) -> frozenset[tuple[int, int]]:
        """(hour 0-23, minute) said as a time; both halves of the day unless the response says which."""
        digits, tokens = self.digits, self._tokens
        times: set[tuple[int, int]] = set()
        for i, match in enumerate(tokens):
            value = match.group(0)
            if not value.isdigit() or _int(value) > 24:
                continue
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            minute, end = None, match.end()
            if (
                following
                and digits[end : following.start()] in (":", " ", ".")
                and re.fullmatch(r"[0-5]\d", following.group(0))
            ):
                minute, end = int(following.group(0)), following.end()
            is_clock = (
                minute is not None
                or _CLOCK_SUFFIX.match(digits, match.end())
                or _CLOCK_PREFIX.search(digits, max(0, match.start() - 8), match.start())
            )
            if is_clock:
                half = _half_of_day(digits, end)
                range_end = _RANGE_END.match(digits, end)
                if half is None and range_end:  # "eight to ten a.m.": the start shares the end's half of the day
                    half = _half_of_day(digits, range_end.end())
                times.update((hour, minute or 0) for hour in _hours(int(value), half))
        if "half" in digits or "quarter" in digits:
            for named in _NAMED_TIME.finditer(digits):
                kind, direction, hour = named.groups()
                h = int(hour) - 1 if direction == "to" else int(hour)
                minute = {"half": 30, "quarter": 15 if direction == "past" else 45}[kind]
                times.update((each, minute) for each in _hours(h, _half_of_day(digits, named.end())))
        if "noon" in digits or "midday" in digits:
            times.add((12, 0))
        if "midnight" in digits:
            times.add((0, 0))
        return frozenset(times)

    @cached_property
    def dates(self) -> frozenset[tuple[int, int]]:
        """(month, day) said."""
        digits = self.digits
        dates = set()
        if self._tokens and not MONTHS.keys().isdisjoint(self.words):
            for month_a, day_a, day_b, month_b in _MONTH_NAME.findall(digits):
                dates.add((MONTHS[(month_a or month_b).lower()], int(day_a or day_b)))
        if self._tokens and ("/" in digits or "-" in digits):
            for iso_month, iso_day, month, day in _NUMERIC_DATE.findall(digits):
                dates.add((int(iso_month or month), int(iso_day or day)))
        return frozenset(dates)

    @cached_property
    def days(self) -> frozenset[int]:
        """Days said without a month ("the 17th")."""
        return frozenset(int(d) for d in _ORDINAL_DAY.findall(self.digits)) if self._tokens else frozenset()


@lru_cache(maxsize=16384)
def _spelled(text: str) -> str:
    return compact(spoken_to_digits(_SPELLING_FILLER.sub(" ", text)))


@lru_cache(maxsize=65536)
def spoken_view(text: str) -> SpokenView:
    """The :class:`SpokenView` of a text (cached: every fact of every quality looks at the same view)."""
    return SpokenView(text)


_HAS_DIGIT = re.compile(r"\d")
_RANGE_END = re.compile(r"\s*(?:to|-|–|until|till|and)\s*\d{1,2}(?:[: ][0-5]\d)?")
_AM = re.compile(r"\s*(?:a\.?\s?m\b|in the morning)")
_PM = re.compile(r"\s*(?:p\.?\s?m\b|in the (?:afternoon|evening)|at night|tonight)")


def _half_of_day(digits: str, end: int) -> str | None:
    """ "am" or "pm" when the words right after a time say which half of the day it is."""
    if _AM.match(digits, end):
        return "am"
    if _PM.match(digits, end):
        return "pm"
    return None


def _hours(hour: int, half: str | None) -> set[int]:
    """The 24-hour values a spoken clock hour can mean: one when the half of the day is said, else two."""
    if hour > 12:
        return {hour % 24}
    if half == "am":
        return {hour % 12}
    if half == "pm":
        return {hour % 12 + 12}
    return {hour % 12, hour % 12 + 12}


def money_value(text: str) -> tuple[int, int]:
    found = re.search(r"\d[\d,]*(?:\.\d{1,2})?", text)
    number = found.group(0).replace(",", "") if found else "0"
    dollars, _, cents = number.partition(".")
    return _int(dollars), _int((cents + "00")[:2]) if cents else 0


def time_value(text: str) -> tuple[int, int]:
    hour_min = re.match(r"\s*(\d{1,2})(?::(\d{2}))?", text)
    if hour_min is None:
        return 0, 0
    hour, minute = int(hour_min.group(1)), int(hour_min.group(2) or 0)
    if re.search(r"[Pp]\.?\s?[Mm]", text) and hour < 12:
        hour += 12
    if re.search(r"[Aa]\.?\s?[Mm]", text) and hour == 12:
        hour = 0
    return hour, minute


def _date_value(text: str) -> tuple[int, int] | None:
    iso = re.match(r"(\d{4})-(\d{2})-(\d{2})", text)
    if iso:
        return int(iso.group(2)), int(iso.group(3))
    slash = re.match(r"(\d{1,2})/(\d{1,2})", text)
    if slash:
        return int(slash.group(1)), int(slash.group(2))
    month = re.search(_MONTH, text, re.I)
    day = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", text)
    if month and day:
        return MONTHS[month.group(0).lower().rstrip(".")], int(day.group(1))
    return None


def _in_joined(key: str, view: SpokenView) -> bool:
    """Whether digits said in groups ("eighteen fifty-eight ninety-nine") spell ``key``."""
    start = view.joined.find(key)
    while start != -1:
        end = start + len(key)
        if (start == 0 or not view.joined[start - 1].isdigit()) and (
            end == len(view.joined) or not view.joined[end].isdigit()
        ):
            return True
        start = view.joined.find(key, start + 1)
    return False


def _money_conveyed(fact: Fact, view: SpokenView) -> bool:
    dollars, cents = money_value(fact.text)
    if cents:
        if f"{dollars}.{cents:02d}".rstrip("0") in view.numbers or (str(dollars), f"{cents:02d}") in view.pairs:
            return True
        if (str(dollars), str(cents)) in view.pairs:  # "5 dollars and 5 cents"
            return True
        return len(f"{dollars}{cents:02d}") >= 4 and _in_joined(f"{dollars}{cents:02d}", view)
    if str(dollars) in view.numbers:
        return True
    if 100 <= dollars < 1000 and dollars % 100 and (str(dollars // 100), str(dollars % 100)) in view.pairs:
        return True  # "one twenty-one" for $121
    return len(str(dollars)) >= 4 and _in_joined(str(dollars), view)


def _time_conveyed(fact: Fact, view: SpokenView) -> bool:
    hour, minute = time_value(fact.text)
    if not re.search(r"[AaPp]\.?\s?[Mm]", fact.text) and hour <= 12:  # "6:00" without a half of the day
        return any((h, minute) in view.times for h in _hours(hour, None))
    return (hour, minute) in view.times


def _date_conveyed(fact: Fact, view: SpokenView) -> bool:
    value = _date_value(fact.text)
    if value is None:
        return compact(fact.text) in view.compact
    return value in view.dates or value[1] in view.days


def fact_conveyed(fact: Fact, response: str | SpokenView) -> bool:
    """Whether a response says ``fact``, in any of its spoken or written forms."""
    return _conveyed(fact, response.text if isinstance(response, SpokenView) else response)


@lru_cache(maxsize=65536)
def _conveyed(fact: Fact, response: str) -> bool:
    view = spoken_view(response)
    kind = fact.kind
    if kind == "composite":
        return all(_conveyed(part, response) for part in fact.parts)
    if kind == "money":
        return _money_conveyed(fact, view)
    if kind == "time":
        return _time_conveyed(fact, view)
    if kind == "date":
        return _date_conveyed(fact, view)
    if kind == "phone":
        digits = re.sub(r"\D", "", fact.text)
        digits = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        return digits in re.sub(r"\D", "", view.digits)
    if kind == "email":
        spoken = (
            fact.text.lower()
            .replace(".", " dot ")
            .replace("@", " at ")
            .replace("_", " underscore ")
            .replace("-", " dash ")
        )
        return compact(fact.text) in view.compact or compact(spoken_to_digits(spoken)) in view.compact
    if kind in ("code", "internal_id"):
        key = compact(spoken_to_digits(fact.text.lstrip("#")))
        return bool(key) and (key in view.compact or key in view.spelled)
    if kind == "number":
        value = fact.text.rstrip("%")
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+", value):  # "1,014" -> "1014", "8.0" -> "8"
            value = _canonical(value.replace(",", ""))
        if (value in view.numbers and not value.startswith("0")) or (len(value) >= 2 and _in_joined(value, view)):
            return True
        return (
            value.isdigit()
            and _int(value) <= 20
            and (_number_word(_int(value)) in view.words or (_int(value) == 1 and bool({"a", "an"} & view.words)))
        )
    if kind == "name":
        return fact.text.lower() in view.words
    content = [w for w in words(spoken_to_digits(fact.text).lower()) if w not in _STOPWORDS and len(w) > 2] or words(
        fact.text
    )
    present = sum(
        1 for w in content if w in view.words or any(w[:5] in said for said in view.words)
    )  # "lock" ~ "unlocked"
    return present >= max(1, 0.5 * len(content))


@lru_cache(maxsize=64)
def _number_word(value: int) -> str:
    return num2words(value)


# ---------------------------------------------------------------------------------------------------------
# Invented facts


_CLOCK = re.compile(r"\b(\d{1,2}):\d{2}")


@lru_cache(maxsize=65536)
def context_numbers(text: str) -> frozenset[str]:
    """Every number a text contains, canonical (no leading zeros, no thousands commas), with 12/24-hour
    variants of clock times and the whole and cents parts of money."""
    digits = spoken_to_digits(text)
    found: set[str] = set()
    for token in _NUMBER_TOKEN.findall(digits):
        found.add(_canonical(token))
        if "." in token:
            whole, _, frac = token.partition(".")
            found.update({_canonical(whole), _canonical(frac)})
    for hour in _CLOCK.findall(digits):
        value = int(hour)
        found.update({str(value % 12 or 12), str(value + 12) if value < 12 else str(value)})
    return frozenset(found)


def _canonical(token: str) -> str:
    if "." in token:
        whole, _, frac = token.partition(".")
        frac = frac.rstrip("0")
        whole = whole.lstrip("0") or "0"
        return f"{whole}.{frac}" if frac else whole
    return token.lstrip("0") or "0"


_MONEY_CONTEXT = re.compile(r"(?:\$\s?|\b)(\d+(?:\.\d+)?)(?=\s*(?:dollars?|bucks|usd)\b)|\$\s?(\d+(?:\.\d+)?)", re.I)


def invented_numbers(
    response: str, context_texts: tuple[str, ...], small_count_limit: int = SMALL_COUNT_LIMIT
) -> list[str]:
    """Numbers the response states that appear nowhere in its context (history, draft, tool results).

    Small counts (``small_count_limit`` or less) are left alone unless they are money, and two adjacent numbers that
    together
    make a context number ("one twenty-one" for 121, "555 201" of a phone number) are accepted.
    """
    view = spoken_view(response)
    if not view.numbers:
        return []
    known = [context_numbers(text) for text in context_texts]

    def is_known(value: str) -> bool:
        return any(value in numbers for numbers in known)

    digits = view.digits
    money = {_canonical(a or b) for a, b in _MONEY_CONTEXT.findall(digits)}
    tokens = [(m.start(), m.end(), _canonical(m.group(0))) for m in _NUMBER_TOKEN.finditer(digits)]
    invented: list[str] = []
    for i, (start, end, value) in enumerate(tokens):
        if is_known(value):
            continue
        neighbours = []
        if i > 0 and start - tokens[i - 1][1] <= 2:
            neighbours.append(tokens[i - 1][2] + value)
        if i + 1 < len(tokens) and tokens[i + 1][0] - end <= 2:
            neighbours.append(value + tokens[i + 1][2])
        if any(is_known(_canonical(n)) for n in neighbours if "." not in n):
            continue
        is_money = value in money
        if not is_money and "." not in value and _int(value) <= small_count_limit:
            continue
        invented.append(("$" if is_money else "") + value)
    return invented


# ---------------------------------------------------------------------------------------------------------
# Swapped amounts

_SEGMENT = re.compile(r"[\n;|—–]+|(?<=[.!?])\s+|,\s+|\s+(?:and|or|but|while|whereas|plus)\s+", re.I)
_LABEL_STOP = frozenset(
    "the a an of for to in on at is are was be and or with your you it its this that per each total price cost costs "
    "fee fees amount dollars usd cents would will can just only about".split()
)


def _label_words(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if w.isalpha() and len(w) > 2 and w not in _LABEL_STOP)


@lru_cache(maxsize=16384)
def _amount_labels(draft: str) -> tuple[tuple[Fact, frozenset[str]], ...]:
    """Each amount of money in a draft, with the words of the segment (line, table cell row, clause) it sits in."""
    found = []
    for segment in re.split(r"\n+", draft):
        for match in MONEY.finditer(segment):
            clause = next((c for c in _SEGMENT.split(segment) if match.group(0) in c), segment)
            label = _label_words(re.sub(MONEY, " ", clause)) or _label_words(re.sub(MONEY, " ", segment))
            found.append((Fact(match.group(0).strip(), "money"), label))
    return tuple(found)


def swapped_amounts(response: str, draft: str) -> list[tuple[str, str]]:
    """Amounts a response pins to the wrong thing: ``(amount as written in the draft, the label it is said with)``.

    A listener who hears "Premium is twelve forty and Business is three eighty-nine" where the draft prices
    Premium at $389 and Business at $1,240 hears two right numbers and a wrong answer. For each clause of the
    response that says one of the draft's amounts, the words around it are compared with the words the draft
    puts beside each amount: an amount said with words that only another amount has in the draft (and none of
    its own) is swapped, when at least two amounts are (an exchange; one alone is often a payment method or a
    balance named beside a price). Amounts whose draft segments share all their words (a table of like rows) are
    not judged.
    """
    labelled = [(fact, label) for fact, label in _amount_labels(draft) if label]
    if len(labelled) < 2:
        return []
    swapped = []
    for clause in _SEGMENT.split(response):
        if not clause or not any(ch.isdigit() for ch in spoken_to_digits(clause)):
            continue
        said = _label_words(clause)
        for fact, label in labelled:
            if not _conveyed(fact, clause):
                continue
            own = label - frozenset().union(*(other for f, other in labelled if f.text != fact.text))
            foreign = {w for f, other in labelled if f.text != fact.text for w in other - label}
            if said & foreign and not said & (own or label):
                swapped.append((fact.text, ", ".join(sorted(said & foreign))))
    # One amount beside another's words is often innocent ("a hundred seventy-two on your gift card", where the
    # draft also gives the gift card's balance); two amounts each beside the other's words are an exchange.
    return swapped if len({amount for amount, _ in swapped}) >= 2 else []


def turn_facts(turn: Context, rules: FactRules = DEFAULT_CONFIG.facts) -> tuple[Fact, ...]:
    """The facts of a turn, each marked required or not (the one definition of what a turn needs said: the
    scorer, the policy's prompt, the simulated caller and the corrupter read it): its curated ``facts`` when
    given (all required; ``facts: []`` needs nothing), else those extracted from its draft, required only when the
    caller needs them now (:func:`caller_needs`: not
    what the caller already has, not the details an answer may offer instead of reading)."""
    if turn.facts is not None:
        return tuple(classify_fact(text) for text in turn.facts if text.strip())
    draft = turn.draft or ""
    facts = extract_facts(draft, rules.spoken_list_limit, rules.trivial_count)
    earlier = tuple(m.text for m in turn.history) if rules.known_is_optional else ()
    return caller_needs(
        facts,
        draft,
        earlier,
        rules.spoken_list_limit,
        rules.procedure_steps,
        rules.item_details_optional,
        rules.long_code_chars,
    )
