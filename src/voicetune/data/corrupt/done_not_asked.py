"""done_not_asked: turn a question or confirmation request into a statement that it is already done ("Should I
cancel it?" -> "I've cancelled it.")."""

from __future__ import annotations

import random
import re

from voicetune.data.corrupt.text import Rewrite, capitalised, shorten, tidy
from voicetune.data.corrupt.verbs import participle
from voicetune.quality.text import sentence_spans
from voicetune.records import Turn

# Verbs whose "shall I ...?" only asks for information or is harmless to have done.
_HARMLESS_VERBS = frozenset(
    "have get ask grab see look check say read repeat spell help hear explain go_over walk confirm pick choose be tell "
    "find hold wait know start_over try keep".split()
)
# Verbs that, after "and (then)", are a second action done too: "change that and then set up AutoPay".
_SECOND_ACTIONS = frozenset(
    "be bring buy come cut do find freeze get give go hang have hold keep leave let make mean pay put read resend "
    "reset "
    "run say see sell send set show split take tell withdraw write shut stand spend lose hit drive begin choose "
    "cancel transfer add book charge change move file submit switch lock mark use apply mail email text update waive "
    "refund start open close remove order schedule reschedule upgrade request place process".split()
)
# Verbs whose object may go unsaid: "Should I cancel?" -> "I've cancelled it."
_TAKES_IT = frozenset("cancel book file send submit add charge process place".split())
_ASK = [
    re.compile(r"^(?:(?:do|would) you (?:still )?(?:want|like)|want|wanna) me to (?P<vp>.+)$", re.I),
    re.compile(r"^(?:shall|should|can|may) I (?P<vp>.+)$", re.I),
    re.compile(r"^(?:okay|ok|alright|all right) (?:to|if I) (?P<vp>.+)$", re.I),
    re.compile(r"^(?:(?:do|would) you (?:still )?(?:want|like)|want) to (?P<vp>.+)$", re.I),
]
_ASK_OBJECT = re.compile(
    r"^(?:(?:do|would) you (?:want|like)|want) (?P<obj>that|those|it|them|that one|either of those|both|both of those)"
    r"(?P<on> on)?(?P<rest>(?: now| too| instead[^?]*| as well)?)$",
    re.I,
)
_ASK_PARTICIPLE = re.compile(
    r"^(?:(?:do|would) you (?:want|like)|want) (?P<np>(?:your|the|that|it|this|those|them)\b[^?]*?) (?P<pp>[a-z]+ed)"
    r"(?P<rest>(?: too| now| as well)?)$",
    re.I,
)
_IMPERATIVE = re.compile(
    r"^(?P<vp>(?:send|do (?:both|it|that|this)|add|book|cancel|file|submit|charge|move|switch|set up|lock|transfer|"
    r"process|place|waive|refund|go ahead)\b.*)$",
    re.I,
)
_DRAFT_ASKS = re.compile(
    r"\?|\b(?:confirm|would you like|shall I|should I|proceed|let me know|do you want|go ahead)\b", re.I
)
_OFFER = re.compile(r"\bI (?:can|could|would|'d|’d|will|'ll|’ll) (?!not\b|n't\b)(?P<vp>[^.;?!]+)", re.I)
_ASK_AFTER_COMMA = re.compile(r",\s+(?=(?:shall|should|can|may) I\b|(?:do you )?want me to\b|want\b|okay to\b)", re.I)
_OFFER_QUESTION = "__offer__"


def _done(vp: str) -> str | None:
    """ "send the redirect to Northline now" -> "sent the redirect to Northline"; ``None`` for a question that
    only asks for information ("have your name")."""
    vp = re.sub(r"\s+first$", "", re.sub(r"\s+(?:now|right now|for you now|today)$", "", vp.strip()))
    match = re.match(r"(go ahead)(?:\s+and\s+(.+))?$", vp, re.I)
    if match and not match.group(2):
        return "gone ahead with it"
    if match:
        rest = _done(match.group(2))
        return f"gone ahead and {rest}" if rest else None
    if re.match(r"proceed\b", vp, re.I):
        return "gone ahead with it"
    verb, _, rest = vp.partition(" ")
    verb = verb.lower()
    if not verb.isalpha() or verb in _HARMLESS_VERBS or verb == "go" and rest.startswith("over"):
        return None
    if verb in ("get", "have") or re.match(r"(?:your|you)\b", rest) and verb in ("take", "get"):
        return None
    # "change that and then set up AutoPay": the second verb too
    rest = re.sub(
        r"\b(and (?:then )?)([a-z]+)\b",
        lambda m: m.group(1) + (participle(m.group(2)) if m.group(2) in _SECOND_ACTIONS else m.group(2)),
        rest,
    )
    return f"{participle(verb)} {rest or ('it' if verb in _TAKES_IT else '')}".strip()


def _statement(question: str, before: str) -> str | None:
    """The "already done" statement for a question asking to act (:data:`_OFFER_QUESTION` for "shall I do that?"
    after an offer, to be said as the offer done); ``None`` for any other question."""
    q = re.sub(
        r"^(?:so|and|then|okay|ok|great|perfect|alright),?\s+", "", question.strip().rstrip("?").strip(), flags=re.I
    )
    if " or " in q.lower():
        return None
    if re.search(r"\b(?:transfer|put|connect)\s+you\b", q, re.I) and not re.search(r"\bcallback\b", q, re.I):
        return "I'm putting you through now"
    match = _ASK_OBJECT.match(q)
    if match:
        obj = "both of those" if match.group("obj").lower().startswith("either") else match.group("obj").lower()
        if match.group("on"):
            return f"I've turned {obj} on{match.group('rest')}"
        return f"I've gone ahead and set {obj} up{match.group('rest')}"
    match = _ASK_PARTICIPLE.match(q)
    if match:
        return f"I've {match.group('pp').lower()} {match.group('np')}{match.group('rest')}"
    for pattern in _ASK:
        match = pattern.match(q)
        if match:
            vp = match.group("vp")
            generic = re.fullmatch(r"(?:do (?:that|it|both|this)|go ahead|proceed)(?: for you)?(?: now)?", vp, re.I)
            if generic and _OFFER.search(before):
                return _OFFER_QUESTION
            done = _done(vp)
            return f"I've {done}" if done else None
    match = _IMPERATIVE.match(q)
    done = _done(match.group("vp")) if match else None
    return f"I've {done}" if done else None


def _last_comma_before_ask(sentence: str) -> int:
    matches = list(_ASK_AFTER_COMMA.finditer(sentence))
    return matches[-1].start() if matches else -1


def _offer_done(response: str, s_start: int, s_end: int) -> tuple[str, str] | None:
    """ "I can waive the fee. Shall I do that?" -> "I've waived the fee." (the text, and what it now claims)."""
    before = response[:s_start]
    offers = list(_OFFER.finditer(before))
    done = _done(offers[-1].group("vp")) if offers else None
    if not offers or not done:
        return None
    offer = offers[-1]
    new_before = before[: offer.start()] + f"I've {done}" + before[offer.end() :]
    text = tidy(new_before.rstrip() + " " + response[s_end:].lstrip())
    return (text if text.endswith((".", "!", "?")) else text + "."), f"I've {done}"


def _said_done(response: str, s_start: int, s_end: int, prefix: str, statement: str) -> str:
    """The question at ``response[s_start:s_end]`` replaced by ``statement``, after its leading clause ``prefix``."""
    if not prefix.strip():
        return tidy(response[:s_start] + capitalised(statement) + "." + response[s_end:])
    end = prefix.rstrip()
    joiner = ";" if end.endswith(";") else ":" if end.endswith(":") else "," if end.endswith(",") else ""
    said = f"{end.rstrip(',;:')}{joiner} {statement if joiner else capitalised(statement)}."
    return tidy(response[:s_start] + said + response[s_end:])


def done_not_asked(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """The last question asking to act, said as already done (when the draft asks too)."""
    if turn is not None and turn.draft and not _DRAFT_ASKS.search(turn.draft):
        return None  # the draft does not ask, so saying it is done may be right
    for s_start, s_end in reversed(sentence_spans(response)):
        sentence = response[s_start:s_end]
        if not sentence.rstrip().endswith("?"):
            continue
        # the question may follow a clause: "There's still a pet request on it; shall I take that off?"
        cut = max(sentence.rfind(";"), sentence.rfind(":"), _last_comma_before_ask(sentence))
        prefix, question = (sentence[: cut + 1], sentence[cut + 1 :]) if cut >= 0 else ("", sentence)
        if re.match(r"^\s*(?:Before I do|Just to confirm)", prefix):
            prefix = ""
        statement = _statement(question, response[:s_start] + prefix)
        if statement is None:
            continue
        if statement == _OFFER_QUESTION:
            offered = _offer_done(response, s_start, s_end)
            if offered is None:
                continue
            text, changed = offered
        else:
            text, changed = _said_done(response, s_start, s_end, prefix, statement), statement
        if text != response:
            return (
                text,
                f'Claims it is already done ("{shorten(changed, 10)}"), but the draft only asks the caller first.',
            )
    return None
