"""An index records the checksum of each of its files and refuses to open a changed one; embeddings check tracks.tsv."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mixtape.fileio import file_checksum
from mixtape.search import Embeddings, SearchIndexError, SimilarIndex
from mixtape.search.embeddings import changed_vectors
from mixtape.search.index import changed_index_files, read_index_meta


def test_index_json_records_every_file(tiny_index) -> None:
    meta = read_index_meta(tiny_index.path)
    assert sorted(meta["files"]) == ["index.faiss", "layout.npy", "mutual_proximity.npz", "tracks.tsv"]
    assert all(file_checksum(tiny_index.path / name) == want for name, want in meta["files"].items())
    assert changed_index_files(tiny_index.path, meta) == []


def test_changed_mutual_proximity_moments_are_refused(tiny_index, tmp_path: Path) -> None:
    index = Path(shutil.copytree(tiny_index.path, tmp_path / "index"))
    with np.load(index / "mutual_proximity.npz") as z:
        moments = {k: z[k] for k in z.files}
    moments["mean"] = moments["mean"] + 0.5
    with open(index / "mutual_proximity.npz", "wb") as f:
        np.savez(f, **moments)
    with pytest.raises(
        SearchIndexError,
        match=r"mutual_proximity\.npz: changed since the index was built .*rebuild the index with `mixtape index`",
    ):
        SimilarIndex.open(index)


def test_a_changed_layout_is_refused(tiny_index, tmp_path: Path) -> None:
    index = Path(shutil.copytree(tiny_index.path, tmp_path / "index"))
    layout = np.load(index / "layout.npy")
    np.save(index / "layout.npy", layout[::-1].copy())
    assert [f.name for f, _ in changed_index_files(index, read_index_meta(index))] == ["layout.npy"]
    with pytest.raises(SearchIndexError, match=r"layout\.npy: changed since the index was built"):
        SimilarIndex.open(index)


def test_an_index_built_before_checksums_still_opens(tiny_index, tmp_path: Path) -> None:
    index = Path(shutil.copytree(tiny_index.path, tmp_path / "index"))
    meta = json.loads((index / "index.json").read_text())
    del meta["files"]
    (index / "index.json").write_text(json.dumps(meta))
    assert len(SimilarIndex.open(index)) == len(tiny_index)


def test_embeddings_record_tracks_tsv_and_vectors(tiny_embeddings, tmp_path: Path) -> None:
    assert tiny_embeddings.meta["tracks_checksum"] == file_checksum(tiny_embeddings.path / "tracks.tsv")
    assert not changed_vectors(tiny_embeddings)
    folder = Path(shutil.copytree(tiny_embeddings.path, tmp_path / "emb"))
    vectors = np.load(folder / "vectors.npy")
    vectors[0, 0] += 1.0
    np.save(folder / "vectors.npy", vectors)
    assert changed_vectors(Embeddings.open(folder))  # opening does not hash vectors; doctor does
