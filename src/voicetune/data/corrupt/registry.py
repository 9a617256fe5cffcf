"""The registry of corruption kinds (each kind's name, what it does, the failure it makes and its function), and
the entry points that apply them: :func:`corrupt` (one kind) and :func:`corruptions` (every kind that applies)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from voicetune.data.corrupt.done_not_asked import done_not_asked
from voicetune.data.corrupt.drop_fact import drop_fact
from voicetune.data.corrupt.invent_number import invent_number
from voicetune.data.corrupt.negation import negation
from voicetune.data.corrupt.repeat_sentence import repeat_sentence
from voicetune.data.corrupt.swap_amounts import swap_amounts
from voicetune.data.corrupt.text import Rewrite, normal
from voicetune.data.corrupt.wrong_action import wrong_action
from voicetune.data.corrupt.wrong_item import wrong_item
from voicetune.records import Turn


@dataclass(frozen=True)
class Corruption:
    """A corrupted response: its ``kind`` (a key of :data:`KINDS`), the corrupted ``text``, ``why`` it is worse
    (one plain sentence for a listener), the ``quality`` it violates and its ``failure_class``
    (``contradiction``, ``dropped_fact``, ``invented`` or ``repetition``)."""

    kind: str
    text: str
    why: str
    quality: str = "faithfulness"
    failure_class: str = "contradiction"


@dataclass(frozen=True)
class Kind:
    """One kind of corruption: its ``name``, what it does, the failure it makes, the quality it breaks and the
    function that makes it (``(response, turn, rng) -> (text, why)`` or ``None`` when it does not apply)."""

    name: str
    description: str
    failure_class: str
    make: Callable[[str, Turn | None, random.Random], Rewrite | None]
    quality: str = "faithfulness"


#: Every kind, in a fixed order.
REGISTRY: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "negation",
            "flip the polarity of the main claim (has/hasn't, can/can't, is/isn't, found/couldn't find)",
            "contradiction",
            negation,
        ),
        Kind(
            "swap_amounts",
            "exchange two amounts the response states, or replace one with another number from the draft",
            "contradiction",
            swap_amounts,
        ),
        Kind(
            "wrong_action",
            "replace the action with a different one (refund->charge, cancel->confirm, upgrade->downgrade)",
            "contradiction",
            wrong_action,
        ),
        Kind(
            "wrong_item",
            "replace an item, name, place or date with a different one from the context, or a sibling",
            "contradiction",
            wrong_item,
        ),
        Kind(
            "done_not_asked",
            "turn a question or confirmation request into a statement that it is already done",
            "contradiction",
            done_not_asked,
        ),
        Kind(
            "drop_fact",
            "remove the clause or sentence carrying a fact the caller needs (an amount, date, time, code)",
            "dropped_fact",
            drop_fact,
        ),
        Kind(
            "invent_number",
            "change one number, amount, time or date to a nearby value that is nowhere in the context",
            "invented",
            invent_number,
        ),
        Kind(
            "repeat_sentence",
            'say a sentence with content a second time, the way a looping model does ("That\'s right, ...")',
            "repetition",
            repeat_sentence,
            quality="non_repetition",
        ),
    )
}
#: Every kind of corruption, in a fixed order, with what it does.
KINDS: dict[str, str] = {name: kind.description for name, kind in REGISTRY.items()}
#: The kinds that break faithfulness: the judge's labelled pairs are made of these (:func:`synthetic_pairs`).
JUDGE_KINDS: tuple[str, ...] = tuple(name for name, kind in REGISTRY.items() if kind.quality == "faithfulness")


def check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple.

    Raises:
        ValueError: an unknown kind, naming the valid ones.
    """
    kinds = tuple(kinds)
    for kind in kinds:
        if kind not in REGISTRY:
            raise ValueError(f"unknown corruption kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return kinds


def corrupt(response: str, turn: Turn | None, kind: str, rng: random.Random) -> Corruption | None:
    """Corrupt ``response`` (a good spoken answer to ``turn``) in one way, ``kind`` (a key of :data:`KINDS`).

    Returns a :class:`Corruption` whose text differs from the response, stays fluent spoken English in the
    response's style, and is wrong with respect to the turn's draft; or ``None`` when this kind does not
    apply (no amount to swap, no question to turn into "done", ...). ``rng`` picks among equally good
    options, so the same seed gives the same result. The turn (its draft, facts, history and tool results)
    tells which figures are real and supplies plausible wrong ones; ``None`` works with less context.

    Raises:
        ValueError: an unknown ``kind``, naming the valid ones.
    """
    check_kinds([kind])
    if not response or not response.strip():
        return None
    entry = REGISTRY[kind]
    made = entry.make(response, turn, rng)
    if made is None or not made[0].strip() or normal(made[0]) == normal(response):
        return None
    text, why = made
    return Corruption(kind, text, why, quality=entry.quality, failure_class=entry.failure_class)


def seeded(seed: int, *parts: str) -> random.Random:
    """A generator for one decision, seeded by the seed and what is decided (stable across runs and orders)."""
    return random.Random(":".join([str(seed), *parts]))


def corruptions(
    response: str, turn: Turn | None, kinds: Iterable[str] = tuple(KINDS), seed: int = 0
) -> list[Corruption]:
    """Every corruption of ``kinds`` that applies to ``response``, one per kind, in the order of ``kinds``.

    Deterministic for a given ``seed``: each kind draws from its own generator, so adding or removing a kind
    changes no other kind's result.
    """
    made = (corrupt(response, turn, kind, seeded(seed, kind)) for kind in check_kinds(kinds))
    return [corruption for corruption in made if corruption is not None]
