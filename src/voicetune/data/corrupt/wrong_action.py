"""wrong_action: replace the action with a different one (refund->charge, cancel->confirm, upgrade->downgrade)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from voicetune.data.corrupt.text import (
    APOS,
    Rewrite,
    changed_snippet,
    match_case,
    normal,
    replace_with_article,
    sentences_of,
)
from voicetune.records import Turn

#: ``(start, end, replacement, old word, new word)``.
_Candidate = tuple[int, int, str, str, str]

_ACTION_WORDS = {
    "refund": "charge",
    "refunded": "charged",
    "charged": "refunded",
    "charge": "refund",
    "cancel": "confirm",
    "cancelled": "confirmed",
    "canceled": "confirmed",
    "rebook": "refund",
    "rebooked": "refunded",
    "exchange": "return",
    "exchanged": "returned",
    "upgrade": "downgrade",
    "upgraded": "downgraded",
    "downgrade": "upgrade",
    "downgraded": "upgraded",
    "delivered": "returned",
    "locked": "unlocked",
    "unlocked": "locked",
    "unlock": "lock",
    "frozen": "unfrozen",
    "unfrozen": "frozen",
    "suspend": "reactivate",
    "suspended": "reactivated",
    "blocked": "unblocked",
    "unblocked": "blocked",
    "activated": "deactivated",
    "deactivated": "activated",
    "waive": "charge",
    "waived": "charged",
    "approved": "denied",
    "approve": "deny",
    "denied": "approved",
    "submitted": "withdrawn",
    "filed": "withdrawn",
    "placed": "cancelled",
    "opened": "closed",
    "renew": "close",
    "renewed": "closed",
    "reschedule": "cancel",
    "rescheduled": "cancelled",
    "credited": "charged",
    "credit": "charge",
    "accepted": "declined",
    "declined": "accepted",
    "enabled": "disabled",
    "disabled": "enabled",
    "increase": "decrease",
    "increased": "decreased",
    "decrease": "increase",
    "decreased": "increased",
    "deposited": "withdrawn",
    "transferred": "cancelled",
    "reinstated": "cancelled",
    "book": "cancel",
    "booked": "cancelled",
    "shipped": "cancelled",
    "add": "remove",
    "added": "removed",
    "remove": "add",
    "removed": "added",
}
_BASE_FORMS = frozenset(
    "refund charge cancel rebook exchange upgrade downgrade unlock suspend waive approve renew reschedule credit "
    "increase decrease book add remove".split()
)
_ACTION_PATTERN = re.compile(
    r"(?<![\w-])(" + "|".join(sorted(_ACTION_WORDS, key=len, reverse=True)) + r")(?![\w-])", re.I
)
_BE_BEFORE = re.compile(
    rf"(?:\b(?:is|are|was|were|be|been|being|get|got)|{APOS}s|{APOS}re)\s+(?:\w+ly\s+|all\s+|now\s+|just\s+|already\s+)?$",
    re.I,
)
# The action is the agent's, or the state it left the case in: "I've cancelled", "it's refunded", "Added both",
# "I can waive", "want me to charge". A word in any other role ("an event being cancelled", "a fare booked
# more than a day ago", "people who want to unlock the phone") is left alone.
_AGENT_BEFORE = re.compile(
    r"(?:\b(?:is|are|was|were|be|been|get|got|has|have|had|I|we|me to|and I|I can|we can|I could|I will|we will|"
    rf"I would|I'll|we'll|I've|we've|I'd|we'd|I'm|we're|it|they|all|both)|{APOS}(?:s|re|ve|ll|d|m))"
    r"\s+(?:(?:already|just|now|all|been|also|fully|automatically|successfully|officially|gone ahead and|"
    r"go ahead and)\s+)*$",
    re.I,
)
_NOT_ACTION_CLAUSE = re.compile(
    r"(?i)\b(?:which|who|when|if|once|while|whether|until|unless|than|since|because|before|after|being)\b"
)
_OBJECT_AFTER = re.compile(
    r"\s+(?:you|it|him|her|them|a|an|the|that|those|this|both|one|alerts?|your|his|her|their|\w+)\b"
)
_SWITCHES = [
    (r"\b(turn|turned|switch|switched|turning|switching)\s+on\b", lambda m: f"{m.group(1)} off", "on", "off"),
    (r"\b(turn|turned|switch|switched|turning|switching)\s+off\b", lambda m: f"{m.group(1)} on", "off", "on"),
    (rf"\b(is|are|{APOS}s|{APOS}re)\s+on\b(?=\s*(?:now\b|for\b|[,.;!]|$))", lambda m: f"{m.group(1)} off", "on", "off"),
    (
        r"\b(put|putting)\s+you\s+through\b(?!\s+to\b)",
        lambda m: f"{m.group(1)} you on hold",
        "putting the caller through",
        "putting them on hold",
    ),
    (
        r"\b(Connecting|connecting|Transferring|transferring)\s+you\b(?!\s+(?:to|straight|directly)\b)",
        lambda m: match_case(m.group(1), "putting") + " you on hold",
        "connecting the caller",
        "putting them on hold",
    ),
    (
        r"\b(signed|sign|signing)\s+up\s+for\b",
        lambda m: {"signed": "unsubscribed", "sign": "unsubscribe", "signing": "unsubscribing"}[m.group(1)] + " from",
        "signed up",
        "unsubscribed",
    ),
    (
        r"\b(pick|picking)\s+(it|them)\s+up\b",
        lambda m: {"pick": "drop", "picking": "dropping"}[m.group(1)] + f" {m.group(2)} off",
        "pick up",
        "drop off",
    ),
    (
        r"\b(saves|save|saving)\s+(?=you\b)",
        lambda m: {"save": "cost", "saves": "costs", "saving": "costing"}[m.group(1)] + " ",
        "save",
        "cost",
    ),
]


def _is_action(response: str, m: re.Match[str]) -> bool:
    """Whether the action word at ``m`` names what the agent did or will do (not a noun, an option, a clause
    about something else)."""
    low = m.group(1).lower()
    new = _ACTION_WORDS[low]
    before, after = response[: m.start()], response[m.end() :]
    clause_start = max(before.rfind(ch) for ch in ",;:.!?—") + 1
    sentence_prefix = before[max(before.rfind(ch) for ch in ".!?:;") + 1 :]
    sentence_end = min([i for i in (response.find(ch, m.end()) for ch in ".!?") if i != -1] or [len(response)])
    at_start = low not in _BASE_FORMS and (
        not sentence_prefix.strip()
        or re.fullmatch(r"\s*(?:All|Both|Just|Now|Already|And)\s+", sentence_prefix) is not None
    )
    if _NOT_ACTION_CLAUSE.search(before[clause_start:]) or re.match(r"\s+(?:as|down)\b", after):
        return False  # "denied as not covered", "locked down"
    if low == "book" and not re.match(r"\s+(?:it|that|them|the|him|her)\b", after):
        return False  # "book you a visit" -> "cancel you a visit" is not English
    if low in ("refund", "refunded", "credited", "credit") and re.search(r"\bback\b", response[m.end() : sentence_end]):
        return False  # "the refund would be ... back to your card": a charge does not come back
    if new[:5] in response[clause_start:sentence_end].lower() and low not in ("add", "remove", "added", "removed"):
        return False  # "rebook for free, or take a full refund": the other option is already there
    if low in ("refund", "charge") and re.search(r"\b(?:the|your|The|Your)\s+$", before):
        # the noun: "the refund goes to your Visa" -> "the charge goes to your Visa"
        if not re.match(rf"(?:{APOS}s\b|\s+(?:goes|lands|is|will|should|would|comes|has|was)\b)", after):
            return False
    elif not (at_start or _AGENT_BEFORE.search(before)):
        return False
    if low in ("locked", "lock", "unlock") and re.match(r"\s+(?:it\s+)?in\b", after):
        return False  # "locked in": agreed, not locked
    if low in ("book", "add", "remove", "file", "cancel", "charge", "credit") and not _OBJECT_AFTER.match(after):
        return False
    return not (low in ("add", "remove") and re.match(r"\s+(?:up|on)\b", after))


def _word_candidates(response: str) -> Iterator[_Candidate]:
    """Each action word the response says was or will be done, with its opposite."""
    for m in _ACTION_PATTERN.finditer(response):
        if not _is_action(response, m):
            continue
        word, low = m.group(1), m.group(1).lower()
        before = response[: m.start()]
        replacement, end = match_case(word, _ACTION_WORDS[low]), m.end()
        if low == "booked" and _BE_BEFORE.search(before):
            replacement = match_case(word, "waitlisted")  # "you're booked" -> "you're waitlisted"
        if low == "shipped" and re.search(
            rf"\b(?:has|have|hasn{APOS}t|haven{APOS}t|had)\s+(?:already\s+|just\s+)?$", before, re.I
        ):
            replacement = match_case(word, "been cancelled")
        if low in ("add", "added", "remove", "removed"):
            # "added them to that visit" -> "removed them from that visit"
            tail = response[m.end() : m.end() + 60]
            preposition = re.search(r"^(?:\s+[\w'’-]+){0,5}?\s+(to|onto|from|off)\b", tail)
            if preposition:
                swap = {"to": "from", "onto": "from", "from": "to", "off": "to"}[preposition.group(1)]
                replacement += tail[: preposition.start(1)] + swap
                end = m.end() + preposition.end(1)
        yield m.start(), end, replacement, low, replacement.split()[0].lower()


def _candidates(response: str) -> list[_Candidate]:
    """Every action the response says was or will be taken, with its opposite, in order and not overlapping."""
    found = list(_word_candidates(response))
    for pattern, make, old, new in _SWITCHES:
        found += [(m.start(), m.end(), make(m), old, new) for m in re.finditer(pattern, response)]
    found.sort(key=lambda c: c[0])
    kept: list[_Candidate] = []
    for candidate in found:
        if not kept or candidate[0] >= kept[-1][1]:
            kept.append(candidate)
    return kept


def wrong_action(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """One action of the first sentence that states one (a question only when no statement does) reversed."""
    candidates = _candidates(response)
    if not candidates:
        return None
    sentences = [(start, end, sentence.rstrip().endswith("?")) for start, end, sentence in sentences_of(response)]
    statements = [
        c for c in candidates if not any(s <= c[0] < e and question for s, e, question in sentences)
    ] or candidates
    s, e, _ = next(span for span in sentences if any(span[0] <= c[0] < span[1] for c in statements))
    start, end, new, old, new_word = rng.choice([c for c in statements if s <= c[0] < e])
    text = replace_with_article(response, start, end, new)
    if normal(text) == normal(response):
        return None
    return (
        text,
        f'Gets the action wrong: "{changed_snippet(response, text)}", but the draft says {old}, not {new_word}.',
    )
