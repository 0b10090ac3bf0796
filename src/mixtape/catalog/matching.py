"""Matching playlist entries to tracks with audio: by id, by path, or through a mapping file.

Playlists name tracks in their own vocabulary (Spotify URIs, file paths written by a player, ids
of another database); only tracks in the tracks table have audio. One matcher applies the same
rules to every format, so "unmatched" means the same thing everywhere and can be reported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from urllib.parse import unquote, urlparse

import numpy as np

from mixtape.catalog.report import UNKNOWN_MAPPING, CatalogReport
from mixtape.catalog.tracks import read_table_lines, split_csv_line
from mixtape.errors import MixtapeError

MATCH_MODES = ("auto", "id", "path")
_URL_SCHEMES = ("http://", "https://", "ftp://", "rtsp://")


def _is_uri(entry: str) -> bool:
    """``spotify:track:XYZ``-style names: a colon and no path separator (``C:\\x.mp3`` has one)."""
    return ":" in entry and "/" not in entry and "\\" not in entry


def resolve_entry_path(entry: str, base: str) -> str:
    """An M3U-style entry as a normalised absolute path: ``file://`` URIs decoded, Windows separators
    turned around, relative paths joined to the playlist's folder (itself made absolute from the
    working directory when it is relative, as the tracks table's paths are: see ``_absolute``)."""
    if entry.startswith("file://"):
        parsed = urlparse(entry)
        entry = unquote(parsed.path)
    if "\\" in entry and "/" not in entry:
        entry = entry.replace("\\", "/")
    return _absolute(entry if os.path.isabs(entry) else os.path.join(base, entry))


def _absolute(path: str) -> str:
    """``path`` normalised and absolute. Both sides of a path match go through here, so a playlist
    written with absolute paths (as players write them) matches a tracks table given by a relative
    path (``--tracks my/tracks.csv``), and relative entries match a table given by an absolute one."""
    return os.path.abspath(path)


def read_mapping(
    path: str | Path, track_index: Mapping[str, int], report: CatalogReport | None = None
) -> dict[str, int]:
    """A two-column CSV/TSV ``entry,track_id`` (a header line is allowed): playlist entry → track.

    For playlists that name tracks in another vocabulary (e.g. Spotify URIs for a catalogue keyed by
    ISRC or file name). Rows naming a track missing from the tracks table are counted and ignored.
    """
    path = Path(path)
    report = report if report is not None else CatalogReport()
    lines, delimiter = read_table_lines(path, "mapping file", "rows 'entry,track_id'")
    mapping: dict[str, int] = {}
    unknown: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        row = split_csv_line(line, delimiter)
        if row is None:
            raise MixtapeError(
                f"{path}:{lineno}: malformed quoting or an over-long field; expected two columns 'entry,track_id'"
            )
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise MixtapeError(f"{path}:{lineno}: expected two columns 'entry,track_id', got {row!r}")
        entry, tid = row[0].strip(), row[1].strip()
        if lineno == 1 and tid.lower() in ("track_id", "track") and tid not in track_index:
            continue  # header
        idx = track_index.get(tid)
        if idx is None:
            unknown.append(f"{path}:{lineno}: {tid!r}")
            continue
        mapping.setdefault(entry, idx)
    report.add(UNKNOWN_MAPPING, len(unknown), unknown)
    return mapping


class TrackMatcher:
    """Maps entry strings to track indices (-1 when no track with audio matches).

    Rules, in order: the mapping file; the exact track id; the last ``:`` field of a URI
    (``spotify:track:XYZ`` → ``XYZ``); the normalised path (relative to the playlist's folder); the
    file name without suffix as a track id. ``mode='id'`` or ``'path'`` keeps only the id or path
    rules. Results of base-independent rules are cached, so a URI seen in a thousand MPD slices is
    looked up once.
    """

    def __init__(
        self,
        track_ids: Sequence[str] | np.ndarray,
        paths: Sequence[str] | np.ndarray | None = None,
        mapping: Mapping[str, int] | None = None,
        mode: str = "auto",
    ) -> None:
        if mode not in MATCH_MODES:
            raise MixtapeError(f"unknown match mode {mode!r} (expected one of {', '.join(MATCH_MODES)})")
        self.mode = mode
        self.by_id: dict[str, int] = {tid: i for i, tid in enumerate(track_ids)}
        self._paths = paths
        self._by_path: dict[str, int] | None = None
        self.mapping = dict(mapping or {})
        self._cache: dict[str, int] = {}

    @property
    def by_path(self) -> dict[str, int]:
        if self._by_path is None:
            self._by_path = {
                _absolute(str(p)): i for i, p in enumerate(self._paths if self._paths is not None else ()) if str(p)
            }
        return self._by_path

    def _by_ids(self, entry: str) -> int:
        idx = self.by_id.get(entry, -1)
        if idx < 0 and ":" in entry:
            idx = self.by_id.get(entry.rsplit(":", 1)[1], -1)
        return idx

    def lookup(self, entry: str, base: str) -> int:
        if (idx := self._cache.get(entry)) is not None:
            return idx
        idx = self.mapping.get(entry, -1)
        if idx < 0 and self.mode != "path":
            idx = self._by_ids(entry)
        if idx >= 0 or self.mode == "id" or entry.startswith(_URL_SCHEMES) or _is_uri(entry):
            self._cache[entry] = idx
            return idx
        absolute = os.path.isabs(entry) or entry.startswith("file://")
        key = entry if absolute else f"{base}\0{entry}"  # a relative path means something else in another folder
        if (idx := self._cache.get(key)) is not None:
            return idx
        path = resolve_entry_path(entry, base)
        idx = self.by_path.get(path, -1)
        if idx < 0 and self.mode == "auto":
            idx = self.by_id.get(PurePath(path).stem, -1)
        self._cache[key] = idx
        return idx

    def match(self, entries: Sequence[str], base: str = "") -> np.ndarray:
        """Track index per entry (int64, -1 unmatched); each distinct entry is looked up once."""
        found = {e: self.lookup(e, base) for e in dict.fromkeys(entries)}
        return np.fromiter((found[e] for e in entries), dtype=np.int64, count=len(entries))
