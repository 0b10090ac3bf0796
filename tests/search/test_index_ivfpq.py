"""The compressed index (`--kind ivfpq`) and adding tracks to an index without a rebuild.

IVF-PQ: the PQ shortlist is re-scored exactly against the float16 vectors kept in the index folder,
so it reaches the recall it reports, returns cosines, and serves every search feature (filters,
mutual proximity, queries by audio file, the page). Adding: the new tracks are found by id and by
vector, the old ones still are, a flat index equals the index rebuilt over both folders, an IVF-PQ
index stays within the recall target, and the header lists what was added.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mixtape.cli import main
from mixtape.evaluation.metrics import l2_normalize
from mixtape.fileio import file_checksum
from mixtape.search import (
    Embeddings,
    IndexSettings,
    SearchIndexError,
    SimilarIndex,
    TrackMeta,
    build_index,
    create_app,
    load_query_encoder,
    similar_to_audio,
)
from mixtape.search.embeddings import write_embeddings
from mixtape.search.index import (
    RERANK_FILE,
    add_to_index,
    choose_kind,
    exact_top_k,
    pq_subquantizers,
    read_index_meta,
    recall_at_k,
)


def _clustered(n: int, dim: int, centers: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    return c[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)


def _embeddings(
    folder: Path, vectors: np.ndarray, start: int = 0, fingerprint: str = "f", artists: int = 40
) -> Embeddings:
    """An embeddings folder of ``vectors`` with track ids ``t{start}``, ``t{start + 1}``, ..."""
    n = len(vectors)
    ids = [f"t{i:05d}" for i in range(start, start + n)]
    meta = TrackMeta(
        ids,
        [f"artist{i % artists}" for i in range(start, start + n)],
        [f"album{i % (3 * artists)}" for i in range(start, start + n)],
        [f"/music/{t}.wav" for t in ids],
        np.full(n, 30.0),
        [""] * n,
    )
    encoder = {"source": "test", "fingerprint": fingerprint}
    return write_embeddings(folder, [vectors], n, vectors.shape[1], meta, [], {"encoder": encoder})


def _fresh_queries(vectors: np.ndarray, count: int = 200, seed: int = 9) -> np.ndarray:
    """Points near the collection's (its tracks moved by the clusters' own spread), not in it."""
    rng = np.random.default_rng(seed)
    near = vectors[rng.choice(len(vectors), count, replace=False)]
    return near + 0.35 * rng.standard_normal(near.shape).astype(np.float32)


def _fresh_recall(index: SimilarIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of ``search_vector`` against brute force, judged by the true cosine of what it returns."""
    e = l2_normalize(vectors)
    q = l2_normalize(queries)
    exact_s, _ = exact_top_k(vectors, q, k)
    rows = np.array([[n.track.row for n in index.search_vector(x, k)] for x in q])
    return recall_at_k(np.einsum("qd,qkd->qk", q, e[rows]), rows, exact_s)


@pytest.fixture(scope="module")
def pq_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Embeddings, Embeddings]:
    """3,000 clustered 32-d vectors: the first 2,400 as one embeddings folder, the last 600 as another."""
    root = tmp_path_factory.mktemp("ivfpq")
    vectors = _clustered(3000, 32, 60)
    return vectors, _embeddings(root / "base", vectors[:2400]), _embeddings(root / "new", vectors[2400:], start=2400)


def test_ivfpq_reaches_the_recall_it_reports_and_returns_cosines(pq_data, tmp_path: Path) -> None:
    vectors, base, _ = pq_data
    report = build_index(base.path, tmp_path / "pq", IndexSettings(kind="ivfpq", recall_queries=100, layout="pca"))
    assert report.kind == "ivfpq" and report.recall10 >= 0.95
    assert {"nlist", "m", "nbits", "nprobe", "rerank"} <= set(report.params)
    assert report.params["m"] == pq_subquantizers(32) == 8 and report.params["nbits"] == 4
    assert "shortlist" in report.summary() and "recall@10" in report.summary()
    meta = read_index_meta(tmp_path / "pq")
    assert meta["kind"] == "ivfpq" and meta["files"][RERANK_FILE] == file_checksum(tmp_path / "pq" / RERANK_FILE)
    stored = np.load(tmp_path / "pq" / RERANK_FILE)
    assert stored.dtype == np.float16 and stored.shape == (2400, 32)
    assert np.allclose(stored, l2_normalize(vectors[:2400]), atol=1e-3)

    index = SimilarIndex.open(tmp_path / "pq")
    assert _fresh_recall(index, vectors[:2400], _fresh_queries(vectors[:2400])) >= 0.9
    # by track: the track's stored vector is the query; the scores are cosines of the stored vectors
    e = l2_normalize(vectors[:2400])
    near = index.similar_to_track("t00042", k=5).neighbours
    assert len(near) == 5 and 42 not in [n.track.row for n in near]
    want = e[[n.track.row for n in near]] @ e[42]
    assert np.allclose([n.score for n in near], want, atol=1e-3)
    assert [n.score for n in near] == sorted((n.score for n in near), reverse=True)
    assert near[0].score == pytest.approx(float(np.max(np.delete(e @ e[42], 42))), abs=1e-3)
    index.close()


def test_auto_picks_ivfpq_when_the_vectors_outgrow_ivf_max_gib(tmp_path: Path) -> None:
    cfg = IndexSettings(exact_max=100, layout="pca")
    assert choose_kind(100, 1280, cfg) == "flat"
    assert choose_kind(400_000, 1280, cfg) == "ivf"  # 1.9 GiB of float32
    assert choose_kind(500_000, 1280, cfg) == "ivfpq"  # 2.4 GiB
    assert choose_kind(1_000_000, 512, cfg) == "ivf" and choose_kind(1_100_000, 512, cfg) == "ivfpq"
    assert choose_kind(500_000, 1280, IndexSettings(kind="ivf")) == "ivf"
    emb = _embeddings(tmp_path / "emb", _clustered(800, 16, 20))
    small = IndexSettings(exact_max=500, ivf_max_gib=800 * 16 * 4 / 2**30 / 2, recall_queries=50, layout="pca")
    assert build_index(emb.path, tmp_path / "i", small).kind == "ivfpq"
    assert pq_subquantizers(1280) == 320 and pq_subquantizers(30) == 6 and pq_subquantizers(7) == 1
    with pytest.raises(SearchIndexError, match="do not divide"):
        build_index(emb.path, tmp_path / "j", IndexSettings(kind="ivfpq", pq_m=3, layout="pca"))


@pytest.fixture(scope="module")
def tiny_pq(tiny_embeddings: Embeddings, tmp_path_factory: pytest.TempPathFactory) -> SimilarIndex:
    """The tiny world's collection (real encoder vectors) as an IVF-PQ index with mutual proximity."""
    out = tmp_path_factory.mktemp("tiny-pq") / "index"
    build_index(tiny_embeddings.path, out, IndexSettings(kind="ivfpq", mutual_proximity=True, recall_queries=50))
    return SimilarIndex.open(out)


def test_every_search_feature_works_on_ivfpq(tiny_pq: SimilarIndex, tiny_index: SimilarIndex) -> None:
    """Filters, the score cut, mutual proximity and name search on an IVF-PQ index, checked against the
    exact index of the same collection."""
    assert tiny_pq.kind == "ivfpq" and len(tiny_pq) == len(tiny_index)
    ids = tiny_pq.tracks.track_ids
    agree = []
    for row in range(0, len(tiny_pq), 7):
        got = tiny_pq.similar_to_track(ids[row], k=10).neighbours
        want = tiny_index.similar_to_track(ids[row], k=10).neighbours
        assert row not in [n.track.row for n in got] and len(got) == 10
        agree.append(len({n.track.row for n in got} & {n.track.row for n in want}) / 10)
    assert np.mean(agree) >= 0.9
    tid, artist, album = ids[0], tiny_pq.tracks.artists[0], tiny_pq.tracks.albums[0]
    no_artist = tiny_pq.similar_to_track(tid, k=20, exclude_same_artist=True).neighbours
    assert len(no_artist) == 20 and all(n.track.artist_id != artist for n in no_artist)
    assert all(
        n.track.album_id != album for n in tiny_pq.similar_to_track(tid, k=20, exclude_same_album=True).neighbours
    )
    everything = tiny_pq.similar_to_track(tid, k=len(tiny_pq)).neighbours  # all the probed lists hold
    assert len(everything) > 40 and [n.score for n in everything] == sorted((n.score for n in everything), reverse=True)
    cut = everything[30].score
    above = tiny_pq.similar_to_track(tid, k=100, min_score=cut).neighbours
    assert above and all(n.score >= cut for n in above) and len(above) >= 30
    mp = tiny_pq.similar_to_track(tid, k=8, rerank="mp").neighbours
    exact_mp = {
        n.track.row: n.mp_score for n in tiny_index.similar_to_track(tid, k=len(tiny_index), rerank="mp").neighbours
    }
    assert [n.mp_score for n in mp] == sorted((n.mp_score for n in mp), reverse=True)
    assert np.allclose([n.mp_score for n in mp], [exact_mp[n.track.row] for n in mp], atol=2e-2)
    outside = tiny_pq.search_vector(tiny_pq.vector(3) + 0.01, k=5, rerank="mp")
    assert len(outside) == 5 and all(0.0 <= n.mp_score <= 1.0 for n in outside)
    assert tiny_pq.find(artist)[0] == tiny_index.find(artist)[0]


def test_audio_queries_and_the_page_work_on_ivfpq(tiny_pq: SimilarIndex) -> None:
    path = Path(tiny_pq.tracks.paths[7])
    result = similar_to_audio(tiny_pq, load_query_encoder(tiny_pq), path, k=3)
    assert result.neighbours[0].track.row == 7 and result.neighbours[0].score > 0.999
    client = TestClient(create_app(tiny_pq))
    info = client.get("/api/info").json()
    assert info["index"]["kind"] == "ivfpq" and info["rerank"] == ["none", "mp"] and info["query_by_audio"] is True
    tid = tiny_pq.tracks.track_ids[4]
    data = client.get(f"/api/similar/{tid}", params={"k": 5, "exclude_same_artist": True, "rerank": "mp"}).json()
    assert len(data["neighbours"]) == 5 and all("mp_score" in n for n in data["neighbours"])
    assert all(n["track"]["artist_id"] != data["query"]["artist_id"] for n in data["neighbours"])
    up = client.post("/api/similar", params={"k": 3}, files={"file": (path.name, path.read_bytes(), "audio/wav")})
    assert up.status_code == 200 and up.json()["neighbours"][0]["track"]["track_id"] == tiny_pq.tracks.track_ids[7]


def test_a_changed_or_cut_store_or_another_kind_is_refused(tiny_pq: SimilarIndex, tmp_path: Path) -> None:
    index = Path(shutil.copytree(tiny_pq.path, tmp_path / "index"))
    original = (index / RERANK_FILE).read_bytes()
    stored = np.load(index / RERANK_FILE)
    stored[0, 0] += 1
    np.save(index / RERANK_FILE, stored)
    with pytest.raises(SearchIndexError, match=r"vectors_f16\.npy: changed since the index was built"):
        SimilarIndex.open(index)
    np.save(index / RERANK_FILE, stored[:-1])  # fewer rows than the index: refused even unverified
    with pytest.raises(SearchIndexError, match=r"vectors_f16\.npy: float16 \[\d+, 64\], the index holds"):
        SimilarIndex.open(index, verified=True)
    (index / RERANK_FILE).write_bytes(original)
    meta = json.loads((index / "index.json").read_text())
    (index / "index.json").write_text(json.dumps({**meta, "kind": "flat"}))
    with pytest.raises(SearchIndexError, match=r"index.json: a flat index, but index.faiss holds a FAISS IndexIVFPQ"):
        SimilarIndex.open(index)


# --- adding tracks --------------------------------------------------------------------------------


def test_add_to_a_flat_index_equals_the_rebuilt_index(pq_data, tmp_path: Path) -> None:
    vectors, base, new = pq_data
    cfg = IndexSettings(kind="flat", mutual_proximity=True, layout="pca")
    report = build_index(base.path, tmp_path / "added", cfg, add=[new.path])
    assert report.n == 3000 and report.added == [(str(new.path.resolve()), 600)]
    assert "added 600 tracks from" in report.summary()
    both = _embeddings(tmp_path / "both", vectors)
    build_index(both.path, tmp_path / "rebuilt", cfg)
    added, rebuilt = SimilarIndex.open(tmp_path / "added"), SimilarIndex.open(tmp_path / "rebuilt")
    assert added.tracks.to_tsv() == rebuilt.tracks.to_tsv()
    for tid in ("t00000", "t01234", "t02399", "t02400", "t02999"):  # old and new tracks, by id
        for options in ({}, {"exclude_same_artist": True}, {"rerank": "mp"}):
            got = added.similar_to_track(tid, k=10, **options).neighbours
            want = rebuilt.similar_to_track(tid, k=10, **options).neighbours
            assert [n.track.row for n in got] == [n.track.row for n in want]
            assert np.allclose([n.score for n in got], [n.score for n in want], atol=1e-6)
            if options.get("rerank"):
                assert np.allclose([n.mp_score for n in got], [n.mp_score for n in want], atol=1e-6)
    for row in (5, 2500, 2999):  # by vector: each track finds itself first
        assert added.search_vector(vectors[row], k=1)[0].track.track_id == f"t{row:05d}"
    meta = read_index_meta(tmp_path / "added")
    assert meta["n"] == 3000 and meta["embeddings"]["checksum"] == base.checksum
    assert meta["added"] == [
        {
            "path": str(new.path.resolve()),
            "checksum": new.checksum,
            "n": 600,
            "seconds": meta["added"][0]["seconds"],
            "failed": 0,
        }
    ]
    assert all(file_checksum(tmp_path / "added" / name) == want for name, want in meta["files"].items())
    # the same command again: nothing to do, and the summary says what the index holds
    again = build_index(base.path, tmp_path / "added", cfg, add=[new.path])
    assert again.up_to_date and "600 of its tracks added from" in again.summary()
    assert build_index(base.path, tmp_path / "added", cfg).up_to_date  # the index still indexes the embeddings


@pytest.mark.parametrize("kind", ["ivfpq", "ivf", "hnsw"])
def test_add_to_an_approximate_index_keeps_the_recall_target(kind: str, pq_data, tmp_path: Path) -> None:
    vectors, base, new = pq_data
    cfg = IndexSettings(kind=kind, recall_queries=100, layout="pca")
    build_index(base.path, tmp_path / "pq", cfg)
    report = add_to_index(tmp_path / "pq", new.path)
    assert report.kind == kind and report.n == 3000 and report.recall10 >= 0.95 and not report.up_to_date
    assert report.recall_queries == 100 and report.tuning  # measured again on the grown index
    index = SimilarIndex.open(tmp_path / "pq")
    if kind == "ivfpq":
        assert np.load(tmp_path / "pq" / RERANK_FILE, mmap_mode="r").shape == (3000, 32)
    assert _fresh_recall(index, vectors, _fresh_queries(vectors)) >= 0.9
    for row in (7, 2401, 2998):
        tid = f"t{row:05d}"
        assert index.search_vector(vectors[row], k=1)[0].track.track_id == tid
        assert len(index.similar_to_track(tid, k=10).neighbours) == 10
    assert add_to_index(tmp_path / "pq", new.path).up_to_date


def test_what_cannot_be_added_is_refused(pq_data, tmp_path: Path) -> None:
    vectors, base, new = pq_data
    build_index(base.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"))
    before = (tmp_path / "idx" / "index.json").read_bytes()
    wide = _embeddings(tmp_path / "wide", _clustered(10, 16, 2), start=5000)
    with pytest.raises(SearchIndexError, match="16-dim vectors, the index .* 32-dim"):
        add_to_index(tmp_path / "idx", wide.path)
    other = _embeddings(tmp_path / "other", vectors[:10] + 1, start=5000, fingerprint="another")
    with pytest.raises(SearchIndexError, match=r"encoder test \(weights another\), the index .*\(weights f\)"):
        add_to_index(tmp_path / "idx", other.path)
    again = _embeddings(tmp_path / "again", vectors[2390:2410], start=2390)
    with pytest.raises(SearchIndexError, match=r"10 track\(s\) of .* are already in the index"):
        add_to_index(tmp_path / "idx", again.path)
    with pytest.raises(SearchIndexError, match="cannot add tracks from .*nothing-here: not found"):
        add_to_index(tmp_path / "idx", tmp_path / "nothing-here")
    assert (tmp_path / "idx" / "index.json").read_bytes() == before  # a refused add changes nothing


def test_an_interrupted_add_is_finished_by_the_same_command(
    pq_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, base, new = pq_data
    cfg = IndexSettings(kind="flat", layout="pca")
    build_index(base.path, tmp_path / "idx", cfg)
    import mixtape.search.index as index_module

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "_write_index_files", killed)
    with pytest.raises(KeyboardInterrupt):
        build_index(base.path, tmp_path / "idx", cfg, add=[new.path])
    monkeypatch.undo()
    with pytest.raises(SearchIndexError, match="index.json: not found"):
        SimilarIndex.open(tmp_path / "idx")
    report = build_index(base.path, tmp_path / "idx", cfg, add=[new.path])
    assert report.n == 3000 and not report.up_to_date
    assert SimilarIndex.open(tmp_path / "idx").search_vector(vectors[2999], k=1)[0].track.track_id == "t02999"


def test_a_rebuild_keeps_only_the_sources_given_and_staleness_names_the_added_source(
    pq_data, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vectors, base, _ = pq_data
    new = _embeddings(tmp_path / "new", vectors[2400:], start=2400)
    build_index(base.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"), add=[new.path])
    _embeddings(tmp_path / "new", vectors[2400:] * 2 + 1, start=2400)  # the added embeddings change afterwards
    with caplog.at_level("WARNING"):
        SimilarIndex.open(tmp_path / "idx")
    assert "out of date" in caplog.text and str(new.path) in caplog.text and "--add" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        rebuilt = build_index(base.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"), force=True)
    assert rebuilt.n == 2400 and "no longer holds the tracks added before" in caplog.text
    assert "added" not in read_index_meta(tmp_path / "idx")


def test_cli_index_add_and_doctor(pq_data, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors, base, _ = pq_data
    emb = Path(shutil.copytree(base.path, tmp_path / "emb"))
    new = _embeddings(tmp_path / "new", vectors[2400:2500], start=2400)
    assert (
        main(
            ["index", str(emb), "--kind", "ivfpq", "--recall-queries", "50", "--layout", "pca", "--add", str(new.path)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ivfpq (nlist=" in out and "added 100 tracks from" in out and "now 2500 tracks" in out
    assert (
        main(
            ["index", str(emb), "--kind", "ivfpq", "--recall-queries", "50", "--layout", "pca", "--add", str(new.path)]
        )
        == 0
    )
    assert "up to date" in capsys.readouterr().out
    assert main(["search", "--index", str(emb / "index"), "--track", "t02450", "-k", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["neighbours"]) == 3
    assert main(["doctor", str(emb / "index")]) == 0
    doctor = capsys.readouterr().out
    assert "PROBLEM" not in doctor and "WARNING" not in doctor and "(search index)" in doctor


def test_outside_vectors_join_an_index_of_the_same_model(tmp_path: Path) -> None:
    vectors = _clustered(300, 24, 10)
    ids = np.array([f"x{i:04d}" for i in range(300)])
    np.savez(tmp_path / "a.npz", ids=ids[:250], embeddings=vectors[:250])
    np.savez(tmp_path / "b.npz", ids=ids[250:], embeddings=vectors[250:])
    report = build_index(tmp_path / "a.npz", tmp_path / "idx", add=[tmp_path / "b.npz"])
    assert report.n == 300
    index = SimilarIndex.open(tmp_path / "idx")
    assert index.search_vector(vectors[260], k=1)[0].track.track_id == "x0260"
    mixtape_made = _embeddings(tmp_path / "mine", vectors[:5], start=9000)
    with pytest.raises(SearchIndexError, match="not comparable"):
        add_to_index(tmp_path / "idx", mixtape_made.path)
