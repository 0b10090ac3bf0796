"""Held-out playlists and artist-disjoint track splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import shared_data

from mixtape.catalog import (
    Catalog,
    artist_disjoint_split,
    artists_shared,
    hold_out_playlists,
    load_catalog,
    read_track_list,
    write_track_split,
)
from mixtape.errors import MixtapeError


def test_artist_disjoint_split_sizes_and_disjointness() -> None:
    rng = np.random.default_rng(0)
    artist = np.repeat(np.arange(300), rng.integers(1, 12, 300)).astype(np.int32)
    artist[rng.random(len(artist)) < 0.05] = -1  # unknown artists are split track by track
    labels = artist_disjoint_split(artist, (0.8, 0.1, 0.1), seed=3)
    assert len(artists_shared(artist, labels)) == 0
    shares = np.bincount(labels, minlength=3) / len(labels)
    assert np.allclose(shares, [0.8, 0.1, 0.1], atol=0.03)
    assert (labels == artist_disjoint_split(artist, (0.8, 0.1, 0.1), seed=3)).all()
    assert not (labels == artist_disjoint_split(artist, (0.8, 0.1, 0.1), seed=4)).all()


def test_artists_shared_detects_leaks() -> None:
    assert artists_shared(np.array([0, 0, 1, -1, -1]), np.array([0, 1, 1, 0, 1])).tolist() == [0]


def test_bad_fractions() -> None:
    with pytest.raises(MixtapeError, match="split fractions"):
        artist_disjoint_split(np.zeros(3, np.int32), (1.0,))


def test_hold_out_playlists_moves_rows_out_of_training() -> None:
    x = sp.random(50, 30, density=0.2, format="csr", random_state=0)
    x.data[:] = 1
    cat = Catalog.from_arrays([f"t{i}" for i in range(30)], x)
    held = hold_out_playlists(cat, 0.2, seed=1)
    assert held.n_playlists == 40 and held.heldout_playlists.shape == (10, 30)
    assert set(held.playlist_ids).isdisjoint(held.heldout_playlist_ids)
    assert set(held.playlist_ids) | set(held.heldout_playlist_ids) == set(cat.playlist_ids)
    assert held.context.shape[0] == 40
    with pytest.raises(MixtapeError, match="fraction"):
        hold_out_playlists(cat, 1.5)


def test_write_and_read_track_split(tmp_path: Path) -> None:
    cat = Catalog.from_arrays(["a", "b", "c", "d"], artist=np.array([0, 0, 1, 2]))
    labels = artist_disjoint_split(cat.artist, (0.5, 0.25, 0.25), seed=0)
    paths = write_track_split(cat, labels, tmp_path)
    back = [read_track_list(p) for p in paths]
    assert sorted(sum(back, [])) == ["a", "b", "c", "d"]
    assert any({"a", "b"} <= set(ids) for ids in back)
    (tmp_path / "plain.txt").write_text("x\ny\n\n")
    assert read_track_list(tmp_path / "plain.txt") == ["x", "y"]


def test_real_mtg_jamendo_splits_are_artist_disjoint_and_hold_out() -> None:
    folder = shared_data("mtg-jamendo", "splits", "split-0")
    tables = [folder / f"autotagging_genre-{s}.tsv" for s in ("train", "validation", "test")]
    cat = load_catalog(tables, holdout_tracks=tables[2], audio_root="/audio")
    assert len(cat) == 32572 + 11043 + 11479
    assert int(cat.heldout_track_mask.sum()) == 11479
    labels = np.repeat([0, 1, 2], [32572, 11043, 11479])
    assert len(artists_shared(cat.artist, labels)) == 0
    ours = artist_disjoint_split(cat.artist, (0.6, 0.2, 0.2), seed=0)
    assert len(artists_shared(cat.artist, ours)) == 0
