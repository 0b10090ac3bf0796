"""Leave-one-out group retrieval (P@5, nDCG@10, chance) on hand-made embeddings whose rankings are
known, and the mel-statistics baseline feature."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mixtape.evaluation.groups import chance_levels, group_layout, group_retrieval, mel_statistics, standardize
from mixtape.evaluation.metrics import MetricError

# Unit vectors at these angles (degrees): the cosine ranking is the angular distance ranking.
# Group A at 0, 15, 40; an untagged track at 60; B at 100, 125; C, a group of one, at 220.
ANGLES = [0, 15, 40, 60, 100, 125, 220]
GROUPS = ["A", "A", "A", None, "B", "B", "C"]


def _circle(angles: list[float]) -> np.ndarray:
    rad = np.deg2rad(angles)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def test_layout_counts_queries_and_what_is_skipped() -> None:
    layout = group_layout(GROUPS)
    assert layout.queries.tolist() == [0, 1, 2, 4, 5]
    assert (layout.n_groups, layout.no_value, layout.singleton_groups) == (2, 1, 1)
    assert layout.relevance.toarray()[2].tolist() == [1, 1, 0, 0, 0, 0, 0]  # the query itself is never relevant
    assert group_layout(["x", "", None]).no_value == 2  # "" and None both mean "no value"


def test_exact_precision_and_ndcg_on_a_known_ranking() -> None:
    """Rankings worked out by hand from the angles:
    0°:  A15 A40 u60 B100 B125 (C)  -> P@5 2/5, nDCG 1
    15°: A0 A40 u60 B100 B125 (C)   -> P@5 2/5, nDCG 1
    40°: u60 A15 A0 B100 B125 (C)   -> P@5 2/5, hits at ranks 2, 3: nDCG (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
    100°: B125 u60 A40 A15 A0 (C)   -> P@5 1/5, nDCG 1
    125°: B100 u60 A40 C220 A15 A0  -> P@5 1/5, nDCG 1
    """
    r = group_retrieval(_circle(ANGLES), GROUPS, k=10, p_at=5)
    third = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert r.per_query["query"].tolist() == [0, 1, 2, 4, 5]
    assert r.per_query["relevant"].tolist() == [2, 2, 2, 1, 1]
    np.testing.assert_allclose(r.per_query["p@5"], [0.4, 0.4, 0.4, 0.2, 0.2])
    np.testing.assert_allclose(r.per_query["ndcg@10"], [1, 1, third, 1, 1])
    assert r.precision == pytest.approx(0.32)
    assert r.ndcg == pytest.approx((4 + third) / 5)
    assert r.queries == 5
    assert third == pytest.approx(0.693426, abs=1e-6)


def test_cosine_ignores_the_vector_length() -> None:
    scaled = _circle(ANGLES) * np.array([[1], [3], [0.2], [5], [1], [9], [2]], dtype=np.float32)
    assert group_retrieval(scaled, GROUPS).ndcg == pytest.approx(group_retrieval(_circle(ANGLES), GROUPS).ndcg)


def _brute_force_chance(groups: list[str | None], k: int, p_at: int) -> tuple[float, float]:
    """Average P@p and nDCG@k over every ordering of the candidates, for every query."""
    layout = group_layout(groups)
    n = len(groups)
    ps, ns = [], []
    for q in layout.queries.tolist():
        cands = [j for j in range(n) if j != q]
        rel = {j for j in cands if groups[j] == groups[q]}
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
        p_sum = n_sum = 0.0
        perms = list(itertools.permutations(cands))
        for order in perms:
            hits = [j in rel for j in order[:k]]
            p_sum += sum(hits[:p_at]) / p_at
            n_sum += sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / ideal
        ps.append(p_sum / len(perms))
        ns.append(n_sum / len(perms))
    return float(np.mean(ps)), float(np.mean(ns))


@pytest.mark.parametrize(
    "groups", [["A", "A", "A", None, "B", "B", "C"], ["A", "A", "B", "B", "B", "B"], ["A", "A", "A"]]
)
def test_chance_level_is_the_expectation_over_all_rankings(groups: list[str | None]) -> None:
    p, n = _brute_force_chance(groups, k=10, p_at=5)
    chance = chance_levels(group_layout(groups), k=10, p_at=5)
    assert chance["p@5"] == pytest.approx(p)
    assert chance["ndcg@10"] == pytest.approx(n)


def test_chance_on_the_hand_made_case() -> None:
    """6 candidates per query: 2 of 6 relevant for A's queries, 1 of 6 for B's."""
    assert chance_levels(group_layout(GROUPS))["p@5"] == pytest.approx((3 * (5 * 2 / 6) / 5 + 2 * (5 * 1 / 6) / 5) / 5)


def test_nothing_to_retrieve_and_bad_inputs_are_refused() -> None:
    with pytest.raises(
        MetricError, match=r"no group has two tracks among the 3 tracks \(1 without a value, 2 groups of one\)"
    ):
        group_retrieval(np.eye(3), ["a", "b", None])
    with pytest.raises(MetricError, match="do not match"):
        group_retrieval(np.eye(3), ["a", "a"])
    with pytest.raises(MetricError, match="NaN or infinity"):
        group_retrieval(np.array([[1.0, 0], [np.nan, 1]]), ["a", "a"])


class _Store:
    """The two things mel_statistics reads from a FeatureStore."""

    n_mels = 3

    def __init__(self, tracks: list[np.ndarray]) -> None:
        self.tracks = tracks

    def frames(self, i: int) -> np.ndarray:
        return self.tracks[i]


def test_mel_statistics_are_band_means_then_band_stds() -> None:
    a = np.array([[0, 1, 2], [2, 1, 4]], dtype=np.float16)
    b = np.array([[1, 1, 1], [1, 1, 1], [4, 1, 1]], dtype=np.float16)
    stats = mel_statistics(_Store([a, b]), [1, 0])
    assert stats.shape == (2, 6) and stats.dtype == np.float32
    np.testing.assert_allclose(stats[1], [1, 1, 3, 1, 0, 1])
    np.testing.assert_allclose(stats[0], [2, 1, 1, math.sqrt(2), 0, 0])


def test_standardize_zero_mean_unit_variance_and_constant_columns() -> None:
    z = standardize(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]]))
    np.testing.assert_allclose(z.mean(axis=0), [0, 0], atol=1e-7)
    np.testing.assert_allclose(z[:, 0].std(), 1, atol=1e-6)
    assert (z[:, 1] == 0).all()
