"""`mixtape index` and queries: exact search equals brute force, approximate kinds reach the recall
they report, filters do what they say, mutual proximity equals the evaluation's scorer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixtape.evaluation.metrics import gaussian_mp_scorer, l2_normalize
from mixtape.search import (
    Embeddings,
    IndexSettings,
    SearchIndexError,
    SimilarIndex,
    TrackMeta,
    TrackNotIndexedError,
    build_index,
)
from mixtape.search.embeddings import write_embeddings
from mixtape.search.index import drop_self, exact_top_k, ivf_nlist, recall_at_k


def _clustered(n: int, dim: int, centers: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    return c[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)


def _fake_embeddings(folder: Path, vectors: np.ndarray, artists: list[str | None] | None = None) -> Embeddings:
    n = len(vectors)
    ids = [f"t{i:05d}" for i in range(n)]
    meta = TrackMeta(
        ids, artists or [None] * n, [None] * n, [f"/music/{t}.wav" for t in ids], np.full(n, 30.0), [""] * n
    )
    return write_embeddings(
        folder, [vectors], n, vectors.shape[1], meta, [], {"encoder": {"source": "test", "fingerprint": "f"}}
    )


def _brute(vectors: np.ndarray, row: int, k: int) -> list[int]:
    e = l2_normalize(vectors)
    s = e @ e[row]
    s[row] = -np.inf
    return np.argsort(-s, kind="stable")[:k].tolist()


def test_exact_index_equals_brute_force(tiny_index: SimilarIndex, tiny_embeddings: Embeddings) -> None:
    assert tiny_index.kind == "flat" and tiny_index.meta["recall10"] == 1.0
    v = np.asarray(tiny_embeddings.vectors)
    e = l2_normalize(v)
    for row in (0, 9, 55):
        result = tiny_index.similar_to_track(tiny_embeddings.tracks.track_ids[row], k=8)
        got = [n.track.row for n in result.neighbours]
        assert row not in got and len(got) == 8
        assert np.allclose([n.score for n in result.neighbours], np.sort(e @ e[row])[::-1][1:9], atol=1e-5)
        assert set(got) <= set(_brute(v, row, 12))  # equal up to ties among equal scores
        assert result.query["track_id"] == tiny_embeddings.tracks.track_ids[row]


def test_filters_exclude_artist_album_and_low_scores(tiny_index: SimilarIndex) -> None:
    tid = tiny_index.tracks.track_ids[0]
    artist, album = tiny_index.tracks.artists[0], tiny_index.tracks.albums[0]
    no_artist = tiny_index.similar_to_track(tid, k=20, exclude_same_artist=True).neighbours
    assert len(no_artist) == 20 and all(n.track.artist_id != artist for n in no_artist)
    no_album = tiny_index.similar_to_track(tid, k=20, exclude_same_album=True).neighbours
    assert all(n.track.album_id != album for n in no_album)
    everything = tiny_index.similar_to_track(tid, k=len(tiny_index)).neighbours
    assert len(everything) == len(tiny_index) - 1
    cut = everything[30].score
    above = tiny_index.similar_to_track(tid, k=100, min_score=cut).neighbours
    assert above and all(n.score >= cut for n in above) and len(above) >= 31


def test_mutual_proximity_matches_the_evaluation_scorer(tiny_index: SimilarIndex, tiny_embeddings: Embeddings) -> None:
    scorer = gaussian_mp_scorer(np.asarray(tiny_embeddings.vectors))
    row = 3
    result = tiny_index.similar_to_track(tiny_embeddings.tracks.track_ids[row], k=15, rerank="mp")
    want = scorer(np.array([row]))[0]
    rows = [n.track.row for n in result.neighbours]
    # equal up to float32 rounding of the cosines, which the tiny spread of an untrained model amplifies
    assert np.allclose([n.mp_score for n in result.neighbours], want[rows], atol=5e-4)
    mp = [n.mp_score for n in result.neighbours]
    assert mp == sorted(mp, reverse=True)
    # an outside query: moments over the whole collection (no track excluded)
    q = np.asarray(tiny_embeddings.vectors[row]) + 0.01
    outside = tiny_index.search_vector(q, k=5, rerank="mp")
    assert len(outside) == 5 and all(0.0 <= n.mp_score <= 1.0 for n in outside)


def test_mp_needs_an_index_built_with_it(tiny_embeddings: Embeddings, tmp_path: Path) -> None:
    build_index(tiny_embeddings.path, tmp_path / "idx")
    index = SimilarIndex.open(tmp_path / "idx")
    with pytest.raises(SearchIndexError, match="mutual-proximity"):
        index.similar_to_track(index.tracks.track_ids[0], rerank="mp")


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_reaches_the_recall_it_reports(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = _clustered(3000, 32, 60)
    emb = _fake_embeddings(tmp_path / "emb", vectors)
    report = build_index(emb.path, tmp_path / kind, IndexSettings(kind=kind, recall_queries=100, layout="pca"))
    assert report.kind == kind and report.recall10 >= 0.95
    assert "recall@10" in report.summary()
    index = SimilarIndex.open(tmp_path / kind)
    param = "nprobe" if kind == "ivf" else "efSearch"
    assert index.meta["params"][param] == report.params[param]
    # independent check on other queries: recall against brute force
    rng = np.random.default_rng(5)
    rows = rng.choice(len(vectors), 100, replace=False)
    q = l2_normalize(vectors[rows])
    exact_s, _ = exact_top_k(vectors, q, 10)
    s, i = index.index.search(q, 10)
    assert recall_at_k(s, i, exact_s) >= 0.9
    # search by track reads the track's vector back from the index (IVF keeps a direct map for it)
    near = index.similar_to_track("t00042", k=5).neighbours
    assert len(near) == 5 and 42 not in [n.track.row for n in near]
    assert near[0].score == pytest.approx(
        float(np.max(np.delete(l2_normalize(vectors) @ l2_normalize(vectors)[42], 42))), abs=1e-4
    )


def test_auto_kind_follows_the_size(tmp_path: Path) -> None:
    emb = _fake_embeddings(tmp_path / "emb", _clustered(800, 16, 20))
    assert build_index(emb.path, tmp_path / "a", IndexSettings(exact_max=1000, layout="pca")).kind == "flat"
    big = build_index(emb.path, tmp_path / "b", IndexSettings(exact_max=500, recall_queries=50, layout="pca"))
    assert big.kind == "ivf" and big.params["nlist"] == ivf_nlist(800)
    assert ivf_nlist(1_000_000) == 1024 and ivf_nlist(100) == 2 and ivf_nlist(10) == 1


def test_streamed_exact_top_k_equals_a_full_sort() -> None:
    v = _clustered(5000, 12, 30, seed=2)
    q = l2_normalize(v[[0, 10, 4999]])
    full = q @ l2_normalize(v).T
    for blocks in (v, [v[:1234], v[1234:]]):
        s, i = exact_top_k(blocks, q, 10, sub_block=700)
        assert np.allclose(s, -np.sort(-full, axis=1)[:, :10], atol=1e-6)
        assert np.allclose(np.take_along_axis(full, i, axis=1), s, atol=1e-6)
    s, i = drop_self(*exact_top_k(v, q, 11), np.array([0, 10, 4999]), 10)
    assert i.shape == (3, 10) and not (i == np.array([[0], [10], [4999]])).any()


def test_recall_counts_ties_as_hits() -> None:
    exact = np.array([[0.9, 0.8, 0.8]])
    assert recall_at_k(np.array([[0.9, 0.8, 0.8]]), np.array([[1, 7, 8]]), exact) == 1.0
    assert recall_at_k(np.array([[0.9, 0.8, 0.5]]), np.array([[1, 7, 8]]), exact) == pytest.approx(2 / 3)
    assert recall_at_k(np.array([[0.9, 0.8, 0.8]]), np.array([[1, 7, -1]]), exact) == pytest.approx(2 / 3)


def test_rebuild_is_skipped_when_up_to_date_and_staleness_is_noticed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vectors = _clustered(200, 8, 5)
    emb = _fake_embeddings(tmp_path / "emb", vectors)
    build_index(emb.path, tmp_path / "idx")
    assert build_index(emb.path, tmp_path / "idx").up_to_date
    _fake_embeddings(tmp_path / "emb", vectors * 2 + 1)  # the embeddings change after the index was built
    with caplog.at_level("WARNING"):
        SimilarIndex.open(tmp_path / "idx")
    assert "out of date" in caplog.text
    assert not build_index(emb.path, tmp_path / "idx").up_to_date


def test_bad_index_folders_and_ids(tiny_index: SimilarIndex, tmp_path: Path) -> None:
    with pytest.raises(SearchIndexError, match="not found"):
        SimilarIndex.open(tmp_path / "none")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "index.json").write_text(
        json.dumps({"format": "mixtape-index", "version": 1, "kind": "flat", "n": 1, "dim": 1})
    )
    (tmp_path / "broken" / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(SearchIndexError, match="FAISS"):
        SimilarIndex.open(tmp_path / "broken")
    with pytest.raises(TrackNotIndexedError, match="not in the index"):
        tiny_index.similar_to_track("no-such-track")
    with pytest.raises(SearchIndexError, match="at least 1"):
        tiny_index.similar_to_track(tiny_index.tracks.track_ids[0], k=0)
    empty = write_embeddings(
        tmp_path / "empty", [], 0, 4, TrackMeta.empty(), [("x", "/x.wav", "silent")], {"encoder": {}}
    )
    with pytest.raises(SearchIndexError, match="no track embeddings"):
        build_index(empty.path, tmp_path / "i")


def test_name_search(tiny_index: SimilarIndex) -> None:
    artist = tiny_index.tracks.artists[5]
    total, rows = tiny_index.find(artist.upper())
    assert total >= 1 and all(tiny_index.tracks.artists[r] == artist for r in rows)
    total, rows = tiny_index.find(f"{artist} {tiny_index.tracks.track_ids[5]}")
    assert rows == [5]
    total, rows = tiny_index.find("", limit=7)
    assert total == len(tiny_index) and rows == list(range(7))
    assert tiny_index.find("zzz-nothing-like-this") == (0, [])
