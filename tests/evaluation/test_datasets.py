"""Tag dataset readers (MTG-Jamendo as distributed, MagnaTagATune, generic CSV) and alignment to a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from mixtape.evaluation.datasets import (
    MTG_SUBSETS,
    TagDataError,
    align_to_store,
    load_tag_dataset,
    read_magnatagatune,
    read_mtg_jamendo,
    read_tag_csv,
)

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"


def _mtg_row(tid: str, artist: str, *tags: str) -> str:
    return "\t".join([tid, artist, "album_1", f"00/{tid}.mp3", "100.0", *tags]) + "\n"


def _write_mtg(folder: Path, rows: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in rows.items():
        (folder / f"autotagging_genre-{split}.tsv").write_text(HEADER + "".join(lines), encoding="utf-8")
    return folder


def _small_mtg(folder: Path) -> Path:
    return _write_mtg(
        folder,
        {
            "train": [
                _mtg_row("t1", "a1", "genre---rock", "genre---pop"),
                _mtg_row("t2", "a1", "genre---jazz"),
                _mtg_row("t3", "a2", "genre---rock"),
            ],
            "validation": [_mtg_row("v1", "a3", "genre---rock"), _mtg_row("v2", "a3", "genre---pop")],
            "test": [_mtg_row("x1", "a4", "genre---rock", "genre---metal"), _mtg_row("x2", "a4", "genre---pop")],
        },
    )


# --- MTG-Jamendo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subset", "n_tags"), [("genre", 87), ("moodtheme", 56), ("instrument", 40), ("top50tags", 50)]
)
def test_real_mtg_jamendo_split_files(subset: str, n_tags: int) -> None:
    splits = shared_data("mtg-jamendo", "splits")
    d = read_mtg_jamendo(splits, subset, split_index=0)
    assert len(d.tags) == n_tags  # the tag counts MTG-Jamendo's README gives for split-0
    assert all(t.startswith(("genre---", "mood/theme---", "instrument---")) for t in d.tags)
    for split in ("train", "validation", "test"):
        s = d.splits[split]
        assert len(s) > 1000 and s.labels.shape == (len(s), n_tags) and s.labels.any(axis=1).all()
    if subset == "genre":
        assert [len(d.splits[s]) for s in ("train", "validation", "test")] == [32572, 11043, 11479]
        first = d.splits["train"]
        assert first.track_ids[0] == "track_0000241" and first.labels[0, d.tags.index("genre---rock")]
    assert not any("leak" in n for n in d.notes)  # the official splits are disjoint


def test_real_mtg_without_audio_runs_on_the_tracks_present() -> None:
    d = read_mtg_jamendo(shared_data("mtg-jamendo", "splits"), "moodtheme")
    present = d.splits["train"].track_ids[:40] + d.splits["validation"].track_ids[:10] + d.splits["test"].track_ids[:10]
    a = align_to_store(d, ["not_a_jamendo_track", *present], "store S")
    assert [len(a.splits[s]) for s in ("train", "validation", "test")] == [40, 10, 10]
    assert len(a.splits["test"].missing) == len(d.splits["test"]) - 10
    report = a.report()
    assert report["test_missing_features"] == len(d.splits["test"]) - 10
    note = next(n for n in a.notes if n.startswith("test split"))
    assert (
        "autotagging_moodtheme-test.tsv" in note
        and "no features in store S" in note
        and "evaluating on the 10 present" in note
    )
    rows = a.splits["train"].rows
    assert rows.min() == 1 and rows.max() == 40  # store rows, not dataset rows


def test_world_style_flat_folder_and_vocabulary_from_train(tmp_path: Path) -> None:
    d = read_mtg_jamendo(_small_mtg(tmp_path / "splits"), "genre")
    assert d.tags == ["genre---jazz", "genre---pop", "genre---rock"]  # metal is only in test
    assert any("genre---metal" in n and "never seen in training" in n for n in d.notes)
    x = d.splits["test"]
    assert x.track_ids == ["x1", "x2"] and x.labels.tolist() == [[False, False, True], [False, True, False]]


def test_mtg_rows_without_tags_or_repeated_are_skipped_and_noted(tmp_path: Path) -> None:
    folder = _small_mtg(tmp_path / "s")
    with open(folder / "autotagging_genre-train.tsv", "a", encoding="utf-8") as f:
        f.write(_mtg_row("t9", "a1") + _mtg_row("t1", "a1", "genre---pop"))
    d = read_mtg_jamendo(folder, "genre")
    assert d.splits["train"].track_ids == ["t1", "t2", "t3"]
    note = next(n for n in d.notes if "skipped" in n)
    assert "2 row(s)" in note and "line 5" in note and "line 6" in note


def test_mtg_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TagDataError, match="unknown MTG-Jamendo subset"):
        read_mtg_jamendo(tmp_path, "colour")
    with pytest.raises(TagDataError, match="no autotagging_genre"):
        read_mtg_jamendo(tmp_path, "genre")
    folder = _small_mtg(tmp_path / "x")
    (folder / "autotagging_genre-test.tsv").unlink()
    with pytest.raises(TagDataError, match="autotagging_genre-test.tsv"):
        read_mtg_jamendo(folder, "genre")
    (folder / "autotagging_genre-test.tsv").write_text("id,tags\n", encoding="utf-8")
    with pytest.raises(TagDataError, match="not MTG-Jamendo's"):
        read_mtg_jamendo(folder, "genre")
    assert set(MTG_SUBSETS) == {"genre", "moodtheme", "instrument", "top50tags"}


# --- alignment: bad input ---------------------------------------------------------------------


def test_tag_file_matching_no_store_track_is_refused(tmp_path: Path) -> None:
    d = read_mtg_jamendo(_small_mtg(tmp_path / "s"), "genre")
    with pytest.raises(TagDataError, match="none of the 7 tracks") as err:
        align_to_store(d, ["track_000001", "track_000002"], "feature store F")
    msg = str(err.value)
    assert "feature store F" in msg and "'t1'" in msg and "'track_000001'" in msg and "track_<6 digits>" in msg


def test_empty_test_split_is_refused(tmp_path: Path) -> None:
    folder = _small_mtg(tmp_path / "s")
    (folder / "autotagging_genre-test.tsv").write_text(HEADER, encoding="utf-8")
    d = read_mtg_jamendo(folder, "genre")
    with pytest.raises(TagDataError, match="test split .*autotagging_genre-test.tsv.* is empty"):
        align_to_store(d, ["t1", "t2", "t3", "v1", "v2"])


def test_test_split_without_features_is_refused(tmp_path: Path) -> None:
    d = read_mtg_jamendo(_small_mtg(tmp_path / "s"), "genre")
    with pytest.raises(TagDataError, match="test split .* has none of its 2 tracks"):
        align_to_store(d, ["t1", "t2", "t3", "v1", "v2"], "store Z")


def test_tag_present_only_in_train_is_noted_and_kept(tmp_path: Path) -> None:
    d = read_mtg_jamendo(_small_mtg(tmp_path / "s"), "genre")
    a = align_to_store(d, ["t1", "t2", "t3", "v1", "v2", "x1", "x2"])
    jazz = a.tags.index("genre---jazz")
    assert a.splits["train"].labels[:, jazz].any() and not a.splits["test"].labels[:, jazz].any()
    assert a.n_missing == 0


# --- MagnaTagATune -----------------------------------------------------------------------------


def _write_mtt(path: Path) -> Path:
    tags = ["guitar", "classical", "slow", "techno", "no voice"]
    lines = ["\t".join(['"clip_id"', *[f'"{t}"' for t in tags], '"mp3_path"'])]
    clips = [
        (2, [1, 1, 0, 0, 1], "f/american_bach-01-bwv54-0-29.mp3"),
        (6, [1, 0, 1, 0, 0], "0/artist_a-song-30-59.mp3"),
        (10, [0, 1, 1, 0, 1], "b/artist_b-song-0-29.mp3"),
        (11, [1, 0, 0, 1, 0], "c/artist_c-song-0-29.mp3"),
        (12, [0, 0, 1, 0, 0], "d/artist_d-song-0-29.mp3"),
        (13, [1, 1, 0, 0, 0], "9/artist_e-song-0-29.mp3"),
        (14, [1, 0, 2, 0, 0], "9/artist_f-song-0-29.mp3"),  # a value that is not 0/1: skipped
        (15, [1, 0, 0, 0, 0], "z/artist_g-song-0-29.mp3"),  # a folder outside 0-f: skipped
    ]
    for cid, vals, mp3 in clips:
        lines.append("\t".join([f'"{cid}"', *[f'"{v}"' for v in vals], f'"{mp3}"']))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_magnatagatune_top_tags_and_folder_split(tmp_path: Path) -> None:
    d = read_magnatagatune(_write_mtt(tmp_path / "annotations_final.csv"), n_tags=3)
    # counts over usable clips: guitar 4, classical 3, slow 3, techno 1, no voice 2 → top 3, file order kept
    assert d.tags == ["guitar", "classical", "slow"]
    assert d.splits["train"].track_ids == ["6", "10", "13"]
    assert d.splits["validation"].track_ids == ["11"]
    assert d.splits["test"].track_ids == ["2", "12"]
    assert d.splits["test"].labels.tolist() == [[True, True, False], [False, False, True]]
    assert any("2 row(s) skipped" in n for n in d.notes)
    by_path = read_magnatagatune(tmp_path / "annotations_final.csv", n_tags=3, track_id="mp3_path")
    assert by_path.splits["validation"].track_ids == ["c/artist_c-song-0-29.mp3"]


def test_magnatagatune_wrong_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("track_id,tags\n1,rock\n", encoding="utf-8")
    with pytest.raises(TagDataError, match="clip_id/mp3_path"):
        read_magnatagatune(tmp_path / "a.csv")
    with pytest.raises(TagDataError, match="not found"):
        read_magnatagatune(tmp_path / "absent.csv")


# --- generic CSV -------------------------------------------------------------------------------


def test_generic_csv_with_split_column(tmp_path: Path) -> None:
    p = tmp_path / "tags.csv"
    p.write_text(
        "track_id,tags,split\nA,rock|loud,train\nB,jazz,train\nC,rock,validation\nD,jazz|loud,test\nE,rock,nonsense\n,rock,train\n",
        encoding="utf-8",
    )
    d = read_tag_csv(p)
    assert d.tags == ["jazz", "loud", "rock"]
    assert d.splits["train"].track_ids == ["A", "B"] and d.splits["test"].labels.tolist() == [[True, True, False]]
    assert any("2 row(s) skipped" in n and "line 6" in n and "line 7" in n for n in d.notes)


def test_generic_csv_with_split_files(tmp_path: Path) -> None:
    p = tmp_path / "tags.csv"
    p.write_text("track_id,tags\nA,rock\nB,jazz\nC,rock\nD,jazz\nE,rock\n", encoding="utf-8")
    sp = tmp_path / "splits"
    sp.mkdir()
    (sp / "train.txt").write_text("A\nB\n", encoding="utf-8")
    (sp / "validation.txt").write_text("track_id\nC\n", encoding="utf-8")
    (sp / "test.csv").write_text("D\nZ\n", encoding="utf-8")
    d = load_tag_dataset("csv", tags=p, splits=sp)
    assert [d.splits[s].track_ids for s in ("train", "validation", "test")] == [["A", "B"], ["C"], ["D"]]
    assert any("'Z'" in n for n in d.notes) and any("'E'" in n and "in no split list" in n for n in d.notes)
    with pytest.raises(TagDataError, match="no 'split' column"):
        read_tag_csv(p)
    (sp / "train.txt").unlink()
    with pytest.raises(TagDataError, match="no split list for 'train'"):
        read_tag_csv(p, sp)


def test_load_tag_dataset_dispatch_errors() -> None:
    with pytest.raises(TagDataError, match="choose from"):
        load_tag_dataset("audioset")
    with pytest.raises(TagDataError, match="splits folder"):
        load_tag_dataset("mtg-jamendo")
    with pytest.raises(TagDataError, match="annotations"):
        load_tag_dataset("magnatagatune")


def test_split_overlap_is_noted(tmp_path: Path) -> None:
    folder = _small_mtg(tmp_path / "s")
    with open(folder / "autotagging_genre-test.tsv", "a", encoding="utf-8") as f:
        f.write(_mtg_row("t1", "a1", "genre---rock"))
    d = read_mtg_jamendo(folder, "genre")
    assert any("also in the train split" in n for n in d.notes)
    assert np.array_equal(d.splits["test"].labels.sum(axis=0), [0, 1, 2])
