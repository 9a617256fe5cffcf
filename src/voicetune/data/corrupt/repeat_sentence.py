"""repeat_sentence: say a sentence with content a second time, the way a looping model does ("That's right, ...")."""

from __future__ import annotations

import random

from voicetune.data.corrupt.amounts import amounts
from voicetune.data.corrupt.text import Rewrite, sentences_of, shorten
from voicetune.quality.text import words
from voicetune.records import Turn

_REPEAT_LEADS = ("That's right, ", "So, ", "Again, ", "Like I said, ", "")


def _information(sentence: str) -> float:
    """How much a sentence says: its amounts, then its length."""
    return len(amounts(sentence)) + len(words(sentence)) / 100


def repeat_sentence(response: str, turn: Turn | None, rng: random.Random) -> Rewrite | None:
    """The response's most informative sentence (four words or more) said again at the end."""
    sentences = [sentence for _, _, sentence in sentences_of(response) if len(words(sentence)) >= 4]
    if not sentences:
        return None
    most = max(_information(sentence) for sentence in sentences)
    sentence = rng.choice([s for s in sentences if _information(s) == most]).strip()
    if sentence[-1] not in ".!?":
        sentence += "."
    lead = rng.choice(_REPEAT_LEADS)
    first_word = sentence.split(" ", 1)[0]
    if lead and first_word not in ("I", "I'm", "I've", "I'll", "I'd") and not first_word[1:2].isupper():
        sentence = sentence[0].lower() + sentence[1:]
    text = response.rstrip()
    if text[-1] not in ".!?":
        text += "."
    return f"{text} {lead}{sentence}", f'Says "{shorten(sentence)}" twice: the caller hears the same thing again.'
