"""The learned judge: usable first, learned from listeners; then style among usable responses.

A response is judged in two steps, as a caller on a phone line would:

1. **Usable or not** — the probability ``usable_p`` that a blind listener would accept the response as said to
   this caller (nothing unsupported or contradicted, what the caller needs now kept, coherent and on-role,
   understandable heard once). When unusable, a ``failure`` class (:data:`voicetune.data.listener.FAILURES`).
2. **Style, among usable responses** — a utility learned from listeners' pairwise preferences between two
   usable responses (non-repetitive, concise, clear, human).

A usable response always beats an unusable one; two unusable responses tie. The pairwise verdict
(:meth:`LearnedJudge.judge_many`), the pointwise :meth:`LearnedJudge.score` (half of ``usable_p`` for an
unusable response, ``0.5 + 0.5 × style`` for a usable one: every usable response outranks every unusable
one), the reward, the guard and best-of-N all follow this order.

The model is a stack over what the rubric already computes and what rules cannot see:

* **features** (:func:`features`): the rubric's five qualities and its findings by kind (dropped and invented
  facts, NLI support, markdown, repetition...), and text statistics a listener notices — words not in the
  draft or the conversation, numbers not in the context, repeated sentences and n-grams, a label or a quote at
  the start, the caller's own words, a missing end, the share of the draft said;
* **a text model**: TF-IDF of the response's words and of its *unsupported* words (those nowhere in the
  context) into a logistic regression, fitted out of fold and fed to the stack;
* **gradient-boosted trees** (scikit-learn) over both, calibrated (isotonic, out of fold);
* a **failure classifier** over the unusable responses, and a **Bradley–Terry style model** (logistic
  regression on feature differences) fitted on the listeners' style preferences.

:func:`train_judge` fits it on a labels file (:class:`voicetune.data.listener.LabelledResponse` and
:class:`~voicetune.data.listener.LabelledPreference` lines); :func:`default_judge` is the one trained on the
dev half of the packaged listener labels, cached under ``~/.cache/voicetune/judges/`` by what it was made from
(the labels' hash, the feature version, the scorer config), never by a file merely existing.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypedDict

import numpy as np
from pydantic import ValidationError

from voicetune.data.listener import LabelledPreference, LabelledResponse, labelled_preferences, labelled_responses
from voicetune.errors import VoicetuneError
from voicetune.judge.llm import Judgement
from voicetune.judge.rubric import compare as compare_scores
from voicetune.models.loading import cache_dir
from voicetune.quality.config import DEFAULT_CONFIG, ScorerConfig
from voicetune.quality.findings import KINDS as FINDING_KINDS
from voicetune.quality.meaning import content_stems
from voicetune.quality.scorer import VoiceScore, score_response
from voicetune.quality.text import WORD, sentences, spoken_to_digits, words
from voicetune.records import (
    QUALITIES,
    Context,
    Pair,
    Verdict,
    atomic_write_bytes,
    atomic_write_text,
    describe_validation_error,
    jsonl_lines,
    read_text_file,
)

#: Bump when the features or the model change: cached judges are keyed by it. 9: the one sentence splitter and
#: the markdown-it list parser (issue 25) change the sentences and list items some features count.
FEATURE_VERSION = 9
#: What judging an unusable response usable costs, against judging a usable one unusable: a caller forgives a
#: long answer, never a wrong or garbled one. With calibrated probabilities the cheapest decision calls a response
#: usable when ``usable_p`` exceeds ``cost / (cost + 1)`` (2/3 here).
FALSE_ACCEPT_COST = 2.0
#: Style probabilities this close to one half are ties.
STYLE_TIE = 0.1

_STOP = frozenset(
    "a an the and or but so to of in on at for with by from is are was were be been it its this that these those i you "
    "we "
    "they he she me my your our their us them can could will would should may might do does did have has had not no "
    "yes "
    "just also as if then than there here what when where which who how all any some one up out about into over ok "
    "okay "
    "sure well right got get let i'm you're it's that's i'll we'll you'll i'd we're don't can't won't".split()
)
_LABEL_START = re.compile(
    r"^\s*[\"'“]?\s*(draft|response|reply|agent|caller|user|customer|assistant|spoken|here'?s|here is|sure[,!.]? "
    r"here)\b",
    re.I,
)
_MARKUP = re.compile(r"[*#|_\[\]{}<>=~`\\/]|\b\w+_\w+\b|https?://")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_CALLER_VOICE = re.compile(
    r"\b(my (reservation|booking|order|account|card|flight|bill|policy|claim|laptop|password)|i need to|i'd like to|i "
    r"want to|can you|could you help me)\b",
    re.I,
)


def _content(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text) if w.lower() not in _STOP]


def spelled_tokens(text: str) -> list[str]:
    """Lower-cased word tokens with each run of single letters and digits joined: a code said character by
    character ("H 8 Q, 0 5 L", "J F K", "6 0 4 2") is the one token it spells ("h8q05l", "jfk", "6042")."""
    out: list[str] = []
    run: list[str] = []
    for token in WORD.findall(text):
        if len(token) == 1:
            run.append(token.lower())
            continue
        if run:
            out.append("".join(run))
            run = []
        out.append(token.lower())
    if run:
        out.append("".join(run))
    return out


def _context_text(turn: Context) -> str:
    return " ".join([turn.draft or "", turn.system or "", *(m.text for m in turn.history), *turn.tool_results])


@lru_cache(maxsize=4096)
def _known(context: str) -> tuple[frozenset[str], frozenset[str]]:
    """The content words of a context (as written and with spoken numbers as digits) and its numbers."""
    digits = spoken_digits(context)
    return (
        frozenset(_content(context)) | frozenset(_content(digits)),
        frozenset(_NUMBER.findall(context)) | frozenset(_NUMBER.findall(digits)),
    )


def unsupported_words(turn: Context, response: str) -> list[str]:
    """The response's content words found nowhere in the context (draft, persona, conversation, tool results),
    spoken numbers read as digits on both sides."""
    known = _known(_context_text(turn))[0]
    return [w for w in spelled_tokens(spoken_digits(response)) if w not in _STOP and w not in known]


def spoken_digits(text: str) -> str:
    return spoken_to_digits(text)


_URL = re.compile(r"\b[\w-]+\.(?:com|org|gov|net|edu|io|co|us|app)\b(?:/\S*)?|https?://\S+|www\.\S+", re.I)
_FIELD_LINE = re.compile(r"^\s*[A-Z][\w ()/#'-]{0,30}:\s", re.M)
_LONG_ID = re.compile(r"\b(?=[A-Za-z_]*\d)(?=\d*[A-Za-z])[A-Za-z0-9_]{8,}\b")
_SHORT_CODE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{5,7}\b")


def _symbols(text: str) -> int:
    """Emoji and other pictographs or symbols a TTS reads by name (Unicode categories So, Sk, Sm)."""
    return sum(1 for c in text if unicodedata.category(c) in ("So", "Sk", "Sm") and c not in "+=<>$%")


_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|cannot|unable|without|neither|nor|\w+n['’]t)\b", re.I)
_DONE = re.compile(
    r"\b(?:i['’]ve|we['’]ve|has been|have been|is now|are now|went through|all set|is done|is booked|is cancell?ed|"
    r"is confirmed|i (?:went ahead|processed|cancell?ed|booked|changed|updated|issued|sent|placed|added|removed))\b",
    re.I,
)


@lru_cache(maxsize=4096)
def _draft_sentences(draft: str) -> tuple[tuple[frozenset[str], bool, str], ...]:
    out = []
    for line in sentences(re.sub(r"[*#|`_]+", " ", draft)):
        stems = content_stems(spoken_digits(line))
        if stems:
            out.append((stems, bool(_NEGATION.search(line)), line))
    return tuple(out)


class Alignment(TypedDict):
    """What :func:`alignment` measures of a response against its draft."""

    min_cover: float
    mean_cover: float
    polarity_flips: float
    substituted: list[str]
    draft_left_out: float
    done_claims: float


def alignment(turn: Context, response: str) -> Alignment:
    """Each response sentence against the draft sentence it shares most content with: how well it is covered,
    whether its polarity flips (a "not" one side only), and the words it says that the matched sentence does
    not (a swapped item or action); how much of the draft's content the response leaves out."""
    drafted = _draft_sentences(turn.draft or "")
    overlaps, flips, substituted = [], 0, []
    said: set[str] = set()
    for sentence in sentences(response):
        stems = content_stems(spoken_digits(sentence))
        if not stems or not drafted:
            continue
        best = max(drafted, key=lambda d: len(stems & d[0]) / len(stems | d[0]))
        share = len(stems & best[0]) / len(stems)
        overlaps.append(share)
        said |= stems
        if share >= 0.4:
            flips += int(bool(_NEGATION.search(sentence)) != best[1])
            substituted += sorted(stems - best[0])
    draft_stems = frozenset().union(*(d[0] for d in drafted)) if drafted else frozenset()
    return {
        "min_cover": min(overlaps, default=1.0),
        "mean_cover": sum(overlaps) / len(overlaps) if overlaps else 1.0,
        "polarity_flips": float(flips),
        "substituted": substituted,
        "draft_left_out": len(draft_stems - said) / max(1, len(draft_stems)),
        "done_claims": float(len(_DONE.findall(response))),
    }


#: The dense features, by name, in order.
_FINDINGS = sorted(FINDING_KINDS)
FEATURE_NAMES: tuple[str, ...] = (
    *QUALITIES,
    "voice_score",
    *(f"finding:{k}" for k in _FINDINGS),
    "min_entailment",
    "words",
    "log_words",
    "words_per_draft_word",
    "unsupported_share",
    "unsupported_count",
    "numbers_not_in_context",
    "max_sentence_repeats",
    "distinct_trigrams",
    "repeated_4grams",
    "ends_cleanly",
    "label_start",
    "markup",
    "caller_overlap",
    "caller_voice",
    "asks",
    "draft_asks",
    "draft_content_said",
    "sentences",
    "longest_sentence",
    "first_person_plural",
    "min_cover",
    "mean_cover",
    "polarity_flips",
    "substituted_words",
    "draft_left_out",
    "done_claims",
    "done_but_draft_asks",
    "symbols",
    "urls",
    "line_breaks",
    "field_lines",
    "long_ids",
    "short_codes",
    "dash_ranges",
)
#: Features the usable step does not read: length and the speaking-time budget decide style, never usability
#: (a caller forgives a long answer).
LENGTH_FEATURES: tuple[str, ...] = (
    "conciseness",
    "voice_score",
    "finding:over_budget",
    "words",
    "log_words",
    "words_per_draft_word",
    "sentences",
    "longest_sentence",
)
_USABLE_COLUMNS = [i for i, n in enumerate(FEATURE_NAMES) if n not in LENGTH_FEATURES]
#: The features the style model compares (among usable responses).
STYLE_FEATURES: tuple[str, ...] = (
    *QUALITIES,
    "voice_score",
    "words",
    "log_words",
    "words_per_draft_word",
    "max_sentence_repeats",
    "sentences",
    "longest_sentence",
    "finding:filler",
    "finding:robotic_phrase",
    "finding:stiff_phrase",
    "finding:uncontracted",
    "finding:apologies",
    "finding:over_budget",
    "finding:digits",
    "asks",
    "draft_content_said",
)


def features(turn: Context, response: str, scored: VoiceScore) -> list[float]:
    """The dense feature vector of one response (see :data:`FEATURE_NAMES`)."""
    counts = {k: 0.0 for k in _FINDINGS}
    entail = 1.0
    for f in scored.findings:
        counts[f.kind] = counts.get(f.kind, 0.0) + 1.0
        if f.kind == "unsupported_claim":
            entail = min(entail, float((f.values or {}).get("entailment", entail)))
    ws = words(response)
    n = len(ws)
    draft_words = max(1, len(words(turn.draft or "")))
    content = _content(response)
    unsupported = unsupported_words(turn, response)
    context_numbers = _known(_context_text(turn))[1]
    numbers = [n for token in spelled_tokens(spoken_digits(response)) for n in _NUMBER.findall(token)]
    sents = [s.strip().lower() for s in sentences(response) if s.strip()]
    lower = [w.lower() for w in ws]
    trigrams = list(zip(lower, lower[1:], lower[2:], strict=False))
    fourgrams = list(zip(lower, lower[1:], lower[2:], lower[3:], strict=False))
    last_user = set(_content(turn.last_user_text))
    draft_content = set(_content(turn.draft or ""))
    stripped = response.strip()
    aligned = alignment(turn, response)
    return [
        *(scored.scores[q] for q in QUALITIES),
        scored.voice_score,
        *(counts[k] for k in _FINDINGS),
        entail,
        float(n),
        math.log1p(n),
        n / draft_words,
        len(unsupported) / max(1, len(content)),
        float(len(unsupported)),
        float(sum(1 for x in numbers if x not in context_numbers)),
        float(max((sents.count(s) for s in sents), default=0)),
        len(set(trigrams)) / max(1, len(trigrams)),
        float(len(fourgrams) - len(set(fourgrams))),
        float(stripped[-1:] in ".!?\"'”)" if stripped else 0.0),
        float(bool(_LABEL_START.search(response))),
        float(len(_MARKUP.findall(response))),
        len(set(content) & last_user) / max(1, len(set(content))),
        float(len(_CALLER_VOICE.findall(response))),
        float("?" in response),
        float("?" in (turn.draft or "")),
        len(set(content) & draft_content) / max(1, len(draft_content)),
        float(len(sents)),
        float(max((len(words(s)) for s in sents), default=0)),
        float(sum(1 for w in lower if w in ("we", "our", "us"))),
        aligned["min_cover"],
        aligned["mean_cover"],
        aligned["polarity_flips"],
        float(len(aligned["substituted"])),
        aligned["draft_left_out"],
        aligned["done_claims"],
        float(aligned["done_claims"] > 0 and "?" in (turn.draft or "") and "?" not in response),
        float(_symbols(response)),
        float(len(_URL.findall(response))),
        float(response.strip().count("\n")),
        float(len(_FIELD_LINE.findall(response))),
        float(len(_LONG_ID.findall(response))),
        float(len(_SHORT_CODE.findall(response))),
        float(response.count("–") + response.count("+1")),
    ]


@dataclass
class Assessment:
    """The learned judge's verdict on one response."""

    usable: bool
    usable_p: float
    failure: str | None
    style: float
    rubric: VoiceScore = field(repr=False)

    @property
    def score(self) -> float:
        """One number that keeps the order: below 0.5 when unusable (``usable_p`` scaled into [0, 0.5)), 0.5 + 0.5 ×
        style when usable."""
        return round(0.5 + 0.5 * self.style, 4) if self.usable else round(min(0.5 * self.usable_p, 0.4999), 4)


class LearnedJudge:
    """A fitted learned judge (see the module docstring). Build with :func:`train_judge` or :func:`load_judge`."""

    name = "learned"

    def __init__(self, models: dict, meta: dict, scorer: ScorerConfig | None = None):
        self.models = models
        self.meta = meta
        self.scorer = feature_scorer(scorer)
        self.threshold = float(meta.get("threshold", 0.5))
        self.guard_threshold = float(meta.get("guard_threshold", self.threshold))

    # ------------------------------------------------------------------ pointwise

    def _matrix(
        self, turns: Sequence[Context], responses: Sequence[str], progress: bool = False, memo: dict | None = None
    ) -> tuple[np.ndarray, list[VoiceScore]]:
        """Features of each (turn, response); ``memo`` reuses rows already computed (training sees each response
        in its label and again in its preferences)."""
        memo = {} if memo is None else memo
        rows, scored = [], []
        for t, r in zip(turns, responses, strict=True):
            key = (t.id, hash(t.draft), hash(tuple(m.text for m in t.history)), r)
            if key not in memo:
                result = score_response(t, r, self.scorer)
                memo[key] = (features(t, r, result), result)
            rows.append(memo[key][0])
            scored.append(memo[key][1])
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES)), scored

    def _texts(self, turns: Sequence[Context], responses: Sequence[str]) -> list[str]:
        return [_text_view(t, r) for t, r in zip(turns, responses, strict=True)]

    def assess(self, turns: Sequence[Context], responses: Sequence[str], progress: bool = False) -> list[Assessment]:
        """The two-step verdict on each (turn, response)."""
        if not responses:
            return []
        dense, scored = self._matrix(turns, responses, progress)
        text_p = self.models["text"].predict_proba(self._texts(turns, responses))[:, 1]
        stacked = np.column_stack([dense[:, _USABLE_COLUMNS], text_p])
        usable_p = self.models["usable"].predict_proba(stacked)[:, 1]
        failures = (
            self.models["failure"].predict(stacked)
            if self.models.get("failure") is not None
            else [None] * len(responses)
        )
        style = self._style(dense)
        out = []
        for i, response in enumerate(responses):
            p = float(usable_p[i]) if len(words(response)) >= 1 else 0.0
            usable = p >= self.threshold
            failure = None if usable else str(failures[i] or "incoherent")
            out.append(Assessment(usable, round(p, 4), failure, round(float(style[i]), 4), scored[i]))
        return out

    def _style(self, dense: np.ndarray) -> np.ndarray:
        model = self.models.get("style")
        if model is None:
            return np.full(len(dense), 0.5)
        x = dense[:, [FEATURE_NAMES.index(n) for n in STYLE_FEATURES]]
        utility = (x - model["mean"]) / model["scale"] @ model["coef"]
        return 1.0 / (1.0 + np.exp(-utility))

    def score(self, turn: Context, response: str) -> Assessment:
        return self.assess([turn], [response])[0]

    # ------------------------------------------------------------------ pairwise

    def compare(self, a: Assessment, b: Assessment) -> Verdict:
        """Usable before unusable; two unusable tie; two usable by style (a tie within :data:`STYLE_TIE`)."""
        if a.usable != b.usable:
            return "a" if a.usable else "b"
        if not a.usable:
            return "tie"
        p = 1.0 / (1.0 + math.exp(-(_logit(a.style) - _logit(b.style))))
        if abs(p - 0.5) < STYLE_TIE / 2:
            return "tie"
        return "a" if p > 0.5 else "b"

    def judge_many(self, pairs: Sequence[Pair], progress: bool = False) -> list[Judgement]:
        pairs = list(pairs)
        turns = [p for p in pairs for _ in (0, 1)]
        texts = [t for p in pairs for t in (p.response_a, p.response_b)]
        assessed = self.assess(turns, texts, progress)
        results = []
        for i in range(len(pairs)):
            a, b = assessed[2 * i], assessed[2 * i + 1]
            winner = self.compare(a, b)
            criteria = {
                q: compare_scores(a.rubric.scores[q], b.rubric.scores[q], self.scorer.tie_margin) for q in QUALITIES
            }
            criteria["overall"] = winner
            results.append(Judgement(winner, criteria, f"A {describe(a)} B {describe(b)}"))
        return results

    # ------------------------------------------------------------------ persistence

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "judge.pkl", pickle.dumps(self.models))
        atomic_write_text(folder / "judge.json", json.dumps(self.meta, indent=2) + "\n")


def feature_scorer(scorer: ScorerConfig | None) -> ScorerConfig:
    """The scorer config the features are computed with: ``scorer`` without the NLI model. The NLI model checks
    about two responses a second on this CPU; the judge must score a hundred or more, and its text model and
    unsupported-word features learn what the NLI check was for (measured: see the README)."""
    scorer = scorer or DEFAULT_CONFIG
    return scorer.model_copy(update={"meaning": scorer.meaning.model_copy(update={"model": "none"})})


def describe(a: Assessment) -> str:
    """One line for a rationale: usable or the failure, with the rubric's findings as the explanation."""
    head = (
        f"usable (p {a.usable_p:.2f}, style {a.style:.2f})"
        if a.usable
        else f"unusable: {a.failure} (p {a.usable_p:.2f})"
    )
    reasons = "; ".join(a.rubric.reasons[:3])
    return f"{head}{': ' + reasons if reasons else ''}."


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _text_view(turn: Context, response: str) -> str:
    """What the text model reads: the response's words, its unsupported words, the words it puts in place of
    the matched draft sentence's, and a polarity flip, each marked as such."""
    aligned = alignment(turn, response)
    return " ".join(
        [
            response,
            *("UNSUP_" + w for w in unsupported_words(turn, response)),
            *("SUB_" + w for w in aligned["substituted"]),
            *(["POLARITY_FLIP"] * int(aligned["polarity_flips"])),
        ]
    )


# ---------------------------------------------------------------------------------------------------- training


def _text_model():
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 (heavy: sklearn)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (heavy: sklearn)
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415 (heavy: sklearn)

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000),
        LogisticRegression(C=2.0, max_iter=2000, class_weight="balanced"),
    )


def _tree_model(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415 (heavy: sklearn)

    # chosen on the dev half's grouped out-of-fold AUC (0.948, against 0.947 for 300 trees of 15 leaves, 0.945 for 200
    # of 7)
    return HistGradientBoostingClassifier(
        max_iter=600,
        learning_rate=0.03,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        min_samples_leaf=10,
        random_state=seed,
    )


class _Calibrated:
    """Gradient-boosted trees whose probability goes through an isotonic map fitted out of fold."""

    def __init__(self, trees, calibration):
        self.trees, self.calibration = trees, calibration

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.calibration.predict(self.trees.predict_proba(x)[:, 1])
        return np.column_stack([1 - p, p])


def _groups(records) -> list[str]:
    return [str(r.meta.get("context_id") or r.meta.get("conversation_id") or r.id) for r in records]


def fit_models(
    responses: Sequence, preferences: Sequence, scorer: ScorerConfig, seed: int = 0, log=print
) -> tuple[dict, dict]:
    """Fit the usable, failure, text and style models; returns (models, out-of-fold figures for the meta)."""
    from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415 (heavy: sklearn)
    from sklearn.model_selection import GroupKFold, cross_val_predict  # noqa: PLC0415 (heavy: sklearn)

    judge = LearnedJudge({}, {}, scorer)
    turns, texts = list(responses), [r.response or "" for r in responses]
    y = np.array([1 if r.usable else 0 for r in responses])
    if len(set(y)) < 2:
        raise VoicetuneError("the labels need both usable and unusable responses to learn from")
    log(f"features for {len(texts)} labelled responses")
    memo: dict = {}
    dense, _ = judge._matrix(turns, texts, progress=True, memo=memo)
    views = judge._texts(turns, texts)
    groups = _groups(responses)
    folds = GroupKFold(n_splits=min(5, len(set(groups))))
    text_oof = cross_val_predict(_text_model(), views, y, cv=folds, groups=groups, method="predict_proba")[:, 1]
    text_model = _text_model().fit(views, y)
    stacked = np.column_stack([dense[:, _USABLE_COLUMNS], text_oof])
    # out-of-fold tree scores -> an isotonic map from score to the listeners' usable rate (the calibration);
    # the final trees are fitted on everything
    raw_oof = cross_val_predict(_tree_model(seed), stacked, y, cv=folds, groups=groups, method="predict_proba")[:, 1]
    calibration = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_oof, y)
    usable = _Calibrated(_tree_model(seed).fit(stacked, y), calibration)
    oof = calibration.predict(raw_oof)
    failure_model = None
    bad = [i for i, r in enumerate(responses) if not r.usable and r.failure]
    if len({responses[i].failure for i in bad}) >= 2:
        failure_model = _tree_model(seed).fit(stacked[bad], [responses[i].failure for i in bad])
    style = fit_style(preferences, scorer, log, memo) if preferences else None
    threshold = FALSE_ACCEPT_COST / (FALSE_ACCEPT_COST + 1.0)
    guard = max(threshold, guard_threshold(oof, y))
    return {"text": text_model, "usable": usable, "failure": failure_model, "style": style}, {
        "threshold": threshold,
        "guard_threshold": guard,
        "oof_accuracy": float(np.mean((oof >= threshold) == y)),
        "oof_false_accept": float(np.mean(oof[y == 0] >= threshold)),
        "oof_ece": expected_calibration_error(oof, y),
    }


def fit_style(preferences: Sequence, scorer: ScorerConfig, log=print, memo: dict | None = None) -> dict | None:
    """A Bradley–Terry utility over :data:`STYLE_FEATURES`, from decisive preferences between usable responses."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (heavy: sklearn)

    decisive = [p for p in preferences if p.kind in ("style", "vote") and p.winner in ("a", "b")]
    if len(decisive) < 10:
        return None
    judge = LearnedJudge({}, {}, scorer)
    turns = [p for p in decisive for _ in (0, 1)]
    texts = [t for p in decisive for t in (p.response_a, p.response_b)]
    log(f"style features for {len(decisive)} preferences")
    dense, _ = judge._matrix(turns, texts, memo=memo)
    x = dense[:, [FEATURE_NAMES.index(n) for n in STYLE_FEATURES]]
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    diff = z[0::2] - z[1::2]
    target = np.array([1 if p.winner == "a" else 0 for p in decisive])
    model = LogisticRegression(C=0.5, fit_intercept=False, max_iter=2000).fit(
        np.vstack([diff, -diff]), np.concatenate([target, 1 - target])
    )
    return {"coef": model.coef_[0], "mean": mean, "scale": scale}


def guard_threshold(p: np.ndarray, y: np.ndarray, precision: float = 0.95) -> float:
    """The lowest ``usable_p`` at which responses judged usable are usable at least ``precision`` of the time
    (out-of-fold on the training labels): the guard accepts a candidate at or above it."""
    for t in np.unique(np.round(p, 3)):
        kept = p >= t
        if kept.sum() >= 10 and y[kept].mean() >= precision:
            return float(t)
    return 0.99


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins of predicted probability."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return round(float(total), 4)


def labels_digest(responses: Sequence, preferences: Sequence) -> str:
    h = hashlib.sha256()
    for r in responses:
        h.update(
            json.dumps(
                [r.id, r.response, r.usable, r.failure, r.draft, [m.text for m in r.history]], sort_keys=True
            ).encode()
        )
    for p in preferences:
        h.update(json.dumps([p.id, p.response_a, p.response_b, p.winner, p.kind], sort_keys=True).encode())
    return h.hexdigest()


def train_judge(
    responses: Sequence,
    preferences: Sequence = (),
    out: str | Path | None = None,
    scorer: ScorerConfig | None = None,
    seed: int = 0,
    log=print,
) -> LearnedJudge:
    """Fit a learned judge on labelled responses (and style preferences); saved to ``out`` when given.

    Rows whose ``split`` is ``test`` are left out: the test half is never used to fit or choose anything.
    """
    scorer = feature_scorer(scorer)
    responses = [r for r in responses if getattr(r, "split", None) != "test"]
    preferences = [p for p in preferences if getattr(p, "split", None) != "test"]
    if len(responses) < 20:
        raise VoicetuneError(f"a learned judge needs at least 20 labelled responses, got {len(responses)}")
    started = time.perf_counter()
    models, figures = fit_models(responses, preferences, scorer, seed, log)
    meta = {
        "feature_version": FEATURE_VERSION,
        "labels": labels_digest(responses, preferences),
        "scorer": scorer.fingerprint(),
        "responses": len(responses),
        "preferences": len(preferences),
        "usable_share": round(float(np.mean([r.usable for r in responses])), 4),
        "train_seconds": round(time.perf_counter() - started, 1),
        "seed": seed,
        **figures,
    }
    judge = LearnedJudge(models, meta, scorer)
    if out is not None:
        judge.save(Path(out))
    log(
        f"learned judge: {len(responses)} responses, {len(preferences)} preferences, {meta['train_seconds']} s; "
        f"out-of-fold accuracy {figures['oof_accuracy']:.3f}, ECE {figures['oof_ece']:.3f}, guard threshold "
        f"{figures['guard_threshold']:.2f}"
    )
    return judge


def load_judge(folder: str | Path, scorer: ScorerConfig | None = None) -> LearnedJudge:
    """A judge saved by :func:`train_judge` (``judge.pkl`` and ``judge.json``)."""
    folder = Path(folder)
    if not (folder / "judge.pkl").is_file() or not (folder / "judge.json").is_file():
        raise VoicetuneError(
            f"{folder}: not a learned judge (expected judge.pkl and judge.json from voicetune judge train)"
        )
    meta = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
    if meta.get("feature_version") != FEATURE_VERSION:
        raise VoicetuneError(
            f"{folder}: trained with feature version {meta.get('feature_version')}, this voicetune has "
            f"{FEATURE_VERSION}: retrain it"
        )
    with (folder / "judge.pkl").open("rb") as handle:
        models = pickle.load(handle)  # noqa: S301 - a file this project wrote
    return LearnedJudge(models, meta, scorer)


_DEFAULT: dict[str, LearnedJudge] = {}


def default_judge(scorer: ScorerConfig | None = None, log=print) -> LearnedJudge:
    """The learned judge of the packaged listener labels (dev half), trained once and cached by what it was made
    from: the labels' digest, :data:`FEATURE_VERSION` and the scorer config."""
    scorer = scorer or DEFAULT_CONFIG
    responses = [r for r in labelled_responses() if r.split != "test"]
    preferences = [p for p in labelled_preferences() if p.split != "test"]
    key = hashlib.sha256(
        f"{labels_digest(responses, preferences)}|{FEATURE_VERSION}|{feature_scorer(scorer).fingerprint()}".encode()
    ).hexdigest()[:16]
    if key in _DEFAULT:
        return _DEFAULT[key]
    folder = cache_dir() / "judges" / key
    if (folder / "judge.json").is_file():
        judge = load_judge(folder, scorer)
    else:
        log("training the learned judge on the packaged listener labels (once per labels file)")
        judge = train_judge(responses, preferences, folder, scorer, log=log)
    _DEFAULT[key] = judge
    return judge


def assess_records(
    records: Iterable, judge: LearnedJudge | None = None, field_name: str = "response", progress: bool = False
) -> list:
    """Each record with ``usable``, ``usable_p`` and, when unusable, ``failure`` (from its ``field_name`` text)."""
    records = list(records)
    judge = judge or default_judge()
    texts = [getattr(r, field_name) or "" for r in records]
    assessed = judge.assess(records, texts, progress)
    return [
        r.model_copy(update={"usable": a.usable, "usable_p": a.usable_p, "failure": a.failure, "style": a.style})
        for r, a in zip(records, assessed, strict=True)
    ]


def read_labels(path: str | Path) -> tuple[list[LabelledResponse], list[LabelledPreference]]:
    """Labelled responses and preferences from one JSONL file: a line with ``response`` and ``usable`` is a
    :class:`~voicetune.data.listener.LabelledResponse`, a line with ``response_a``, ``response_b`` and
    ``winner`` a :class:`~voicetune.data.listener.LabelledPreference`. A bad line is an error naming the file,
    the line and the field."""
    path = Path(path)
    responses: list[LabelledResponse] = []
    preferences: list[LabelledPreference] = []
    for number, line in jsonl_lines(read_text_file(path, "listener labels (JSONL)")):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise VoicetuneError(
                f"{path}:{number}: not JSON ({error.msg if isinstance(error, json.JSONDecodeError) else error})"
            ) from None
        if not isinstance(row, dict):
            raise VoicetuneError(f"{path}:{number}: expected a JSON object")
        model = LabelledPreference if "response_a" in row else LabelledResponse
        try:
            record = model.model_validate(row)
        except ValidationError as error:
            raise VoicetuneError(f"{path}:{number}: {describe_validation_error(error)}") from None
        if isinstance(record, LabelledResponse) and not (record.response or "").strip():
            raise VoicetuneError(f"{path}:{number}: missing field 'response' (the text the reader judged)")
        if isinstance(record, LabelledPreference):
            preferences.append(record)
        else:
            responses.append(record)
    if not responses:
        raise VoicetuneError(f"{path}: no labelled response (lines with 'response' and 'usable')")
    return responses, preferences
