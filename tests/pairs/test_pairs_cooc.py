"""cooc_topk against a dense brute force: every normalisation, blocks and threads do not matter."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mixtape.errors import MixtapeError
from mixtape.pairs import cooc_topk
from mixtape.pairs.cooc import _without_outranked_singles, row_blocks, score_keys, topk_rows


def random_playlists(seed: int, n_playlists: int = 200, n_tracks: int = 90) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 25, n_playlists)
    rows = np.repeat(np.arange(n_playlists), lengths)
    cols = (rng.zipf(1.6, lengths.sum()) - 1) % n_tracks  # popular tracks, many ties
    x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_playlists, n_tracks))
    x.data[:] = 1
    return x


def brute_force(x: sp.csr_matrix, k: int, norm: str, min_count: int) -> tuple[list[list[int]], np.ndarray]:
    """Each row's top-K columns by score (ties to the lower column; self and unseen pairs excluded),
    and the dense score matrix."""
    X = (x.toarray() > 0).astype(np.float64)
    C = X.T @ X
    n = np.diag(C).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        S = {"count": C, "pmi": np.log(C * X.shape[0] / np.outer(n, n)), "jaccard": C / (n[:, None] + n[None, :] - C)}[
            norm
        ]
    S = S.astype(np.float32)  # the implementation ranks float32 scores
    out = []
    for t in range(len(C)):
        ok = (C[t] >= max(min_count, 1)) & (np.arange(len(C)) != t)
        cand = np.flatnonzero(ok)
        order = np.lexsort((cand, -S[t, cand]))
        out.append(cand[order][:k].tolist())
    return out, S


@pytest.mark.parametrize("norm", ["count", "pmi", "jaccard"])
@pytest.mark.parametrize("min_count", [1, 2])
@pytest.mark.parametrize("k", [1, 5])
def test_matches_brute_force(norm: str, min_count: int, k: int) -> None:
    """k=1 and k=5 on popular tracks: most rows hold more than k+1 pairs counted twice, so the count
    norm's shortcut (dropping single co-occurrences that cannot rank) is exercised, and must not show."""
    x = random_playlists(seed=1)
    expected, scores = brute_force(x, k, norm, min_count)
    got = cooc_topk(x, k=k, norm=norm, min_count=min_count)
    rows = [got.indices[got.indptr[t] : got.indptr[t + 1]].tolist() for t in range(x.shape[1])]
    if norm == "count":  # integer scores: the very same tracks, ties to the lower index
        assert rows == expected
    for t, (mine, theirs) in enumerate(zip(rows, expected, strict=True)):
        assert len(mine) == len(theirs) and t not in mine
        assert np.allclose(scores[t, mine], scores[t, theirs], rtol=1e-5)  # as good, whichever ties
        assert np.allclose(got.data[got.indptr[t] : got.indptr[t + 1]], scores[t, mine], rtol=1e-5)


def test_blocks_and_threads_do_not_change_the_result() -> None:
    x = random_playlists(seed=2)
    one = cooc_topk(x, k=4, norm="pmi")
    many = cooc_topk(x, k=4, norm="pmi", block_cost=40, workers=2)
    assert (one.indptr == many.indptr).all() and (one.indices == many.indices).all()
    assert np.allclose(one.data, many.data)


def test_scores_are_the_counts_and_rows_best_first() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 0, 0]]))
    got = cooc_topk(x, k=2)
    assert got[0].indices.tolist() == [1, 2] and got[0].data.tolist() == [2.0, 1.0]  # ties to the lower index
    assert got[3].indices.tolist() == [0] and got[3].data.tolist() == [1.0]


def test_errors() -> None:
    x = random_playlists(seed=3)
    with pytest.raises(MixtapeError, match="normalisation"):
        cooc_topk(x, norm="tfidf")
    with pytest.raises(MixtapeError, match="k must be"):
        cooc_topk(x, k=0)


def test_topk_rows_with_long_and_short_rows() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([0, 3, 40, 7, 200, 5])
    indptr = np.r_[0, np.cumsum(lengths)]
    scores = rng.random(indptr[-1]).astype(np.float32)
    cols = np.concatenate([rng.permutation(1000)[:n] for n in lengths])
    rows, pos = topk_rows(indptr, score_keys(scores, cols), 5)
    for r in range(len(lengths)):
        mine = np.sort(pos[rows == r])
        seg = np.arange(indptr[r], indptr[r + 1])
        best = np.sort(seg[np.argsort(-scores[seg])][:5])
        assert (mine == best).all()


def test_score_keys_order_negative_scores() -> None:
    scores = np.array([-3.0, -0.5, 0.0, 0.25, 7.0], dtype=np.float32)
    keys = score_keys(scores, np.zeros(5, np.int32))
    assert (np.argsort(keys) == np.arange(5)).all()


def test_row_blocks_cover_costed_rows_within_budget() -> None:
    cost = np.array([0, 5, 5, 0, 20, 1, 1, 1, 0])
    blocks = row_blocks(cost, 10)
    covered = np.zeros(len(cost), bool)
    for a, b in blocks:
        covered[a:b] = True
        assert cost[a:b].sum() <= 10 or b - a == 1
    assert covered[cost > 0].all()


@pytest.mark.parametrize("seed", range(4))
def test_dropping_outranked_singles_keeps_every_row_that_could_rank_them(seed: int) -> None:
    """Against a row-by-row reference, with empty rows first, inside and last (reduceat's edge cases)."""
    rng = np.random.default_rng(seed)
    dense = rng.choice([0, 0, 0, 1, 1, 2, 3], size=(40, 30)).astype(np.float32)
    dense[[0, 7, 8, 39]] = 0
    c = sp.csr_matrix(dense)
    keep = 4
    want = dense.copy()
    for row in want:
        if (row >= 2).sum() >= keep:
            row[row == 1] = 0
    got = _without_outranked_singles(c, keep)
    assert got.has_sorted_indices or got.nnz == 0
    np.testing.assert_array_equal(got.toarray(), want)
    assert _without_outranked_singles(sp.csr_matrix((5, 5), dtype=np.float32), keep).nnz == 0
