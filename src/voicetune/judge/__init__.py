"""Pairwise judges. ``rubric`` is the embedded default; LLM judges come with the evaluation stage."""

from voicetune.judge.agreement import label_agreement
from voicetune.judge.rubric import judge_pair, judge_pairs

__all__ = ["judge_pair", "judge_pairs", "label_agreement"]
