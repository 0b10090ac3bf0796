"""Playlist readers: Million Playlist Dataset slices, M3U/M3U8, JSON Lines and two-column CSV.

Each reader turns one file into ``RawPlaylists``: playlist ids and their entries as written (URIs,
ids or paths), in playlist order. Matching entries to tracks with audio happens later, in one place
(``mixtape.catalog.matching``), so every format gets the same matching rules and the same report.

A file that cannot be read at all raises ``MixtapeError`` naming the file (and, for JSON, the line
and column); a bad playlist or entry inside a readable file is skipped and counted in the report.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mixtape.catalog.report import (
    NOT_UTF8_LINE,
    SKIPPED_ENTRY,
    SKIPPED_PLAYLIST,
    CatalogReport,
)
from mixtape.catalog.tracks import split_csv_line
from mixtape.errors import MixtapeError

PLAYLIST_SUFFIXES = (".json", ".m3u", ".m3u8", ".jsonl", ".ndjson", ".csv", ".tsv")


@dataclass
class RawPlaylists:
    """Playlists of one file before matching: ``entries`` is flat, ``lengths`` splits it per playlist."""

    source: str
    ids: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)
    base: str = ""  # folder that relative paths in entries start from
    artists: list[str] | None = None  # per entry ("" unknown), where the format carries it (MPD)
    albums: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, pid: str, entries: Sequence[str], artists: Sequence[str] = (), albums: Sequence[str] = ()) -> None:
        self.ids.append(pid)
        self.lengths.append(len(entries))
        self.entries.extend(entries)
        if self.artists is not None:
            self.artists.extend(artists)
        if self.albums is not None:
            self.albums.extend(albums)


def _natural_key(path: Path) -> list[object]:
    """Sort ``mpd.slice.1000-1999.json`` after ``mpd.slice.0-999.json``, not after ``mpd.slice.10000-…``."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", str(path))]


def playlist_files(path: str | Path) -> list[Path]:
    """The playlist files a path names: the file itself, or every supported file under a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise MixtapeError(f"playlists not found: {path}")
    files = sorted(
        (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PLAYLIST_SUFFIXES), key=_natural_key
    )
    if not files:
        raise MixtapeError(f"{path}: no playlist files in this folder (looked for {', '.join(PLAYLIST_SUFFIXES)})")
    return files


def _json_error(path: Path, err: json.JSONDecodeError, line: int | None = None) -> str:
    """Where JSON broke: line and column in a file, or (JSON Lines) the column in line ``line``."""
    if line is not None:
        return f"{path}:{line}: malformed JSON at column {err.colno}: {err.msg}"
    return f"{path}: malformed JSON at line {err.lineno} column {err.colno} (character {err.pos}): {err.msg}"


def _decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MixtapeError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None


def _entry_key(track: object) -> str | None:
    """A playlist entry as a matching key: a string or number id, or an object's id/uri/path field."""
    if isinstance(track, str):
        return track.strip() or None
    if isinstance(track, int) and not isinstance(track, bool):
        return str(track)
    if isinstance(track, dict):
        for key in ("track_id", "track_uri", "path", "id"):
            value = track.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
    return None


def _playlist_id(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def read_mpd_slice(path: str | Path, report: CatalogReport | None = None) -> RawPlaylists:
    """One Million Playlist Dataset slice: ``{"info": …, "playlists": [{"pid", "tracks": [{"track_uri", …}]}]}``.

    Entries are ordered by their ``pos`` when every entry has one (the MPD does), else by list order.
    """
    path = Path(path)
    report = report if report is not None else CatalogReport()
    try:
        data = json.loads(_decode_utf8(path, path.read_bytes()))
    except json.JSONDecodeError as err:
        raise MixtapeError(_json_error(path, err)) from None
    except RecursionError:
        raise MixtapeError(f"{path}: malformed JSON (nested too deeply to be an MPD slice)") from None
    except OSError as err:
        raise MixtapeError(f"{path}: cannot read ({err.strerror})") from None
    playlists = data.get("playlists") if isinstance(data, dict) else None
    if not isinstance(playlists, list):
        raise MixtapeError(f'{path}: no \'playlists\' list (an MPD slice is {{"info": …, "playlists": [...]}})')
    out = RawPlaylists(source=str(path), base=str(path.parent), artists=[], albums=[])
    for i, pl in enumerate(playlists):
        pid = _playlist_id(pl.get("pid", pl.get("playlist_id"))) if isinstance(pl, dict) else None
        tracks = pl.get("tracks") if isinstance(pl, dict) else None
        if pid is None or not isinstance(tracks, list):
            what = "no 'pid'" if pid is None else "no 'tracks' list"
            report.add(SKIPPED_PLAYLIST, 1, [f"{path}: playlists[{i}] has {what}"])
            continue
        good = [t for t in tracks if isinstance(t, dict) and _entry_key(t.get("track_uri")) is not None]
        if len(good) < len(tracks):
            report.add(SKIPPED_ENTRY, len(tracks) - len(good), [f"{path}: pid {pid}: entry without a 'track_uri'"])
        if all(isinstance(t.get("pos"), int) for t in good):
            good.sort(key=lambda t: t["pos"])
        out.append(
            pid,
            [t["track_uri"].strip() for t in good],
            [str(t.get("artist_uri") or t.get("artist_name") or "") for t in good],
            [str(t.get("album_uri") or t.get("album_name") or "") for t in good],
        )
    return out


def _decode_m3u_line(raw: bytes) -> tuple[str, bool]:
    """Decode one M3U line: UTF-8 if it is, else Windows-1252 (Latin-1 for its five unassigned bytes).

    Lines are decoded one by one because real playlists mix encodings (a UTF-8 file edited by an old
    Windows player); returns the text and whether the fallback was needed.
    """
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252"), True
        except UnicodeDecodeError:
            return raw.decode("latin-1"), True


def read_m3u(path: str | Path, playlist_id: str | None = None, report: CatalogReport | None = None) -> RawPlaylists:
    """One M3U/M3U8 playlist (plain or extended): one entry per non-comment line, paths as written.

    Relative paths start from the playlist's folder (resolved when matching). ``#EXTINF`` and other
    ``#`` lines are comments. The id defaults to the file name without its suffix.
    """
    path = Path(path)
    report = report if report is not None else CatalogReport()
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MixtapeError(f"{path}: cannot read ({err.strerror})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # saved as "Unicode" by Windows tools
        data = data.decode("utf-16", errors="replace").encode("utf-8")
    if b"\0" in data:
        raise MixtapeError(
            f"{path}: not a text playlist (it holds NUL bytes: binary data, e.g. an audio file named .m3u)"
        )
    entries: list[str] = []
    fallback_lines: list[int] = []
    for lineno, raw in enumerate(data.splitlines(), start=1):
        line, fell_back = _decode_m3u_line(raw)
        if fell_back:
            fallback_lines.append(lineno)
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line)
    if fallback_lines:
        report.add(NOT_UTF8_LINE, len(fallback_lines), [f"{path}:{n}" for n in fallback_lines])
    out = RawPlaylists(source=str(path), base=str(path.parent))
    out.append(playlist_id or path.stem, entries)
    return out


def read_playlists_jsonl(path: str | Path, report: CatalogReport | None = None) -> RawPlaylists:
    """JSON Lines, one playlist per line: ``{"playlist_id": …, "tracks": [id, …]}``.

    Track entries may be ids (strings or integers), URIs, paths, or objects with a ``track_id``,
    ``track_uri`` or ``path`` field. A malformed line is skipped and reported with its line number.
    """
    path = Path(path)
    report = report if report is not None else CatalogReport()
    try:
        text = _decode_utf8(path, path.read_bytes())
    except OSError as err:
        raise MixtapeError(f"{path}: cannot read ({err.strerror})") from None
    out = RawPlaylists(source=str(path), base=str(path.parent))
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            report.add(SKIPPED_PLAYLIST, 1, [_json_error(path, err, line=lineno)])
            continue
        except RecursionError:
            report.add(SKIPPED_PLAYLIST, 1, [f"{path}:{lineno}: malformed JSON (nested too deeply)"])
            continue
        pid = _playlist_id(obj.get("playlist_id", obj.get("pid"))) if isinstance(obj, dict) else None
        tracks = obj.get("tracks") if isinstance(obj, dict) else None
        if pid is None or not isinstance(tracks, list):
            what = "no 'playlist_id'" if pid is None else "no 'tracks' list"
            report.add(SKIPPED_PLAYLIST, 1, [f"{path}:{lineno}: {what}"])
            continue
        keys = [_entry_key(t) for t in tracks]
        good = [k for k in keys if k is not None]
        if len(good) < len(keys):
            report.add(
                SKIPPED_ENTRY, len(keys) - len(good), [f"{path}:{lineno}: track entry that is not an id, URI or path"]
            )
        out.append(pid, good)
    return out


PLAYLIST_COLUMNS = ("playlist_id", "pid", "playlist")
TRACK_COLUMNS = ("track_id", "track_uri", "track", "path")


def read_playlists_csv(path: str | Path, report: CatalogReport | None = None) -> RawPlaylists:
    """A two-column table ``playlist_id,track_id`` (comma or tab), one row per entry, in playlist order.

    The rows of one playlist need not be contiguous; its entries keep their file order.
    """
    path = Path(path)
    report = report if report is not None else CatalogReport()
    try:
        text = _decode_utf8(path, path.read_bytes())
    except OSError as err:
        raise MixtapeError(f"{path}: cannot read ({err.strerror})") from None
    lines = text.splitlines()
    if not lines:
        raise MixtapeError(f"{path}: empty playlist table (expected a header 'playlist_id,track_id')")
    delimiter = "\t" if lines[0].count("\t") >= lines[0].count(",") else ","
    header = [h.strip().lower() for h in split_csv_line(lines[0], delimiter) or []]
    pcol = next((header.index(c) for c in PLAYLIST_COLUMNS if c in header), None)
    tcol = next((header.index(c) for c in TRACK_COLUMNS if c in header), None)
    if pcol is None or tcol is None:
        raise MixtapeError(
            f"{path}: header {header} needs a playlist column ({'/'.join(PLAYLIST_COLUMNS)}) and a track "
            f"column ({'/'.join(TRACK_COLUMNS)})"
        )
    grouped: dict[str, list[str]] = {}
    for lineno, line in enumerate(itertools.islice(lines, 1, None), start=2):  # no copy of a 66M-line list
        row = split_csv_line(line, delimiter)
        if row is None:
            report.add(SKIPPED_ENTRY, 1, [f"{path}:{lineno}: malformed quoting (a '\"' that is never closed)"])
            continue
        if not row or all(not c.strip() for c in row):
            continue
        pid = row[pcol].strip() if pcol < len(row) else ""
        tid = row[tcol].strip() if tcol < len(row) else ""
        if not pid or not tid:
            report.add(SKIPPED_ENTRY, 1, [f"{path}:{lineno}: missing playlist id or track"])
            continue
        grouped.setdefault(pid, []).append(tid)
    out = RawPlaylists(source=str(path), base=str(path.parent))
    for pid, entries in grouped.items():
        out.append(pid, entries)
    return out


def read_playlist_file(
    path: str | Path, report: CatalogReport | None = None, root: str | Path | None = None
) -> RawPlaylists:
    """Read one playlist file, its format chosen by suffix; M3U ids are paths relative to ``root``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_mpd_slice(path, report)
    if suffix in (".m3u", ".m3u8"):
        pid = (
            path.relative_to(root).with_suffix("").as_posix()
            if root is not None and path.is_relative_to(root)
            else None
        )
        return read_m3u(path, playlist_id=pid, report=report)
    if suffix in (".jsonl", ".ndjson"):
        return read_playlists_jsonl(path, report)
    if suffix in (".csv", ".tsv"):
        return read_playlists_csv(path, report)
    raise MixtapeError(f"{path}: unknown playlist format {suffix!r} (expected one of {', '.join(PLAYLIST_SUFFIXES)})")
