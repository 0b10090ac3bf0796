from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_data

from mixtape.catalog import read_tracks
from mixtape.errors import MixtapeError


def test_csv_with_relative_and_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        f"track_id,path,artist_id,duration\na,audio/a.wav,art1,3.5\nb,{tmp_path}/b b/ñ.wav,,\n"
    )
    table = read_tracks(tmp_path / "t.csv")
    assert [r.track_id for r in table.records] == ["a", "b"]
    assert table.records[0].path == tmp_path / "audio" / "a.wav"
    assert table.records[0].artist_id == "art1" and table.records[0].duration == 3.5
    assert table.records[1].path == tmp_path / "b b" / "ñ.wav"
    assert table.records[1].artist_id is None and table.skipped == []


def test_audio_root_overrides_table_folder(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("TRACK_ID\tPATH\nx\t1/x.mp3\n")
    table = read_tracks(tmp_path / "t.tsv", audio_root="/music")
    assert table.records[0].path == Path("/music/1/x.mp3")


def test_bad_rows_are_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("track_id,path,duration\na,a.wav,1\na,b.wav,2\n,c.wav,3\nd,d.wav,long\ne,e.wav,4\n")
    table = read_tracks(tmp_path / "t.csv")
    assert [r.track_id for r in table.records] == ["a", "e"]
    assert len(table.skipped) == 3
    assert any("t.csv:3" in s and "duplicate track_id 'a'" in s for s in table.skipped)
    assert any("t.csv:5" in s and "'long'" in s for s in table.skipped)


@pytest.mark.parametrize("text, match", [("", "empty"), ("id,file\n1,a.wav\n", "lacks required")])
def test_unusable_table_is_an_error(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(MixtapeError, match=match):
        read_tracks(tmp_path / "t.csv")


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="not found"):
        read_tracks(tmp_path / "none.csv")


def test_real_mtg_jamendo_tsv() -> None:
    path = shared_data("mtg-jamendo", "splits", "split-0", "autotagging_genre-test.tsv")
    table = read_tracks(path, audio_root="/audio")
    assert len(table) == 11479 and table.skipped == []
    first = table.records[0]
    assert first.track_id.startswith("track_") and first.artist_id.startswith("artist_")
    assert first.path.suffix == ".mp3" and first.path.is_relative_to("/audio")
