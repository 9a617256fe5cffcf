"""The statistics of a human review, checked against values worked out by hand in the comments."""

from __future__ import annotations

import json

import pytest

from voicetune.evaluate.stats import wilson_interval
from voicetune.records import QUALITIES
from voicetune.review.agreement import (
    bradley_terry,
    flag_reviewers,
    inter_reviewer,
    listen_vs_read,
    render_agreement,
    review_agreement,
)
from voicetune.review.store import Vote

_ids = iter(range(1, 10_000))


def vote(
    reviewer,
    pair,
    winner,
    *,
    showing=1,
    comparison="tuned-vs-base",
    mode="listen",
    criteria=None,
    seconds=None,
    audio=None,
) -> Vote:
    return Vote(
        reviewer=reviewer,
        item_id=next(_ids),
        pair_id=pair,
        comparison=comparison,
        domain="d",
        showing=showing,
        swapped=showing == 2,
        shown="tie" if winner == "tie" else "1",
        winner=winner,
        mode=mode,
        criteria=criteria or {},
        seconds_on_item=seconds,
        audio_seconds=audio,
    )


# The main table: 6 pairs of tuned-vs-base, the judge's verdict and two reviewers' first showings.
#
#   pair   judge  ann  bob
#   p1     a      a    a
#   p2     a      a    b
#   p3     b      b    b
#   p4     tie    a    tie
#   p5     a      b    a
#   p6     b      b    tie
#
# Repeats (showing 2): ann p1 a (same), p2 b (changed), p3 b (same); bob p1 a (same), p3 b (same).
# Criteria: ann gives clarity on p1 a, p2 b, p3 a; the judge's clarity is p1 a, p2 b, p3 b.
JUDGE = {
    "p1": {"winner": "a", "criteria": {"clarity": "a"}},
    "p2": {"winner": "a", "criteria": {"clarity": "b"}},
    "p3": {"winner": "b", "criteria": {"clarity": "b"}},
    "p4": {"winner": "tie"},
    "p5": {"winner": "a", "criteria": {}},
    "p6": {"winner": "b"},
}
ANN = {"p1": "a", "p2": "a", "p3": "b", "p4": "a", "p5": "b", "p6": "b"}
BOB = {"p1": "a", "p2": "b", "p3": "b", "p4": "tie", "p5": "a", "p6": "tie"}
ANN_CLARITY = {"p1": "a", "p2": "b", "p3": "a"}


def main_votes() -> list[Vote]:
    votes = [
        vote("ann", p, w, criteria={"clarity": ANN_CLARITY[p]} if p in ANN_CLARITY else None) for p, w in ANN.items()
    ]
    votes += [vote("bob", p, w) for p, w in BOB.items()]
    votes += [vote("ann", "p1", "a", showing=2), vote("ann", "p2", "b", showing=2), vote("ann", "p3", "b", showing=2)]
    votes += [vote("bob", "p1", "a", showing=2), vote("bob", "p3", "b", showing=2)]
    return votes


@pytest.fixture(scope="module")
def report() -> dict:
    return review_agreement(main_votes(), JUDGE, seed=1)


def test_counts_and_json(report):
    assert report["n_votes"] == 17 and report["n_pairs"] == 6
    assert report["reviewers"] == ["ann", "bob"] and report["modes"] == ["listen"]
    assert json.loads(json.dumps(report)) == report


def test_human_vs_judge_pooled(report):
    # 12 first-showing votes against the judge: ann agrees on p1 p2 p3 p6 (4), bob on p1 p3 p4 p5 (4).
    #   p_o = 8/12. Human labels a5 b5 tie2; judge (each verdict twice) a6 b4 tie2.
    #   p_e = (5*6 + 5*4 + 2*2) / 144 = 54/144 = 3/8;  kappa = (2/3 - 3/8) / (5/8) = 7/15.
    # No ties: drop ann p4, bob p4 and p6 -> 9 left, agreeing 4 + 3 = 7: p_o = 7/9.
    #   human a4 b5, judge a6 b3: p_e = (4*6 + 5*3) / 81 = 13/27;  kappa = (21/27 - 13/27) / (14/27) = 4/7.
    overall = report["human_vs_judge"]["overall"]
    assert overall["n"] == 12
    assert overall["percent_agreement"] == pytest.approx(8 / 12, abs=1e-4)
    assert overall["kappa"] == pytest.approx(7 / 15, abs=1e-4)
    assert overall["n_no_ties"] == 9
    assert overall["percent_agreement_no_ties"] == pytest.approx(7 / 9, abs=1e-4)
    assert overall["kappa_no_ties"] == pytest.approx(4 / 7, abs=1e-4)


def test_human_vs_judge_per_reviewer_and_criterion(report):
    # ann alone: 4/6 agree; human a3 b3 tie0, judge a3 b2 tie1: p_e = (9 + 6 + 0)/36 = 15/36;
    #   kappa = (24/36 - 15/36) / (21/36) = 3/7.
    ann = report["human_vs_judge"]["per_reviewer"]["ann"]
    assert ann["n"] == 6 and ann["percent_agreement"] == pytest.approx(4 / 6, abs=1e-4)
    assert ann["kappa"] == pytest.approx(3 / 7, abs=1e-4)
    # clarity, where both gave it (ann on p1-p3): agree p1 p2 -> 2/3; human a2 b1, judge a1 b2:
    #   p_e = (2*1 + 1*2)/9 = 4/9;  kappa = (6/9 - 4/9) / (5/9) = 0.4.
    clarity = report["human_vs_judge"]["per_criterion"]["clarity"]
    assert clarity["n"] == 3 and clarity["percent_agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert clarity["kappa"] == pytest.approx(0.4, abs=1e-4)
    assert set(report["human_vs_judge"]["per_criterion"]) == set(QUALITIES)
    assert report["human_vs_judge"]["per_criterion"]["humanness"] == {
        "n": 0,
        "percent_agreement": None,
        "kappa": None,
        "n_no_ties": 0,
        "percent_agreement_no_ties": None,
        "kappa_no_ties": None,
    }


def test_inter_reviewer_two_raters(report):
    # ann vs bob on 6 pairs (b=0 tie=1 a=2). They agree on p1 and p3: percent agreement 2/6.
    # Coincidences (each unit adds both orders): aa 2, bb 2, ab+ba 4, at+ta 2, bt+tb 2; n_a 5, n_b 5, n_tie 2, n 12.
    #   nominal: D_o = 8/12, D_e = (144 - 25 - 25 - 4) / (12*11) = 90/132; alpha = 1 - (8/12)/(90/132) = 1/45.
    #   ordinal (b < tie < a): delta(b,tie) = delta(tie,a) = (7/2)^2 = 12.25, delta(b,a) = (12 - 5)^2 = 49;
    #   D_o = (4*49 + 2*12.25 + 2*12.25)/12 = 245/12, D_e = 2*(25*49 + 10*12.25 + 10*12.25)/132 = 2940/132;
    #   alpha = 1 - (245*132)/(12*2940) = 1/12.
    # Fleiss (2 raters each): P_i = 1 on the 2 agreeing items, 0 else: P = 1/3; p_j = 5/12, 5/12, 2/12:
    #   P_e = 54/144 = 3/8;  kappa = (1/3 - 3/8) / (5/8) = -1/15.
    inter = report["inter_reviewer"]
    assert inter["n_pairs"] == 6
    assert inter["percent_agreement"] == pytest.approx(2 / 6, abs=1e-4)
    assert inter["krippendorff_alpha_nominal"] == pytest.approx(1 / 45, abs=1e-4)
    assert inter["krippendorff_alpha_ordinal"] == pytest.approx(1 / 12, abs=1e-4)
    assert inter["fleiss_kappa"] == pytest.approx(-1 / 15, abs=1e-4)
    assert inter["fleiss_raters"] == 2


def test_fleiss_uses_the_most_common_rater_count():
    # q1-q3 have three raters, q4 two: Fleiss uses q1-q3 (n = 3).
    #   q1 a a a: P = (9 - 3)/6 = 1;  q2 a a b: P = (4 + 1 - 3)/6 = 1/3;  q3 b b b: P = 1.  mean P = 7/9.
    #   p_a = 5/9, p_b = 4/9: P_e = 41/81;  kappa = (63/81 - 41/81) / (40/81) = 0.55.
    # Percent agreement over all four: q1 1, q2 1/3 (one of three rater pairs), q3 1, q4 0 -> 7/12.
    table = {"q1": "aaa", "q2": "aab", "q3": "bbb", "q4": "ab"}
    votes = [vote(name, q, w) for q, ws in table.items() for name, w in zip(("r1", "r2", "r3"), ws, strict=False)]
    inter = inter_reviewer(votes)
    assert inter["n_pairs"] == 4 and inter["fleiss_raters"] == 3
    assert inter["fleiss_kappa"] == pytest.approx(0.55, abs=1e-4)
    assert inter["percent_agreement"] == pytest.approx(7 / 12, abs=1e-4)


def test_self_consistency(report):
    # ann: repeats p1 (a, a) p2 (a, b) p3 (b, b) -> 2 of 3; bob: p1 p3 both the same -> 2 of 2; overall 4 of 5.
    consistency = report["self_consistency"]
    assert consistency["ann"] == {"n": 3, "consistent": 2, "rate": pytest.approx(2 / 3, abs=1e-4)}
    assert consistency["bob"] == {"n": 2, "consistent": 2, "rate": 1.0}
    assert consistency["overall"] == {"n": 5, "consistent": 4, "rate": 0.8}
    # 67% < 70% with 3 repeats: ann is flagged, bob is not.
    assert report["flags"] == {"ann": ["self-consistency 67% below 70%"]}


def test_comparison_win_rate_counts_ties_half():
    # 4 pairs, 7 votes: p1 [a, a], p2 [a, tie], p3 [b, a], p4 [tie] -> wins 4, losses 1, ties 2.
    #   win rate = (4 + 2/2) / 7 = 5/7; without ties 4/5. Per-pair means 1, .75, .5, .5 -> bootstrap CI in [.5, 1].
    # Judge on the same pairs: a, b, a, tie -> (2 + 0.5) / 4 = 0.625. Clarity given on two votes: a, tie -> 0.75.
    votes = [
        vote("r1", "p1", "a", criteria={"clarity": "a"}),
        vote("r2", "p1", "a"),
        vote("r1", "p2", "a"),
        vote("r2", "p2", "tie", criteria={"clarity": "tie"}),
        vote("r1", "p3", "b"),
        vote("r2", "p3", "a"),
        vote("r1", "p4", "tie"),
        vote("r1", "p1", "b", showing=2),
    ]
    judge = {
        "p1": {"winner": "a"},
        "p2": {"winner": "b"},
        "p3": {"winner": "a"},
        "p4": {"winner": "tie"},
        "p9": {"winner": "b"},
    }
    (row,) = review_agreement(votes, judge, systems={"tuned-vs-base": ("tuned-7b", "base-7b")})["comparisons"]
    assert (row["system_a"], row["system_b"], row["judge"]) == ("tuned-7b", "base-7b", "human")
    assert (row["n"], row["wins"], row["losses"], row["ties"]) == (7, 4, 1, 2)
    assert row["win_rate"] == pytest.approx(5 / 7, abs=1e-4)
    assert row["win_rate_no_ties"] == pytest.approx(0.8)
    low, high = wilson_interval(5, 7)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert 0.5 <= row["bootstrap_ci"][0] < 5.5 / 7 < row["bootstrap_ci"][1] <= 1.0
    assert row["judge_win_rate"] == pytest.approx(0.625) and row["judge_n"] == 4
    assert row["per_criterion"] == {"clarity": {"win_rate": 0.75, "wins": 1, "losses": 0, "ties": 1}}


def test_bradley_terry_orders_a_dominant_system():
    # big beats mid and small on every vote; mid beats small 3 to 1 with a tie. Expected order big > mid > small.
    votes = [vote("r", f"bm{i}", "a", comparison="big-vs-mid") for i in range(4)]
    votes += [vote("r", f"bs{i}", "a", comparison="big-vs-small") for i in range(4)]
    votes += [vote("r", f"ms{i}", w, comparison="mid-vs-small") for i, w in enumerate("aaab")]
    votes += [vote("r", "ms9", "tie", comparison="mid-vs-small")]
    bt = bradley_terry(votes, seed=3, n_boot=200)
    assert bt["big"]["strength"] > bt["mid"]["strength"] > bt["small"]["strength"]
    assert sum(s["strength"] for s in bt.values()) == pytest.approx(0.0, abs=1e-3)
    for s in bt.values():
        assert s["ci"][0] <= s["strength"] <= s["ci"][1]
    assert bradley_terry(votes, seed=3, n_boot=200) == bt  # seeded
    assert review_agreement(main_votes(), JUDGE)["bradley_terry"] is None  # two systems only


def test_listen_vs_read():
    # Per pair, majority of listen votes vs majority of read votes:
    #   p1 listen [a, a] -> a, read [a] -> a: agree;   p2 listen [a, b] -> tie (tied majority), read [tie]: agree
    #   p3 listen [b] vs read [a]: disagree;           p4 listen [b] vs read [b, b, tie] -> b: agree;  p5 listen only.
    # 3/4 agree. listen a1 tie1 b2, read a2 tie1 b1: p_e = (1*2 + 1*1 + 2*1)/16 = 5/16;
    #   kappa = (12/16 - 5/16) / (11/16) = 7/11.
    listen = {"p1": "aa", "p2": ["a", "b"], "p3": "b", "p4": "b", "p5": "a"}
    read = {"p1": "a", "p2": ["tie"], "p3": "a", "p4": ["b", "b", "tie"]}
    votes = [vote(f"l{i}", p, w, mode="listen") for p, ws in listen.items() for i, w in enumerate(ws)]
    votes += [vote(f"r{i}", p, w, mode="read") for p, ws in read.items() for i, w in enumerate(ws)]
    result = listen_vs_read(votes)
    assert result["n_pairs"] == 4
    assert result["percent_agreement"] == 0.75
    assert result["kappa"] == pytest.approx(7 / 11, abs=1e-4)
    assert listen_vs_read([v for v in votes if v.mode == "listen"]) is None


def test_fast_votes_are_flagged():
    # cat (listen, 20 s of audio): 10 s is fast (< 18 s), 30 s and 18.5 s are not, no timing is skipped -> 1/3 = 33%.
    # dan (read): 1 s is fast (< 2 s), four slower votes -> 1/5 = 20%, not more than 20%: no flag.
    # eve (read): 0.5 s and 1.5 s fast, 10 s not -> 67%.
    votes = [vote("cat", f"p{i}", "a", seconds=s, audio=20.0) for i, s in enumerate([10.0, 30.0, 18.5, None])]
    votes += [vote("dan", f"p{i}", "a", mode="read", seconds=s) for i, s in enumerate([1.0, 5.0, 6.0, 7.0, 8.0])]
    votes += [vote("eve", f"p{i}", "a", mode="read", seconds=s) for i, s in enumerate([0.5, 1.5, 10.0])]
    votes += [vote("fay", "p0", "a", seconds=1.0, audio=None)]  # listen without audio length: cannot tell
    assert flag_reviewers(votes) == {"cat": ["33% of votes implausibly fast"], "eve": ["67% of votes implausibly fast"]}
    assert flag_reviewers(votes, fast_share=0.1)["dan"] == ["20% of votes implausibly fast"]


def test_none_cases():
    # One reviewer, one category everywhere: kappa is 0/0, nothing to compare between reviewers.
    votes = [vote("solo", f"p{i}", "a") for i in range(4)]
    report = review_agreement(votes, {f"p{i}": {"winner": "a"} for i in range(4)})
    overall = report["human_vs_judge"]["overall"]
    assert overall["percent_agreement"] == 1.0 and overall["kappa"] is None and overall["kappa_no_ties"] is None
    assert report["inter_reviewer"] == {
        "n_pairs": 0,
        "krippendorff_alpha_nominal": None,
        "krippendorff_alpha_ordinal": None,
        "fleiss_kappa": None,
        "fleiss_raters": None,
        "percent_agreement": None,
    }
    assert report["self_consistency"]["solo"] == {"n": 0, "consistent": 0, "rate": None}
    assert report["listen_vs_read"] is None and report["bradley_terry"] is None and report["flags"] == {}
    # Two reviewers who always agree on one label: alpha is 0/0 too; the judge knows no pair: n = 0.
    both = votes + [vote("duo", f"p{i}", "a") for i in range(4)]
    report = review_agreement(both, {})
    assert report["inter_reviewer"]["percent_agreement"] == 1.0
    assert (
        report["inter_reviewer"]["krippendorff_alpha_nominal"] is None
        and report["inter_reviewer"]["fleiss_kappa"] is None
    )
    assert report["human_vs_judge"]["overall"]["n"] == 0 and report["comparisons"][0]["judge_win_rate"] is None


def test_render(report):
    text = render_agreement(report)
    assert "17 votes on 6 pairs by 2 reviewers" in text
    assert "| overall | 12 | 0.667 | 0.467 |" in text
    assert "tuned-vs-base" in text and "ann: self-consistency 67% below 70%" in text
