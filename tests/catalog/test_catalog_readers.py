"""Each playlist format, read from files written the way real tools write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtape.catalog import (
    CatalogReport,
    playlist_files,
    read_m3u,
    read_mpd_slice,
    read_playlist_file,
    read_playlists_csv,
    read_playlists_jsonl,
)
from mixtape.catalog.report import NOT_UTF8_LINE, SKIPPED_ENTRY, SKIPPED_PLAYLIST
from mixtape.errors import MixtapeError


def mpd_track(uri: str, pos: int, artist: str = "spotify:artist:A", album: str = "spotify:album:X") -> dict:
    return {
        "pos": pos,
        "artist_name": "Some Artist",
        "track_uri": uri,
        "artist_uri": artist,
        "track_name": "Some Track",
        "album_uri": album,
        "duration_ms": 215000,
        "album_name": "Some Album",
    }


def mpd_slice(playlists: list[dict]) -> dict:
    """A slice as distributed: ``info`` plus playlists with the MPD's fields."""
    return {
        "info": {"generated_on": "2017-12-03 08:41:42.057563", "slice": "0-999", "version": "v1"},
        "playlists": [
            {
                "name": p.get("name", "Throwbacks"),
                "collaborative": "false",
                "pid": p["pid"],
                "modified_at": 1493424000,
                "num_tracks": len(p["tracks"]),
                "num_albums": 1,
                "num_followers": 1,
                "tracks": p["tracks"],
                "num_edits": 6,
                "duration_ms": 11532414,
                "num_artists": 37,
            }
            for p in playlists
        ],
    }


def test_mpd_slice_entries_ordered_by_pos(tmp_path: Path) -> None:
    data = mpd_slice(
        [
            {
                "pid": 0,
                "tracks": [mpd_track("spotify:track:B", 1, album="al2"), mpd_track("spotify:track:A", 0, artist="ar1")],
            },
            {"pid": 1, "tracks": [mpd_track("spotify:track:C", 0)]},
        ]
    )
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text(json.dumps(data, indent=2))
    raw = read_mpd_slice(path)
    assert raw.ids == ["0", "1"] and raw.lengths == [2, 1]
    assert raw.entries == ["spotify:track:A", "spotify:track:B", "spotify:track:C"]
    assert raw.artists[0] == "ar1" and raw.albums[1] == "al2"


def test_mpd_malformed_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text('{"info": {},\n "playlists": [\n  {"pid": 0, "tracks": [}\n]}')
    with pytest.raises(MixtapeError, match=r"mpd\.slice\.0-999\.json: malformed JSON at line 3 column \d+"):
        read_mpd_slice(path)


def test_mpd_slice_without_playlists_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text(json.dumps({"info": {"slice": "0-999"}}))
    with pytest.raises(MixtapeError, match="no 'playlists' list"):
        read_mpd_slice(path)


def test_mpd_bad_playlists_and_entries_are_skipped_and_counted(tmp_path: Path) -> None:
    data = mpd_slice([{"pid": 0, "tracks": [mpd_track("u:1", 0)]}])
    data["playlists"].append({"name": "no pid", "tracks": []})
    data["playlists"].append({"pid": 7, "tracks": "oops"})
    data["playlists"][0]["tracks"].append({"pos": 1, "artist_name": "no uri"})
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    report = CatalogReport()
    raw = read_mpd_slice(path, report)
    assert raw.ids == ["0"] and raw.entries == ["u:1"]
    assert report.get(SKIPPED_PLAYLIST) == 2 and report.get(SKIPPED_ENTRY) == 1
    assert any("playlists[1] has no 'pid'" in e for e in report.examples[SKIPPED_PLAYLIST])


def test_extended_m3u_with_comments_relative_absolute_and_non_ascii(tmp_path: Path) -> None:
    path = tmp_path / "lists" / "Été 2023.m3u8"
    path.parent.mkdir()
    text = (
        "\ufeff#EXTM3U\r\n#PLAYLIST:Été\r\n#EXTINF:215,Björk – Jóga\r\n../music/Björk/Jóga.flac\r\n\r\n# a "
        "comment\r\n/abs/ñ.mp3\r\n"
    )
    path.write_bytes(text.encode("utf-8"))
    raw = read_m3u(path)
    assert raw.ids == ["Été 2023"]
    assert raw.entries == ["../music/Björk/Jóga.flac", "/abs/ñ.mp3"]
    assert raw.base == str(path.parent)


def test_plain_m3u(tmp_path: Path) -> None:
    path = tmp_path / "p.m3u"
    path.write_text("a.wav\nsub/b.wav\n")
    assert read_m3u(path).entries == ["a.wav", "sub/b.wav"]


def test_m3u_mixed_encodings_are_decoded_line_by_line_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "mixed.m3u"
    path.write_bytes("#EXTM3U\nCafé.mp3\n".encode() + "Garçon.mp3\n".encode("cp1252") + "Über.mp3\n".encode())
    report = CatalogReport()
    raw = read_m3u(path, report=report)
    assert raw.entries == ["Café.mp3", "Garçon.mp3", "Über.mp3"]
    assert report.get(NOT_UTF8_LINE) == 1 and report.examples[NOT_UTF8_LINE] == [f"{path}:3"]


def test_jsonl_ids_ints_objects_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"playlist_id": "p1", "tracks": ["a", 2, {"track_id": "c"}]}\n'
        "\n"
        '{"playlist_id": "p2", "tracks": [\n'
        '{"tracks": ["a"]}\n'
        '{"playlist_id": 3, "tracks": ["x", null, ["nested"]]}\n'
    )
    report = CatalogReport()
    raw = read_playlists_jsonl(path, report)
    assert raw.ids == ["p1", "3"] and raw.entries == ["a", "2", "c", "x"]
    assert report.get(SKIPPED_PLAYLIST) == 2 and report.get(SKIPPED_ENTRY) == 2
    assert any(":3: malformed JSON" in e for e in report.examples[SKIPPED_PLAYLIST])
    assert any(":4: no 'playlist_id'" in e for e in report.examples[SKIPPED_PLAYLIST])


def test_csv_rows_grouped_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("playlist_id,track_id\np1,a\np2,x\np1,b\n,c\np2,\np1,a\n")
    report = CatalogReport()
    raw = read_playlists_csv(path, report)
    assert raw.ids == ["p1", "p2"] and raw.lengths == [3, 1]
    assert raw.entries == ["a", "b", "a", "x"]
    assert report.get(SKIPPED_ENTRY) == 2


def test_tsv_with_pid_and_path_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("PID\tPATH\n1\ta.wav\n")
    assert read_playlists_csv(path).entries == ["a.wav"]


def test_csv_without_usable_header(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("list,song\n1,a\n")
    with pytest.raises(MixtapeError, match="needs a playlist column"):
        read_playlists_csv(path)


def test_folder_listing_sorts_mpd_slices_naturally(tmp_path: Path) -> None:
    for name in ("mpd.slice.10000-10999.json", "mpd.slice.2000-2999.json", "mpd.slice.0-999.json", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in playlist_files(tmp_path)] == [
        "mpd.slice.0-999.json",
        "mpd.slice.2000-2999.json",
        "mpd.slice.10000-10999.json",
    ]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="not found"):
        playlist_files(tmp_path / "nope")
    with pytest.raises(MixtapeError, match="no playlist files"):
        playlist_files(tmp_path)
    (tmp_path / "x.xspf").write_text("")
    with pytest.raises(MixtapeError, match="unknown playlist format"):
        read_playlist_file(tmp_path / "x.xspf")


def test_m3u_ids_are_paths_relative_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / "best.m3u").write_text("a.wav\n")
    (tmp_path / "jazz").mkdir()
    (tmp_path / "jazz" / "best.m3u").write_text("b.wav\n")
    ids = [read_playlist_file(f, root=tmp_path).ids[0] for f in playlist_files(tmp_path)]
    assert ids == ["jazz/best", "rock/best"]
