"""The five voice qualities, one pure function each. Every function returns a score in [0, 1] (1 is best)
and the findings a listener would report (typed :class:`~voicetune.quality.findings.Finding` objects, each
with what it cost), so that a score can always be explained.

Every weight, threshold and limit comes from the function's penalties section (``quality/config.py``), passed
as an argument whose default is the section of the default :class:`~voicetune.quality.config.ScorerConfig`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from voicetune.quality import phrases
from voicetune.quality.config import (
    ClarityPenalties,
    ConcisenessPenalties,
    FaithfulnessPenalties,
    HumannessPenalties,
    NonRepetitionPenalties,
    ScorerConfig,
)
from voicetune.quality.facts import (
    INTERNAL_ID,
    URL,
    Fact,
    fact_conveyed,
    fact_label,
    invented_numbers,
    spoken_view,
    swapped_amounts,
)
from voicetune.quality.findings import Finding, render
from voicetune.quality.text import sentences, words

_DEFAULTS = ScorerConfig()
DEFAULT_NON_REPETITION: NonRepetitionPenalties = _DEFAULTS.non_repetition
DEFAULT_CONCISENESS: ConcisenessPenalties = _DEFAULTS.conciseness
DEFAULT_CLARITY: ClarityPenalties = _DEFAULTS.clarity
DEFAULT_HUMANNESS: HumannessPenalties = _DEFAULTS.humanness
DEFAULT_FAITHFULNESS: FaithfulnessPenalties = _DEFAULTS.faithfulness
#: How many examples a finding lists ("uses written abbreviations (appt, approx, hrs)"): display only.
_EXAMPLES = 3


@dataclass(frozen=True)
class QualityResult:
    """One quality's score and the findings behind it."""

    score: float
    findings: tuple[Finding, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """The findings as sentences (see :func:`voicetune.quality.findings.render`)."""
        return tuple(render(finding) for finding in self.findings)


def _result(penalty: float, findings: list[Finding]) -> QualityResult:
    return QualityResult(round(max(0.0, min(1.0, 1.0 - penalty)), 4), tuple(findings))


_STOP = frozenset(
    "a an the of to in on at for and or but is are was were be been it its this that your you i we my our with by "
    "from as so if do can will would could just me us they them he she his her there here what which".split()
)


_WORD_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[a-z]+(?:'[a-z]+)*")
_CLAUSE_SPLIT = re.compile(r"[.!?;,]+(?=\s|$)|\n|\s(?:and|but|so)\s")


@lru_cache(maxsize=16384)
def _segments(
    text: str, min_sentence_words: int, min_clause_words: int
) -> tuple[list[frozenset[str]], list[frozenset[str]], list[int]]:
    """The word sets of the sentences of ``text`` (``min_sentence_words``+ words), the content-word sets of
    its clauses (``min_clause_words``+), and every sentence's length in words, from one tokenisation: clauses
    end at punctuation and at "and", "but", "so"; sentences at . ! ? and line breaks. (Called positionally,
    with the same thresholds from every metric, so that one cache entry serves them all.)"""
    lowered = text.lower().replace("’", "'")
    sentence_lengths: list[int] = []
    sentence_sets: list[frozenset[str]] = []
    for sentence in sentences(text.replace("’", "'")):
        sentence = sentence.lower()
        tokens = _WORD_TOKEN.findall(sentence)
        if tokens:
            sentence_lengths.append(len(tokens))
            if len(tokens) >= min_sentence_words:
                sentence_sets.append(frozenset(tokens))
    clause_sets = []
    for clause in _CLAUSE_SPLIT.split(lowered):
        content = frozenset(t for t in set(_WORD_TOKEN.findall(clause)).difference(_STOP) if len(t) > 2)
        if len(content) >= min_clause_words:
            clause_sets.append(content)
    return sentence_sets, clause_sets, sentence_lengths


_MIN_SENTENCE_WORDS = DEFAULT_NON_REPETITION.min_sentence_words
_MIN_CLAUSE_WORDS = DEFAULT_NON_REPETITION.min_clause_words
_ALREADY_SAID = re.compile(
    r"\b(?:like|as) i (?:said|mentioned)\b|\bas (?:previously|already) (?:mentioned|stated|noted)\b|\bonce again\b",
    re.I,
)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))


@lru_cache(maxsize=65536)
def _four_grams(text: str) -> frozenset[tuple[str, ...]]:
    """The four-word runs of a text (cached: history turns are compared with every candidate)."""
    return frozenset(_ngrams(words(text), 4))


@lru_cache(maxsize=65536)
def _asks_for_repeat(text: str) -> bool:
    return bool(phrases.REPEAT_REQUEST.search(text))


def _content(tokens: Iterable[str]) -> set[str]:
    return {t for t in tokens if t not in _STOP and len(t) > 2}


# ---------------------------------------------------------------------------------------------------------


def _jaccard_at_least(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    """Whether |a & b| / |a | b| >= threshold, skipping the intersection when the sizes alone rule it out."""
    small, large = sorted((len(a), len(b)))
    if small < threshold * large:
        return False
    shared = len(a & b)
    return shared >= threshold * (small + large - shared)


def _overlapping_clauses(clauses: list[frozenset[str]], overlap: float) -> bool:
    """Whether two clauses share ``overlap`` (three quarters by default) of the content words of the shorter."""
    for i, clause in enumerate(clauses):
        for other in clauses[:i]:
            if len(clause & other) >= overlap * min(len(clause), len(other)):
                return True
    return False


def non_repetition(
    response: str,
    earlier_agent_turns: Sequence[str] = (),
    last_user_text: str = "",
    repeated_facts: Sequence[Fact] = (),
    penalties: NonRepetitionPenalties = DEFAULT_NON_REPETITION,
) -> QualityResult:
    """Whether the response says each thing once and only what is new.

    Finds sentences said twice, repeated four-word runs within the response, long runs copied from the
    agent's previous turns (unless the caller asked for a repeat), the caller's own words echoed back, and
    codes or amounts already said last turn that this turn does not need (``repeated_facts``).
    """
    p = penalties
    findings: list[Finding] = []
    penalty = 0.0
    sentence_sets, clause_sets, _ = _segments(response, p.min_sentence_words, p.min_clause_words)
    for i, sentence in enumerate(sentence_sets):
        if any(_jaccard_at_least(sentence, other, p.sentence_similarity) for other in sentence_sets[:i]):
            penalty += p.repeated_sentence
            findings.append(Finding(kind="repeated_sentence", quality="non_repetition", penalty=p.repeated_sentence))
            break
    if not findings and len(clause_sets) > 1:
        if _overlapping_clauses(clause_sets, p.clause_overlap):
            penalty += p.reworded_repeat
            findings.append(Finding(kind="reworded_repeat", quality="non_repetition", penalty=p.reworded_repeat))
    if ("said" in response or "mentioned" in response or "again" in response) and (
        said := _ALREADY_SAID.search(response)
    ):
        penalty += p.announced_repeat
        findings.append(
            Finding(kind="announced_repeat", quality="non_repetition", text=said.group(0), penalty=p.announced_repeat)
        )
    tokens = words(response)
    grams = _ngrams(tokens, 4)
    if grams:
        repeated = len(grams) - len(set(grams))
        if repeated >= p.repeated_runs_min:
            cost = min(p.repeated_runs_cap, p.repeated_runs_rate * repeated / len(grams))
            penalty += cost
            findings.append(
                Finding(kind="repeated_runs", quality="non_repetition", values={"count": repeated}, penalty=cost)
            )
    asked_again = _asks_for_repeat(last_user_text)
    if not asked_again and grams:
        recent = earlier_agent_turns[max(0, len(earlier_agent_turns) - p.last_turns) :] if p.last_turns else ()
        earlier = frozenset().union(*(_four_grams(text) for text in recent))
        if earlier:
            overlap = sum(map(earlier.__contains__, grams)) / len(grams)
            if overlap >= p.last_turn_overlap:
                cost = min(p.last_turn_cap, overlap)
                penalty += cost
                findings.append(
                    Finding(kind="repeats_last_turn", quality="non_repetition", values={"share": overlap}, penalty=cost)
                )
        user_grams = _four_grams(last_user_text)
        if user_grams:
            echoed = sum(map(user_grams.__contains__, grams))
            if echoed >= p.echo_min_runs and echoed / max(1, len(user_grams)) >= p.echo_share:
                penalty += p.echo
                findings.append(
                    Finding(kind="echoes_caller", quality="non_repetition", values={"runs": echoed}, penalty=p.echo)
                )
    if not asked_again:
        for fact in repeated_facts:
            penalty += p.repeated_fact
            findings.append(
                Finding(
                    kind="repeated_fact",
                    quality="non_repetition",
                    text=fact.text,
                    values={"fact_kind": fact.kind},
                    penalty=p.repeated_fact,
                )
            )
    return _result(penalty, findings)


def conciseness(
    response: str, seconds: float, facts_conveyed: int, penalties: ConcisenessPenalties = DEFAULT_CONCISENESS
) -> QualityResult:
    """Whether the speaking time is earned by the content conveyed, with no filler or boilerplate.

    A turn gets a budget of six seconds plus two and a half per fact it conveys; time past the budget costs
    in proportion. Each filler phrase ("I'd be happy to help", "Is there anything else...") costs too. (The
    numbers here and below are the defaults of ``penalties``.)
    """
    p = penalties
    findings: list[Finding] = []
    penalty = 0.0
    budget = p.base_seconds + p.seconds_per_fact * facts_conveyed
    if seconds > budget:
        cost = 1.0 - (budget / seconds) ** p.overtime_exponent
        penalty += cost
        findings.append(
            Finding(
                kind="over_budget",
                quality="conciseness",
                values={"seconds": seconds, "facts": facts_conveyed, "budget": budget},
                penalty=cost,
            )
        )
    for description, said in phrases.FILLER.matches(response):
        penalty += p.filler
        findings.append(
            Finding(
                kind="filler", quality="conciseness", text=said, values={"description": description}, penalty=p.filler
            )
        )
    return _result(penalty, findings)


_MARKDOWN: tuple[
    tuple[re.Pattern[str], str, str], ...
] = (  # (pattern, finding kind, characters one of which it needs: a cheap test before the regex)
    (re.compile(r"\*\*|__|(?<!\w)\*(?=\w)"), "markdown_emphasis", "*_"),
    (re.compile(r"(?m)^\s*#{1,6}\s"), "markdown_header", "#"),
    (re.compile(r"`"), "code_formatting", "`"),
    (re.compile(r"(?m)^\s*\|.*\|\s*$"), "markdown_table", "|"),
)
_LIST_LINE = re.compile(r"(?m)^\s*(?:[-*•]|\d+[.)])\s+")
_MARKDOWN += ((_LIST_LINE, "list_bullets", "\n-*•0123456789"),)
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


def clarity(response: str, penalties: ClarityPenalties = DEFAULT_CLARITY) -> QualityResult:
    """Whether a listener can follow it through a TTS voice.

    Penalises markdown, URLs and internal ids read aloud, screen-format numbers (ISO dates, "06:00:00", long
    digit strings) and, mildly, any number left in digits, symbols and parentheses, sentences over 25 words,
    and enumerations of more than three items in one turn.
    """
    p = penalties
    findings: list[Finding] = []
    penalty = 0.0
    lower = response.lower()
    tokens = set(words(response))
    for pattern, kind, needs in _MARKDOWN:
        if any(c in response for c in needs) and (match := pattern.search(response)):
            penalty += p.markdown
            findings.append(Finding(kind=kind, quality="clarity", text=match.group(0).strip(), penalty=p.markdown))
    for url in URL.findall(response)[: p.max_charged] if any(h in lower for h in _URL_HINTS) else ():
        penalty += p.url
        findings.append(Finding(kind="url_read", quality="clarity", text=url, penalty=p.url))
    for identifier in INTERNAL_ID.findall(response)[: p.max_charged] if "_" in response else ():
        penalty += p.internal_id
        findings.append(Finding(kind="internal_id_read", quality="clarity", text=identifier, penalty=p.internal_id))
    spelled = _SPELLED_SYMBOLS.findall(response) if not tokens.isdisjoint(_SPELLED_HINTS) else ()
    if spelled:
        cost = min(p.spelled_symbol_cap, p.spelled_symbol * len(spelled))
        penalty += cost
        examples = ", ".join(dict.fromkeys(s.lower() for s in spelled[:_EXAMPLES]))
        findings.append(
            Finding(
                kind="symbols_by_name", quality="clarity", text=examples, values={"count": len(spelled)}, penalty=cost
            )
        )
    abbreviations = _ABBREVIATIONS.findall(response) if not tokens.isdisjoint(_ABBREVIATION_HINTS) else ()
    if abbreviations:
        cost = min(p.abbreviation_cap, p.abbreviation * len(abbreviations))
        penalty += cost
        examples = ", ".join(dict.fromkeys(a.strip(".") for a in abbreviations[:_EXAMPLES]))
        findings.append(
            Finding(
                kind="abbreviation",
                quality="clarity",
                text=examples,
                values={"count": len(abbreviations)},
                penalty=cost,
            )
        )
    if _HAS_DIGIT.search(response):
        screen = _SCREEN_NUMBER.findall(response)
        if screen:
            cost = min(p.screen_number_cap, p.screen_number * len(screen))
            penalty += cost
            findings.append(
                Finding(
                    kind="screen_number",
                    quality="clarity",
                    text=", ".join(screen[:_EXAMPLES]),
                    values={"count": len(screen)},
                    penalty=cost,
                )
            )
        digits = _DIGITS.findall(response)
        cost = min(p.digits_cap, p.digits * len(digits))
        penalty += cost
        findings.append(Finding(kind="digits", quality="clarity", values={"count": len(digits)}, penalty=cost))
    symbols = sum(response.count(symbol) for symbol in _SYMBOL_CHARACTERS) + sum(
        lower.count(latin) for latin in _WRITTEN_LATIN
    )
    if symbols:
        cost = min(p.symbol_cap, p.symbol * symbols)
        penalty += cost
        findings.append(Finding(kind="symbols", quality="clarity", values={"count": symbols}, penalty=cost))
    for length in _segments(response, _MIN_SENTENCE_WORDS, _MIN_CLAUSE_WORDS)[2]:
        if length > p.long_sentence_words:
            cost = p.long_sentence if length <= p.very_long_sentence_words else p.very_long_sentence
            penalty += cost
            findings.append(Finding(kind="long_sentence", quality="clarity", values={"words": length}, penalty=cost))
    items = len(_LIST_LINE.findall(response)) if ("\n" in response or response.lstrip()[:1] in ("-", "*", "•")) else 0
    inline = max((_inline_items(s) for s in sentences(response) if " or " in s or " and " in s), default=0)
    enumerated = max(items, inline if inline >= p.inline_list_min else 0)
    if enumerated > p.enumeration_limit:
        cost = min(p.enumeration_cap, p.enumeration_item * (enumerated - p.enumeration_limit))
        penalty += cost
        findings.append(Finding(kind="enumeration", quality="clarity", values={"items": enumerated}, penalty=cost))
    return _result(penalty, findings)


_APOLOGIES = frozenset({"sorry", "apologize", "apologise", "apologies"})
_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")
_NOT_NAMES = frozenset(
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August "
    "September October November December The This That Your You".split()
)


def humanness(response: str, penalties: HumannessPenalties = DEFAULT_HUMANNESS) -> QualityResult:
    """Whether it sounds like a person: contractions, no robotic or form-letter phrases, no stiff register,
    at most one apology, few exclamation marks."""
    p = penalties
    findings: list[Finding] = []
    penalty = 0.0
    for group, kind, cost in ((phrases.ROBOTIC, "robotic_phrase", p.robotic), (phrases.STIFF, "stiff_phrase", p.stiff)):
        for description, said in group.matches(response):
            penalty += cost
            findings.append(
                Finding(kind=kind, quality="humanness", text=said, values={"description": description}, penalty=cost)
            )
    if len(words(response)) >= p.contraction_min_words:
        stiff = phrases.UNCONTRACTED.findall(response.lower())
        if stiff:
            cost = min(p.uncontracted_cap, p.uncontracted * len(stiff))
            penalty += cost
            examples = ", ".join(dict.fromkeys(s.lower() for s in stiff[:_EXAMPLES]))
            findings.append(
                Finding(
                    kind="uncontracted", quality="humanness", text=examples, values={"count": len(stiff)}, penalty=cost
                )
            )
    names = Counter(w for w in _CAPITALISED.findall(response) if w not in _NOT_NAMES)
    for name, count in names.items():
        if count > p.name_free_mentions:
            cost = p.name_repeat * (count - p.name_free_mentions)
            penalty += cost
            findings.append(
                Finding(kind="repeated_name", quality="humanness", text=name, values={"count": count}, penalty=cost)
            )
    tokens = words(response)
    apologies = sum(1 for t in tokens if t in _APOLOGIES)
    if apologies > p.free_apologies:
        cost = p.apology * (apologies - p.free_apologies)
        penalty += cost
        findings.append(Finding(kind="apologies", quality="humanness", values={"count": apologies}, penalty=cost))
    exclamations = response.count("!")
    if exclamations > p.free_exclamations:
        cost = min(p.exclamation_cap, p.exclamation * (exclamations - p.free_exclamations))
        penalty += cost
        findings.append(Finding(kind="exclamations", quality="humanness", values={"count": exclamations}, penalty=cost))
    return _result(penalty, findings)


# Questions that ask the caller for something; offers ("Would you like...?", "Shall I...?") can fairly
# become statements ("I can send it now if you like").
_INFO_QUESTION = re.compile(
    r"\b(?:which|what|when|where|who|whom|whose|how)\b|\b(?:could|can|would|will) you (?:please "
    r")?(?:provide|give|tell|confirm|share|send|verify|read|spell|let me know)\b|\bmay i (?:have|get|ask)\b",
    re.I,
)
_ASK_NOTE = re.compile(
    r"\bask (?:the )?(?:customer|caller|user|client|member|patient)\b|\byes/no\b|\bbefore \w+ing\b[^.?!\n]*\bi need\b",
    re.I,
)
_BOILERPLATE_QUESTION = re.compile(
    r"anything else|further (?:assistance|questions)|help (?:you )?with today|any (?:other )?questions", re.I
)


@lru_cache(maxsize=16384)
def _draft_asks_caller(draft: str) -> bool:
    """Whether the draft asks the caller for something (not a boilerplate "anything else?"), by a question or by a
    note to the agent ("Ask the customer for their zip code", "confirm (yes/no)")."""
    if _ASK_NOTE.search(draft):
        return True
    return any(
        s.rstrip().endswith("?") and _INFO_QUESTION.search(s) and not _BOILERPLATE_QUESTION.search(s)
        for s in sentences(draft)
        if "?" in s
    )


#: A draft sentence asking the caller's go-ahead before acting ("Shall I proceed? (yes/no)").
_ASKS_GO_AHEAD = re.compile(
    r"\b(?:confirm|proceed|go ahead|shall i|should i|would you like (?:me|us) to|do you want (?:me|us) to|want me to|"
    r"ok(?:ay)? to|yes/no|yes or no)\b",
    re.I,
)
#: Words that report an action as done ("has been cancelled", "I've updated", "successfully").
_DONE = re.compile(
    r"\b(?:i've|i have|we've|we have)\s+(?:just\s+|now\s+|already\s+)?(?:gone ahead|cancel|book|chang|add|remov|"
    r"upgrad|downgrad|updat|switch|mov|process|issu|refund|submitt|sent|plac|schedul|appl|waiv|transferr|reset|"
    r"block|suspend|order|return|exchang|modif|rebook|charg|lock|unlock|reserv|confirm)\w*|"
    r"\b(?:has|have) been (?:\w+ly )?(?:cancel|book|chang|add|remov|upgrad|downgrad|updat|switch|mov|process|"
    r"issu|refund|submitt|sent|plac|schedul|appl|waiv|transferr|reset|block|suspend|modif|rebook|charg|confirm)\w*|"
    r"\b(?:it's|that's|you're|you are|it is|that is|all) (?:all )?(?:done|set|booked|cancell?ed|confirmed|changed)\b|"
    r"\bsuccessfully\b|^\s*done\b",
    re.I | re.M,
)


def claims_done_early(response: str, draft: str) -> bool:
    """Whether a response says an action is done where the draft only asks the caller's go-ahead for it: the
    draft asks to confirm or proceed and reports nothing done, and the response reports something done
    ("I've cancelled it", "you're all set"). The caller hangs up believing it happened."""
    return _asks_go_ahead_only(draft) and bool(_DONE.search(response))


@lru_cache(maxsize=16384)
def _asks_go_ahead_only(draft: str) -> bool:
    asks = any(_ASKS_GO_AHEAD.search(s) and ("?" in s or "yes/no" in s.lower()) for s in sentences(draft))
    return asks and not _DONE.search(draft)


#: A sentence that offers more instead of saying it ("I can text you the tracking number", "if you'd like").
_OFFER = re.compile(
    r"\b(?:want|would you like|i can|i could|shall i|should i|happy to|if you(?:'d| would)? like|let me know)\b", re.I
)


@lru_cache(maxsize=16384)
def _content_words(text: str) -> frozenset[str]:
    return frozenset(_content(words(text)))


def faithfulness(
    response: str,
    facts: Sequence[Fact],
    context_texts: Sequence[str] = (),
    draft: str = "",
    penalties: FaithfulnessPenalties = DEFAULT_FAITHFULNESS,
) -> QualityResult:
    """Whether the facts still get across and nothing is made up.

    The score starts at 1 and loses, for each required fact not conveyed (in any spoken form), its share of
    the required facts (a free-text fact weighs half) times ``dropped``, or a quarter of that (``offered``) when
    the response offers it instead, naming the draft's label for it in a question or an offer; minus 0.5 for
    each amount said with another amount's label (``swapped_amount``: "Premium is twelve forty" where the
    draft prices Business at $1,240), 0.4 when it says an action is done where the draft only asks the
    caller's go-ahead for it (``done_early``), and for each amount
    and 0.35 for each other number stated that the context (history, draft, tool results) does not contain
    (an invented price is worse than a missing one), minus 0.2 when the draft asks the caller for something
    ("which order?") and the response asks nothing, and minus 0.3 when the response shares no content word
    with a substantial draft.
    """
    p = penalties
    view = spoken_view(response)
    findings: list[Finding] = []
    required = [f for f in facts if f.required]
    conveyed = [f for f in required if fact_conveyed(f, view)]
    phrase_weight = p.phrase_fact_weight
    total = sum(phrase_weight if f.kind == "phrase" else 1.0 for f in required)
    offers = [s for s in sentences(response) if s.rstrip().endswith("?") or _OFFER.search(s)] if draft else []
    penalty = 0.0
    for fact in required:
        if fact not in conveyed:
            share = (phrase_weight if fact.kind == "phrase" else 1.0) / total
            label = fact_label(fact, draft) if offers else frozenset()
            if label and any(label & {w.lower() for w in words(s)} for s in offers):
                cost = share * p.dropped * p.offered
                findings.append(
                    Finding(
                        kind="offered_fact",
                        quality="faithfulness",
                        text=fact.text,
                        values={"fact_kind": fact.kind},
                        penalty=cost,
                    )
                )
            else:
                cost = share * p.dropped
                findings.append(
                    Finding(
                        kind="dropped_fact",
                        quality="faithfulness",
                        text=fact.text,
                        values={"fact_kind": fact.kind},
                        penalty=cost,
                    )
                )
            penalty += cost
    for number in invented_numbers(response, tuple(context_texts), p.small_count_limit):
        amount = number.startswith("$")
        cost = p.invented_amount if amount else p.invented_number
        penalty += cost
        findings.append(
            Finding(
                kind="invented_amount" if amount else "invented_number",
                quality="faithfulness",
                text=number,
                penalty=cost,
            )
        )
    if draft:
        for swapped, swapped_label in dict(swapped_amounts(response, draft)).items():
            penalty += p.swapped_amount
            findings.append(
                Finding(
                    kind="swapped_amount",
                    quality="faithfulness",
                    text=swapped,
                    values={"label": swapped_label},
                    penalty=p.swapped_amount,
                )
            )
        if claims_done_early(response, draft):
            penalty += p.done_early
            findings.append(Finding(kind="done_early", quality="faithfulness", penalty=p.done_early))
        if _draft_asks_caller(draft) and "?" not in response:
            penalty += p.question_dropped
            findings.append(Finding(kind="question_dropped", quality="faithfulness", penalty=p.question_dropped))
        draft_words = _content_words(draft)
        if not required and len(draft_words) >= p.off_draft_min_words and not (draft_words & _content(view.words)):
            penalty += p.off_draft
            findings.append(Finding(kind="off_draft", quality="faithfulness", penalty=p.off_draft))
    return _result(penalty, findings)
