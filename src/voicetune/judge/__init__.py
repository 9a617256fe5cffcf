"""Pairwise judges behind one API (:mod:`voicetune.judge.registry`): the rubric (the scorer), LLM judges
over any OpenAI-compatible endpoint, and panels of them; agreement with hand labels."""

from voicetune.judge.agreement import label_agreement
from voicetune.judge.registry import JUDGES, Judge, JudgeOptions, RubricJudge, judge_pairs, make_judge
from voicetune.judge.rubric import judge_pair

__all__ = [
    "JUDGES",
    "Judge",
    "JudgeOptions",
    "RubricJudge",
    "judge_pair",
    "judge_pairs",
    "label_agreement",
    "make_judge",
]
