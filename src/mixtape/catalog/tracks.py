"""The tracks table: which audio files make up a collection, with optional artist/album/duration and
the names a person reads (``title``, ``artist_name``).

Read from CSV/TSV with a header naming at least ``track_id`` and ``path`` (case-insensitive, so
MTG-Jamendo's ``TRACK_ID ... PATH`` TSVs load as they are distributed).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from mixtape.errors import MixtapeError
from mixtape.fileio import read_text_file

REQUIRED = ("track_id", "path")
OPTIONAL = ("artist_id", "album_id", "duration", "title", "artist_name")


@dataclass(frozen=True)
class TrackRecord:
    track_id: str
    path: Path  # absolute, resolved against the audio root
    artist_id: str | None = None
    album_id: str | None = None
    duration: float | None = None
    title: str | None = None  # the track's title as a person reads it (the search page shows it)
    artist_name: str | None = None  # its artist's name (artist_id is what the pairs and filters compare)


@dataclass
class TrackTable:
    records: list[TrackRecord]
    skipped: list[str] = field(default_factory=list)  # one human-readable reason per bad row

    def __len__(self) -> int:
        return len(self.records)


def read_table_lines(path: Path, what: str, expected: str) -> tuple[list[str], str]:
    """The lines of a small CSV/TSV file and its delimiter (tab or comma, from the first line).

    Shared by every table reader of the catalogue so a missing, non-UTF-8 or empty file gets the
    same message, naming the file, whatever table it is.
    """
    lines = read_text_file(path, what).splitlines()
    if not lines:
        raise MixtapeError(f"{path}: empty {what} (expected {expected})")
    return lines, "\t" if lines[0].count("\t") >= lines[0].count(",") else ","


def split_csv_line(line: str, delimiter: str) -> list[str] | None:
    """The fields of one CSV/TSV line, or None when its quoting is broken (a quote never closed).

    Tables are parsed line by line because ``csv.reader`` over a list of lines lets one unbalanced
    quote swallow every later row into a single field, silently; no table mixtape reads has a field
    that spans lines.
    """
    if '"' not in line:
        return line.split(delimiter) if line else []
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return None


def read_tracks(path: str | Path, audio_root: str | Path | None = None) -> TrackTable:
    """Read a tracks table; relative paths are resolved against ``audio_root`` (default: the table's folder).

    Bad rows (missing id or path, a duplicate id, an unreadable duration) are skipped and listed in
    ``TrackTable.skipped`` with their line number; only a table with no usable header is an error.
    """
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else path.parent
    lines, delimiter = read_table_lines(path, "tracks table", f"a header with {', '.join(REQUIRED)}")
    header = [h.strip().lower() for h in split_csv_line(lines[0], delimiter) or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise MixtapeError(f"{path}: header {header} lacks required column(s) {missing}")
    col = {name: header.index(name) for name in (*REQUIRED, *OPTIONAL) if name in header}

    def get(row: list[str], name: str) -> str | None:
        i = col.get(name)
        return row[i].strip() if i is not None and i < len(row) and row[i].strip() else None

    records: list[TrackRecord] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(itertools.islice(lines, 1, None), start=2):  # no copy of a 66M-line list
        row = split_csv_line(line, delimiter)
        if row is None:
            skipped.append(
                f"{path}:{lineno}: malformed quoting (a '\"' that is never closed); fix the quotes of this row"
            )
            continue
        if not row or all(not c.strip() for c in row):
            continue
        tid, rel = get(row, "track_id"), get(row, "path")
        if tid is None or rel is None:
            skipped.append(f"{path}:{lineno}: missing track_id or path")
            continue
        if tid in seen:
            skipped.append(f"{path}:{lineno}: duplicate track_id {tid!r} (first occurrence kept)")
            continue
        duration: float | None = None
        if (d := get(row, "duration")) is not None:
            try:
                duration = float(d)
            except ValueError:
                skipped.append(f"{path}:{lineno}: duration {d!r} is not a number")
                continue
        seen.add(tid)
        p = Path(rel)
        records.append(
            TrackRecord(
                tid,
                p if p.is_absolute() else root / p,
                get(row, "artist_id"),
                get(row, "album_id"),
                duration,
                get(row, "title"),
                get(row, "artist_name"),
            )
        )
    return TrackTable(records, skipped)
