"""pmi-svd: positives from a truncated SVD of the positive PMI matrix; the SVD and track2vec's corpus file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pairs.pairs_catalogs import playlists_matrix, random_catalog

from mixtape.catalog import Catalog
from mixtape.catalog.catalog import ordered_rows
from mixtape.errors import MixtapeError
from mixtape.pairs import build_positives
from mixtape.pairs.pmisvd import randomized_svd_symmetric, sppmi_matrix, train_pmi_svd
from mixtape.pairs.track2vec import corpus_lines, write_corpus


def test_positives_stay_in_the_community_and_are_deterministic() -> None:
    cat = random_catalog(seed=2, n_tracks=60, n_playlists=120, heldout_share=0.0)
    a = build_positives(cat, "pmi-svd", k=5, dim=8, workers=1, seed=3)
    b = build_positives(cat, "pmi-svd", k=5, dim=8, workers=2, seed=3)  # threads do not change the positives
    assert (a.hops[0].indptr == b.hops[0].indptr).all() and (a.hops[0].indices == b.hops[0].indices).all()
    anchors = np.repeat(a.anchors, 10)
    got = a.sample(anchors, np.random.default_rng(0))
    community = np.arange(60) >= 30
    assert (community[got] == community[anchors]).all()  # playlists never cross communities
    assert (got != anchors).all()
    assert a.stats["training"]["tracks_with_vector"] == len(a.anchors)
    assert a.params["dim"] == 8 and "PMI-SVD" in a.stats["positives_per_anchor"]["note"]


def test_another_seed_still_finds_the_community() -> None:
    cat = random_catalog(seed=4, n_tracks=60, n_playlists=120, heldout_share=0.0)
    pos = build_positives(cat, "pmi-svd", k=3, dim=4, workers=1, seed=11)
    anchors = np.repeat(pos.anchors, 10)
    got = pos.sample(anchors, np.random.default_rng(0))
    community = np.arange(60) >= 30
    assert (community[got] == community[anchors]).mean() > 0.95


def test_sppmi_matrix_is_symmetric_positive_and_shifted() -> None:
    x = playlists_matrix([[0, 1, 2], [0, 1], [2, 3], [3, 4], [0, 1, 4]] * 3, 6)
    m = sppmi_matrix(x, candidates=3, shift=1.0, workers=1)
    assert (abs(m - m.T) > 0).nnz == 0 and (m.data > 0).all() and m.diagonal().sum() == 0
    # PMI(0, 1) = log(c·P / (n_0·n_1)) = log(9·15 / (9·9))
    assert m[0, 1] == pytest.approx(np.log(15 / 9), rel=1e-5)
    shifted = sppmi_matrix(x, candidates=3, shift=1.5, workers=1)
    assert shifted[0, 1] == pytest.approx(np.log(15 / 9) - np.log(1.5), rel=1e-4)
    assert shifted.nnz < m.nnz  # entries below log(shift) are dropped
    assert np.diff(m.indptr)[5] == 0  # a track in no playlist has no entry


def test_randomized_svd_matches_the_dense_decomposition() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((80, 5)))[0]
    dense = basis @ np.diag([9.0, 7.0, 5.0, 3.0, 2.0]) @ basis.T + 0.01 * np.eye(80)
    u, sigma = randomized_svd_symmetric(sp.csr_matrix(dense), 3, seed=0, workers=2)
    assert sigma == pytest.approx([9.01, 7.01, 5.01], rel=1e-3)
    assert np.abs(u.T @ basis[:, :3]) == pytest.approx(np.eye(3), abs=1e-3)  # the same subspace, column by column
    again, _ = randomized_svd_symmetric(sp.csr_matrix(dense), 3, seed=0, workers=1)
    assert (u == again).all()


def test_failures_are_clear() -> None:
    lonely = Catalog.from_arrays(["a", "b", "c"], playlists_matrix([[0], [1], [2]], 3))
    with pytest.raises(MixtapeError, match="pmi-svd: no playlist with two or more entries"):
        build_positives(lonely, "pmi-svd")
    cat = random_catalog(seed=1)
    with pytest.raises(MixtapeError, match=r"strategy pmi-svd: shift: Input should be greater than or equal to 1"):
        build_positives(cat, "pmi-svd", shift=0.5)
    with pytest.raises(MixtapeError, match=r"strategy pmi-svd: candidates: Input should be greater than or equal to 1"):
        build_positives(cat, "pmi-svd", candidates=0)
    x = playlists_matrix([[0, 1], [0, 1]], 2)  # PMI(0, 1) = log(2·2 / (2·2)) = 0: nothing positive
    with pytest.raises(MixtapeError, match="fewer than two tracks have a positive PMI partner"):
        train_pmi_svd(x, dim=2, workers=1)


def test_corpus_file_holds_every_playlist_of_two_or_more_in_order_or_shuffled(tmp_path: Path) -> None:
    lists = [[3, 1, 12], [5], [1234567, 0, 9, 10, 99], [], [7, 8]]
    indptr, tokens = ordered_rows(playlists_matrix(lists, 1234568))
    text = corpus_lines(indptr, tokens, (0, len(lists))).decode()
    assert text == "3 1 12\n1234567 0 9 10 99\n7 8\n"
    shuffled = corpus_lines(indptr, tokens, (0, len(lists)), np.random.default_rng(0)).decode().splitlines()
    assert [sorted(map(int, line.split())) for line in shuffled] == [sorted(p) for p in lists if len(p) >= 2]
    path = tmp_path / "corpus.txt"
    write_corpus(path, indptr, tokens, None, chunk=3)  # chunks cut between playlists
    assert path.read_text() == text


def test_track2vec_shuffled_windows_are_deterministic_for_a_seed() -> None:
    cat = random_catalog(seed=3, heldout_share=0.0)
    a = build_positives(cat, "track2vec", k=3, dim=8, epochs=3, workers=1, pair_budget=200, seed=5)
    b = build_positives(cat, "track2vec", k=3, dim=8, epochs=3, workers=1, pair_budget=200, seed=5)
    assert a.stats["training"]["shuffled"]
    assert (a.hops[0].indices == b.hops[0].indices).all()
