"""Matching playlist entries to tracks: ids, URIs, paths, file names, mapping files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixtape.catalog import CatalogReport, TrackMatcher, read_mapping, resolve_entry_path
from mixtape.catalog.report import UNKNOWN_MAPPING
from mixtape.errors import MixtapeError

IDS = ["track_1", "track_2", "ISRC123"]
PATHS = ["/music/a/one.flac", "/music/b/two.mp3", "/music/c/Ünïcode.wav"]


def test_by_id_and_uri_suffix() -> None:
    m = TrackMatcher(IDS, PATHS)
    assert m.match(["track_1", "mixtape:track:track_2", "spotify:track:nope", "track_1"]).tolist() == [0, 1, -1, 0]


def test_by_path_relative_absolute_file_uri_and_windows(tmp_path: Path) -> None:
    m = TrackMatcher(IDS, PATHS)
    got = m.match(
        ["../a/one.flac", "/music/b/./two.mp3", "file:///music/c/%C3%9Cn%C3%AFcode.wav", "..\\a\\one.flac"],
        base="/music/lists",
    )
    assert got.tolist() == [0, 1, 2, 0]


def test_relative_path_depends_on_playlist_folder() -> None:
    m = TrackMatcher(IDS, PATHS)
    assert m.match(["one.flac"], base="/music/a").tolist() == [0]
    assert m.match(["one.flac"], base="/elsewhere").tolist() == [-1]  # not answered from the cache


def test_file_stem_as_track_id_in_auto_mode_only() -> None:
    assert TrackMatcher(IDS, PATHS).match(["/other/disk/track_2.mp3"]).tolist() == [1]
    assert TrackMatcher(IDS, PATHS, mode="path").match(["/other/disk/track_2.mp3"]).tolist() == [-1]
    assert TrackMatcher(IDS, PATHS, mode="id").match(["/music/a/one.flac", "track_1"]).tolist() == [-1, 0]
    with pytest.raises(MixtapeError, match="unknown match mode"):
        TrackMatcher(IDS, PATHS, mode="fuzzy")


def test_mapping_file_wins_and_reports_unknown_tracks(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("entry,track_id\nspotify:track:XYZ,ISRC123\nspotify:track:ABC,missing\nhttp://x/y,track_1\n")
    report = CatalogReport()
    mapping = read_mapping(path, {t: i for i, t in enumerate(IDS)}, report)
    assert mapping == {"spotify:track:XYZ": 2, "http://x/y": 0}
    assert report.get(UNKNOWN_MAPPING) == 1 and "missing" in report.examples[UNKNOWN_MAPPING][0]
    m = TrackMatcher(IDS, PATHS, mapping)
    assert m.match(["spotify:track:XYZ", "spotify:track:ABC", "http://x/y"]).tolist() == [2, -1, 0]


def test_mapping_file_with_one_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "map.tsv"
    path.write_text("a\tb\nonly-one\n")
    with pytest.raises(MixtapeError, match=r"map\.tsv:2: expected two columns"):
        read_mapping(path, {"b": 0})


def test_resolve_entry_path_normalises() -> None:
    assert resolve_entry_path("x/../y.wav", "/base") == "/base/y.wav"
