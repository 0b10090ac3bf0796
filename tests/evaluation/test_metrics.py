"""Metrics against small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from mixtape.evaluation.metrics import (
    EMPIRICAL_MP_MAX,
    MetricError,
    cosine_scorer,
    drop_same_code,
    empirical_mp_scorer,
    gaussian_mp_scorer,
    hubness,
    k_occurrence,
    macro_pr_auc,
    mp_scorer,
    retrieval_scores,
    same_code_precision,
    similarity_ranks,
    tag_scores,
    top_k,
    triplet_accuracy,
)

# --- tagging -----------------------------------------------------------------------------------


def test_tag_scores_macro_and_per_tag() -> None:
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    # tag 0 ranked perfectly (ROC 1, AP 1); tag 1: scores 0.1 (pos), 0.9 (pos), 0.2, 0.8 (neg)
    s = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8]])
    # tag 1 positives are tracks 1, 2 with scores 0.9, 0.2; negatives 0, 3 with 0.1, 0.8:
    # pairs (pos > neg): 0.9>0.1, 0.9>0.8, 0.2>0.1, 0.2<0.8 → 3/4.
    # ranking 0.9(+), 0.8(-), 0.2(+), 0.1(-): AP = (1/1 + 2/3) / 2 = 5/6.
    r = tag_scores(y, s, ["a", "b"])
    assert r.per_tag[0].roc_auc == pytest.approx(1.0) and r.per_tag[0].pr_auc == pytest.approx(1.0)
    assert r.per_tag[1].roc_auc == pytest.approx(0.75) and r.per_tag[1].pr_auc == pytest.approx(5 / 6)
    assert r.roc_auc == pytest.approx(0.875) and r.pr_auc == pytest.approx((1 + 5 / 6) / 2)
    assert r.excluded == {} and r.n_evaluated == 2


def test_tag_without_test_positive_is_excluded_and_reported() -> None:
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1]])
    s = np.array([[0.9, 0.5, 0.5], [0.1, 0.5, 0.5], [0.8, 0.5, 0.5]])
    r = tag_scores(y, s, ["rock", "only_in_train", "everywhere"], split="test")
    assert r.roc_auc == pytest.approx(1.0) and r.pr_auc == pytest.approx(1.0)
    assert set(r.excluded) == {"only_in_train", "everywhere"}
    assert "no positive" in r.excluded["only_in_train"] and "test" in r.excluded["only_in_train"]
    assert "every track positive" in r.excluded["everywhere"]
    assert math.isnan(r.per_tag[1].roc_auc)
    assert r.as_dict()["tags_excluded"] == 2


def test_tag_scores_refuses_nothing_to_evaluate_and_nan() -> None:
    with pytest.raises(MetricError, match="no tag has both"):
        tag_scores(np.zeros((3, 2)), np.random.default_rng(0).random((3, 2)), ["a", "b"])
    with pytest.raises(MetricError, match="NaN"):
        tag_scores(np.array([[1], [0]]), np.array([[np.nan], [0.1]]), ["a"])
    with pytest.raises(MetricError, match="equal-shaped"):
        tag_scores(np.zeros((3, 2)), np.zeros((3, 3)), ["a", "b"])


def test_macro_pr_auc_skips_tags_without_positives() -> None:
    y = np.array([[1, 0], [0, 0], [1, 0]])
    assert macro_pr_auc(y, np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.1]])) == pytest.approx(1.0)
    assert math.isnan(macro_pr_auc(np.zeros((2, 2)), np.zeros((2, 2))))


# --- triplets ----------------------------------------------------------------------------------


def test_triplet_accuracy_with_ties() -> None:
    e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.0]])
    # anchor 0: track 1 close, track 2 far, track 3 identical to 0
    anchor, a, b = np.array([0, 0, 0, 0, 0]), np.array([1, 1, 2, 1, 3]), np.array([2, 2, 1, 2, 3])
    votes_a, votes_b = np.array([5, 0, 1, 3, 2]), np.array([1, 4, 6, 3, 1])
    r = triplet_accuracy(e, anchor, a, b, votes_a, votes_b)
    # judged: #0 right (a closer, voted a), #1 wrong, #2 right (b closer, voted b), #3 tie skipped,
    # #4 model tie (same candidate twice) → half credit
    assert r.evaluated == 4 and r.ties_skipped == 1 and r.model_ties == 1
    assert r.accuracy == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert r.as_dict()["triplet_acc"] == pytest.approx(0.625)


def test_triplet_accuracy_all_ties_is_an_error() -> None:
    with pytest.raises(MetricError, match="tied votes"):
        triplet_accuracy(np.eye(3), [0], [1], [2], [2], [2])


# --- retrieval -----------------------------------------------------------------------------------


def test_retrieval_scores_known_ranks() -> None:
    # query 0: relevant {1, 3}; retrieved 3, 4, 1 → hits at ranks 1 and 3.
    # query 1: relevant {2}; retrieved 0, 2, -1 (only two candidates) → hit at rank 2.
    # query 2: relevant {} → skipped.
    ranked = np.array([[3, 4, 1], [0, 2, -1], [0, 1, 3]])
    rel = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    r = retrieval_scores(ranked, rel)
    p0, p1 = 2 / 3, 1 / 3
    ap0, ap1 = (1 / 1 + 2 / 3) / 2, (1 / 2) / 1
    ndcg0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg1 = (1 / math.log2(3)) / 1.0
    assert r.queries == 2 and r.skipped_queries == 1
    assert r.precision == pytest.approx((p0 + p1) / 2)
    assert r.map == pytest.approx((ap0 + ap1) / 2)
    assert r.ndcg == pytest.approx((ndcg0 + ndcg1) / 2)
    assert set(r.as_dict()) == {"ndcg@3", "map@3", "p@3"}


def test_ap_normalised_by_min_k_and_relevant() -> None:
    # 5 relevant, k = 2, both retrieved relevant: AP@2 = 1 and nDCG@2 = 1 (not 2/5).
    rel = sp.csr_matrix(np.array([[0, 1, 1, 1, 1, 1]]))
    r = retrieval_scores(np.array([[1, 2]]), rel)
    assert r.map == pytest.approx(1.0) and r.ndcg == pytest.approx(1.0) and r.precision == pytest.approx(1.0)


def test_top_k_excludes_self_and_same_artist() -> None:
    e = np.array([[1.0, 0.0], [0.99, 0.1], [0.9, 0.3], [0.0, 1.0]])
    artist = np.array([0, 0, 1, -1])
    ranked = top_k(cosine_scorer(e), np.array([0, 3]), 4, 2)
    assert ranked[0].tolist() == [1, 2] and ranked[1].tolist() == [2, 1]
    filtered = top_k(cosine_scorer(e), np.array([0, 3]), 4, 3, exclude_codes=artist)
    assert filtered[0].tolist() == [2, 3, -1]  # track 1 shares artist 0; only two candidates remain
    assert filtered[1].tolist() == [2, 1, 0]  # unknown artist (-1) excludes nothing but itself


def test_artist_filter_ground_truth_and_same_artist_precision() -> None:
    artist = np.array([0, 0, 1, 1])
    queries = np.array([0, 2])
    rel = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]))
    filtered = drop_same_code(rel, queries, artist).toarray()
    assert filtered.tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    ranked = np.array([[1, 2], [3, -1]])
    assert same_code_precision(ranked, queries, artist) == pytest.approx((1 / 2 + 1 / 2) / 2)


# --- hubness and mutual proximity ---------------------------------------------------------------


def test_k_occurrence_and_hubness_of_known_distribution() -> None:
    ranked = np.array([[1, 2], [0, 2], [0, 1], [2, 0], [2, -1]])
    assert k_occurrence(ranked, 5).tolist() == [3, 2, 4, 0, 0]
    occ = np.array([0, 0, 0, 1, 1, 2, 8])
    m = occ.mean()
    want = np.mean((occ - m) ** 3) / np.mean((occ - m) ** 2) ** 1.5
    assert hubness(occ) == pytest.approx(want)
    assert hubness(np.array([3, 3, 3, 3])) == 0.0
    assert hubness(occ) > 0 > hubness(occ.max() - occ)


def test_similarity_ranks_count_less_similar_others() -> None:
    e = np.random.default_rng(3).normal(size=(40, 5))
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = u @ u.T
    ranks = similarity_ranks(e, block=7)
    for x, y in [(0, 1), (5, 30), (39, 2)]:
        want = sum(1 for j in range(40) if j not in (x, y) and s[x, j] < s[x, y])
        assert ranks[x, y] == want


def _hub_world() -> tuple[np.ndarray, int]:
    """Points with a common positive offset (as ReLU embeddings have) plus one point at their centroid: a hub."""
    rng = np.random.default_rng(0)
    e = np.abs(rng.normal(size=(300, 30)))
    hub = e.mean(axis=0, keepdims=True)
    return np.vstack([e, hub]), 300


@pytest.mark.parametrize("method", ["gaussian", "empirical"])
def test_mutual_proximity_makes_a_hub_less_dominant(method: str) -> None:
    e, hub = _hub_world()
    n = len(e)
    before = k_occurrence(top_k(cosine_scorer(e), np.arange(n), n, 10), n)
    after = k_occurrence(top_k(mp_scorer(e, method), np.arange(n), n, 10), n)
    assert before[hub] == before.max() and before[hub] > 100  # the centroid is in most lists
    assert after[hub] < before[hub] / 2
    assert hubness(after) < hubness(before)


def test_mutual_proximity_is_symmetric_and_bounded() -> None:
    e = np.random.default_rng(1).normal(size=(50, 8))
    rows = np.arange(50)
    for scorer in (gaussian_mp_scorer(e), empirical_mp_scorer(e)):
        m = scorer(rows)
        assert np.allclose(m, m.T) and m.min() >= 0 and m.max() <= 1


def test_mutual_proximity_refuses_bad_sizes_and_methods() -> None:
    with pytest.raises(MetricError, match="at least 3"):
        gaussian_mp_scorer(np.ones((2, 4)))
    with pytest.raises(MetricError, match="gaussian"):
        empirical_mp_scorer(np.zeros((EMPIRICAL_MP_MAX + 1, 1), dtype=np.float32))
    with pytest.raises(MetricError, match="unknown mutual proximity"):
        mp_scorer(np.ones((4, 2)), "nope")  # type: ignore[arg-type]
