"""Human review: blind, listen-first pairwise votes and their agreement with the judge (``voicetune review``)."""

from voicetune.review.agreement import review_agreement
from voicetune.review.create import create_review_set
from voicetune.review.store import ReviewStore

__all__ = ["ReviewStore", "create_review_set", "review_agreement"]
