"""load_catalog: formats together, matching, bad input counted, held-out data kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mixtape.catalog import Catalog, UnknownTrackError, load_catalog, ordered_rows
from mixtape.catalog import report as R
from mixtape.errors import MixtapeError


def write_tracks(folder: Path, n: int = 8) -> Path:
    """t0..t{n-1}: artists a0 (t0-t2), a1 (t3-t4), a2 (t5), unknown (t6, t7); albums per artist."""
    artist = ["a0", "a0", "a0", "a1", "a1", "a2", "", ""]
    album = ["b0", "b0", "b1", "b2", "b2", "b3", "", ""]
    lines = ["track_id,path,artist_id,album_id,duration"]
    lines += [f"t{i},audio/t{i}.wav,{artist[i]},{album[i]},{10 + i}" for i in range(n)]
    path = folder / "tracks.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_slice(path: Path, playlists: dict[int, list[str]], artists: dict[str, str] | None = None) -> Path:
    artists = artists or {}
    data = {
        "info": {"slice": path.stem},
        "playlists": [
            {
                "pid": pid,
                "name": f"p{pid}",
                "tracks": [
                    {"pos": i, "track_uri": f"mixtape:track:{t}", "artist_uri": artists.get(t, ""), "album_uri": ""}
                    for i, t in enumerate(tr)
                ],
            }
            for pid, tr in playlists.items()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def rows_as_sets(m: sp.csr_matrix, ids: np.ndarray) -> list[set[str]]:
    return [set(ids[m.indices[m.indptr[i] : m.indptr[i + 1]]]) for i in range(m.shape[0])]


@pytest.fixture
def tracks(tmp_path: Path) -> Path:
    return write_tracks(tmp_path)


def test_mpd_folder_with_every_kind_of_bad_playlist(tmp_path: Path, tracks: Path) -> None:
    write_slice(
        tmp_path / "pl" / "mpd.slice.0-999.json",
        {
            0: ["t0", "t3", "t0", "t5"],  # duplicate t0: counted once
            1: ["t1"],  # one track: no pairs
            2: [],  # empty
            3: ["t2", "ghost"],  # unknown id: only one track with audio
            4: ["t4", "t3", "ghost", "t1"],
        },
    )
    write_slice(tmp_path / "pl" / "mpd.slice.1000-1999.json", {4: ["t6", "t7"], 5: ["t6", "t7"]})  # pid 4 again
    cat = load_catalog(tracks, [tmp_path / "pl"])
    r = cat.report
    assert r.get(R.DUPLICATE_ENTRY) == 1
    assert r.get(R.SINGLE_TRACK_PLAYLIST) == 1
    assert r.get(R.EMPTY_PLAYLIST) == 1
    assert r.get(R.FEW_AUDIO_PLAYLIST) == 1
    assert r.get(R.UNMATCHED_ENTRY) == 2 and r.get(R.UNMATCHED_KEY) == 1
    assert r.get(R.DUPLICATE_PLAYLIST) == 1 and "playlist '4'" in r.examples[R.DUPLICATE_PLAYLIST][0]
    assert list(cat.playlist_ids) == ["0", "4", "5"]
    assert rows_as_sets(cat.playlists, cat.track_ids) == [{"t0", "t3", "t5"}, {"t4", "t3", "t1"}, {"t6", "t7"}]
    assert r.get(R.TRACK_IN_NO_PLAYLIST) == 1 and r.examples[R.TRACK_IN_NO_PLAYLIST] == ["t2"]
    # the unmatched entry stays as context of the playlist it was in
    assert list(cat.context_ids) == ["mixtape:track:ghost"]
    assert cat.context[1].nnz == 1 and cat.context[0].nnz == 0


def test_order_is_kept(tmp_path: Path, tracks: Path) -> None:
    write_slice(tmp_path / "s.json", {0: ["t5", "t1", "t3", "t1", "t0"]})
    cat = load_catalog(tracks, [tmp_path / "s.json"])
    indptr, order = ordered_rows(cat.playlists)
    assert list(cat.track_ids[order]) == ["t5", "t1", "t3", "t0"]


def test_malformed_file_is_skipped_and_the_rest_intact(tmp_path: Path, tracks: Path) -> None:
    write_slice(tmp_path / "pl" / "mpd.slice.0-999.json", {0: ["t0", "t1"]})
    (tmp_path / "pl" / "mpd.slice.1000-1999.json").write_text('{"playlists": [')
    (tmp_path / "pl" / "mpd.slice.2000-2999.json").write_text('{"info": {}}')
    cat = load_catalog(tracks, [tmp_path / "pl"])
    assert cat.n_playlists == 1
    assert cat.report.get(R.SKIPPED_FILE) == 2
    ex = " ".join(cat.report.examples[R.SKIPPED_FILE])
    assert "mpd.slice.1000-1999.json: malformed JSON at line 1" in ex and "no 'playlists' list" in ex


def test_nothing_readable_is_an_error(tmp_path: Path, tracks: Path) -> None:
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(MixtapeError, match="no training playlist could be read"):
        load_catalog(tracks, [tmp_path / "bad.json"])


def test_formats_together_and_matching_by_path(tmp_path: Path, tracks: Path) -> None:
    pl = tmp_path / "pl"
    pl.mkdir()
    (pl / "road trip.m3u").write_text(
        "#EXTM3U\n#EXTINF:1,x\n../audio/t0.wav\n../audio/t2.wav\n/nowhere/t4.wav\nhttp://radio/x\n"
    )
    (pl / "more.jsonl").write_text('{"playlist_id": "j1", "tracks": ["t1", "t6"]}\n')
    (pl / "pairs.csv").write_text("playlist_id,track_id\nc1,t3\nc1,t5\n")
    cat = load_catalog(tracks, [pl])
    sets = dict(zip(cat.playlist_ids, rows_as_sets(cat.playlists, cat.track_ids), strict=True))
    assert set(sets) == {"road trip", "j1", "c1"}
    assert sets["road trip"] == {"t0", "t2", "t4"}  # t4 matched by its file name
    assert sets["j1"] == {"t1", "t6"} and sets["c1"] == {"t3", "t5"}
    assert cat.report.get(R.UNMATCHED_ENTRY) == 1


def test_mapping_file(tmp_path: Path, tracks: Path) -> None:
    write_slice(tmp_path / "s.json", {0: ["A", "B", "t2"]})
    (tmp_path / "map.csv").write_text("mixtape:track:A,t0\nmixtape:track:B,t1\n")
    cat = load_catalog(tracks, [tmp_path / "s.json"], mapping=tmp_path / "map.csv")
    assert rows_as_sets(cat.playlists, cat.track_ids) == [{"t0", "t1", "t2"}]


def test_heldout_playlists_and_tracks_never_reach_training(tmp_path: Path, tracks: Path) -> None:
    write_slice(tmp_path / "train.json", {0: ["t0", "t1", "t2"], 1: ["t3", "t4", "t0"], 9: ["t5", "t6"]})
    write_slice(tmp_path / "held.json", {9: ["t1", "t2", "t7"], 10: ["t0", "t4"]})
    (tmp_path / "test_split.tsv").write_text("TRACK_ID\tARTIST_ID\nt4\ta1\nt99\tx\n")
    cat = load_catalog(
        tracks, [tmp_path / "train.json"], [tmp_path / "held.json"], holdout_tracks=tmp_path / "test_split.tsv"
    )
    assert list(cat.heldout_playlist_ids) == ["9", "10"]
    assert list(cat.playlist_ids) == ["0", "1"]  # pid 9 is held out: its training copy is dropped
    assert cat.report.get(R.HELDOUT_OVERLAP) == 1
    assert cat.heldout_track_mask.tolist() == [i == 4 for i in range(8)]
    assert cat.report.get(R.UNKNOWN_HOLDOUT) == 1
    assert cat.report.get(R.HELDOUT_ENTRY) == 1
    assert cat.playlists[:, cat.index_of("t4")].nnz == 0  # the held-out track left the training playlists
    assert rows_as_sets(cat.heldout_playlists, cat.track_ids) == [{"t1", "t2", "t7"}, {"t0", "t4"}]
    assert "t4" not in set(cat.track_ids[cat.playlists.indices])


def test_artist_and_album_filled_from_mpd_when_the_table_lacks_them(tmp_path: Path, tracks: Path) -> None:
    write_slice(
        tmp_path / "s.json",
        {0: ["t6", "t7", "t0"]},
        artists={"t6": "spotify:artist:Z", "t7": "spotify:artist:Z", "t0": "other"},
    )
    cat = load_catalog(tracks, [tmp_path / "s.json"])
    a = cat.artist
    assert a[cat.index_of("t6")] == a[cat.index_of("t7")] >= 0
    assert cat.artist_ids[a[cat.index_of("t6")]] == "spotify:artist:Z"
    assert cat.artist_ids[a[cat.index_of("t0")]] == "a0"  # the tracks table wins


def test_tracks_only_and_multiple_tables(tmp_path: Path, tracks: Path) -> None:
    (tmp_path / "more.tsv").write_text("track_id\tpath\nt0\tdup.wav\nu1\tu1.wav\n")
    cat = load_catalog([tracks, tmp_path / "more.tsv"])
    assert len(cat) == 9 and cat.n_playlists == 0 and cat.playlists.shape == (0, 9)
    assert cat.report.get(R.SKIPPED_TRACK_ROW) == 1
    assert cat.paths[cat.index_of("u1")] == str(tmp_path / "u1.wav")
    assert np.isnan(cat.durations[-1]) and cat.durations[0] == 10


def test_index_of_and_indices_of(tracks: Path) -> None:
    cat = load_catalog(tracks)
    assert cat.index_of("t3") == 3
    assert cat.indices_of(["t1", "nope", "t0"]).tolist() == [1, -1, 0]
    with pytest.raises(UnknownTrackError, match="'nope' is not in the catalogue"):
        cat.index_of("nope")


def test_from_arrays_validates_and_masks_heldout_tracks() -> None:
    x = sp.csr_matrix(np.array([[1, 2, 3, 0], [0, 1, 0, 2]]))
    cat = Catalog.from_arrays(
        ["a", "b", "c", "d"], x, artist=np.array([0, 0, 1, -1]), heldout_track_mask=np.array([0, 1, 0, 0], bool)
    )
    assert cat.playlists[:, 1].nnz == 0 and len(cat.artist_ids) == 2
    with pytest.raises(MixtapeError, match="playlists has shape"):
        Catalog.from_arrays(["a", "b"], x)
    with pytest.raises(MixtapeError, match="artist codes"):
        Catalog.from_arrays(["a"], artist=np.array([-2]))


def test_summary_mentions_counts(tmp_path: Path, tracks: Path) -> None:
    write_slice(tmp_path / "s.json", {0: ["t0", "t1"], 1: ["t2"]})
    text = load_catalog(tracks, [tmp_path / "s.json"]).summary()
    assert "8 tracks" in text and "training playlists: 1" in text and "playlists of one track" in text
