"""The 2-D map of a collection: computed by UMAP or PCA, in [0, 1], deterministic, stored beside the
index with its checksum, recomputed when tracks are added, absent with ``layout="none"``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import mixtape.search.layout as layout_module
from mixtape.cli import main
from mixtape.search import Embeddings, IndexSettings, SearchIndexError, SimilarIndex, TrackMeta, build_index
from mixtape.search.embeddings import write_embeddings
from mixtape.search.index import changed_index_files, read_index_meta
from mixtape.search.layout import LAYOUT_FILE, LayoutError, compute_layout, read_layout, resolve_method


def _clusters(n: int, dim: int = 24, centers: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 3.0 * rng.standard_normal((centers, dim)).astype(np.float32)
    label = rng.integers(0, centers, n)
    return c[label] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32), label


def _embeddings(folder: Path, vectors: np.ndarray, prefix: str = "t") -> Embeddings:
    n = len(vectors)
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    meta = TrackMeta(ids, [None] * n, [None] * n, [f"/music/{t}.wav" for t in ids], np.full(n, 30.0), [""] * n)
    return write_embeddings(
        folder, [vectors], n, vectors.shape[1], meta, [], {"encoder": {"source": "test", "fingerprint": "f"}}
    )


def _separated(layout: np.ndarray, label: np.ndarray) -> float:
    """Share of points whose nearest other point on the map has their own label."""
    d = ((layout[:, None, :] - layout[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((label[d.argmin(axis=1)] == label).mean())


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_layout_is_in_the_unit_square_deterministic_and_keeps_clusters(method: str) -> None:
    vectors, label = _clusters(300)
    first = compute_layout(vectors, method, seed=3)
    assert first.shape == (300, 2) and first.dtype == np.float32
    assert first.min() == 0.0 and first.max() == 1.0 and np.isfinite(first).all()
    assert np.array_equal(first, compute_layout(vectors, method, seed=3))
    assert _separated(first, label) > 0.9


def test_umap_beyond_its_sample_places_the_other_tracks_beside_their_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layout_module, "UMAP_FIT_MAX", 120)
    monkeypatch.setattr(layout_module, "TRANSFORM_BLOCK", 64)  # several blocks
    monkeypatch.setattr(layout_module, "PLACE_BLOCK", 16)
    vectors, label = _clusters(400)
    placed = compute_layout(vectors, "umap", seed=0)
    assert placed.shape == (400, 2) and 0.0 <= placed.min() and placed.max() <= 1.0
    assert np.array_equal(placed, compute_layout(vectors, "umap", seed=0))
    assert _separated(placed, label) > 0.9


def test_tiny_and_degenerate_collections_get_a_map() -> None:
    assert compute_layout(np.zeros((0, 8), dtype=np.float32), "pca").shape == (0, 2)
    one = compute_layout(np.ones((1, 8), dtype=np.float32), "auto")
    assert one.shape == (1, 2) and np.all(one == 0.5)
    few = compute_layout(np.random.default_rng(0).standard_normal((5, 8)), "umap")  # too few for UMAP: PCA
    assert few.shape == (5, 2) and few.min() == 0.0 and few.max() == 1.0
    same = compute_layout(np.ones((4, 3), dtype=np.float32), "pca")  # every track alike: the middle
    assert np.all(same == 0.5)
    with pytest.raises(LayoutError, match="unknown method 'tsne'"):
        compute_layout(np.ones((4, 3)), "tsne")


def test_auto_is_umap_where_installed_else_pca(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_method("auto") == "umap"  # the dev extra installs umap-learn
    monkeypatch.setattr(layout_module, "umap_available", lambda: False)
    assert resolve_method("auto") == "pca"
    with pytest.raises(LayoutError, match=r"umap-learn, which is not installed.*--layout pca"):
        resolve_method("umap")


def test_the_index_stores_its_map_with_a_checksum(tmp_path: Path) -> None:
    vectors, _ = _clusters(200)
    emb = _embeddings(tmp_path / "emb", vectors)
    report = build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat"))
    meta = read_index_meta(tmp_path / "idx")
    assert LAYOUT_FILE in meta["files"] and meta["layout"]["method"] == "umap" and meta["layout"]["seconds"] >= 0
    assert report.layout is not None and f"map of the collection ({LAYOUT_FILE}): umap" in report.summary()
    index = SimilarIndex.open(tmp_path / "idx")
    layout = index.layout
    assert layout is not None and layout.shape == (200, 2) and layout.dtype == np.float32
    assert 0.0 <= layout.min() and layout.max() <= 1.0
    assert np.array_equal(layout, read_layout(tmp_path / "idx"))
    # the same embeddings and settings give the same map, byte for byte
    build_index(emb.path, tmp_path / "again", IndexSettings(kind="flat"))
    assert (tmp_path / "again" / LAYOUT_FILE).read_bytes() == (tmp_path / "idx" / LAYOUT_FILE).read_bytes()
    # up to date: a re-run does not compute it again
    assert build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat")).up_to_date


def test_pca_and_none(tmp_path: Path) -> None:
    vectors, _ = _clusters(150)
    emb = _embeddings(tmp_path / "emb", vectors)
    build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"))
    assert read_index_meta(tmp_path / "idx")["layout"]["method"] == "pca"
    assert np.array_equal(SimilarIndex.open(tmp_path / "idx").layout, compute_layout(vectors, "pca"))
    report = build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="none"))
    assert not report.up_to_date and report.layout is None and "map of the collection" not in report.summary()
    meta = read_index_meta(tmp_path / "idx")
    assert not (tmp_path / "idx" / LAYOUT_FILE).exists() and LAYOUT_FILE not in meta["files"] and "layout" not in meta
    index = SimilarIndex.open(tmp_path / "idx")
    assert index.layout is None and read_layout(tmp_path / "idx") is None


@pytest.mark.parametrize("kind", ["flat", "ivfpq"])
def test_adding_tracks_recomputes_the_map(kind: str, tmp_path: Path) -> None:
    vectors, _ = _clusters(600, dim=16)
    base = _embeddings(tmp_path / "base", vectors[:450])
    new = _embeddings(tmp_path / "new", vectors[450:], prefix="n")
    cfg = IndexSettings(kind=kind, layout="pca", recall_queries=50)
    build_index(base.path, tmp_path / "idx", cfg)
    before = np.load(tmp_path / "idx" / LAYOUT_FILE)
    report = build_index(base.path, tmp_path / "idx", cfg, add=[new.path])
    assert report.n == 600 and report.layout is not None and report.layout["method"] == "pca"
    meta = read_index_meta(tmp_path / "idx")
    assert changed_index_files(tmp_path / "idx", meta) == [] and meta["layout"]["method"] == "pca"
    index = SimilarIndex.open(tmp_path / "idx")
    assert index.layout is not None and index.layout.shape == (600, 2) and len(before) == 450
    # the grown collection's map is the map of all its vectors (up to float16 storage for ivfpq)
    whole = compute_layout(vectors, "pca")
    assert np.abs(index.layout - whole).max() < (1e-5 if kind == "flat" else 1e-2)


def test_an_index_built_before_maps_opens_without_one_and_a_rebuild_adds_it(tmp_path: Path) -> None:
    vectors, _ = _clusters(100)
    emb = _embeddings(tmp_path / "emb", vectors)
    build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"))
    header = tmp_path / "idx" / "index.json"
    meta = json.loads(header.read_text())
    del meta["files"][LAYOUT_FILE], meta["layout"], meta["settings"]["layout"]
    header.write_text(json.dumps(meta))
    (tmp_path / "idx" / LAYOUT_FILE).unlink()
    assert SimilarIndex.open(tmp_path / "idx").layout is None
    report = build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="pca"))
    assert not report.up_to_date and SimilarIndex.open(tmp_path / "idx").layout is not None


def test_a_damaged_or_misfit_layout_is_an_error_naming_it(tiny_index: SimilarIndex, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_index.path, tmp_path / "idx"))
    (folder / LAYOUT_FILE).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(LayoutError, match=r"layout\.npy: not a readable \.npy array"):
        read_layout(folder)
    np.save(folder / LAYOUT_FILE, np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(LayoutError, match=r"layout\.npy: float32 \[3, 3\], expected float32 \[tracks, 2\]"):
        read_layout(folder)
    np.save(folder / LAYOUT_FILE, np.zeros((3, 2), dtype=np.float32))
    opened = SimilarIndex.open(folder, verified=True)  # as if its checksum matched: the row count is checked too
    with pytest.raises(SearchIndexError, match=rf"3 points for the index's {len(tiny_index)} tracks"):
        _ = opened.layout


def test_the_tiny_world_map_is_row_aligned_with_its_tracks(tiny_index: SimilarIndex) -> None:
    layout = tiny_index.layout
    assert layout is not None and layout.shape == (len(tiny_index), 2)
    assert tiny_index.meta["layout"]["method"] == "umap"


def test_cli_index_layout_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vectors, _ = _clusters(80)
    emb = _embeddings(tmp_path / "emb", vectors)
    assert main(["index", str(emb.path), "--layout", "pca"]) == 0
    assert "map of the collection (layout.npy): pca" in capsys.readouterr().out
    assert read_index_meta(emb.path / "index")["layout"]["method"] == "pca"
    assert main(["index", str(emb.path), "--layout", "none"]) == 0
    assert not (emb.path / "index" / LAYOUT_FILE).exists()


def test_umap_without_umap_learn_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, _ = _clusters(60)
    emb = _embeddings(tmp_path / "emb", vectors[:40])
    new = _embeddings(tmp_path / "new", vectors[40:], prefix="n")
    build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="umap"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()}
    monkeypatch.setattr(layout_module, "umap_available", lambda: False)
    with pytest.raises(SearchIndexError, match="umap-learn, which is not installed"):
        build_index(emb.path, tmp_path / "other", IndexSettings(kind="flat", layout="umap"))
    assert not (tmp_path / "other").exists()
    with pytest.raises(SearchIndexError, match="umap-learn, which is not installed"):
        build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="umap"), add=[new.path])
    assert {p.name: p.read_bytes() for p in (tmp_path / "idx").iterdir()} == before
