"""Tagging datasets as they are distributed: MTG-Jamendo subsets, MagnaTagATune, and a generic CSV.

Every reader returns a ``TagDataset``: the tag vocabulary and, per split (train / validation /
test), track ids with a binary label matrix. ``align_to_store`` then keeps the tracks whose features
are in the feature store, and says how many (and which) are not: MTG-Jamendo's metadata is public
but its audio is a separate 500 GB download, so "tags without audio" is the normal case for a user
who has part of it, and the evaluation runs on what is there instead of failing.

The tag vocabulary is the training split's: a tag seen only in validation or test cannot be learned
and is dropped (reported). A tag with no positive in the test split stays in the vocabulary and is
reported and excluded by the metrics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixtape.catalog.tracks import split_csv_line
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger, read_text_file
from mixtape.text import and_more, quoted

log = get_logger(__name__)

SPLITS = ("train", "validation", "test")
MTG_SUBSETS = ("genre", "moodtheme", "instrument", "top50tags")
#: MagnaTagATune's common split: the 16 folders 0-9, a-f of the mp3s; 12 train, 1 validation, 3 test.
MTT_SPLIT_OF_FOLDER = {**{c: "train" for c in "0123456789ab"}, "c": "validation", **{c: "test" for c in "def"}}
TAG_SEPARATOR = "|"


class TagDataError(MixtapeError, ValueError):
    """A tag file or split that cannot be used; the message names the file (and row) and the problem."""


@dataclass
class TagSplit:
    """One split: track ids and their labels ``bool [n_tracks, n_tags]`` (columns = the dataset's tags)."""

    name: str
    track_ids: list[str]
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass
class TagDataset:
    """A multi-label tagging dataset: a tag vocabulary and its train / validation / test splits."""

    name: str
    tags: list[str]
    splits: dict[str, TagSplit]
    notes: list[str] = field(default_factory=list)  # what was dropped or skipped while reading, one line each

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {len(self.splits[s])}" for s in SPLITS if s in self.splits)
        return f"{self.name}: {len(self.tags)} tags; tracks: {sizes}"


def _read_text(path: Path, what: str) -> list[str]:
    return read_text_file(path, what, TagDataError).splitlines()


def _csv_rows(lines: Sequence[str], delimiter: str) -> list[list[str] | None]:
    """Each line's fields, None where its quoting is broken or a field is too long for the csv module:
    parsed line by line, so one bad quote spoils one row instead of swallowing the rest of the file."""
    return [split_csv_line(line, delimiter) for line in lines]


def _label_matrix(rows: Sequence[Sequence[str]], vocab: dict[str, int]) -> np.ndarray:
    """``bool [len(rows), len(vocab)]`` from each row's tag names (names outside ``vocab`` ignored)."""
    r = [i for i, tags in enumerate(rows) for t in tags if t in vocab]
    c = [vocab[t] for tags in rows for t in tags if t in vocab]
    out = np.zeros((len(rows), len(vocab)), dtype=bool)
    out[np.asarray(r, dtype=np.int64), np.asarray(c, dtype=np.int64)] = True
    return out


def _build(name: str, per_split: dict[str, tuple[list[str], list[list[str]], str]], notes: list[str]) -> TagDataset:
    """The dataset from raw (ids, tag lists, source) per split: vocabulary from train, others' extra tags dropped."""
    train_ids, train_tags, train_src = per_split["train"]
    vocab_list = sorted({t for tags in train_tags for t in tags})
    if not vocab_list:
        raise TagDataError(f"{train_src}: the training split has no tag at all")
    vocab = {t: i for i, t in enumerate(vocab_list)}
    splits: dict[str, TagSplit] = {}
    for split in SPLITS:
        ids, tags, src = per_split[split]
        unseen = sorted({t for row in tags for t in row} - vocab.keys())
        if unseen:
            notes.append(f"{src}: {len(unseen)} tag(s) never seen in training dropped: {and_more(unseen, show=quoted)}")
        splits[split] = TagSplit(split, ids, _label_matrix(tags, vocab), src)
    seen: dict[str, str] = {}
    for split in SPLITS:
        overlap = [t for t in splits[split].track_ids if t in seen]
        if overlap:
            notes.append(
                f"{splits[split].source}: {len(overlap)} track(s) also in the {seen[overlap[0]]} split (leak "
                f"between splits): {and_more(overlap, show=quoted)}"
            )
        seen.update({t: split for t in splits[split].track_ids if t not in seen})
    return TagDataset(name, vocab_list, splits, notes)


# --- MTG-Jamendo ---------------------------------------------------------------------------------


def read_mtg_tsv(path: str | Path, notes: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """An MTG-Jamendo TSV (``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS…``): track ids and their tags.

    Rows without a track id or without any tag, and repeated track ids, are skipped and noted.
    """
    path = Path(path)
    notes = notes if notes is not None else []
    lines = _read_text(path, "MTG-Jamendo split file")
    if not lines:
        raise TagDataError(f"{path}: empty file (expected the header TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS)")
    header = [h.strip().upper() for h in lines[0].split("\t")]
    if not header or header[0] != "TRACK_ID" or "TAGS" not in header:
        raise TagDataError(
            f"{path}: header {header[:6]} is not MTG-Jamendo's (TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION "
            "TAGS, tab-separated)"
        )
    first_tag = header.index("TAGS")
    ids: list[str] = []
    tags: list[list[str]] = []
    seen: set[str] = set()
    bad: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        tid = fields[0].strip()
        row_tags = [t.strip() for t in fields[first_tag:] if t.strip()]
        if not tid:
            bad.append(f"line {lineno}: no track id")
        elif not row_tags:
            bad.append(f"line {lineno}: track {tid!r} has no tag")
        elif tid in seen:
            bad.append(f"line {lineno}: track {tid!r} repeated")
        else:
            seen.add(tid)
            ids.append(tid)
            tags.append(row_tags)
    if bad:
        notes.append(f"{path}: {len(bad)} row(s) skipped: {'; '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    return ids, tags


def mtg_split_files(splits_dir: str | Path, subset: str, split_index: int = 0) -> dict[str, Path]:
    """The three split files of a subset, in a folder as distributed (``split-N/autotagging_<subset>-<split>.tsv``)
    or flat (the generated world writes ``autotagging_<subset>-<split>.tsv`` directly)."""
    if subset not in MTG_SUBSETS:
        raise TagDataError(f"unknown MTG-Jamendo subset {subset!r}; choose from {', '.join(MTG_SUBSETS)}")
    root = Path(splits_dir)
    if not root.is_dir():
        raise TagDataError(f"MTG-Jamendo splits folder not found: {root}")
    candidates = [root / f"split-{split_index}", root / "splits" / f"split-{split_index}", root]
    for folder in candidates:
        files = {s: folder / f"autotagging_{subset}-{s}.tsv" for s in SPLITS}
        if all(f.is_file() for f in files.values()):
            return files
        if any(f.is_file() for f in files.values()):
            absent = [str(f) for f in files.values() if not f.is_file()]
            raise TagDataError(f"{folder}: split file(s) missing for subset '{subset}': {', '.join(absent)}")
    raise TagDataError(
        f"{root}: no autotagging_{subset}-{{train,validation,test}}.tsv here nor under split-{split_index}/"
    )


def read_mtg_jamendo(splits_dir: str | Path, subset: str = "genre", split_index: int = 0) -> TagDataset:
    """An MTG-Jamendo subset (genre, moodtheme, instrument, top50tags) from its split TSVs."""
    notes: list[str] = []
    per_split = {}
    for split, file in mtg_split_files(splits_dir, subset, split_index).items():
        ids, tags = read_mtg_tsv(file, notes)
        per_split[split] = (ids, tags, str(file))
    return _build(f"mtg-jamendo/{subset}", per_split, notes)


# --- MagnaTagATune -------------------------------------------------------------------------------


def read_magnatagatune(annotations: str | Path, n_tags: int = 50, track_id: str = "clip_id") -> TagDataset:
    """MagnaTagATune's ``annotations_final.csv`` (tab-separated: clip_id, 188 binary tags, mp3_path).

    The usual benchmark: the ``n_tags`` most frequent tags (ties broken by column order) and the
    split by the mp3's folder (0-b train, c validation, d-f test). Tracks are named by ``clip_id``
    (or by ``mp3_path``), which must be how the feature store names them.
    """
    path = Path(annotations)
    lines = _read_text(path, "MagnaTagATune annotations")
    if not lines:
        raise TagDataError(f"{path}: empty file (expected MagnaTagATune's annotations_final.csv)")
    rows = _csv_rows(lines, "\t")
    header = [h.strip().strip('"') for h in rows[0] or []]
    if "clip_id" not in header or "mp3_path" not in header:
        raise TagDataError(f"{path}: header lacks clip_id/mp3_path; is this annotations_final.csv (tab-separated)?")
    if track_id not in ("clip_id", "mp3_path"):
        raise TagDataError(f"MagnaTagATune track ids come from 'clip_id' or 'mp3_path', got {track_id!r}")
    id_col, path_col = header.index("clip_id"), header.index("mp3_path")
    tag_cols = [i for i in range(len(header)) if i not in (id_col, path_col)]
    notes: list[str] = []
    bad: list[str] = []
    keep_rows: list[list[str]] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if row is None:
            bad.append(f"line {lineno}: malformed quoting or an over-long field")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            bad.append(f"line {lineno}: {len(row)} fields, header has {len(header)}")
            continue
        mp3 = row[path_col].strip().strip('"')
        if not mp3 or mp3[0].lower() not in MTT_SPLIT_OF_FOLDER or "/" not in mp3:
            bad.append(f"line {lineno}: mp3_path {mp3!r} is not in a folder 0-9/a-f")
            continue
        if any(row[i].strip().strip('"') not in ("0", "1") for i in tag_cols):
            bad.append(f"line {lineno}: tag values must be 0 or 1")
            continue
        keep_rows.append(row)
    if bad:
        notes.append(f"{path}: {len(bad)} row(s) skipped: {'; '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    if not keep_rows:
        raise TagDataError(f"{path}: no usable clip rows")
    values = np.array([[r[i].strip().strip('"') == "1" for i in tag_cols] for r in keep_rows], dtype=bool)
    counts = values.sum(axis=0)
    top = np.argsort(-counts, kind="stable")[: min(n_tags, len(tag_cols))]
    top = np.sort(top)  # keep the file's column order for the chosen tags
    tags = [header[tag_cols[i]] for i in top]
    labels = values[:, top]
    ids = [r[id_col if track_id == "clip_id" else path_col].strip().strip('"') for r in keep_rows]
    split_of = np.array([MTT_SPLIT_OF_FOLDER[r[path_col].strip().strip('"')[0].lower()] for r in keep_rows])
    splits = {
        s: TagSplit(s, [ids[i] for i in np.flatnonzero(split_of == s)], labels[split_of == s], str(path))
        for s in SPLITS
    }
    return TagDataset(f"magnatagatune/top{len(tags)}", tags, splits, notes)


# --- generic CSV ---------------------------------------------------------------------------------


def _read_id_list(path: Path) -> list[str]:
    lines = _read_text(path, "split file")
    ids = [ln.split(",")[0].split("\t")[0].strip() for ln in lines if ln.strip()]
    if ids and ids[0].lower() in ("track_id", "track"):
        ids = ids[1:]
    return ids


def read_tag_csv(path: str | Path, splits_dir: str | Path | None = None) -> TagDataset:
    """A CSV ``track_id,tags`` with ``|``-separated tags, split by a ``split`` column or by split files.

    Without a ``split`` column, ``splits_dir`` must hold ``train``, ``validation`` and ``test`` lists
    (``.txt``/``.csv``/``.tsv``, one track id per line); tracks in no list are ignored (counted).
    """
    path = Path(path)
    lines = _read_text(path, "tag CSV")
    if not lines:
        raise TagDataError(f"{path}: empty file (expected a header track_id,tags)")
    delimiter = "\t" if lines[0].count("\t") > lines[0].count(",") else ","
    rows = _csv_rows(lines, delimiter)
    header = [h.strip().lower() for h in rows[0] or []]
    if "track_id" not in header or "tags" not in header:
        raise TagDataError(
            f"{path}: header {header} needs columns track_id and tags (tags separated by '{TAG_SEPARATOR}')"
        )
    id_col, tag_col = header.index("track_id"), header.index("tags")
    split_col = header.index("split") if "split" in header else None
    if split_col is None and splits_dir is None:
        raise TagDataError(f"{path}: no 'split' column; give a splits folder with train/validation/test track lists")

    def get(row: list[str], i: int | None) -> str:
        return row[i].strip() if i is not None and i < len(row) else ""

    notes: list[str] = []
    bad: list[str] = []
    by_id: dict[str, tuple[list[str], str | None]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if row is None:
            bad.append(f"line {lineno}: malformed quoting or an over-long field")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        tid, tags = get(row, id_col), [t.strip() for t in get(row, tag_col).split(TAG_SEPARATOR) if t.strip()]
        split = get(row, split_col).lower() if split_col is not None else None
        if not tid:
            bad.append(f"line {lineno}: no track id")
        elif tid in by_id:
            bad.append(f"line {lineno}: track {tid!r} repeated")
        elif split is not None and split not in SPLITS:
            bad.append(f"line {lineno}: split {split!r} is not one of {', '.join(SPLITS)}")
        else:
            by_id[tid] = (tags, split)
    if bad:
        notes.append(f"{path}: {len(bad)} row(s) skipped: {'; '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    per_split: dict[str, tuple[list[str], list[list[str]], str]] = {}
    if split_col is not None:
        for s in SPLITS:
            ids = [t for t, (_, sp) in by_id.items() if sp == s]
            per_split[s] = (ids, [by_id[t][0] for t in ids], f"{path} (split={s})")
    else:
        folder = Path(splits_dir)  # type: ignore[arg-type]
        listed: set[str] = set()
        for s in SPLITS:
            files = [folder / f"{s}{ext}" for ext in (".txt", ".csv", ".tsv")]
            file = next((f for f in files if f.is_file()), None)
            if file is None:
                raise TagDataError(f"{folder}: no split list for '{s}' (looked for {', '.join(f.name for f in files)})")
            wanted = _read_id_list(file)
            unknown = [t for t in wanted if t not in by_id]
            if unknown:
                notes.append(f"{file}: {len(unknown)} track(s) not in {path}: {and_more(unknown, show=quoted)}")
            ids = [t for t in dict.fromkeys(wanted) if t in by_id]
            listed.update(ids)
            per_split[s] = (ids, [by_id[t][0] for t in ids], str(file))
        unlisted = [t for t in by_id if t not in listed]
        if unlisted:
            notes.append(
                f"{path}: {len(unlisted)} track(s) in no split list, ignored: {and_more(unlisted, show=quoted)}"
            )
    return _build(f"csv/{path.stem}", per_split, notes)


DATASET_KINDS = ("mtg-jamendo", "magnatagatune", "csv")


def load_tag_dataset(
    kind: str,
    tags: str | Path | None = None,
    splits: str | Path | None = None,
    subset: str = "genre",
    split_index: int = 0,
) -> TagDataset:
    """One entry point for the CLI and the experiment runner: ``kind`` picks the reader."""
    if kind == "mtg-jamendo":
        if splits is None:
            raise TagDataError(
                "mtg-jamendo needs the splits folder (the one holding split-0/ or the "
                "autotagging_<subset>-<split>.tsv files)"
            )
        return read_mtg_jamendo(splits, subset, split_index)
    if kind == "magnatagatune":
        if tags is None:
            raise TagDataError("magnatagatune needs the annotations file (annotations_final.csv)")
        return read_magnatagatune(tags)
    if kind == "csv":
        if tags is None:
            raise TagDataError("csv needs the tag file (track_id,tags with '|'-separated tags)")
        return read_tag_csv(tags, splits)
    raise TagDataError(f"unknown dataset kind {kind!r}; choose from {', '.join(DATASET_KINDS)}")


# --- the dataset against a feature store ------------------------------------------------------


@dataclass
class StoreSplit:
    """A split restricted to the tracks with features: their store rows, ids and labels."""

    name: str
    rows: np.ndarray
    track_ids: list[str]
    labels: np.ndarray
    source: str
    missing: list[str]  # ids of the split with no features in the store

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class AlignedTagDataset:
    """A tagging dataset on a feature store: what the probe and fine-tuning train and test on."""

    name: str
    tags: list[str]
    splits: dict[str, StoreSplit]
    notes: list[str]

    @property
    def n_missing(self) -> int:
        return sum(len(s.missing) for s in self.splits.values())

    def report(self) -> dict[str, object]:
        return {
            "dataset": self.name,
            "tags": len(self.tags),
            **{f"{s}_tracks": len(self.splits[s]) for s in SPLITS},
            **{f"{s}_missing_features": len(self.splits[s].missing) for s in SPLITS},
            "notes": list(self.notes),
        }


def _id_shape(track_id: str) -> str:
    """``track_0000241`` → ``track_<7 digits>``: what an id looks like, for mismatch messages."""
    return re.sub(r"\d+", lambda m: f"<{len(m.group())} digits>", track_id)


def align_to_store(
    dataset: TagDataset, store_track_ids: Sequence[str], store_name: str = "the feature store"
) -> AlignedTagDataset:
    """Keep each split's tracks that have features; report the rest; refuse what cannot be evaluated.

    Errors: no track of the dataset is in the store (ids of another vocabulary, the wrong store), or
    a split left with no track. Otherwise the missing tracks are counted per split, listed in the
    notes (with examples) and logged, and evaluation runs on the tracks present.
    """
    pos = {t: i for i, t in enumerate(store_track_ids)}
    notes = list(dataset.notes)
    total = sum(len(s) for s in dataset.splits.values())
    found = sum(1 for s in dataset.splits.values() for t in s.track_ids if t in pos)
    if total and found == 0:
        some = next((s.track_ids[0] for s in dataset.splits.values() if len(s)), "")
        store_ex = store_track_ids[0] if len(store_track_ids) else "(the store is empty)"
        sources = ", ".join(dict.fromkeys(s.source for s in dataset.splits.values()))
        raise TagDataError(
            f"none of the {total} tracks of {dataset.name} ({sources}) is in {store_name} ({len(store_track_ids)} "
            f"tracks): the tag file names tracks like {some!r} ({_id_shape(some)}), the store like {store_ex!r} "
            f"({_id_shape(store_ex)}); extract features for this dataset's audio, or use the store made from it"
        )
    splits: dict[str, StoreSplit] = {}
    for name in SPLITS:
        split = dataset.splits[name]
        rows = np.fromiter((pos.get(t, -1) for t in split.track_ids), dtype=np.int64, count=len(split))
        have = rows >= 0
        missing = [t for t, h in zip(split.track_ids, have, strict=True) if not h]
        if missing:
            line = (
                f"{name} split ({split.source}): {len(missing)} of {len(split)} tracks have no features in "
                f"{store_name} (audio absent or failed to decode), e.g. {and_more(missing, show=quoted)}; "
                f"evaluating on the {int(have.sum())} present"
            )
            notes.append(line)
            log.warning("%s", line)
        if not have.any():
            why = "is empty" if len(split) == 0 else f"has none of its {len(split)} tracks in {store_name}"
            raise TagDataError(
                f"{name} split of {dataset.name} ({split.source}) {why}: there is nothing to "
                f"{'test' if name == 'test' else 'train' if name == 'train' else 'validate'} on"
            )
        splits[name] = StoreSplit(
            name,
            rows[have],
            [t for t, h in zip(split.track_ids, have, strict=True) if h],
            split.labels[have],
            split.source,
            missing,
        )
    no_train = [t for t, n in zip(dataset.tags, splits["train"].labels.sum(axis=0), strict=True) if n == 0]
    if no_train:
        notes.append(
            f"{len(no_train)} tag(s) have no positive among the training tracks with features: "
            f"{and_more(no_train, show=quoted)}"
        )
    return AlignedTagDataset(dataset.name, list(dataset.tags), splits, notes)
