"""Phrase lists behind the conciseness and humanness metrics, in one place so they are easy to review.

Each entry is a regular expression (case-insensitive) and the finding a listener would report.
"""

from __future__ import annotations

import re


class PhraseList:
    """Patterns searched in one pass (one alternation with a named group each); :meth:`findings` says which
    of them occur."""

    def __init__(self, entries: list[tuple[str, str]]):
        self.entries = entries
        self._findings = {f"p{i}": finding for i, (_, finding) in enumerate(entries)}
        # Patterns are written in lower case and run on lower-cased text: re's case-insensitive mode is
        # several times slower on long alternations.
        self._pattern = re.compile("|".join(f"(?P<p{i}>{pattern})" for i, (pattern, _) in enumerate(entries)), re.M)

    def findings(self, text: str) -> list[str]:
        """The finding of every entry that occurs in ``text``, each once, in order of appearance."""
        return list(dict.fromkeys(self._findings[m.lastgroup] for m in self._pattern.finditer(text.lower().replace("’", "'"))))


def _compile(entries: list[tuple[str, str]]) -> PhraseList:
    return PhraseList(entries)


#: Words that take time and carry nothing: preambles, boilerplate closings, hedges.
FILLER = _compile([
    (r"\b(?:i(?:'d| would)|i am|i'm|we(?:'d| would)) (?:be )?(?:more than )?(?:happy|glad|delighted) to (?:help|assist)", "opens with 'happy to help' filler"),
    (r"^\s*(?:certainly|absolutely|of course|sure thing|great question)[!.,]", "opens with an empty interjection"),
    (r"\bthank you (?:so much )?for (?:reaching out|contacting|calling|your patience|your understanding|bringing this)", "thanks the caller as boilerplate"),
    (r"\bis there anything else (?:that )?i (?:can|may) (?:help|assist)|\banything else i can (?:help|do)|\bhow else (?:can|may) i (?:help|assist)", "ends with the boilerplate 'anything else' question"),
    (r"\b(?:please )?(?:don't|do not) hesitate to", "says 'don't hesitate to'"),
    (r"\b(?:please )?feel free to", "says 'feel free to'"),
    (r"\blet me know if (?:you (?:have|need)|there(?:'s| is)) (?:any(?:thing)?|further)", "says 'let me know if you have any questions'"),
    (r"\bi hope (?:this|that) (?:helps|information helps|clarifies)", "says 'I hope this helps'"),
    (r"\bplease note that\b|\bit(?:'s| is) (?:important|worth) (?:to note|noting)", "says 'please note that'"),
    (r"\bas (?:i )?(?:previously )?mentioned(?: earlier| before)?\b", "says 'as mentioned'"),
    (r"\bi(?:'m| am) here to (?:help|assist)", "says 'I'm here to help'"),
    (r"\bat this (?:point in )?time\b", "says 'at this time'"),
    (r"\bin order to\b", "says 'in order to'"),
    (r"\bfor your (?:reference|convenience|information)\b", "says 'for your reference'"),
])

#: Phrases that mark a speaker as a machine or a form letter.
ROBOTIC = _compile([
    (r"\bas an? (?:ai|artificial intelligence|language model|virtual assistant|digital assistant|automated)", "says 'as an AI'"),
    (r"\bi(?:'m| am) (?:just )?an? (?:ai|language model|bot|virtual assistant)", "calls itself an AI"),
    (r"\b(?:i|we) (?:sincerely )?apologi[sz]e for (?:any|the) inconvenience", "says 'I apologize for any inconvenience'"),
    (r"\bi understand (?:your|how) frustrat", "says 'I understand your frustration'"),
    (r"\bvalued customer\b", "says 'valued customer'"),
    (r"\bkindly\b", "says 'kindly'"),
    (r"\b(?:please )?be advised\b", "says 'please be advised'"),
    (r"\bat your earliest convenience\b", "says 'at your earliest convenience'"),
    (r"\brest assured\b", "says 'rest assured'"),
    (r"\bi hope this (?:message|email) finds you", "writes a letter opening"),
    (r"\byour (?:satisfaction|request) is (?:our|my) (?:top )?priority", "says 'your satisfaction is our priority'"),
    (r"\b(?:dear|regards|sincerely),?\s*$", "writes a letter salutation"),
    (r"\bthe (?:user|customer|caller|account holder)\b(?!\s+(?:service|support|care|portal))", "talks about the caller in the third person"),
])

#: Stiff written register that nobody uses on the phone.
STIFF = _compile([
    (r"\b(?:furthermore|moreover|additionally|henceforth|thereby|herein|aforementioned|pursuant)\b", "uses written connectives (furthermore, additionally)"),
    (r"\b(?:utili[sz]e|commence|facilitate|endeavou?r|pertaining|regarding your inquiry|procure)\b", "uses stiff vocabulary (utilize, commence)"),
    (r"\bit (?:is|would be) my (?:pleasure|privilege)\b|\bi would be delighted\b", "sounds like a form letter ('it is my pleasure')"),
    (r"\b(?:has|have) been (?:noted|logged|received|documented|recorded|submitted)\b|\bper our\b|\bin accordance with\b", "sounds procedural ('has been logged', 'per our policy')"),
])

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
