"""Corruption generator: realistic, clearly worse versions of a good spoken response.

A voice agent's spoken response is judged against its turn's context (the written draft, the history, the
tool results). This package takes a good response (usually a person's spoken reference) and rewrites it into
versions a careful listener would judge worse on *faithfulness*: the polarity of the main claim flipped, two
amounts swapped, the wrong action, the wrong item, a question turned into "already done", a needed fact
dropped, a number invented. Each corruption stays fluent spoken English in the response's own register
(numbers in words when the response says them in words) and carries a one-line reason for a listener.

One module per kind (``negation``, ``swap_amounts``, ...), listed in :mod:`.registry`; shared helpers in
:mod:`.text` (sentences, case, replacing a span), :mod:`.verbs` (``lemminflect``), :mod:`.numbers` (``text2num``,
``num2words``), :mod:`.amounts` (the money, times, dates and counts a response says) and :mod:`.context`.

Uses: labelled evaluation pairs for the voice-quality judge (:func:`synthetic_pairs`), and hard negatives for
preference training. Everything is rule based and deterministic given a seed; no model is called.
"""

from voicetune.data.corrupt.pairs import synthetic_pairs
from voicetune.data.corrupt.registry import JUDGE_KINDS, KINDS, REGISTRY, Corruption, Kind, corrupt, corruptions

__all__ = ["JUDGE_KINDS", "KINDS", "REGISTRY", "Corruption", "Kind", "corrupt", "corruptions", "synthetic_pairs"]
