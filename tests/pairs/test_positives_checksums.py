"""Positives record the checksum of every file they refer to; loading and `mixtape pairs` act on a change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pairs.pairs_catalogs import random_catalog

from mixtape.catalog import Catalog
from mixtape.errors import MixtapeError
from mixtape.fileio import file_checksum
from mixtape.pairs import Positives, build_positives, run_pairs
from mixtape.pairs.positives import changed_files, read_metadata


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return random_catalog(seed=7)


def test_metadata_records_a_checksum_of_every_file_it_refers_to(cat: Catalog, tmp_path: Path) -> None:
    build_positives(cat, "mix", mix="playlist=2,artist=1").save(tmp_path)
    files = read_metadata(tmp_path)["files"]
    assert sorted(files) == ["anchors.npy", "part0-playlist/positives.json", "part1-artist/positives.json"]
    assert all(file_checksum(tmp_path / name) == checksum for name, checksum in files.items())
    part = read_metadata(tmp_path / "part1-artist")["files"]
    assert sorted(part) == ["anchors.npy", "hop0.npz", "hop1.npz", "track_ids.json"]
    assert changed_files(tmp_path, read_metadata(tmp_path)) == []


def test_a_changed_file_of_a_mixture_part_is_found_from_the_top(cat: Catalog, tmp_path: Path) -> None:
    build_positives(cat, "mix", mix="playlist=2,artist=1").save(tmp_path)
    ids = tmp_path / "part1-artist" / "track_ids.json"
    ids.write_text(json.dumps(list(reversed(json.loads(ids.read_text())))))
    assert changed_files(tmp_path, read_metadata(tmp_path)) == [(ids, "changed since it was written")]
    with pytest.raises(
        MixtapeError, match=r"part1-artist/track_ids\.json: changed since it was written; re-run `mixtape pairs`"
    ):
        Positives.load(tmp_path)


def test_a_missing_array_is_named(cat: Catalog, tmp_path: Path) -> None:
    build_positives(cat, "album").save(tmp_path)
    (tmp_path / "hop0.npz").unlink()
    with pytest.raises(
        MixtapeError, match=r"hop0\.npz: missing \(it was written with the positives\); re-run `mixtape pairs`"
    ):
        Positives.load(tmp_path)


def test_a_folder_written_before_checksums_still_loads(cat: Catalog, tmp_path: Path) -> None:
    pos = build_positives(cat, "playlist")
    pos.save(tmp_path)
    meta = json.loads((tmp_path / "positives.json").read_text())
    del meta["files"]
    (tmp_path / "positives.json").write_text(json.dumps(meta))
    back = Positives.load(tmp_path)
    assert np.array_equal(back.anchors, pos.anchors)
    assert changed_files(tmp_path, meta) == []


def test_pairs_rebuilds_a_folder_whose_files_changed(tmp_path: Path) -> None:
    (tmp_path / "tracks.csv").write_text("track_id,path\n" + "".join(f"t{i},t{i}.wav\n" for i in range(8)))
    (tmp_path / "lists.csv").write_text("playlist_id,track_id\n" + "".join(f"p{i % 2},t{i}\n" for i in range(8)))
    out = tmp_path / "out"
    first = run_pairs(tmp_path / "tracks.csv", out, "playlist", playlists=[tmp_path / "lists.csv"])
    assert not first.up_to_date
    assert run_pairs(tmp_path / "tracks.csv", out, "playlist", playlists=[tmp_path / "lists.csv"]).up_to_date
    anchors = np.load(out / "anchors.npy")
    np.save(out / "anchors.npy", anchors[:1])
    again = run_pairs(tmp_path / "tracks.csv", out, "playlist", playlists=[tmp_path / "lists.csv"])
    assert not again.up_to_date  # same inputs, but a file changed: rebuilt rather than "up to date"
    assert np.array_equal(Positives.load(out).anchors, anchors)
