"""The five voice qualities, one pure function each. Every function returns a score in [0, 1] (1 is best)
and the findings a listener would report, so that a score can always be explained."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from voicetune.quality import phrases
from voicetune.quality.facts import (
    INTERNAL_ID,
    URL,
    Fact,
    fact_conveyed,
    invented_numbers,
    spoken_view,
)
from voicetune.quality.text import sentences, words


@dataclass(frozen=True)
class QualityResult:
    """One quality's score and the findings behind it."""

    score: float
    reasons: tuple[str, ...] = ()


def _result(penalty: float, reasons: list[str]) -> QualityResult:
    return QualityResult(round(max(0.0, min(1.0, 1.0 - penalty)), 4), tuple(reasons))


_STOP = frozenset(
    "a an the of to in on at for and or but is are was were be been it its this that your you i we my our with by "
    "from as so if do can will would could just me us they them he she his her there here what which".split()
)


_WORD_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[a-z]+(?:'[a-z]+)*")
_SENTENCE_SPLIT = re.compile(r"[.!?]+(?=\s|$)|\n")
_CLAUSE_SPLIT = re.compile(r"[.!?;,]+(?=\s|$)|\n|\s(?:and|but|so)\s")


@lru_cache(maxsize=16384)
def _segments(text: str) -> tuple[list[frozenset[str]], list[frozenset[str]], list[int]]:
    """The word sets of the sentences of ``text`` (4+ words), the content-word sets of its clauses (3+), and
    every sentence's length in words, from one tokenisation: clauses end at punctuation and at "and", "but",
    "so"; sentences at . ! ? and line breaks."""
    lowered = text.lower().replace("’", "'")
    sentence_lengths: list[int] = []
    sentence_sets: list[frozenset[str]] = []
    for sentence in _SENTENCE_SPLIT.split(lowered):
        tokens = _WORD_TOKEN.findall(sentence)
        if tokens:
            sentence_lengths.append(len(tokens))
            if len(tokens) >= 4:
                sentence_sets.append(frozenset(tokens))
    clause_sets = []
    for clause in _CLAUSE_SPLIT.split(lowered):
        content = frozenset(t for t in set(_WORD_TOKEN.findall(clause)).difference(_STOP) if len(t) > 2)
        if len(content) >= 3:
            clause_sets.append(content)
    return sentence_sets, clause_sets, sentence_lengths
_ALREADY_SAID = re.compile(r"\b(?:like|as) i (?:said|mentioned)\b|\bas (?:previously|already) (?:mentioned|stated|noted)\b|\bonce again\b", re.I)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n))))


@lru_cache(maxsize=65536)
def _four_grams(text: str) -> frozenset[tuple[str, ...]]:
    """The four-word runs of a text (cached: history turns are compared with every candidate)."""
    return frozenset(_ngrams(words(text), 4))


@lru_cache(maxsize=65536)
def _asks_for_repeat(text: str) -> bool:
    return bool(phrases.REPEAT_REQUEST.search(text))


def _content(tokens: Sequence[str]) -> set[str]:
    return {t for t in tokens if t not in _STOP and len(t) > 2}


# ---------------------------------------------------------------------------------------------------------


def _jaccard_at_least(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    """Whether |a & b| / |a | b| >= threshold, skipping the intersection when the sizes alone rule it out."""
    small, large = sorted((len(a), len(b)))
    if small < threshold * large:
        return False
    shared = len(a & b)
    return shared >= threshold * (small + large - shared)


def _overlapping_clauses(clauses: list[frozenset[str]]) -> bool:
    """Whether two clauses share three quarters of the content words of the shorter one."""
    for i, clause in enumerate(clauses):
        for other in clauses[:i]:
            if len(clause & other) >= 0.75 * min(len(clause), len(other)):
                return True
    return False


def non_repetition(
    response: str, earlier_agent_turns: Sequence[str] = (), last_user_text: str = "", repeated_facts: Sequence[Fact] = ()
) -> QualityResult:
    """Whether the response says each thing once and only what is new.

    Finds sentences said twice, repeated four-word runs within the response, long runs copied from the
    agent's previous turns (unless the caller asked for a repeat), the caller's own words echoed back, and
    codes or amounts already said last turn that this turn does not need (``repeated_facts``).
    """
    reasons: list[str] = []
    penalty = 0.0
    sentence_sets, clause_sets, _ = _segments(response)
    for i, sentence in enumerate(sentence_sets):
        if any(_jaccard_at_least(sentence, other, 0.7) for other in sentence_sets[:i]):
            penalty += 0.35
            reasons.append("says the same thing twice (a sentence again)")
            break
    if not reasons and len(clause_sets) > 1:
        if _overlapping_clauses(clause_sets):
            penalty += 0.3
            reasons.append("says the same thing twice in other words")
    if ("said" in response or "mentioned" in response or "again" in response) and _ALREADY_SAID.search(response):
        penalty += 0.15
        reasons.append("announces it is repeating itself ('like I said')")
    tokens = words(response)
    grams = _ngrams(tokens, 4)
    if grams:
        repeated = len(grams) - len(set(grams))
        if repeated >= 2:
            penalty += min(0.3, 1.5 * repeated / len(grams))
            reasons.append(f"repeats {repeated} four-word runs within the response")
    asked_again = _asks_for_repeat(last_user_text)
    if not asked_again and grams:
        earlier = frozenset().union(*(_four_grams(text) for text in earlier_agent_turns[-2:]))
        if earlier:
            overlap = sum(map(earlier.__contains__, grams)) / len(grams)
            if overlap >= 0.25:
                penalty += min(0.5, overlap)
                reasons.append(f"repeats what it said last turn ({overlap:.0%} of it)")
        user_grams = _four_grams(last_user_text)
        if user_grams:
            echoed = sum(map(user_grams.__contains__, grams))
            if echoed >= 3 and echoed / max(1, len(user_grams)) >= 0.3:
                penalty += 0.25
                reasons.append("echoes the caller's words back")
    if not asked_again:
        for fact in repeated_facts:
            penalty += 0.15
            reasons.append(f"repeats the {_KIND_NAMES.get(fact.kind, fact.kind)} {fact.text} said last turn")
    return _result(penalty, reasons)


def conciseness(response: str, seconds: float, facts_conveyed: int) -> QualityResult:
    """Whether the speaking time is earned by the content conveyed, with no filler or boilerplate.

    A turn gets a budget of six seconds plus two and a half per fact it conveys; time past the budget costs
    in proportion. Each filler phrase ("I'd be happy to help", "Is there anything else...") costs too.
    """
    reasons: list[str] = []
    penalty = 0.0
    budget = 6.0 + 2.5 * facts_conveyed
    if seconds > budget:
        penalty += 1.0 - (budget / seconds) ** 0.8
        reasons.append(f"takes {seconds:.0f} s to say {facts_conveyed} fact{'s' * (facts_conveyed != 1)} (budget {budget:.0f} s)")
    for finding in phrases.FILLER.findings(response):
        penalty += 0.12
        reasons.append(finding)
    return _result(penalty, reasons)


_MARKDOWN = (  # (pattern, finding, characters one of which it needs: a cheap test before the regex)
    (re.compile(r"\*\*|__|(?<!\w)\*(?=\w)"), "reads markdown emphasis (** or *) aloud", "*_"),
    (re.compile(r"(?m)^\s*#{1,6}\s"), "reads a markdown header aloud", "#"),
    (re.compile(r"`"), "reads code formatting aloud", "`"),
    (re.compile(r"(?m)^\s*\|.*\|\s*$"), "reads a table aloud", "|"),
)
_LIST_LINE = re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+")
_MARKDOWN += ((_LIST_LINE, "reads list bullets aloud", "\n-*•0123456789"),)
_SCREEN_NUMBER = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}:\d{2}\b|\b0\d:\d{2}\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b|\(\d{3}\)\s?\d{3}-\d{4}|\b\d{7,}\b"
)
_DIGITS = re.compile(r"\d+(?:[.,:]\d+)*")
_SPELLED_SYMBOLS = re.compile(
    r"\b(?:underscore|backslash|slash|colon|asterisk|star star|hashtag|open paren|close paren|greater than|less than|"
    r"h t t p s?|w w w)\b",
    re.I,
)
#: Written abbreviations a TTS voice reads letter by letter or mangles.
_ABBREVIATIONS = re.compile(
    r"\b(?:approx|acct|appt|dept|bldg|ste|pkwy|blvd|hrs?|mins?|yrs?|mos?|wk|qty|amt|bal|txn|pmt|info|eff|req|conf|"
    r"mg|ml|gb|mb|kb|tb|mbps|gbps|w/o?|b/c|n/a|asap|fyi|eta|tbd|pls|thx)\b\.?",
    re.I,
)
_SYMBOL_CHARACTERS = "&/\\|<>[]{}=~^()"
_WRITTEN_LATIN = ("e.g.", "i.e.", "etc.")
_HAS_DIGIT = re.compile(r"\d")
_URL_HINTS = ("http", "www", ".com", ".org", ".net", ".io", ".co")
_SPELLED_HINTS = frozenset("underscore backslash slash colon asterisk star hashtag paren greater less h w".split())
_ABBREVIATION_HINTS = frozenset(
    "approx acct appt dept bldg ste pkwy blvd hr hrs min mins yr yrs mo mos wk qty amt bal txn pmt info eff req conf "
    "mg ml gb mb kb tb mbps gbps w b n asap fyi eta tbd pls thx".split()
)


def _inline_items(sentence: str) -> int:
    """Items of an inline list: "red, blue, green and white" has four (with or without an Oxford comma)."""
    segments = sentence.split(",")
    last = segments[-1]
    joined_last = (" and " in last or " or " in last) and not re.match(r"\s*(?:and|or)\b", last)
    return len(segments) + (1 if joined_last and len(segments) > 1 else 0)


def clarity(response: str) -> QualityResult:
    """Whether a listener can follow it through a TTS voice.

    Penalises markdown, URLs and internal ids read aloud, screen-format numbers (ISO dates, "06:00:00", long
    digit strings) and, mildly, any number left in digits, symbols and parentheses, sentences over 25 words,
    and enumerations of more than three items in one turn.
    """
    reasons: list[str] = []
    penalty = 0.0
    lower = response.lower()
    tokens = set(words(response))
    for pattern, finding, needs in _MARKDOWN:
        if any(c in response for c in needs) and pattern.search(response):
            penalty += 0.15
            reasons.append(finding)
    for url in URL.findall(response)[:3] if any(h in lower for h in _URL_HINTS) else ():
        penalty += 0.25
        reasons.append(f"reads the URL {url} aloud")
    for identifier in INTERNAL_ID.findall(response)[:3] if "_" in response else ():
        penalty += 0.25
        reasons.append(f"reads the internal id {identifier} aloud")
    spelled = _SPELLED_SYMBOLS.findall(response) if not tokens.isdisjoint(_SPELLED_HINTS) else ()
    if spelled:
        penalty += min(0.4, 0.15 * len(spelled))
        reasons.append(f"reads symbols aloud by name ({', '.join(dict.fromkeys(s.lower() for s in spelled[:3]))})")
    abbreviations = _ABBREVIATIONS.findall(response) if not tokens.isdisjoint(_ABBREVIATION_HINTS) else ()
    if abbreviations:
        penalty += min(0.3, 0.07 * len(abbreviations))
        reasons.append(f"uses written abbreviations ({', '.join(dict.fromkeys(a.strip('.') for a in abbreviations[:3]))})")
    if _HAS_DIGIT.search(response):
        screen = _SCREEN_NUMBER.findall(response)
        if screen:
            penalty += min(0.3, 0.1 * len(screen))
            reasons.append(f"has screen-format numbers a voice misreads ({', '.join(screen[:3])})")
        digits = _DIGITS.findall(response)
        penalty += min(0.15, 0.03 * len(digits))
        reasons.append(f"leaves {len(digits)} number{'s' * (len(digits) != 1)} in digits")
    symbols = sum(response.count(symbol) for symbol in _SYMBOL_CHARACTERS) + sum(lower.count(latin) for latin in _WRITTEN_LATIN)
    if symbols:
        penalty += min(0.15, 0.05 * symbols)
        reasons.append("has symbols or parentheses a voice reads badly")
    for length in _segments(response)[2]:
        if length > 25:
            penalty += 0.1 if length <= 40 else 0.2
            reasons.append(f"has a {length}-word sentence")
    items = len(_LIST_LINE.findall(response)) if ("\n" in response or response.lstrip()[:1] in ("-", "*", "•")) else 0
    inline = max((_inline_items(s) for s in sentences(response) if " or " in s or " and " in s), default=0)
    enumerated = max(items, inline if inline >= 5 else 0)
    if enumerated > 3:
        penalty += min(0.4, 0.08 * (enumerated - 3))
        reasons.append(f"enumerates {enumerated} items in one turn")
    return _result(penalty, reasons)


_APOLOGIES = frozenset({"sorry", "apologize", "apologise", "apologies"})
_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")
_NOT_NAMES = frozenset(
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August "
    "September October November December The This That Your You".split()
)


def humanness(response: str) -> QualityResult:
    """Whether it sounds like a person: contractions, no robotic or form-letter phrases, no stiff register,
    at most one apology, few exclamation marks."""
    reasons: list[str] = []
    penalty = 0.0
    for group, cost in ((phrases.ROBOTIC, 0.2), (phrases.STIFF, 0.1)):
        for finding in group.findings(response):
            penalty += cost
            reasons.append(finding)
    if len(words(response)) >= 8:
        stiff = phrases.UNCONTRACTED.findall(response.lower())
        if stiff:
            penalty += min(0.3, 0.07 * len(stiff))
            reasons.append(f"doesn't contract ({', '.join(dict.fromkeys(s.lower() for s in stiff[:3]))})")
    names = Counter(w for w in _CAPITALISED.findall(response) if w not in _NOT_NAMES)
    for name, count in names.items():
        if count >= 3:
            penalty += 0.1 * (count - 2)
            reasons.append(f"says '{name}' {count} times")
    tokens = words(response)
    apologies = sum(1 for t in tokens if t in _APOLOGIES)
    if apologies > 1:
        penalty += 0.15 * (apologies - 1)
        reasons.append(f"apologises {apologies} times")
    exclamations = response.count("!")
    if exclamations > 1:
        penalty += min(0.2, 0.05 * (exclamations - 1))
        reasons.append(f"uses {exclamations} exclamation marks")
    return _result(penalty, reasons)


_KIND_NAMES = {
    "money": "amount", "time": "time", "date": "date", "code": "code", "phone": "phone number",
    "email": "email", "number": "number", "name": "name", "phrase": "point",
}
# Questions that ask the caller for something; offers ("Would you like...?", "Shall I...?") can fairly
# become statements ("I can send it now if you like").
_INFO_QUESTION = re.compile(
    r"\b(?:which|what|when|where|who|whom|whose|how)\b|\b(?:could|can|would|will) you (?:please )?(?:provide|give|tell|confirm|share|send|verify|read|spell|let me know)\b|\bmay i (?:have|get|ask)\b",
    re.I,
)
_BOILERPLATE_QUESTION = re.compile(r"anything else|further (?:assistance|questions)|help (?:you )?with today|any (?:other )?questions", re.I)


@lru_cache(maxsize=16384)
def _draft_asks_caller(draft: str) -> bool:
    """Whether the draft asks the caller for something (not a boilerplate "anything else?")."""
    return any(
        s.rstrip().endswith("?") and _INFO_QUESTION.search(s) and not _BOILERPLATE_QUESTION.search(s)
        for s in sentences(draft)
        if "?" in s
    )


@lru_cache(maxsize=16384)
def _content_words(text: str) -> frozenset[str]:
    return frozenset(_content(words(text)))


def faithfulness(response: str, facts: Sequence[Fact], context_texts: Sequence[str] = (), draft: str = "") -> QualityResult:
    """Whether the facts still get across and nothing is made up.

    The score is the share of the required facts conveyed (in any spoken form), minus 0.5 for each amount
    and 0.35 for each other number stated that the context (history, draft, tool results) does not contain
    (an invented price is worse than a missing one), minus 0.2 when the draft asks the caller for something
    ("which order?") and the response asks nothing, and minus 0.3 when the response shares no content word
    with a substantial draft.
    """
    view = spoken_view(response)
    reasons: list[str] = []
    required = [f for f in facts if f.required]
    conveyed = [f for f in required if fact_conveyed(f, view)]
    score = sum(f.weight for f in conveyed) / sum(f.weight for f in required) if required else 1.0
    for fact in required:
        if fact not in conveyed:
            reasons.append(f"drops the {_KIND_NAMES.get(fact.kind, fact.kind)} {fact.text}")
    penalty = 0.0
    for number in invented_numbers(response, tuple(context_texts)):
        penalty += 0.5 if number.startswith("$") else 0.35
        reasons.append(f"states {number} that the context does not contain")
    if draft:
        if _draft_asks_caller(draft) and "?" not in response:
            penalty += 0.2
            reasons.append("doesn't ask the caller what the draft asks")
        draft_words = _content_words(draft)
        if not required and len(draft_words) >= 6 and not (draft_words & _content(view.words)):
            penalty += 0.3
            reasons.append("says nothing the draft says")
    return _result(1.0 - score + penalty, reasons)
