"""A draft written for a screen, said faithfully: the ``draft+voicetune`` baseline and the guard's fallback.

Pipecat's ``VoiceFormatter`` (what voice frameworks put before the TTS) strips symbols line by line; what it
leaves is often still unspeakable ("H8Q05 liters" for the reservation H8Q05L, "O U T-48213", "4:30 P M C D T",
"Reservation I D:" field lists, tables read as pipes). :func:`speak_draft` renders the draft for the ear and
drops nothing it says:

- the structure comes from the markdown parser (``markdown-it-py``, tables on): headings and paragraphs become
  sentences, a field line ("**Policy:** AUT-4471902") "The policy is ...", a list of short items one sentence
  ("a, b, and c", ``inflect``), a numbered list of sentences "First, ... Second, ...", an item with sub-items
  "Flight HAT136: departure ..., arrival ...", a table one sentence a row;
- the items a TTS misreads are found with the fact patterns of :mod:`voicetune.quality.facts` (the one place
  that says what a code, an amount, a time, a date, a phone number is) and said with ``num2words``:
  codes as their characters in groups ("H 8 Q, 0 5 L"), amounts ("one hundred and fifty-two dollars"), times
  and their zones ("four thirty p.m. Central"), dates ("May twentieth, twenty twenty-four"), ordinals,
  percentages, phone numbers digit by digit, e-mail addresses and URLs with "at", "dot" and "slash";
- emoji and decorative symbols go; internal ids are said as their parts ("credit card ending in 5 8 4 6").

The result is long where the draft is long (it is a floor: faithful first); the tuned voice is what makes it
short.
"""

from __future__ import annotations

import asyncio
import calendar
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from num2words import num2words

from voicetune.errors import VoicetuneError
from voicetune.quality.facts import CODE, DATE, EMAIL, INTERNAL_ID, MONEY, MONTHS, NUMBER, PHONE, TIME, URL

if TYPE_CHECKING:
    import inflect

#: Bump when what :func:`speak_draft` says changes (a system's cached responses are keyed by it).
VERBALIZER_VERSION = 3

_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@lru_cache(maxsize=1)
def inflect_engine() -> inflect.engine:
    """The one ``inflect`` engine (plurals, articles, list joining). Imported on first use: inflect's typeguard
    instrumentation costs about 3 s of CPU at import, which every command (even ``--help``) would pay."""
    import inflect  # noqa: PLC0415 (heavy: inflect's typeguard instrumentation at import)

    return inflect.engine()


_MONTH_NAMES = dict(enumerate(calendar.month_name))
#: Time zones as a caller hears them.
ZONES = {
    "EST": "Eastern",
    "EDT": "Eastern",
    "ET": "Eastern",
    "CST": "Central",
    "CDT": "Central",
    "CT": "Central",
    "MST": "Mountain",
    "MDT": "Mountain",
    "MT": "Mountain",
    "PST": "Pacific",
    "PDT": "Pacific",
    "PT": "Pacific",
    "UTC": "U T C",
    "GMT": "G M T",
}
#: Internal id prefixes that name a payment method: said "credit card ending in ..." (a person never reads
#: ``credit_card_7815846`` out).
_PAYMENT_PREFIXES = ("credit_card", "debit_card", "gift_card", "certificate", "paypal", "bank_account")
#: Symbols said as words when they stand alone between words.
_SYMBOL_WORDS = {
    "&": "and",
    ">": "then",
    "→": "to",
    "->": "to",
    "=>": "to",
    "~": "about",
    "+": "plus",
    "=": "equals",
    "@": "at",
    "w/": "with",
    "x": "times",
}
#: Units written after a number, as said.
_UNITS = {
    "GB": "gigabytes",
    "MB": "megabytes",
    "TB": "terabytes",
    "KB": "kilobytes",
    "Mbps": "megabits per second",
    "Gbps": "gigabits per second",
    "kWh": "kilowatt hours",
    "kW": "kilowatts",
    "lbs": "pounds",
    "lb": "pounds",
    "kg": "kilograms",
    "km": "kilometers",
    "mi": "miles",
    "mph": "miles per hour",
    "hrs": "hours",
    "hr": "hour",
    "mins": "minutes",
    "min": "minutes",
    "sec": "seconds",
    "ft": "feet",
    "oz": "ounces",
    "mg": "milligrams",
}
#: Spans, in the order they are claimed (an e-mail's digits are not also a number, and so on).
_SPANS = (
    ("email", EMAIL),
    ("url", URL),
    ("phone", PHONE),
    ("money", MONEY),
    ("time", TIME),
    ("date", DATE),
    ("internal_id", INTERNAL_ID),
    ("code", CODE),
    ("number", NUMBER),
)


def speak_draft(draft: str) -> str:
    """The draft as a caller should hear it: markdown gone, structure into sentences, codes, amounts, times,
    dates and numbers spoken, nothing dropped (see the module docstring)."""
    return _speak(draft or "")


@lru_cache(maxsize=4096)
def _speak(draft: str) -> str:
    tree = SyntaxTreeNode(_MD.parse(draft))
    sentences = [_sentence(s) for s in _blocks(tree)]
    return " ".join(s for s in sentences if s)


# ------------------------------------------------------------------------------------------ structure


def _blocks(node: SyntaxTreeNode) -> list[str]:
    """Sentences (not yet verbalized) of a block node's children, in order."""
    out: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "heading":
            out.append(_inline(child.children[0]) if child.children else "")
        elif kind == "paragraph":
            out.extend(_field_sentence(line) for line in _lines(child))
        elif kind in ("bullet_list", "ordered_list"):
            said = _list(child)
            if out and out[-1].rstrip().endswith(":") and len(said) == 1:  # "Please provide: a, b, and c."
                out[-1] = f"{out[-1].rstrip()} {said[0]}"
            else:
                out.extend(said)
        elif kind == "table":
            out.extend(_table(child))
        elif kind in ("fence", "code_block"):
            out.extend(line for line in child.content.splitlines() if line.strip())
        elif kind == "html_block":
            continue
        elif child.children:
            out.extend(_blocks(child))
    return [s for s in out if s.strip()]


def _lines(paragraph: SyntaxTreeNode) -> list[str]:
    """A paragraph's lines: LLM drafts put one field a line without a blank line between them."""
    if not paragraph.children:
        return []
    lines: list[str] = []
    current: list[str] = []
    for part in paragraph.children[0].children:
        if part.type in ("softbreak", "hardbreak"):
            lines.append("".join(current))
            current = []
        else:
            current.append(_inline_part(part))
    lines.append("".join(current))
    return [line.strip() for line in lines if line.strip()]


def _inline(node: SyntaxTreeNode) -> str:
    return " ".join(
        "".join(_inline_part(p) if p.type not in ("softbreak", "hardbreak") else " " for p in node.children).split()
    )


def _inline_part(part: SyntaxTreeNode) -> str:
    if part.type == "text":
        return part.content
    if part.type == "code_inline":
        return part.content
    if part.type == "link":
        text = "".join(_inline_part(p) for p in part.children)
        return text or str(part.attrs.get("href", ""))
    if part.type == "image":
        return str(part.attrs.get("alt", "") or "")
    if part.type == "html_inline":
        return ""
    return "".join(_inline_part(p) for p in part.children)


def _field(text: str) -> tuple[str, str] | None:
    """``("Reservation ID", "H8Q05L")`` for a field line "Reservation ID: H8Q05L" (a short label, a value that
    is not a question or a sentence of its own), else None."""
    label, colon, value = text.partition(":")
    label, value = label.strip(), value.strip()
    if (
        not colon
        or not value
        or not label
        or len(label.split()) > 5
        or label[-1] in ".?!"
        or value.endswith("?")
        or ": " in value
    ):
        return None
    if label[0].isdigit() or (label[-1].isdigit() and value[:1].isdigit()):  # "10:30 AM" is a time, not a field
        return None
    return label.replace("(s)", "s"), value


def _is_are(label: str) -> str:
    last = label.split()[-1]
    return "are" if last.isalpha() and last.islower() and inflect_engine().singular_noun(last) else "is"


def _field_sentence(line: str) -> str:
    field = _field(line)
    if field is None:
        return line
    label, value = field
    return f"The {_label(label)} {_is_are(label)} {value}"


def _label(label: str) -> str:
    """A field label inside a sentence: lower case but for acronyms and names ("ID", "Economy")."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in label.split())


def _list(node: SyntaxTreeNode) -> list[str]:
    ordered = node.type == "ordered_list"
    items = [_item(li) for li in node.children]
    if items and all(_short(head) and not subs for head, subs in items) and (not ordered or len(items) <= 5):
        return [inflect_engine().join([head.rstrip(".;,") for head, _ in items]) + "."]
    out = []
    for n, (head, subs) in enumerate(items, 1):
        text = head.rstrip(":;") if subs else head
        if subs:
            text = (
                f"{text}: {inflect_engine().join([s.rstrip('.;,') for s in subs])}"
                if text
                else inflect_engine().join(subs)
            )
        if ordered and len(items) > 1:
            text = (
                f"{num2words(n, to='ordinal').capitalize()}, "
                f"{text[:1].lower() + text[1:] if not text[:2].isupper() else text}"
            )
        out.append(text)
    return out


def _item(li: SyntaxTreeNode, sentences: bool = True) -> tuple[str, list[str]]:
    """A list item's own text (fields said "label is value" when ``sentences``) and its sub-items as phrases
    ("label value")."""
    head_parts: list[str] = []
    subs: list[str] = []
    for child in li.children:
        if child.type == "paragraph":
            head_parts.extend(_field_sentence(line) if sentences else line for line in _lines(child))
        elif child.type in ("bullet_list", "ordered_list"):
            for sub_li in child.children:
                text, nested = _item(sub_li, sentences=False)
                field = _field(text)
                phrase = f"{_label(field[0])} {field[1]}" if field else text
                subs.append(f"{phrase} ({inflect_engine().join(nested)})" if nested else phrase)
        else:
            head_parts.extend(_blocks(child))
    head = ". ".join(p.rstrip(".") for p in head_parts if p) if len(head_parts) > 1 else "".join(head_parts)
    return head, subs


def _short(text: str) -> bool:
    return len(text.split()) <= 8 and text.rstrip()[-1:] not in "?!" and ". " not in text and ":" not in text


def _table(node: SyntaxTreeNode) -> list[str]:
    rows = [
        [_inline(cell.children[0]) if cell.children else "" for cell in tr.children]
        for section in node.children
        for tr in section.children
    ]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    out = []
    for row in body:
        pairs = [(h, v) for h, v in zip(header, row, strict=False) if v.strip()]
        if not pairs:
            continue
        (first_h, first_v), rest = pairs[0], pairs[1:]
        lead = first_v if first_h.lower() in first_v.lower() or not first_h else f"{first_h} {first_v}"
        out.append(f"{lead}: {inflect_engine().join([f'{_label(h)} {v}' for h, v in rest])}" if rest else lead)
    return out


# ------------------------------------------------------------------------------------------ words


def _sentence(text: str) -> str:
    spoken = _verbalize(text.replace("(s)", "s"))
    spoken = _tidy(spoken.replace("(", ", ").replace(")", ","))
    spoken = spoken.strip(" ,;:")
    if not any(ch.isalnum() for ch in spoken):  # a rule of dashes, a lone symbol: nothing to say
        return ""
    if spoken[-1] not in ".?!":
        spoken += "."
    return spoken[:1].upper() + spoken[1:]


def _verbalize(text: str) -> str:
    """Every span a TTS misreads, said in words; symbols and emoji dropped or said."""
    claimed: list[tuple[int, int, str, str]] = []
    for kind, pattern in _SPANS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e, _, _ in claimed):
                continue
            span = match.group(0)
            trailing = len(span) - len(span.rstrip(".,;:!?)"))
            if kind == "url" and trailing:  # "visit site.com/claims." : the sentence's full stop is not the URL's
                span, end = span[:-trailing], end - trailing
            said, end = _say(kind, span, text, end)
            if kind == "internal_id":
                aside = _aside(text, start, end)
                if aside:  # "(dc_harbor_90417)", "(patient ID: pt_okafor_58213)": a database aside, not for the ear
                    said, (start, end) = "", aside
            elif kind == "number" and said[:1].isalpha() and _airline_code(text, start):
                said = " ".join(span.replace(",", ""))  # "FR 612": a flight number, said digit by digit
            claimed.append((start, end, said, kind))
    out, position, previous = [], 0, None
    for start, end, said, kind in sorted(claimed):
        between = text[position:start]
        stripped = between.rstrip()
        if kind == "money" and stripped.endswith("-") and (len(stripped) == 1 or stripped[-2] in " :(\t"):
            between = stripped[:-1] + " minus "  # "Credit: -$146.30"
        if previous in ("number", "money") and between.strip() in ("-", "–", "—") and said[:1].isalpha():
            out.append(" to ")  # "7–10 days", "$5-$10"
        else:
            out.append(_plain(between))
        out.append(f" {said}" + ("" if text[end : end + 1] == "-" else " "))
        position, previous = end, kind
    out.append(_plain(text[position:]))
    return _tidy("".join(out))


def _aside(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The parenthesised aside an internal id sits in, when it is short and holds nothing else in brackets."""
    left, right = text.rfind("(", 0, start), text.find(")", end)
    if left == -1 or right == -1 or ")" in text[left:start] or "(" in text[end:right] or right - left > 80:
        return None
    return left, right + 1


def _airline_code(text: str, start: int) -> bool:
    """Whether the number at ``start`` follows a two-letter carrier code ("FR 612", "UA 1738")."""
    before = text[:start].split()
    return (
        bool(before)
        and len(before[-1].strip("*")) == 2
        and before[-1].strip("*").isupper()
        and before[-1].strip("*").isalpha()
    )


def _tidy(text: str) -> str:
    """Spaces and punctuation after the spans were said: no space before a mark, no doubled marks."""
    text = " ".join(text.split())
    for before, after in (
        (" ,", ","),
        (" .", "."),
        (" :", ":"),
        (" ;", ";"),
        (" ?", "?"),
        (",.", "."),
        (",,", ","),
        (":.", "."),
    ):
        text = text.replace(before, after)
    return text


def _plain(text: str) -> str:
    """Text between spans: emoji and decorative symbols dropped, lone symbols said, ordinals said."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Sk", "Co", "Cs") and ch not in "*_`#|•")
    words = []
    for word in kept.split():
        core = word.strip(".,;:!?")
        if core in _SYMBOL_WORDS and (core != "x" or word == core):
            words.append(word.replace(core, _SYMBOL_WORDS[core]))
        elif core in _UNITS and not words:  # right after a number span: "3 GB"
            words.append(word.replace(core, _UNITS[core]))
        elif core[:-2].isdigit() and core[-2:].lower() in ("st", "nd", "rd", "th"):
            words.append(word.replace(core, num2words(int(core[:-2]), to="ordinal")))
        elif core.startswith("/") and core[1:].isalpha():  # "$74.99/month": per month
            words.append(word.replace("/", "per ", 1))
        elif "/" in core and core.replace("/", "").isalpha() and core.count("/") == 1:  # "one-way/round-trip"
            words.append(word.replace("/", " or "))
        else:
            words.append(word)
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() else ""
    return lead + " ".join(words) + trail


def _say(kind: str, span: str, text: str, end: int) -> tuple[str, int]:
    """How a span is said, and where it ends (a time takes its zone with it)."""
    if kind == "email":
        local, _, domain = span.partition("@")
        return f"{_dotted(local)} at {_dotted(domain)}", end
    if kind == "url":
        return _url(span), end
    if kind == "phone":
        return ", ".join(" ".join(group) for group in _digit_groups(span)), end
    if kind == "money":
        return _money(span), end
    if kind == "time":
        said = _time(span)
        following = text[end:].split(maxsplit=1)
        if following and following[0].strip(".,;:)") in ZONES:
            zone = following[0].strip(".,;:)")
            said += " " + ZONES[zone]
            end = text.index(zone, end) + len(zone)
        return said, end
    if kind == "date":
        return _date(span), end
    if kind == "internal_id":
        return _internal_id(span), end
    if kind == "code":
        return _code(span), end
    return _number(span), end


def _dotted(text: str) -> str:
    return " dot ".join(part for part in text.split(".") if part)


def _url(span: str) -> str:
    bare = span.split("://", 1)[-1].rstrip("/.,")
    host, _, path = bare.partition("/")
    said = _dotted(host.removeprefix("www."))
    if path:
        said += " slash " + " slash ".join(p.replace("-", " ").replace("_", " ") for p in path.split("/") if p)
    return said


def _digit_groups(span: str) -> list[str]:
    groups, current = [], ""
    for ch in span:
        if ch.isdigit():
            current += ch
        elif current:
            groups.append(current)
            current = ""
    return groups + ([current] if current else [])


def _chunks(chars: str) -> list[str]:
    """Characters in groups of three, a lone last character joined to the group before ("4 4 7, 1 9 0 2")."""
    groups = [chars[i : i + 3] for i in range(0, len(chars), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return groups


def _code(span: str) -> str:
    """A code said character by character in groups: "H8Q05L" -> "H 8 Q, 0 5 L"; "AUT-4471902" ->
    "A U T, 4 4 7, 1 9 0 2"."""
    body = span.lstrip("#").strip()
    prefix = "number " if span.startswith("#") else ""
    groups = []
    for part in body.replace("-", " ").split():
        groups += _chunks(part.upper())
    return prefix + ", ".join(" ".join(group) for group in groups)


def _internal_id(span: str) -> str:
    lowered = span.lower()
    for prefix in _PAYMENT_PREFIXES:
        if lowered.startswith(prefix):
            digits = "".join(ch for ch in span if ch.isdigit())
            name = prefix.replace("_", " ")
            return f"{name} ending in {' '.join(digits[-4:])}" if digits else name
    parts = []
    for part in span.split("_"):
        parts.append(", ".join(" ".join(g) for g in _chunks(part)) if any(ch.isdigit() for ch in part) else part)
    return " underscore ".join(parts)


def _amount(text: str) -> float:
    return float("".join(ch for ch in text if ch.isdigit() or ch == ".") or 0)


def _money(span: str) -> str:
    value = _amount(span)
    unit = "euro" if "€" in span else "pound" if "£" in span else "dollar"
    whole, cents = int(value), round((value - int(value)) * 100)
    said = f"{num2words(whole)} {inflect_engine().plural(unit, whole)}"
    if cents:
        said += f" and {num2words(cents)} {inflect_engine().plural('cent', cents)}"
    return said


def _time(span: str) -> str:
    clock = span.replace(".", "").upper()
    half = "p.m." if "PM" in clock.replace(" ", "") else "a.m." if "AM" in clock.replace(" ", "") else None
    digits = clock.replace("AM", "").replace("PM", "").replace(" ", "")
    hour_text, _, rest = digits.partition(":")
    hour, minute = int(hour_text or 0), int(rest[:2] or 0) if rest else 0
    if half is None:
        if hour >= 12 and hour < 24:
            half, hour = "p.m.", hour - 12 if hour > 12 else 12
        elif hour == 0 and rest:
            half, hour = "a.m.", 12
    if hour == 12 and minute == 0 and half == "p.m.":
        return "noon"
    said = num2words(hour if hour else 12)
    if minute:
        said += " " + (f"oh {num2words(minute)}" if minute < 10 else num2words(minute))
    return f"{said} {half}" if half else said


def _date(span: str) -> str:
    month = day = year = None
    cleaned = span.replace(",", " ").replace(".", " ")
    if "-" in span and cleaned[:4].isdigit():  # ISO 2024-05-20
        year, month, day = (int(p) for p in cleaned.split("-")[:3])
    elif "/" in span:
        parts = [int(p) for p in cleaned.split("/") if p.strip().isdigit()]
        month, day = parts[0], parts[1]
        if len(parts) > 2:
            year = parts[2] + (2000 if parts[2] < 100 else 0)
    else:
        for word in cleaned.split():
            key = word.lower()
            if key in MONTHS:
                month = MONTHS[key]
            elif key.rstrip("stndrh").isdigit():
                number = int(key.rstrip("stndrh"))
                if number > 31:
                    year = number
                elif key != "of":
                    day = number
    if not month or not day or month not in _MONTH_NAMES or not 1 <= day <= 31:
        return _verbalize_digits(span)
    said = f"{_MONTH_NAMES[month]} {num2words(day, to='ordinal')}"
    return f"{said}, {num2words(year, to='year')}" if year else said


def _verbalize_digits(span: str) -> str:
    return " ".join(_number(word) if any(ch.isdigit() for ch in word) else word for word in span.split())


def _number(span: str) -> str:
    percent = span.endswith("%")
    body = span.rstrip("%").replace(",", "")
    try:
        value = float(body) if "." in body else int(body)
    except ValueError:
        return span
    if isinstance(value, int) and 1900 <= value <= 2099 and not percent:
        said = num2words(value, to="year")
    elif isinstance(value, int) and len(body) > 1 and (body.startswith("0") or (len(body) >= 4 and "," not in span)):
        said = " ".join(body)  # "007", "ending in 6042": digits, as a person reads them
    else:
        said = num2words(value)
    return f"{said} percent" if percent else said


def formatted_draft(drafts: Sequence[str]) -> list[str]:
    """Each draft through Pipecat's ``VoiceFormatter`` with its default transforms (markdown stripping,
    currency, dates, phone numbers, emails, acronyms): the rule-based formatter voice agents put in front of
    their TTS today (the ``draft+pipecat`` baseline)."""
    try:
        from loguru import logger  # noqa: PLC0415 (heavy: loguru)

        logger.disable("pipecat")  # Pipecat logs a banner on import; our output is ours
        from pipecat.utils.text.transforms.voice_formatter import VoiceFormatter  # noqa: PLC0415 (heavy: pipecat)
    except ImportError:
        raise VoicetuneError(
            "the formatter needs Pipecat: pip install 'voicetune[pipecat]' (make install includes it)"
        ) from None
    formatter = VoiceFormatter()

    async def run_all() -> list[str]:
        return [await formatter(text, "sentence") for text in drafts]

    return asyncio.run(run_all())
