"""Findings: what a listener would report about a response, as typed data.

Each metric returns its findings as :class:`Finding` objects; the human sentences (the ``reasons`` of a
scored record) are rendered from them by :func:`render` through :data:`TEMPLATES`, the one place those
sentences are written. Code that counts or groups findings uses their ``kind``, never the sentence text, so
rewording a sentence changes no count.

Kinds, by quality (``text`` is the item concerned; ``values`` the numbers the sentence needs):

non_repetition
    ``repeated_sentence`` a sentence said twice; ``reworded_repeat`` the same clause twice in other words;
    ``announced_repeat`` "like I said"; ``repeated_runs`` four-word runs repeated within the response
    (``count``); ``repeats_last_turn`` a copy of the agent's previous turns (``share``); ``echoes_caller``
    the caller's words said back; ``repeated_fact`` a code or amount from last turn said again (``text``,
    ``fact_kind``).
conciseness
    ``over_budget`` speaking time past the budget (``seconds``, ``facts``, ``budget``); ``filler`` a filler
    or boilerplate phrase (``text`` the phrase as said, ``description``).
clarity
    ``markdown_emphasis``, ``markdown_header``, ``code_formatting``, ``markdown_table``, ``list_bullets``
    markdown read aloud; ``url_read`` a URL (``text``); ``internal_id_read`` an internal id (``text``);
    ``symbols_by_name`` "underscore", "slash"... (``text`` the first three, ``count``);
    ``abbreviation`` written abbreviations (``text``, ``count``); ``screen_number`` screen-format numbers
    (``text``, ``count``); ``digits`` numbers left in digits (``count``); ``symbols`` symbols or parentheses
    (``count``); ``long_sentence`` a sentence over the word limit (``words``); ``enumeration`` too many
    items in one turn (``items``).
humanness
    ``robotic_phrase`` "as an AI", "kindly"... and ``stiff_phrase`` "furthermore", "utilize"... (``text`` the
    phrase as said, ``description``); ``uncontracted`` forms a speaker would contract (``text``, ``count``);
    ``repeated_name`` the caller's name over and over (``text``, ``count``); ``apologies`` several
    apologies (``count``); ``exclamations`` several exclamation marks (``count``).
faithfulness
    ``dropped_fact`` a required fact not conveyed (``text``, ``fact_kind``); ``offered_fact`` one not conveyed
    but offered ("want the tracking number?"); ``swapped_amount`` a draft amount said with another amount's
    label (``text`` the amount, ``label`` the words it was said with); ``done_early`` an action reported done
    where the draft only asks the caller's go-ahead; ``invented_amount`` and
    ``invented_number`` a number the context does not contain (``text``); ``question_dropped`` the draft
    asks the caller something and the response asks nothing; ``off_draft`` nothing of a substantial draft
    said; ``unsupported_claim`` a sentence the draft does not entail, by an NLI model (``text`` the sentence,
    ``draft`` the draft sentence nearest to it, ``entailment`` the model's support).
overall (quality ``"overall"``)
    ``says_nothing`` an empty or one-word response: every quality scores zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CONTRADICTED",
    "DROPPED",
    "Finding",
    "contradicts",
    "INVENTED",
    "SWAPPED",
    "UNSUPPORTED",
    "KINDS",
    "MARKDOWN",
    "PHRASES",
    "REPETITION",
    "TEMPLATES",
    "count_findings",
    "has_finding",
    "render",
]


class Finding(BaseModel):
    """One thing a listener would report about a response, and what it cost the quality it belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str = Field(description="a stable snake_case identifier, one of KINDS")
    quality: str = Field(description="the quality it costs (one of voicetune.records.QUALITIES), or 'overall'")
    text: str = Field("", description="the item concerned: '$150', the phrase as said, the URL")
    values: dict[str, float | int | str] = Field(default_factory=dict, description="the numbers its sentence needs")
    penalty: float = Field(0.0, description="what it cost its quality (before the quality is clamped to [0, 1])")


#: The sentence of every kind: ``{text}`` and the names in ``values``; ``{NAME_s}`` is "s" unless the
#: integer value NAME is 1, and ``{kind_name}`` names a ``fact_kind`` ("amount" for money).
TEMPLATES: dict[str, str] = {
    # non_repetition
    "repeated_sentence": "says the same thing twice (a sentence again)",
    "reworded_repeat": "says the same thing twice in other words",
    "announced_repeat": "announces it is repeating itself ('like I said')",
    "repeated_runs": "repeats {count} four-word runs within the response",
    "repeats_last_turn": "repeats what it said last turn ({share:.0%} of it)",
    "echoes_caller": "echoes the caller's words back",
    "repeated_fact": "repeats the {kind_name} {text} said last turn",
    # conciseness
    "over_budget": "takes {seconds:.0f} s to say {facts} fact{facts_s} (budget {budget:.0f} s)",
    "filler": "{description}",
    # clarity
    "markdown_emphasis": "reads markdown emphasis (** or *) aloud",
    "markdown_header": "reads a markdown header aloud",
    "code_formatting": "reads code formatting aloud",
    "markdown_table": "reads a table aloud",
    "list_bullets": "reads list bullets aloud",
    "url_read": "reads the URL {text} aloud",
    "internal_id_read": "reads the internal id {text} aloud",
    "symbols_by_name": "reads symbols aloud by name ({text})",
    "abbreviation": "uses written abbreviations ({text})",
    "screen_number": "has screen-format numbers a voice misreads ({text})",
    "digits": "leaves {count} number{count_s} in digits",
    "symbols": "has symbols or parentheses a voice reads badly",
    "long_sentence": "has a {words}-word sentence",
    "enumeration": "enumerates {items} items in one turn",
    # humanness
    "robotic_phrase": "{description}",
    "stiff_phrase": "{description}",
    "uncontracted": "doesn't contract ({text})",
    "repeated_name": "says '{text}' {count} times",
    "apologies": "apologises {count} times",
    "exclamations": "uses {count} exclamation marks",
    # faithfulness
    "dropped_fact": "drops the {kind_name} {text}",
    "offered_fact": "offers the {kind_name} {text} instead of saying it",
    "swapped_amount": "says {text} for the {label}, which the draft gives another amount",
    "done_early": "says it is done where the draft only asks the caller's go-ahead",
    "invented_amount": "states {text} that the context does not contain",
    "invented_number": "states {text} that the context does not contain",
    "question_dropped": "doesn't ask the caller what the draft asks",
    "off_draft": "says nothing the draft says",
    "unsupported_claim": 'says "{text}", which the draft does not support (it says "{draft}")',
    # overall
    "says_nothing": "says nothing",
}

#: Every finding kind.
KINDS: frozenset[str] = frozenset(TEMPLATES)
#: Numbers stated that the context does not contain.
INVENTED: frozenset[str] = frozenset({"invented_number", "invented_amount"})
#: Right numbers pinned to the wrong things.
SWAPPED: frozenset[str] = frozenset({"swapped_amount"})
#: Sentences the draft does not support (by meaning, an NLI model): contradictions and made-up claims.
UNSUPPORTED: frozenset[str] = frozenset({"unsupported_claim"})
#: Saying the opposite of the draft, whatever the NLI model reads: a right amount on the wrong thing, an action
#: reported done that the draft only asks about (see :func:`contradicts` for the NLI's contradictions).
CONTRADICTED: frozenset[str] = SWAPPED | frozenset({"done_early"})
#: Required facts the response does not convey.
DROPPED: frozenset[str] = frozenset({"dropped_fact"})
#: Markdown read aloud.
MARKDOWN: frozenset[str] = frozenset(
    {"markdown_emphasis", "markdown_header", "code_formatting", "markdown_table", "list_bullets"}
)
#: Phrases from the lists in ``quality/phrases.py``.
PHRASES: frozenset[str] = frozenset({"filler", "robotic_phrase", "stiff_phrase"})
#: Repetition of what was already said (in the response or the conversation).
REPETITION: frozenset[str] = frozenset(
    {
        "repeated_sentence",
        "reworded_repeat",
        "announced_repeat",
        "repeated_runs",
        "repeats_last_turn",
        "echoes_caller",
        "repeated_fact",
    }
)

#: How a fact's kind is named in a sentence ("drops the amount $45.00").
KIND_NAMES: dict[str, str] = {
    "money": "amount",
    "time": "time",
    "date": "date",
    "code": "code",
    "phone": "phone number",
    "email": "email",
    "number": "number",
    "name": "name",
    "phrase": "point",
}


def render(finding: Finding) -> str:
    """The sentence a listener would say for ``finding``, from :data:`TEMPLATES`."""
    fields: dict[str, Any] = {"text": finding.text, **finding.values}
    for name, value in finding.values.items():
        if isinstance(value, int):
            fields[f"{name}_s"] = "" if value == 1 else "s"
    if "fact_kind" in fields:
        fields["kind_name"] = KIND_NAMES.get(str(fields["fact_kind"]), fields["fact_kind"])
    return TEMPLATES[finding.kind].format_map(fields)


def _kind(finding: Finding | Mapping[str, Any]) -> str:
    return finding["kind"] if isinstance(finding, Mapping) else finding.kind


def count_findings(findings: Iterable[Finding | Mapping[str, Any]] | None, kinds: str | Iterable[str]) -> int:
    """How many of ``findings`` (objects, or the dicts of a record's ``findings``) are of ``kinds``."""
    wanted = frozenset((kinds,)) if isinstance(kinds, str) else frozenset(kinds)
    return sum(1 for finding in findings or () if _kind(finding) in wanted)


def contradicts(findings: Iterable[Finding | Mapping[str, Any]] | None, entail_low: float) -> bool:
    """Whether ``findings`` include a contradiction of the draft: a swapped amount, an action reported done
    early, or a claim the NLI model reads as contradicted (support at most ``entail_low``, the scorer's
    ``meaning.entail_low``). A claim with more support than that is only *unsupported*: the draft read back in
    pieces ("Type: Annual physical") scores 0.02 to 0.07 with the offline model, so counting those would call
    the draft itself contradictory."""
    for finding in findings or ():
        kind = _kind(finding)
        if kind in CONTRADICTED:
            return True
        if kind in UNSUPPORTED:
            values = finding["values"] if isinstance(finding, Mapping) else finding.values
            if float(values.get("entailment", 1.0)) <= entail_low:
                return True
    return False


def has_finding(findings: Iterable[Finding | Mapping[str, Any]] | None, kinds: str | Iterable[str]) -> bool:
    """Whether any of ``findings`` is of ``kinds`` (see :func:`count_findings`)."""
    wanted = frozenset((kinds,)) if isinstance(kinds, str) else frozenset(kinds)
    return any(_kind(finding) in wanted for finding in findings or ())
