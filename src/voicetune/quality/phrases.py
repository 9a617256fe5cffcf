"""Phrase lists behind the conciseness and humanness metrics, in one place so they are easy to review.

Each entry is a regular expression (lower case, run on lower-cased text), the finding a listener would
report, and the trigger words that let a text skip the patterns it cannot match.
"""

from __future__ import annotations

import re

from voicetune.quality.text import words


class PhraseList:
    """Phrase patterns with trigger words: a pattern runs only when one of its triggers occurs in the text.

    Each entry is ``(pattern, finding, triggers)``: ``triggers`` are space-separated lower-case words, at
    least one of which every match of ``pattern`` contains as a word. Checking them is a set lookup, so a
    text runs only the few patterns it could match (scanning every pattern over every text is what made the
    scorer slow). Patterns are written in lower case and run on lower-cased text.
    """

    def __init__(self, entries: list[tuple[str, str, str]]):
        self.entries = [
            (re.compile(pattern, re.M), finding, frozenset(triggers.split())) for pattern, finding, triggers in entries
        ]

    def findings(self, text: str) -> list[str]:
        """The finding of every entry that occurs in ``text``, in the order of the list."""
        return [finding for finding, _ in self.matches(text)]

    def matches(self, text: str) -> list[tuple[str, str]]:
        """``(finding, phrase as said, lower case)`` for every entry that occurs in ``text``, in list order."""
        tokens = frozenset(words(text))
        lower = None
        found = []
        for pattern, finding, triggers in self.entries:
            if not triggers.isdisjoint(tokens):
                lower = lower or text.lower().replace("’", "'")
                match = pattern.search(lower)
                if match:
                    found.append((finding, match.group(0).strip()))
        return found


def _compile(entries: list[tuple[str, str, str]]) -> PhraseList:
    return PhraseList(entries)


#: Words that take time and carry nothing: preambles, boilerplate closings, hedges.
FILLER = _compile(
    [
        (
            r"\b(?:i(?:'d| would)|i am|i'm|we(?:'d| would)) (?:be )?(?:more than )?(?:happy|glad|delighted) to "
            r"(?:help|assist)",
            "opens with 'happy to help' filler",
            "happy glad delighted",
        ),
        (
            r"^\s*(?:certainly|absolutely|of course|sure thing|great question)[!.,]",
            "opens with an empty interjection",
            "certainly absolutely course sure great",
        ),
        (
            r"\bthank you (?:so much )?for (?:reaching out|contacting|calling|your patience|your "
            r"understanding|bringing this)",
            "thanks the caller as boilerplate",
            "thank",
        ),
        (
            r"\bis there anything else (?:that )?i (?:can|may) (?:help|assist)|\banything else i can (?:help|do)|\bhow "
            r"else (?:can|may) i (?:help|assist)",
            "ends with the boilerplate 'anything else' question",
            "else",
        ),
        (r"\b(?:please )?(?:don't|do not) hesitate to", "says 'don't hesitate to'", "hesitate"),
        (r"\b(?:please )?feel free to", "says 'feel free to'", "free"),
        (
            r"\blet me know if (?:you (?:have|need)|there(?:'s| is)) (?:any(?:thing)?|further)",
            "says 'let me know if you have any questions'",
            "know",
        ),
        (r"\bi hope (?:this|that) (?:helps|information helps|clarifies)", "says 'I hope this helps'", "hope"),
        (
            r"\bplease note that\b|\bit(?:'s| is) (?:important|worth) (?:to note|noting)",
            "says 'please note that'",
            "note noting",
        ),
        (r"\bas (?:i )?(?:previously )?mentioned(?: earlier| before)?\b", "says 'as mentioned'", "mentioned"),
        (r"\bi(?:'m| am) here to (?:help|assist)", "says 'I'm here to help'", "here"),
        (r"\bat this (?:point in )?time\b", "says 'at this time'", "time"),
        (r"\bin order to\b", "says 'in order to'", "order"),
        (
            r"\bfor your (?:reference|convenience|information)\b",
            "says 'for your reference'",
            "reference convenience information",
        ),
    ]
)

#: Phrases that mark a speaker as a machine or a form letter.
ROBOTIC = _compile(
    [
        (
            r"\bas an? (?:ai|artificial intelligence|language model|virtual assistant|digital assistant|automated)",
            "says 'as an AI'",
            "ai artificial language virtual digital automated",
        ),
        (
            r"\bi(?:'m| am) (?:just )?an? (?:ai|language model|bot|virtual assistant)",
            "calls itself an AI",
            "ai language bot virtual",
        ),
        (
            r"\b(?:i|we) (?:sincerely )?apologi[sz]e for (?:any|the) inconvenience",
            "says 'I apologize for any inconvenience'",
            "inconvenience",
        ),
        (
            r"\bi understand (?:your|how) frustrat",
            "says 'I understand your frustration'",
            "frustrated frustrating frustration",
        ),
        (r"\bvalued customer\b", "says 'valued customer'", "valued"),
        (r"\bkindly\b", "says 'kindly'", "kindly"),
        (r"\b(?:please )?be advised\b", "says 'please be advised'", "advised"),
        (r"\bat your earliest convenience\b", "says 'at your earliest convenience'", "earliest"),
        (r"\brest assured\b", "says 'rest assured'", "assured"),
        (r"\bi hope this (?:message|email) finds you", "writes a letter opening", "finds"),
        (
            r"\byour (?:satisfaction|request) is (?:our|my) (?:top )?priority",
            "says 'your satisfaction is our priority'",
            "priority",
        ),
        (r"\b(?:dear|regards|sincerely),?\s*$", "writes a letter salutation", "dear regards sincerely"),
        (
            r"\bthe (?:user|customer|caller|account holder)\b(?!\s+(?:service|support|care|portal))",
            "talks about the caller in the third person",
            "user customer caller holder",
        ),
    ]
)

#: Stiff written register that nobody uses on the phone.
STIFF = _compile(
    [
        (
            r"\b(?:furthermore|moreover|additionally|henceforth|thereby|herein|aforementioned|pursuant)\b",
            "uses written connectives (furthermore, additionally)",
            "furthermore moreover additionally henceforth thereby herein aforementioned pursuant",
        ),
        (
            r"\b(?:utili[sz]e|commence|facilitate|endeavou?r|pertaining|regarding your inquiry|procure)\b",
            "uses stiff vocabulary (utilize, commence)",
            "utilize utilise utilizing commence facilitate endeavor endeavour pertaining inquiry procure",
        ),
        (
            r"\bit (?:is|would be) my (?:pleasure|privilege)\b|\bi would be delighted\b",
            "sounds like a form letter ('it is my pleasure')",
            "pleasure privilege delighted",
        ),
        (
            r"\b(?:has|have) been (?:noted|logged|received|documented|recorded|submitted)\b|\bper our\b|\bin "
            r"accordance with\b",
            "sounds procedural ('has been logged', 'per our policy')",
            "been per accordance",
        ),
    ]
)

#: Uncontracted forms a person would contract when speaking.
UNCONTRACTED = re.compile(  # run on lower-cased text
    r"\b(?:i am|i will|i would|you are|you will|we are|we will|it is|that is|there is|do not|does not|did not|"
    r"is not|are not|was not|cannot|can not|will not|would not|could not|should not|have not|has not|let us|"
    r"what is|here is|they are)\b(?!\s*[.,!?;:]|\s*$)",  # "there it is." cannot be contracted
)

#: A listener asking to hear something again: repeating then is right.
REPEAT_REQUEST = re.compile(
    r"\b(?:repeat|say (?:that|it) again|come again|didn't (?:catch|get|hear)|one more time|once more|pardon|"
    r"what was (?:that|the)|could you spell|sorry\?|read (?:that|it) back|confirm)\b",
    re.I,
)
