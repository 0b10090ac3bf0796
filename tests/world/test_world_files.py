"""The tiny world's files, read as a user's data would be: tracks table, MTG TSVs, MPD JSON, triplets, world.json."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import soundfile as sf
from conftest import shared_data

from mixtape.catalog import read_tracks
from mixtape.world import SIZES, World, WorldError
from mixtape.world.tags import FAMILIES, SPLITS

PREFIXES = {"genre": "genre---", "moodtheme": "mood/theme---", "instrument": "instrument---"}


def _rows(path: Path, delimiter: str = ",") -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter=delimiter))


def _mpd(folder: Path) -> list[dict]:
    return [p for path in sorted(folder.glob("mpd.slice.*.json")) for p in json.loads(path.read_text())["playlists"]]


def test_tracks_table_points_at_real_22khz_wavs(tiny_world: World) -> None:
    rows = _rows(tiny_world.tracks)
    assert rows[0] == ["track_id", "path", "artist_id", "album_id", "duration", "title", "artist_name"]
    assert len(rows) - 1 == SIZES["tiny"].n_tracks
    table = read_tracks(tiny_world.tracks)
    assert table.skipped == [] and len(table) == SIZES["tiny"].n_tracks
    for row, rec in zip(rows[1:], table.records, strict=True):
        assert re.fullmatch(r"track_\d{6}", rec.track_id) and re.fullmatch(r"artist_\d{6}", rec.artist_id or "")
        assert row[1] == f"audio/{rec.artist_id}/{rec.album_id}/{rec.track_id}.wav"  # relative to the world root
        assert rec.path == tiny_world.root / row[1]
    for rec in table.records[::10]:
        info = sf.info(rec.path)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.frames == round(rec.duration * 22050)


def test_tags_file_is_mtg_jamendo_style(tiny_world: World) -> None:
    rows = _rows(tiny_world.tags, "\t")
    assert rows[0] == ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
    assert len(rows) - 1 == SIZES["tiny"].n_tracks
    families = {"genre": set(), "moodtheme": set(), "instrument": set()}
    for row in rows[1:]:
        tags = row[5:]
        assert (tiny_world.root / row[3]).is_file() and float(row[4]) > 0
        assert tags == sorted(tags) and len(set(tags)) == len(tags)
        for family, prefix in PREFIXES.items():
            families[family] |= {t for t in tags if t.startswith(prefix)}
        assert sum(t.startswith("genre---") for t in tags) == 1
        assert 1 <= sum(t.startswith("mood/theme---") for t in tags) <= 2
        assert 2 <= sum(t.startswith("instrument---") for t in tags) <= 5
    assert [len(families[f]) for f in ("genre", "moodtheme", "instrument")] == [8, 6, 10]


def test_header_matches_the_real_mtg_jamendo_files(tiny_world: World) -> None:
    real = shared_data("mtg-jamendo", "splits", "split-0", "autotagging_genre-train.tsv")
    first = real.read_text(encoding="utf-8").splitlines()[0]
    assert tiny_world.split_file("genre", "train").read_text(encoding="utf-8").splitlines()[0] == first


def test_splits_are_artist_disjoint_and_filtered_per_family(tiny_world: World) -> None:
    all_ids = {r[0] for r in _rows(tiny_world.tags, "\t")[1:]}
    artists_by_split = {}
    for split in SPLITS:
        rows = _rows(tiny_world.split_file("top50tags", split), "\t")[1:]
        artists_by_split[split] = {r[1] for r in rows}
        genres = {t for r in rows for t in r[5:] if t.startswith("genre---")}
        assert len(genres) == 8  # every genre is evaluated in every split, even in the tiny world
        for family, prefix in PREFIXES.items():
            fam_rows = _rows(tiny_world.split_file(family, split), "\t")[1:]
            assert {r[0] for r in fam_rows} == {r[0] for r in rows}  # every track has tags of every family
            assert all(t.startswith(prefix) for r in fam_rows for t in r[5:])
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not artists_by_split[a] & artists_by_split[b]
    union = set().union(*({r[0] for r in _rows(tiny_world.split_file("top50tags", s), "\t")[1:]} for s in SPLITS))
    assert union == all_ids
    assert len(list(tiny_world.splits.glob("*.tsv"))) == len(FAMILIES) * len(SPLITS)
    with pytest.raises(WorldError, match="no split file"):
        tiny_world.split_file("genres", "train")


def test_playlists_are_mpd_slices_with_a_separate_heldout_folder(tiny_world: World) -> None:
    track_ids = {r[0]: r for r in _rows(tiny_world.tracks)[1:]}
    pids = {}
    for folder in (tiny_world.playlists, tiny_world.heldout):
        pids[folder.name] = []
        for path in sorted(folder.glob("mpd.slice.*.json")):
            doc = json.loads(path.read_text())
            playlists = doc["playlists"]
            assert set(doc["info"]) >= {"generated_on", "slice", "version"} and 0 < len(playlists) <= 1000
            assert (
                path.name
                == f"mpd.slice.{playlists[0]['pid']}-{playlists[-1]['pid']}.json"
                == f"mpd.slice.{doc['info']['slice']}.json"
            )
            for p in playlists:
                assert set(p) >= {
                    "pid",
                    "name",
                    "collaborative",
                    "modified_at",
                    "num_tracks",
                    "num_albums",
                    "num_followers",
                    "tracks",
                }
                assert p["num_tracks"] == len(p["tracks"]) and p["collaborative"] in ("true", "false")
                assert [t["pos"] for t in p["tracks"]] == list(range(len(p["tracks"])))
                for t in p["tracks"]:
                    assert set(t) == {
                        "pos",
                        "artist_name",
                        "track_uri",
                        "artist_uri",
                        "track_name",
                        "album_uri",
                        "duration_ms",
                        "album_name",
                    }
                    tid = t["track_uri"].rsplit(":", 1)[1]
                    row = track_ids[tid]
                    assert t["track_uri"] == f"mixtape:track:{tid}"
                    assert t["artist_uri"] == f"mixtape:artist:{row[2]}" and t["album_uri"] == f"mixtape:album:{row[3]}"
                    assert t["duration_ms"] == round(float(row[4]) * 1000) and t["artist_name"] and t["track_name"]
                pids[folder.name].append(p["pid"])
    train, held = pids["playlists"], pids["heldout"]
    assert not set(train) & set(held)
    assert len(train) + len(held) == SIZES["tiny"].n_playlists and len(held) == round(0.1 * SIZES["tiny"].n_playlists)


def test_triplets_reference_tracks_and_hold_five_votes(tiny_world: World) -> None:
    rows = _rows(tiny_world.triplets)
    assert rows[0] == ["anchor", "candidate_a", "candidate_b", "votes_a", "votes_b"]
    artist = {r[0]: r[2] for r in _rows(tiny_world.tracks)[1:]}
    assert len(rows) - 1 == SIZES["tiny"].n_triplets
    for anchor, a, b, va, vb in rows[1:]:
        assert len({anchor, a, b}) == 3 and artist[a] != artist[anchor] != artist[b]
        assert int(va) + int(vb) == 5 and int(va) >= 0


def test_world_json_is_the_truth_behind_the_files(tiny_world: World) -> None:
    truth = tiny_world.latent()
    assert (truth["size"], truth["seed"], truth["sample_rate"]) == ("tiny", 0, 22050)
    tags = {r[0]: set(r[5:]) for r in _rows(tiny_world.tags, "\t")[1:]}
    for t in truth["tracks"]:
        expected = (
            {f"genre---{t['genre']}"}
            | {f"mood/theme---{m}" for m in t["moods"]}
            | {f"instrument---{i}" for i in t["instruments"]}
        )
        assert tags[t["track_id"]] == expected
    heldout = {p["pid"] for p in _mpd(tiny_world.heldout)}
    assert {p["pid"] for p in truth["playlists"] if p["heldout"]} == heldout
    by_pid = {p["pid"]: p for p in _mpd(tiny_world.playlists) + _mpd(tiny_world.heldout)}
    for p in truth["playlists"]:
        listed = {t["track_uri"].rsplit(":", 1)[1] for t in by_pid[p["pid"]]["tracks"]}
        assert p["num_tracks"] == len(listed) and set(p["off_theme"]) <= listed
    split_of = {a["artist_id"]: a["split"] for a in truth["artists"]}
    for split in SPLITS:
        assert {split_of[r[1]] for r in _rows(tiny_world.split_file("top50tags", split), "\t")[1:]} == {split}


def test_summary_counts_what_is_on_disk(tiny_world: World) -> None:
    text = tiny_world.summary()
    assert "120 by 30 artists" in text and "99 for training + 11 held out" in text
    assert "genre 8, mood/theme 6, instrument 10" in text and "triplets   240" in text


def test_load_reopens_a_world_and_refuses_other_folders(tiny_world: World, tmp_path: Path) -> None:
    assert World.load(tiny_world.root) == tiny_world
    with pytest.raises(WorldError, match="not a complete mixtape world"):
        World.load(tmp_path)


def test_tracks_table_names_titles_and_artists_as_world_json_does(tiny_world: World) -> None:
    latent = tiny_world.latent()
    artist_name = {a["artist_id"]: a["name"] for a in latent["artists"]}
    title = {t["track_id"]: t["name"] for t in latent["tracks"]}
    records = read_tracks(tiny_world.tracks).records
    assert all(r.title and r.artist_name for r in records)
    assert all(r.title == title[r.track_id] and r.artist_name == artist_name[r.artist_id or ""] for r in records)
