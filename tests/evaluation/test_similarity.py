"""Similarity evaluation on hand-made pools: triplets, held-out playlist retrieval, artist filter, hubness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mixtape.evaluation.similarity import (
    SimilarityDataError,
    build_pool,
    evaluate_similarity,
    heldout_relevance,
    read_triplets,
)


def test_read_triplets_counts_unknown_tracks_and_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "triplets.csv"
    p.write_text(
        "anchor,candidate_a,candidate_b,votes_a,votes_b\n"
        "a,b,c,3,1\n"
        "a,ghost,c,2,0\n"  # unknown track
        "a,b,c,x,1\n"  # bad votes
        "b,c,a,2,2\n"  # tie: kept here, skipped by the metric
        "c,a\n",  # too few fields
        encoding="utf-8",
    )
    t = read_triplets(p, {"a": 0, "b": 1, "c": 2})
    assert len(t) == 2 and t.anchor.tolist() == [0, 1] and t.cand_b.tolist() == [2, 0]
    assert t.skip_counts() == {"unknown track": 1, "bad row": 2}
    assert "triplets.csv:3" in t.skipped["unknown track"][0] and "'ghost'" in t.skipped["unknown track"][0]


def test_read_triplets_refuses_wrong_header(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(SimilarityDataError, match="lacks column"):
        read_triplets(p, {})
    with pytest.raises(SimilarityDataError, match="not found"):
        read_triplets(tmp_path / "absent.csv", {})


def test_triplet_naming_an_unknown_track_is_a_counted_skip(tmp_path: Path) -> None:
    p = tmp_path / "triplets.csv"
    p.write_text(
        "anchor,candidate_a,candidate_b,votes_a,votes_b\na,b,c,3,1\nb,a,c,4,0\nnobody,a,b,1,0\na,b,c,1,1\n",
        encoding="utf-8",
    )
    e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    t = read_triplets(p, {"a": 0, "b": 1, "c": 2})
    r = evaluate_similarity(e, triplets=t, mutual_proximity="none")
    assert r.metrics["triplet_acc"] == 1.0 and r.metrics["triplets_evaluated"] == 2
    assert r.metrics["triplets_skipped_unknown_track"] == 1 and r.metrics["triplets_tied_votes"] == 1
    assert any("unknown track" in n for n in r.notes) and any("tied votes" in n for n in r.notes)


def test_heldout_relevance_is_cooccurrence_without_self() -> None:
    # playlists: {0, 1, 2}, {2, 3}; track 4 in none
    h = sp.csr_matrix(np.array([[1, 2, 3, 0, 0], [0, 0, 1, 2, 0]]))
    queries, rel = heldout_relevance(h)
    assert queries.tolist() == [0, 1, 2, 3]
    assert rel.toarray().tolist() == [[0, 1, 1, 0, 0], [1, 0, 1, 0, 0], [1, 1, 0, 1, 0], [0, 0, 1, 0, 0]]


def _clustered_pool() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Three tight clusters of 4 tracks; held-out playlists = the clusters; artists split each cluster in two."""
    rng = np.random.default_rng(0)
    centers = np.eye(3, 8) * 10
    e = np.repeat(centers, 4, axis=0) + rng.normal(scale=0.1, size=(12, 8))
    artist = np.repeat(np.arange(6), 2)
    heldout = sp.csr_matrix(np.kron(np.eye(3), np.ones((1, 4))))
    return e, artist, heldout


def test_retrieval_on_a_perfect_space() -> None:
    e, artist, heldout = _clustered_pool()
    r = evaluate_similarity(e, artist=artist, heldout=heldout, k=3, mutual_proximity="gaussian")
    m = r.metrics
    assert m["ndcg@3"] == pytest.approx(1.0) and m["map@3"] == pytest.approx(1.0) and m["p@3"] == pytest.approx(1.0)
    assert m["retrieval_queries"] == 12
    # artist filter: each query keeps 2 relevant tracks by the other artist of its cluster, found first.
    assert m["ndcg@3_artist_filtered"] == pytest.approx(1.0) and m["p@3_artist_filtered"] == pytest.approx(2 / 3)
    # unfiltered top 3 hold the query's one same-artist track
    assert m["artist_p@3"] == pytest.approx(1 / 3)
    assert {"hubness", "hubness_mp", "ndcg@3_mp", "k_occurrence_max@3"} <= set(m)
    assert r.per_query["query"].tolist() == list(range(12)) and r.per_query["relevant"].tolist() == [3] * 12


def test_retrieval_on_a_random_space_is_worse() -> None:
    e, artist, heldout = _clustered_pool()
    rand = np.random.default_rng(5).normal(size=e.shape)
    r = evaluate_similarity(rand, artist=artist, heldout=heldout, k=3, mutual_proximity="none")
    assert r.metrics["p@3"] < 0.9 and "hubness_mp" not in r.metrics


def test_artist_filter_skips_queries_left_without_relevant_tracks() -> None:
    e, _, heldout = _clustered_pool()
    artist = np.repeat(np.arange(3), 4)  # one artist per cluster: every relevant track is by the query's artist
    r = evaluate_similarity(e, artist=artist, heldout=heldout, k=3, mutual_proximity="none")
    assert "ndcg@3_artist_filtered" not in r.metrics and any("artist filter" in n for n in r.notes)
    assert r.metrics["artist_p@3"] == pytest.approx(1.0)


def test_hubness_only_pool_and_shape_errors() -> None:
    e = np.random.default_rng(0).normal(size=(30, 4))
    r = evaluate_similarity(e, k=5, mutual_proximity="empirical")
    assert set(r.metrics) >= {"hubness", "hubness_mp"} and "ndcg@5" not in r.metrics
    with pytest.raises(SimilarityDataError, match="artist codes"):
        evaluate_similarity(e, artist=np.zeros(3))
    with pytest.raises(SimilarityDataError, match="held-out playlists cover"):
        evaluate_similarity(e, heldout=sp.csr_matrix((2, 5)))


class _Catalog:
    def __init__(self) -> None:
        self.track_ids = np.array(["a", "b", "c", "d"], dtype=object)
        self.artist = np.array([0, 0, 1, -1], dtype=np.int32)
        self.heldout_playlists = sp.csr_matrix(np.array([[1, 0, 2, 3], [0, 1, 1, 0]]))


def test_pool_keeps_catalogue_tracks_with_features() -> None:
    pool = build_pool(["x", "c", "a", "d"], _Catalog())
    assert pool.track_ids == ["a", "c", "d"] and pool.store_rows.tolist() == [2, 1, 3]
    assert pool.artist.tolist() == [0, 1, -1] and pool.heldout.shape == (2, 3)
    assert any("1 catalogue track" in n and "'b'" in n for n in pool.notes) and any(
        "held-out playlist entries" in n for n in pool.notes
    )
    with pytest.raises(SimilarityDataError, match="none of the catalogue"):
        build_pool(["track_1"], _Catalog())
    whole = build_pool(["x", "y"])
    assert whole.track_ids == ["x", "y"] and whole.artist is None and whole.heldout is None
