"""Bad rows and conflicting files in the catalogue: skipped and reported with file:line, the rest loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtape.catalog import CatalogReport, load_catalog, read_m3u, read_playlists_csv, read_tracks
from mixtape.catalog import report as R
from mixtape.cli import main
from mixtape.errors import MixtapeError


def test_an_unbalanced_quote_costs_one_row_of_the_tracks_table(tmp_path: Path) -> None:
    # csv.reader over the lines would read every row after line 3 into one field, silently.
    table = tmp_path / "tracks.csv"
    table.write_text('track_id,path\nt1,a.wav\nt2,"b.wav\nt3,c.wav\nt4,"d, e.wav"\n')
    t = read_tracks(table)
    assert [r.track_id for r in t.records] == ["t1", "t3", "t4"]
    assert t.records[2].path == tmp_path / "d, e.wav"  # proper quoting still works
    assert t.skipped == [f"{table}:3: malformed quoting (a '\"' that is never closed); fix the quotes of this row"]


def test_an_unbalanced_quote_costs_one_entry_of_a_playlist_table(tmp_path: Path) -> None:
    path = tmp_path / "lists.csv"
    path.write_text('playlist_id,track_id\np1,a\np1,"b\np1,c\np2,d\np2,e\n')
    report = CatalogReport()
    raw = read_playlists_csv(path, report)
    assert raw.ids == ["p1", "p2"] and raw.entries == ["a", "c", "d", "e"]
    assert report.examples[R.SKIPPED_ENTRY] == [f"{path}:3: malformed quoting (a '\"' that is never closed)"]


def test_playlist_rows_missing_a_field_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "lists.tsv"
    path.write_text("playlist_id\ttrack_id\np1\ta\np1\n\tb\np1\tc\n")
    report = CatalogReport()
    assert read_playlists_csv(path, report).entries == ["a", "c"]
    assert report.examples[R.SKIPPED_ENTRY] == [
        f"{path}:3: missing playlist id or track",
        f"{path}:4: missing playlist id or track",
    ]


def test_a_tracks_table_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    table = tmp_path / "tracks.csv"
    table.write_bytes("track_id,path\nt1,Café.wav\n".encode("cp1252"))
    with pytest.raises(MixtapeError, match=r"tracks\.csv: not UTF-8 text"):
        read_tracks(table)


def test_the_same_track_id_with_another_path_in_a_second_table(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("track_id,path\nt1,one/t1.wav\nt2,one/t2.wav\n")
    (tmp_path / "b.csv").write_text("track_id,path\nt2,two/t2.wav\nt1,one/t1.wav\nt3,two/t3.wav\n")
    cat = load_catalog([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert list(cat.track_ids) == ["t1", "t2", "t3"]
    assert cat.paths[cat.index_of("t2")] == str(tmp_path / "one" / "t2.wav")  # the first table wins
    assert cat.report.get(R.SKIPPED_TRACK_ROW) == 2
    assert cat.report.examples[R.SKIPPED_TRACK_ROW] == [
        f"{tmp_path / 'b.csv'}: duplicate track_id 't2' with another path ({tmp_path / 'two' / 't2.wav'}; the "
        f"first table's {tmp_path / 'one' / 't2.wav'} is used)",
        f"{tmp_path / 'b.csv'}: duplicate track_id 't1' (first table's row kept)",
    ]


def test_a_binary_file_named_m3u_is_skipped_and_the_other_playlists_load(tmp_path: Path) -> None:
    (tmp_path / "tracks.csv").write_text("track_id,path\n" + "".join(f"t{i},t{i}.wav\n" for i in range(4)))
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "song.m3u").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + bytes(64))
    (lists / "good.m3u").write_text("t0.wav\nt1.wav\n")
    (lists / "windows.m3u").write_bytes(b"\xff\xfe" + "t2.wav\r\nt3.wav\r\n".encode("utf-16-le"))  # UTF-16 with its BOM
    assert read_m3u(lists / "windows.m3u").entries == ["t2.wav", "t3.wav"]
    cat = load_catalog(tmp_path / "tracks.csv", [lists])
    assert sorted(cat.playlist_ids) == ["good", "windows"]
    assert cat.report.get(R.SKIPPED_FILE) == 1
    assert cat.report.examples[R.SKIPPED_FILE] == [
        f"{lists / 'song.m3u'}: not a text playlist (it holds NUL bytes: binary data, e.g. an audio file named .m3u)"
    ]


def test_skipped_rows_reach_catalog_json_of_the_pairs_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tracks.csv").write_text('track_id,path\nt0,t0.wav\nt1,"t1.wav\nt2,t2.wav\nt2,again.wav\nt3,t3.wav\n')
    (tmp_path / "lists.jsonl").write_text(
        '{"playlist_id": "p", "tracks": ["t0", "t2", "t3", "ghost"]}\n{"playlist_id": "q", "tracks": [\n'
    )
    assert (
        main(
            [
                "pairs",
                "--tracks",
                str(tmp_path / "tracks.csv"),
                "--playlists",
                str(tmp_path / "lists.jsonl"),
                "--strategy",
                "playlist",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "catalog.json").read_text())["report"]
    assert (
        report["counts"][R.SKIPPED_TRACK_ROW] == 2
        and report["counts"][R.SKIPPED_PLAYLIST] == 1
        and report["counts"][R.UNMATCHED_ENTRY] == 1
    )
    examples = " ".join(report["examples"][R.SKIPPED_TRACK_ROW] + report["examples"][R.SKIPPED_PLAYLIST])
    assert "tracks.csv:3: malformed quoting" in examples and "tracks.csv:5: duplicate track_id 't2'" in examples
    assert "lists.jsonl:2: malformed JSON" in examples
    assert "playlists skipped (malformed)" in capsys.readouterr().err  # the catalogue report is logged too
