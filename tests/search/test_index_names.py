"""The names a person reads (a track's title, its artist's name) flow from the tracks table, the world
or the audio files' own tags into the embeddings, the index and every ``TrackInfo``; folders written
before names were still read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from audio.tagged_audio import write_garbage, write_tagged

from mixtape.catalog import read_tracks
from mixtape.search import Embeddings, IndexSettings, SimilarIndex, TrackMeta, build_index, embed_collection
from mixtape.search.embed import track_names
from mixtape.search.embeddings import TRACK_COLUMNS, read_track_meta, write_embeddings


def _meta(n: int, titles: list[str | None] | None = None, names: list[str | None] | None = None) -> TrackMeta:
    ids = [f"t{i}" for i in range(n)]
    return TrackMeta(
        ids, [f"a{i % 2}" for i in range(n)], [None] * n, [f"/m/{t}.wav" for t in ids], np.full(n, 3.0), [""] * n,
        titles or [], names or [],
    )  # fmt: skip


def test_track_meta_keeps_names_through_take_concat_and_tracks_tsv(tmp_path: Path) -> None:
    meta = _meta(3, ["Blue Tide", None, "Tab\there\nand a line"], ["Ana Ray", "Bo", None])
    picked = meta.take([2, 0])
    assert picked.titles == ["Tab\there\nand a line", "Blue Tide"] and picked.artist_names == [None, "Ana Ray"]
    both = meta.concat(_meta(1))
    assert both.titles == [*meta.titles, None] and both.artist_names == [*meta.artist_names, None]
    file = tmp_path / "tracks.tsv"
    file.write_text(meta.to_tsv(), encoding="utf-8")
    assert file.read_text().splitlines()[0].split("\t") == [*TRACK_COLUMNS, "title", "artist_name"]
    back = read_track_meta(file)
    assert back.titles == ["Blue Tide", None, "Tab here and a line"]  # one line, one cell
    assert back.artist_names == ["Ana Ray", "Bo", None] and back.track_ids == meta.track_ids


def test_tracks_tsv_without_names_keeps_its_old_header_and_old_files_read(tmp_path: Path) -> None:
    plain = _meta(2)
    assert plain.titles == [None, None] and plain.artist_names == [None, None]
    text = plain.to_tsv()
    assert text.splitlines()[0].split("\t") == list(TRACK_COLUMNS)  # what every earlier mixtape wrote
    (tmp_path / "tracks.tsv").write_text(text, encoding="utf-8")
    old = read_track_meta(tmp_path / "tracks.tsv")
    assert old.titles == [None, None] and old.artist_names == [None, None]
    with pytest.raises(ValueError, match="1 titles and 2 artist names for 2 tracks"):
        TrackMeta(["a", "b"], [None] * 2, [None] * 2, ["", ""], np.zeros(2), ["", ""], ["x"], [])


def test_an_index_of_named_tracks_shows_and_finds_the_names(tmp_path: Path) -> None:
    n = 40
    rng = np.random.default_rng(0)
    titles: list[str | None] = [f"Song {i}" for i in range(n)]
    titles[5] = "Midnight Harbour"
    names: list[str | None] = ["Ana Ray" if i % 2 else None for i in range(n)]
    meta = _meta(n, titles, names)
    emb = write_embeddings(
        tmp_path / "emb", [rng.standard_normal((n, 8)).astype(np.float32)], n, 8, meta, [], {"encoder": {}}
    )
    build_index(emb.path, tmp_path / "idx", IndexSettings(kind="flat", layout="none"))
    index = SimilarIndex.open(tmp_path / "idx")
    info = index.info(5)
    assert (info.title, info.artist_name) == ("Midnight Harbour", "Ana Ray")
    assert info.as_dict()["title"] == "Midnight Harbour" and info.as_dict()["artist_name"] == "Ana Ray"
    assert index.info(4).artist_name is None
    assert index.find("midnight harbour") == (1, [5])
    assert index.find("ana ray")[0] == n // 2
    neighbours = index.similar_to_track("t5", k=3).neighbours
    assert all(nb.track.title == titles[nb.track.row] for nb in neighbours)


def test_world_names_reach_the_tiny_index(tiny_world, tiny_index: SimilarIndex) -> None:
    latent = tiny_world.latent()
    title = {t["track_id"]: t["name"] for t in latent["tracks"]}
    artist = {a["artist_id"]: a["name"] for a in latent["artists"]}
    for row in (0, 7, len(tiny_index) - 1):
        info = tiny_index.info(row)
        assert info.title == title[info.track_id] and info.artist_name == artist[info.artist_id or ""]
    first = tiny_index.info(0)
    count, rows = tiny_index.find(first.title or "")
    assert count >= 1 and 0 in rows
    assert 0 in tiny_index.find(first.artist_name or "", limit=len(tiny_index))[1]


def test_a_table_with_names_gives_them_and_changed_names_are_written_again(
    tiny_world, tiny_store, search_encoder: Path, tmp_path: Path
) -> None:
    records = read_tracks(tiny_world.tracks).records[:6]
    table = tmp_path / "tracks.csv"
    lines = ["track_id,path,artist_id,title,artist_name"]
    lines += [f"{r.track_id},{r.path},{r.artist_id},Title {i},Artist {i}" for i, r in enumerate(records)]
    table.write_text("\n".join(lines) + "\n")
    embed_collection(search_encoder, tmp_path / "emb", features=tiny_store.path, tracks=table)
    emb = Embeddings.open(tmp_path / "emb")
    by_id = dict(zip(emb.tracks.track_ids, zip(emb.tracks.titles, emb.tracks.artist_names, strict=True), strict=True))
    assert by_id[records[2].track_id] == ("Title 2", "Artist 2")
    assert embed_collection(search_encoder, tmp_path / "emb", features=tiny_store.path, tracks=table).up_to_date
    table.write_text(table.read_text().replace("Title 2,", "Renamed,"))
    again = embed_collection(search_encoder, tmp_path / "emb", features=tiny_store.path, tracks=table)
    assert not again.up_to_date and again.computed == 0  # the vectors are reused, the names written
    emb = Embeddings.open(tmp_path / "emb")
    assert emb.tracks.titles[emb.tracks.track_ids.index(records[2].track_id)] == "Renamed"


def test_names_come_from_the_audio_files_own_tags(search_encoder: Path, tmp_path: Path) -> None:
    music = tmp_path / "music"
    write_tagged(music / "one.flac", {"title": "Slow River", "artist": "Mara Vell"}, freq=330.0, seconds=3.0)
    write_tagged(music / "two.wav", {"title": "Glass Hour", "artist": "Ode Quartet"}, freq=550.0, seconds=3.0)
    write_tagged(music / "three.wav", {}, freq=660.0, seconds=3.0)  # no tags: no names
    report = embed_collection(search_encoder, tmp_path / "emb", audio=music, workers=0)
    assert report.tracks == 3 and not report.failed
    emb = Embeddings.open(tmp_path / "emb")
    names = dict(zip(emb.tracks.track_ids, zip(emb.tracks.titles, emb.tracks.artist_names, strict=True), strict=True))
    assert names == {
        "one.flac": ("Slow River", "Mara Vell"),
        "two.wav": ("Glass Hour", "Ode Quartet"),
        "three.wav": (None, None),
    }
    build_index(emb.path, tmp_path / "idx", IndexSettings(layout="pca"))
    index = SimilarIndex.open(tmp_path / "idx")
    assert index.info(index.position("one.flac")).title == "Slow River"
    assert index.find("ode quartet") == (1, [index.position("two.wav")])


def test_a_file_whose_tags_cannot_be_read_has_no_names(tmp_path: Path) -> None:
    assert track_names(tmp_path / "missing.flac") == (None, None)
    assert track_names(write_garbage(tmp_path / "broken.flac")) == (None, None)
    assert track_names("") == (None, None)


def test_an_embeddings_folder_written_before_names_is_rewritten_with_them(
    tiny_embeddings: Embeddings, tiny_world, tiny_store, search_encoder: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_embeddings.path, tmp_path / "emb"))
    assert Embeddings.open(folder).tracks.has_names
    header = folder / "embeddings.json"
    header.write_text(header.read_text().replace('"names": 1', '"names_was": 1'))
    report = embed_collection(search_encoder, folder, features=tiny_store.path, tracks=tiny_world.tracks)
    assert not report.up_to_date and report.computed == 0 and report.reused == len(tiny_embeddings)
    assert Embeddings.open(folder).meta["names"] == 1
