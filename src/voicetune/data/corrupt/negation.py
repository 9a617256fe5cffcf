"""negation: flip the polarity of the main claim (has/hasn't, can/can't, is/isn't, found/couldn't find)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

from voicetune.data.corrupt.amounts import UNIT_STOP, amounts
from voicetune.data.corrupt.numbers import NUMBER_WORDS
from voicetune.data.corrupt.text import (
    APOS,
    Rewrite,
    article_for,
    changed_snippet,
    clause_bounds,
    diff_span,
    match_case,
    normal,
    sentences_of,
    tidy,
)
from voicetune.data.corrupt.verbs import looks_participle, past, third
from voicetune.records import Turn

#: ``(start, end, replacement)`` in a sentence.
Candidate = tuple[int, int, str]

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
    r"instead of|rather than|right away|right now|I'm pulling|I'll check|I can check|I'll take|you're right|"
    r"that's right)\b"
)
_PLEASANTRY = re.compile(
    r"^(?:Enjoy|Have a|Good luck|Take care|Safe travels|Happy|Glad|Congrat|Hope|I hope|Stay|Bye|See you|Anytime|"
    r"You're welcome|My pleasure)\b"
)
_IMPERATIVE_START = re.compile(
    r"^(?i:(?:Just|Please|Now|Then|First|So|Once you land),?\s+)?(?i:Let|Tell|Look|Go|Bring|Call|Make sure|Keep|Check|"
    r"Head|Try|Give|Pop|Grab|Take|Send|Put|Get|Have|Turn|Come|Read|Unplug|Pick|Open|Tap|Hold|Email|Text|Drop|Box|Ask|"
    r"Stop|Mind|Toss|Fill|Switch|Start|Pay|Dial|Wait|Restart|Plug|Write|Say|Use|Leave|Don't|Do not|Be|Reply|Visit|"
    r"Grab)\b"
)
_SUBORDINATE_BEFORE = re.compile(
    r"(?i)\b(?:if|when|whenever|once|unless|since|before|after|while|because|until|whether|than|though|although|"
    r"so that|in case|as long as|even|only|mostly|just|nothing|nobody|none|neither|no one|what|where|how)\b"
    r"|\bso\s+(?:I|you|we|they|he|she|it|there|that|nobody|your|the)\b"
)
_CODE_AFTER = re.compile(
    r"^\s+(?:[A-Z]\b|(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\s+"
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|hundred)\b)"
)
_NEGATIVE_AHEAD = re.compile(r"(?i)^\s*(?:\w+\s+){0,2}?(?:not|no|never|nothing|none|nobody|n't|non-\w+)\b")
_ANSWER = re.compile(r"^(Yes|Yeah|Yep|No|Nope)\b(?!\s+(?:problem|worries|rush|trouble|need|harm|way|longer))[,.!:]?\s*")
_INSTRUCTION_BEFORE = re.compile(r"(?:^|[,;:.!?]\s*)$")
_ADVERBS = frozenset(
    "also still just only usually normally always automatically already now really often typically actually "
    "then".split()
)
_NON_SUBJECT = (
    frozenset(
        "to the a an of for in on at by with from into onto be been being is are was were will would can could should "
        "may "
        "might must have has had do does did not never please and or but if so that's it's there's here's as than per "
        "each your my our their his her its this these those which what who that".split()
    )
    | NUMBER_WORDS
)
_MAIN_VERBS = frozenset(
    "apply arrive come cover expire include match post ship work count qualify need cost renew show affect change "
    "require allow get land run go take add charge pay drop close open start end stay keep mean help reach "
    "hold accept earn fit carry waive process deliver settle transfer offer list say expect kick roll cancel block "
    "clear reset".split()
)
_INTRANSITIVE = frozenset("arrive come go work land run stay start end expire post ship close open settle".split())


def _verb_forms() -> dict[str, tuple[str, str]]:
    """The third-person and past forms of the main verbs: ``form -> (verb, "third" | "past")``. A past form that is
    also the base ("cost", "fit") is left out: "they cost" may be the present."""
    forms: dict[str, tuple[str, str]] = {}
    for verb in sorted(_MAIN_VERBS):
        forms[third(verb)] = (verb, "third")
        if past(verb) != verb:
            forms.setdefault(past(verb), (verb, "past"))
    return forms


_VERB_FORMS = _verb_forms()
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
    "approved": "denied",
    "denied": "approved",
    "declined": "approved",
    "in-network": "out-of-network",
    "out-of-network": "in-network",
    "available": "unavailable",
    "unavailable": "available",
    "valid": "invalid",
    "eligible": "ineligible",
    "ineligible": "eligible",
    "always": "never",
    "active": "inactive",
    "non-refundable": "refundable",
    "refundable": "non-refundable",
    "non-transferable": "transferable",
}
_ANSWER_FLIP = {"yes": "no", "yeah": "no", "yep": "nope", "no": "yes", "nope": "yep"}
_CONTRACTION = re.compile(rf"\b(I|you|we|they|it|he|she|that|there|who)({APOS})(s|re|ve|ll|d|m)\b", re.I)
_NOUN_S = re.compile(
    rf"\b([A-Za-z]{{3,}})({APOS})s\s+(?=(?:(?:already|now|just|still)\s+)?(?:on|off|done|in|been|cancelled|waived|"
    r"applied|set|open|closed|gone|ready|frozen|\w+ed)\b)"
)
_MODAL_BEFORE = re.compile(
    rf"\b(?:to|do|does|did|will|would|could|should|can|may|might|must|{APOS}d|{APOS}ll|n{APOS}t|not)\s+$", re.I
)


def _next_words(text: str) -> list[str]:
    """The first words of ``text`` (lower case), adverbs at the start skipped."""
    following = [w.lower() for w in re.findall(r"[A-Za-z]+", text)[:3]]
    while following and following[0] in _ADVERBS:
        following.pop(0)
    return following


def _phrase_flips(sentence: str) -> Iterator[Candidate]:
    """ "at no cost" -> "for an extra fee", "can't" -> "can", "won't" -> "will"."""
    for pattern, new in _PHRASE_FLIPS:
        for m in re.finditer(pattern, sentence, re.I):
            yield m.start(), m.end(), match_case(m.group(0), new)
    for m in re.finditer(rf"\b(can{APOS}t|cannot|can not)\b", sentence, re.I):
        yield m.start(), m.end(), match_case(m.group(0), "can")
    for m in re.finditer(rf"\b(won{APOS}t|will not)\b", sentence, re.I):
        yield m.start(), m.end(), match_case(m.group(0), "will")


def _negated_auxiliaries(sentence: str) -> Iterator[Candidate]:
    """ "isn't" -> "is", "doesn't apply" -> "applies", "it's not" -> "it's", "never" dropped."""
    for m in re.finditer(
        rf"\b(is|are|was|were|would|could|should|has|have|had|does|do|did)(n{APOS}t| not)\b(\s+\w+)?", sentence, re.I
    ):
        aux, rest = m.group(1), m.group(3) or ""
        low = aux.lower()
        if low not in ("does", "do", "did"):
            yield m.start(), m.end() - len(rest), aux
            continue
        verb = rest.strip().lower()
        if not verb or not verb.isalpha() or verb in NUMBER_WORDS:
            continue
        if low == "do" and _INSTRUCTION_BEFORE.search(sentence[: m.start()]):
            continue  # an instruction: "Don't cancel Corvid yourself"
        form = third(verb) if low == "does" else past(verb) if low == "did" else verb
        yield m.start(), m.end(), match_case(aux, form)
    for m in re.finditer(rf"\b(I|you|we|they|it|he|she|that|there|who)({APOS})(s|re|m)\s+not\b", sentence, re.I):
        yield m.start(), m.end(), m.group(1) + m.group(2) + m.group(3)
    for m in re.finditer(rf"\b([a-z]+)({APOS})s\s+not\b", sentence):
        if m.group(1).lower() not in ("it", "that", "there", "he", "she", "who", "what", "here", "let"):
            yield m.start(), m.end(), m.group(1) + m.group(2) + "s"
    for m in re.finditer(r"\bnever\s+(\w+)", sentence):
        yield m.start(), m.start() + len("never "), ""


def _no_noun(sentence: str) -> Iterator[Candidate]:
    """ "no fee" -> "a fee", "no charges" -> "charges"."""
    for m in re.finditer(r"\bno\s+([a-z][\w-]*)", sentence):
        noun = m.group(1)
        if (
            noun
            in (
                "need",
                "problem",
                "rush",
                "worries",
                "harm",
                "trouble",
                "one",
                "longer",
                "way",
                "more",
                "matter",
                "bother",
            )
            or noun in UNIT_STOP
        ):
            continue
        if noun in _NO_MASS or noun.endswith("s") and not noun.endswith("ss"):
            yield m.start(), m.start() + 3, ""
        else:
            yield m.start(), m.start() + 2, article_for(noun)


def _positive_auxiliaries(sentence: str) -> Iterator[Candidate]:
    """ "does apply" -> "doesn't", "is" -> "isn't", "can" -> "can't", "has been" -> "hasn't been", "has a" ->
    "doesn't have a"."""
    for m in re.finditer(r"\b(does|do|did)\s+(?!not\b)([a-z]+)\b", sentence):
        verb = m.group(2)
        if (
            verb in UNIT_STOP
            or verb in NUMBER_WORDS
            or verb.endswith("s")
            or _INSTRUCTION_BEFORE.search(sentence[: m.start()])
        ):
            continue
        yield m.start(), m.end(1), m.group(1) + "n't"
    for m in re.finditer(r"\b(is|are|was|were)\b(?!n)", sentence):
        if not _NEGATIVE_AHEAD.match(sentence[m.end() :]) and not re.match(r"\s+that\b", sentence[m.end() :]):
            yield m.start(), m.end(), m.group(1) + "n't"
    for m in re.finditer(
        rf"\b(can|will|would|could|should)\b(?!{APOS}t)(?!\s+(?:I|you|we|he|she|they|it)\b)", sentence
    ):
        if not _NEGATIVE_AHEAD.match(sentence[m.end() :]):
            yield m.start(), m.end(), {"can": "can't", "will": "won't"}.get(m.group(1), m.group(1) + "n't")
    for m in re.finditer(r"\b(has|have|had)\s+(\w+)", sentence):
        aux, following = m.group(1), m.group(2).lower()
        if _NEGATIVE_AHEAD.match(sentence[m.end(1) :]) or _MODAL_BEFORE.search(sentence[: m.start()]):
            continue
        if following in ("been", "got", "already", "just", "gone") or looks_participle(following):
            yield m.start(), m.end(1), aux + "n't"
        elif following.isalpha():
            yield m.start(), m.end(1), {"has": "doesn't have", "have": "don't have", "had": "didn't have"}[aux]


def _contractions(sentence: str) -> Iterator[Candidate]:
    """ "it's" -> "it isn't", "you'll" -> "you won't", "I'd already" -> "I hadn't already"."""
    for m in _CONTRACTION.finditer(sentence):
        pronoun, apostrophe, short = m.group(1), m.group(2), m.group(3).lower()
        rest = sentence[m.end() :]
        if _NEGATIVE_AHEAD.match(rest) or _CODE_AFTER.match(rest) or short == "s" and pronoun.lower() == "who":
            continue
        following = _next_words(rest)
        first = following[0] if following else ""
        if short == "s":
            new = f"{pronoun} {'hasn' if first in ('been', 'got', 'gone') else 'isn'}'t"
        elif short == "d":
            new = (
                f"{pronoun} {'hadn' if first in ('already', 'been', 'got') or looks_participle(first) else 'wouldn'}'t"
            )
        elif short == "m":
            new = f"{pronoun}{apostrophe}m not"
        else:
            new = f"{pronoun} " + {"re": "aren't", "ve": "haven't", "ll": "won't"}[short]
        yield m.start(), m.end(), new
    for m in _NOUN_S.finditer(sentence):
        if m.group(1).lower() in (
            "let",
            "here",
            "what",
            "that",
            "it",
            "there",
            "who",
            "he",
            "she",
            "where",
            "how",
            "everything",
            "everyone",
        ):
            continue
        following = _next_words(sentence[m.end() :])
        new = "hasn't" if following and following[0] in ("been", "gone", "got") else "isn't"
        yield m.start(), m.end(), f"{m.group(1)} {new} "


def _main_verbs(sentence: str) -> Iterator[Candidate]:
    """A main verb with a subject and no auxiliary: "the card still gets there" -> "doesn't get"."""
    for m in re.finditer(r"\b([a-z]+)\b", sentence):
        form = m.group(1)
        if form not in _VERB_FORMS:
            continue
        verb, tense = _VERB_FORMS[form]
        left, _ = clause_bounds(sentence, m.start())
        before = re.findall(r"[A-Za-z'’-]+", sentence[left : m.start()])
        while before and before[-1].lower() in _ADVERBS:
            before.pop()
        if (
            not before
            or before[-1].lower() in _NON_SUBJECT
            or before[-1].lower().endswith(("'s", "’s", "'ve", "'re", "n't"))
        ):
            continue
        after = sentence[m.end() :]
        if re.match(r"\s+(?:is|are|was|were|has|have|will|can|would|'s)\b", after):
            continue
        if tense == "past" and form.endswith("ed") and re.match(r"\s+(?:by|to|from)\b", after):
            continue
        if tense == "past" and re.match(r"\s*(?:[,.;:!?]|$)", after) and verb not in _INTRANSITIVE:
            continue  # "call history included": a participle, not a past tense
        yield m.start(), m.end(), ("doesn't " if tense == "third" else "didn't ") + verb


def _lexical_flips(sentence: str) -> Iterator[Candidate]:
    """ "everything's" -> "nothing's", "found it" -> "couldn't find it", "approved" -> "denied"."""
    for m in re.finditer(rf"\b(Everything|everything|Everyone|everyone)(?:{APOS}s| is)\b", sentence):
        yield (
            m.start(),
            m.end(),
            match_case(m.group(1), "nothing" if m.group(1).lower() == "everything" else "no one") + "'s",
        )
    for m in re.finditer(r"\b([Ff]ound it)\b", sentence):
        yield m.start(), m.end(), match_case(m.group(0), "couldn't find it")
    for word, new in _LEXICAL_FLIPS.items():
        for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", sentence, re.I):
            yield m.start(), m.end(), match_case(m.group(0), new)


_CANDIDATES: tuple[Callable[[str], Iterator[Candidate]], ...] = (
    _phrase_flips,
    _negated_auxiliaries,
    _no_noun,
    _positive_auxiliaries,
    _contractions,
    _main_verbs,
    _lexical_flips,
)


def _candidates(sentence: str) -> list[Candidate]:
    """Ways to flip one claim of a sentence, in order of position (the longer first at one position)."""
    found = [candidate for finder in _CANDIDATES for candidate in finder(sentence)]
    return sorted(found, key=lambda c: (c[0], -(c[1] - c[0])))


def _negation_ok(sentence: str, start: int, end: int, new: str) -> bool:
    """Whether flipping ``sentence[start:end]`` to ``new`` flips a plain claim (not a courtesy, a hedge, a
    subordinate clause, a code being read out)."""
    left, right = clause_bounds(sentence, start)
    prefix = sentence[left:start]
    if _NEG_SKIP_CLAUSE.search(sentence[left:right]) or _SUBORDINATE_BEFORE.search(sentence[left:end]):
        return False
    if re.fullmatch(r"\s*(?:Inside|Below|Above|Attached|Included|Enclosed|Also|Here|There)\s+", prefix) or (
        re.match(r"\s*(?:On|In|At|Under|Inside|Below|Above|Behind|Beside|Near|Next to)\b", prefix)
        and not re.search(r"\b(?:I|you|we|they|he|she|it|there|this|that)\b", prefix, re.I)
        and re.fullmatch(r"(?:is|are|was|were)n't", new)
    ):
        return False  # "Inside is a square pattern", "On the back is a long number": a fronted place, not a subject
    if re.search(r"\b(?:that|which|who)\s+$", prefix):
        return False  # a relative clause: "a nonstop ... that lands at nine oh two"
    if _CODE_AFTER.match(sentence[end:]):
        return False  # "Your code is Z C five ...": a code read out, not a claim
    if re.match(r"\s+(?:only|just|about|around|probably|likely|usually|mostly)\b", sentence[end:]):
        return False  # "It's only an estimate" -> "It isn't only an estimate" says nothing clear
    made_positive = not re.search(
        r"n't|\bnot\b|\bno\b|\bnever\b|couldn't|\bun|\bin(?:active|valid|eligible)|out-of|non-", new
    )
    no_twin = (
        r"\b(?:until|any|anything|anyone|either|at all)\b|\bin\s+[\w-]+\s+(?:days|weeks|months|years)\b|\ba thing\b"
    )
    if made_positive and re.search(no_twin, sentence[end:right]):
        return False  # "doesn't mature until July", "hasn't been restarted in forty-one days" have no positive twin
    fronted = re.match(r"^\s*(?!(?:I|you|we|they|he|she|it)\b)\w", prefix)
    return not (
        re.match(r"\s*(?:[,.;:!?]|$)", sentence[end:]) and fronted and new.endswith("n't")
    )  # "Ten to noon it is"


def _first_negation(sentence: str, skip_until: int = 0) -> Candidate | None:
    for start, end, new in _candidates(sentence):
        if (
            start >= skip_until
            and _negation_ok(sentence, start, end, new)
            and sentence[:start] + new + sentence[end:] != sentence
        ):
            return start, end, new
    return None


def _has_content(sentence: str) -> bool:
    """A sentence that says something about the caller's case: an amount, a date, a name, a number."""
    return bool(amounts(sentence)) or len(sentence.split()) >= 7


def _flipped_answer(answer: re.Match[str]) -> str:
    return match_case(answer.group(1), _ANSWER_FLIP[answer.group(1).lower()])


def _picks(response: str) -> Iterator[tuple[int, int, str]]:
    """Each sentence's negated response: ``(preference, position, text)``; a sentence with content first."""
    sentences = sentences_of(response)
    for position, (s_start, s_end, sentence) in enumerate(sentences):
        if sentence.rstrip().endswith("?") or _PLEASANTRY.match(sentence) or _IMPERATIVE_START.match(sentence):
            continue
        answer = _ANSWER.match(sentence)
        if answer and answer.end() >= len(sentence.rstrip()):
            # a bare "Yes." flips with the next sentence's claim
            if position + 1 < len(sentences) and not sentences[position + 1][2].rstrip().endswith("?"):
                n_start, n_end, following = sentences[position + 1]
                pick = _first_negation(following)
                if pick:
                    start, end, new = pick
                    yes = _flipped_answer(answer) + sentence[len(answer.group(1)) :]
                    negated = following[:start] + new + following[end:]
                    yield 0, position, response[:s_start] + yes + response[s_end:n_start] + negated + response[n_end:]
            continue
        pick = _first_negation(sentence, answer.end() if answer else 0)
        if not pick:
            continue
        start, end, new = pick
        changed = sentence[:start] + new + sentence[end:]
        if answer:
            first_clause_end = min(
                [i for i in (sentence.find(ch, answer.end()) for ch in ",;:—") if i != -1] or [len(sentence)]
            )
            if start < first_clause_end:
                changed = _flipped_answer(answer) + changed[len(answer.group(1)) :]
        yield 0 if _has_content(sentence) else 1, position, response[:s_start] + changed + response[s_end:]


def _smooth(response: str, text: str) -> str:
    """The negated text read naturally: "isn't already in" -> "isn't in", "too" -> "either" in a negated clause,
    "has been moved ... yet" -> "... moved"."""
    text = re.sub(
        rf"\b((?:is|are|was|were|has|have|had|does|do|did|wo|ca|could|would|should)n{APOS}t)\s+(?:already|still|just|also|now)\s+",
        r"\1 ",
        text,
    )
    text = re.sub(
        rf"\b((?:I|you|we|they|it|he|she){APOS}m not"
        rf"|(?:I|you|we|they|he|she|it) (?:won|wouldn|haven|hadn|aren|isn){APOS}t)"
        r"\s+(?:already|still|just|also|now)\s+",
        r"\1 ",
        text,
    )
    change_start, change_end = diff_span(response, text)
    if not re.search(r"n't|\bnot\b", text[max(0, change_start - 4) : change_end + 1]):
        return re.sub(r"(\b(?:has|have|had|is|are) been [^,.;]*?) yet\b", r"\1", text)
    clause_end = min([i for i in (text.find(ch, change_end) for ch in ",;:.!?") if i != -1] or [len(text)])
    negated = re.sub(r"\b(?:too|as well)\b", "either", text[change_start:clause_end])
    negated = re.sub(r"\s+\b(?:still|already)\b(?=\s)", "", negated)
    return text[:change_start] + negated + text[clause_end:]


def negation(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """The first plain claim flipped, a sentence with content (an amount, seven words or more) first."""
    picks = sorted(_picks(response), key=lambda p: (p[0], p[1]))
    if not picks:
        return None
    text = _smooth(response, tidy(picks[0][2]))
    if normal(text) == normal(response):
        return None
    return text, f'Reverses the claim: says "{changed_snippet(response, text)}", the opposite of what the draft says.'
