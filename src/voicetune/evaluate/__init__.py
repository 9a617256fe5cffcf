"""Automated evaluation: systems' responses on the same contexts, judged pairwise in both orders, with
confidence intervals (``voicetune eval``)."""

from voicetune.evaluate.compare import judge_both_orders, position_bias
from voicetune.evaluate.run import evaluate
from voicetune.evaluate.stats import win_statistics
from voicetune.evaluate.systems import System, parse_system

__all__ = ["System", "evaluate", "judge_both_orders", "parse_system", "position_bias", "win_statistics"]
