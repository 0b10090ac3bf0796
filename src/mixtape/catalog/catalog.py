"""The in-memory catalogue: integer-indexed tracks and sparse playlist × track incidence matrices.

Every later stage works on track indices and sparse matrices, never on dicts of lists, so the same
code runs on a 200-track test world and on the Million Playlist Dataset (1M playlists, 66M entries).
The playlist matrices store, for each (playlist, track), the track's 1-based position in the
playlist, so order is kept where the format has it (``ordered_rows``).

What is held out for evaluation is separated here, once: held-out playlists never enter
``playlists``, and held-out tracks are removed from the training playlists, so no strategy built on
``playlists`` can see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.catalog.matching import TrackMatcher, read_mapping
from mixtape.catalog.playlists import RawPlaylists, playlist_files, read_playlist_file
from mixtape.catalog.report import (
    DUPLICATE_ENTRY,
    DUPLICATE_PLAYLIST,
    EMPTY_PLAYLIST,
    FEW_AUDIO_PLAYLIST,
    HELDOUT_ENTRY,
    HELDOUT_OVERLAP,
    SINGLE_TRACK_PLAYLIST,
    SKIPPED_FILE,
    SKIPPED_TRACK_ROW,
    TRACK_IN_NO_PLAYLIST,
    UNKNOWN_HOLDOUT,
    UNMATCHED_ENTRY,
    UNMATCHED_KEY,
    CatalogReport,
)
from mixtape.catalog.tracks import TrackRecord, read_tracks
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger, progress, read_text_file

log = get_logger(__name__)


class UnknownTrackError(MixtapeError, KeyError):
    """A track id that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _empty_csr(n_rows: int, n_cols: int) -> sp.csr_matrix:
    return sp.csr_matrix((n_rows, n_cols), dtype=np.int32)


def _csr_from_sorted(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix from entries already sorted by (row, col) and free of duplicates: no re-sort."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    idx_dtype = np.int32 if max(shape) < 2**31 - 1 and len(cols) < 2**31 - 1 else np.int64
    m = sp.csr_matrix(
        (data.astype(np.int32, copy=False), cols.astype(idx_dtype, copy=False), indptr.astype(idx_dtype, copy=False)),
        shape=shape,
    )
    m.has_sorted_indices = True
    return m


def ordered_rows(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) with each row's columns in playlist order (by the stored position)."""
    m = matrix.tocsr()
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((m.data, rows))
    return m.indptr.astype(np.int64), m.indices[order]


@dataclass
class Catalog:
    """Tracks (index i ↔ ``track_ids[i]``) with artist/album codes, and the playlists as sparse matrices.

    ``artist``/``album`` are int32 codes into ``artist_ids``/``album_ids`` (-1 unknown).
    ``playlists`` [n_playlists × n_tracks] holds training playlists only, without held-out tracks;
    ``heldout_playlists`` is for evaluation only. ``context`` [n_playlists × n_context] keeps the
    training playlists' entries that match no track with audio: they can't be positives, but they
    are still evidence of which tracks go together (track2vec reads them).
    """

    track_ids: np.ndarray
    paths: np.ndarray
    artist: np.ndarray
    album: np.ndarray
    durations: np.ndarray
    artist_ids: np.ndarray
    album_ids: np.ndarray
    playlists: sp.csr_matrix
    playlist_ids: np.ndarray
    heldout_playlists: sp.csr_matrix
    heldout_playlist_ids: np.ndarray
    heldout_track_mask: np.ndarray
    context: sp.csr_matrix
    context_ids: np.ndarray
    report: CatalogReport = field(default_factory=CatalogReport)
    sources: dict[str, list[str]] = field(default_factory=dict)
    _index: dict[str, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.track_ids)
        for name in ("paths", "artist", "album", "durations", "heldout_track_mask"):
            if len(getattr(self, name)) != n:
                raise MixtapeError(f"catalogue: {name} has {len(getattr(self, name))} values for {n} tracks")
        for name, ids in (("playlists", "playlist_ids"), ("heldout_playlists", "heldout_playlist_ids")):
            m = getattr(self, name)
            if m.shape[1] != n or m.shape[0] != len(getattr(self, ids)):
                raise MixtapeError(f"catalogue: {name} has shape {m.shape}, expected ({len(getattr(self, ids))}, {n})")
        if self.context.shape != (self.playlists.shape[0], len(self.context_ids)):
            raise MixtapeError(
                f"catalogue: context has shape {self.context.shape}, expected ({self.playlists.shape[0]}, "
                f"{len(self.context_ids)})"
            )
        for codes, names, what in ((self.artist, self.artist_ids, "artist"), (self.album, self.album_ids, "album")):
            if len(codes) and (codes.min() < -1 or codes.max() >= len(names)):
                raise MixtapeError(f"catalogue: {what} codes outside [-1, {len(names)})")

    @classmethod
    def from_arrays(
        cls,
        track_ids: Sequence[str] | np.ndarray,
        playlists: sp.spmatrix | None = None,
        *,
        artist: np.ndarray | None = None,
        album: np.ndarray | None = None,
        paths: Sequence[str] | None = None,
        durations: np.ndarray | None = None,
        heldout_playlists: sp.spmatrix | None = None,
        heldout_track_mask: np.ndarray | None = None,
        playlist_ids: Sequence[str] | None = None,
        heldout_playlist_ids: Sequence[str] | None = None,
        context: sp.spmatrix | None = None,
        context_ids: Sequence[str] | None = None,
    ) -> Catalog:
        """A catalogue from arrays already indexed (generated worlds, benchmarks, tests).

        ``playlists`` values are positions (1-based) or any non-zero value when order is unknown.
        Artist/album codes are used as given, named ``artist_<code>``/``album_<code>``.
        """
        ids = np.asarray(track_ids, dtype=object)
        n = len(ids)
        pl = sp.csr_matrix(playlists, dtype=np.int32) if playlists is not None else _empty_csr(0, n)
        hpl = sp.csr_matrix(heldout_playlists, dtype=np.int32) if heldout_playlists is not None else _empty_csr(0, n)
        art = np.full(n, -1, np.int32) if artist is None else np.asarray(artist, dtype=np.int32)
        alb = np.full(n, -1, np.int32) if album is None else np.asarray(album, dtype=np.int32)
        mask = np.zeros(n, bool) if heldout_track_mask is None else np.asarray(heldout_track_mask, dtype=bool)
        if mask.any() and pl.nnz:
            pl = sp.csr_matrix(pl.multiply(~mask[None, :]), dtype=np.int32)
        pl.eliminate_zeros()
        pl.sort_indices()
        ctx = sp.csr_matrix(context, dtype=np.int32) if context is not None else _empty_csr(pl.shape[0], 0)
        return cls(
            track_ids=ids,
            paths=np.asarray(paths if paths is not None else [""] * n, dtype=object),
            artist=art,
            album=alb,
            durations=np.full(n, np.nan, np.float32) if durations is None else np.asarray(durations, np.float32),
            artist_ids=np.array([f"artist_{i}" for i in range(int(art.max(initial=-1)) + 1)], dtype=object),
            album_ids=np.array([f"album_{i}" for i in range(int(alb.max(initial=-1)) + 1)], dtype=object),
            playlists=pl,
            playlist_ids=np.asarray(
                playlist_ids if playlist_ids is not None else [str(i) for i in range(pl.shape[0])], dtype=object
            ),
            heldout_playlists=hpl,
            heldout_playlist_ids=np.asarray(
                heldout_playlist_ids
                if heldout_playlist_ids is not None
                else [f"heldout_{i}" for i in range(hpl.shape[0])],
                dtype=object,
            ),
            heldout_track_mask=mask,
            context=ctx,
            context_ids=np.asarray(
                context_ids if context_ids is not None else [str(i) for i in range(ctx.shape[1])], dtype=object
            ),
        )

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def n_playlists(self) -> int:
        return self.playlists.shape[0]

    @property
    def trainable(self) -> np.ndarray:
        """Tracks a strategy may use as anchor or positive (everything not held out)."""
        return ~self.heldout_track_mask

    def index_of(self, track_id: str) -> int:
        if self._index is None:
            self._index = {tid: i for i, tid in enumerate(self.track_ids)}
        try:
            return self._index[track_id]
        except KeyError:
            raise UnknownTrackError(f"track {track_id!r} is not in the catalogue ({len(self)} tracks)") from None

    def indices_of(self, track_ids: Iterable[str], missing: int = -1) -> np.ndarray:
        """Indices of many ids at once (``missing`` for unknown ones), for splits and evaluation."""
        if self._index is None:
            self._index = {tid: i for i, tid in enumerate(self.track_ids)}
        get = self._index.get
        return np.fromiter((get(t, missing) for t in track_ids), dtype=np.int64)

    def summary(self) -> str:
        entries = int(self.playlists.nnz)
        in_playlist = int((np.bincount(self.playlists.indices, minlength=len(self)) > 0).sum()) if entries else 0
        lines = [
            f"catalogue: {len(self):,} tracks ({int(self.heldout_track_mask.sum()):,} held out), "
            f"{len(self.artist_ids):,} artists, {len(self.album_ids):,} albums",
            f"  training playlists: {self.n_playlists:,} ({entries:,} entries, {in_playlist:,} distinct tracks, "
            f"{len(self.context_ids):,} {'entry' if len(self.context_ids) == 1 else 'entries'} without audio kept "
            "as context)",
            f"  held-out playlists: {self.heldout_playlists.shape[0]:,} ({int(self.heldout_playlists.nnz):,} entries)",
        ]
        return "\n".join(lines) + "\n" + self.report.summary()


# --- loading -----------------------------------------------------------------------------------


@dataclass
class _Gathered:
    """Entries of one playlist set (training or held-out), matched, before filtering."""

    ids: list[str] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)  # unmatched entries: code of their name; else -1
    sources: list[str] = field(default_factory=list)


def _read_sets(paths: Sequence[Path], report: CatalogReport, what: str) -> Iterable[RawPlaylists]:
    """Every playlist file under ``paths``; a file that cannot be read is skipped and reported."""
    files: list[tuple[Path, Path | None]] = []
    for p in paths:
        p = Path(p)
        files.extend((f, p if p.is_dir() else None) for f in playlist_files(p))
    for f, root in progress(files, desc=f"reading {what} playlists", unit="file"):
        try:
            yield read_playlist_file(f, report, root=root)
        except MixtapeError as err:
            report.add(SKIPPED_FILE, 1, [str(err)])
            log.warning("skipped playlist file: %s", err)


def _gather(
    raws: Iterable[RawPlaylists],
    matcher: TrackMatcher,
    report: CatalogReport,
    seen: set[str],
    exclude: set[str],
    unmatched_codes: dict[str, int],
    fill: tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, int], list[str], list[str]],
) -> _Gathered:
    """Match every raw playlist, dropping duplicate ids (``seen``) and ids held out (``exclude``)."""
    out = _Gathered()
    for raw in raws:
        lengths = np.asarray(raw.lengths, dtype=np.int64)
        keep = np.ones(len(raw), dtype=bool)
        for i, pid in enumerate(raw.ids):
            if pid in exclude:
                keep[i] = False
                report.add(HELDOUT_OVERLAP, 1, [f"{raw.source}: playlist {pid!r}"])
            elif pid in seen:
                keep[i] = False
                report.add(DUPLICATE_PLAYLIST, 1, [f"{raw.source}: playlist {pid!r}"])
            else:
                seen.add(pid)
        entry_keep = np.repeat(keep, lengths)
        entries = raw.entries if keep.all() else [e for e, k in zip(raw.entries, entry_keep, strict=True) if k]
        cols = matcher.match(entries, raw.base)
        keys = np.full(len(cols), -1, dtype=np.int64)
        unmatched = np.flatnonzero(cols < 0)
        if len(unmatched):
            keys[unmatched] = [unmatched_codes.setdefault(entries[j], len(unmatched_codes)) for j in unmatched]
        if raw.artists is not None and raw.albums is not None:
            _fill_groups(
                cols,
                [a for a, k in zip(raw.artists, entry_keep, strict=True) if k],
                [b for b, k in zip(raw.albums, entry_keep, strict=True) if k],
                fill,
            )
        out.ids.extend(pid for pid, k in zip(raw.ids, keep, strict=True) if k)
        out.lengths.append(lengths[keep])
        out.cols.append(cols)
        out.keys.append(keys)
        out.sources.append(raw.source)
    return out


def _fill_groups(
    cols: np.ndarray,
    artists: list[str],
    albums: list[str],
    fill: tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, int], list[str], list[str]],
) -> None:
    """Give tracks without artist/album in the tracks table the artist/album their playlist entries name.

    Only entries of still-unknown tracks are visited, so the loop is bounded by the number of tracks.
    """
    artist, album, artist_codes, album_codes, artist_names, album_names = fill
    for codes, names, values, target in (
        (artist_codes, artist_names, artists, artist),
        (album_codes, album_names, albums, album),
    ):
        todo = np.flatnonzero(cols >= 0)
        todo = todo[target[cols[todo]] < 0]
        for j in todo:
            value = values[j]
            if value and target[cols[j]] < 0:
                if value not in codes:
                    codes[value] = len(names)
                    names.append(value)
                target[cols[j]] = codes[value]


def _assemble(
    g: _Gathered,
    n_tracks: int,
    n_unmatched: int,
    report: CatalogReport,
    drop_tracks: np.ndarray | None,
) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix]:
    """Deduplicate, drop held-out tracks and playlists without pairs, and build the CSR matrices."""
    lengths = np.concatenate(g.lengths) if g.lengths else np.zeros(0, np.int64)
    n = len(lengths)
    cols = np.concatenate(g.cols) if g.cols else np.zeros(0, np.int64)
    keys = np.concatenate(g.keys) if g.keys else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if n else np.zeros(0, np.int64)
    pos = (np.arange(len(rows), dtype=np.int64) - np.repeat(starts, lengths) + 1).astype(np.int32)
    # One identity per entry (a track, or an unmatched name), then first occurrence per playlist.
    ident = np.where(cols >= 0, cols, n_tracks + keys)
    unmatched_entries = cols < 0
    report.add(UNMATCHED_ENTRY, int(unmatched_entries.sum()))
    width = n_tracks + n_unmatched + 1
    _, first = np.unique(rows * width + ident, return_index=True)  # sorted by (row, identity), first in file order
    report.add(DUPLICATE_ENTRY, len(rows) - len(first))
    rows, cols, ident, pos = rows[first], cols[first], ident[first], pos[first]
    distinct = np.bincount(rows, minlength=n)
    if drop_tracks is not None and drop_tracks.any():
        held = (cols >= 0) & drop_tracks[np.maximum(cols, 0)]
        report.add(HELDOUT_ENTRY, int(held.sum()))
        rows, cols, ident, pos = rows[~held], cols[~held], ident[~held], pos[~held]
    matched = cols >= 0
    with_audio = np.bincount(rows[matched], minlength=n)
    empty, single = distinct == 0, distinct == 1
    few = ~empty & ~single & (with_audio < 2)
    report.add(EMPTY_PLAYLIST, int(empty.sum()))
    report.add(SINGLE_TRACK_PLAYLIST, int(single.sum()))
    report.add(FEW_AUDIO_PLAYLIST, int(few.sum()))
    keep = with_audio >= 2
    new_row = np.cumsum(keep) - 1
    kept_entries = keep[rows]
    ids = np.asarray(g.ids, dtype=object)[keep]
    m = kept_entries & matched
    playlists = _csr_from_sorted(new_row[rows[m]], cols[m], pos[m], (int(keep.sum()), n_tracks))
    c = kept_entries & ~matched
    context = _csr_from_sorted(new_row[rows[c]], ident[c] - n_tracks, pos[c], (int(keep.sum()), n_unmatched))
    return playlists, ids, context


def read_track_list(path: str | Path) -> list[str]:
    """Track ids from a split file: a CSV/TSV with a ``track_id`` column (MTG-Jamendo's ``TRACK_ID``
    included), or a plain list, one id per line."""
    path = Path(path)
    lines = [ln for ln in read_text_file(path, "track list").splitlines() if ln.strip()]
    if not lines:
        return []
    delimiter = "\t" if lines[0].count("\t") >= lines[0].count(",") else ","
    header = [h.strip().lower() for h in lines[0].split(delimiter)]
    col, body = (header.index("track_id"), lines[1:]) if "track_id" in header else (0, lines)
    ids = []
    for lineno, line in enumerate(body, start=2 if body is not lines else 1):
        fields = line.split(delimiter)
        if col >= len(fields) or not fields[col].strip():
            raise MixtapeError(f"{path}:{lineno}: no track id in column {col + 1}")
        ids.append(fields[col].strip())
    return ids


def _factorize(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    codes: dict[str, int] = {}
    out = np.fromiter(
        (-1 if v is None else codes.setdefault(v, len(codes)) for v in values), dtype=np.int32, count=len(values)
    )
    return out, list(codes)


@dataclass
class _TrackColumns:
    """The tracks of the catalogue as columns, in table order (index i is track i)."""

    track_ids: np.ndarray
    paths: np.ndarray
    artist: np.ndarray
    album: np.ndarray
    durations: np.ndarray
    artist_names: list[str]  # grows when playlists name the artist of a track the table does not
    album_names: list[str]

    @classmethod
    def of(cls, records: Sequence[TrackRecord]) -> _TrackColumns:
        artist, artist_names = _factorize([r.artist_id for r in records])
        album, album_names = _factorize([r.album_id for r in records])
        return cls(
            track_ids=np.array([r.track_id for r in records], dtype=object),
            paths=np.array([str(r.path) for r in records], dtype=object),
            artist=artist,
            album=album,
            durations=np.array([np.nan if r.duration is None else r.duration for r in records], dtype=np.float32),
            artist_names=artist_names,
            album_names=album_names,
        )

    def group_fill(self) -> tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, int], list[str], list[str]]:
        """What ``_fill_groups`` updates in place: codes, name -> code, and names of artists and albums."""
        return (
            self.artist,
            self.album,
            {a: i for i, a in enumerate(self.artist_names)},
            {a: i for i, a in enumerate(self.album_names)},
            self.artist_names,
            self.album_names,
        )


def _read_track_records(
    table_paths: Sequence[Path], audio_root: str | Path | None, report: CatalogReport
) -> list[TrackRecord]:
    """The rows of every tracks table; a track id already given by an earlier table (or row) keeps its
    first row, and the later one is reported."""
    records: list[TrackRecord] = []
    first_path: dict[str, Path] = {}
    for tp in table_paths:
        table = read_tracks(tp, audio_root)
        report.add(SKIPPED_TRACK_ROW, len(table.skipped), table.skipped)
        for rec in table.records:
            kept = first_path.get(rec.track_id)
            if kept is not None:
                why = (
                    "(first table's row kept)"
                    if kept == rec.path
                    else f"with another path ({rec.path}; the first table's {kept} is used)"
                )
                report.add(SKIPPED_TRACK_ROW, 1, [f"{tp}: duplicate track_id {rec.track_id!r} {why}"])
                continue
            first_path[rec.track_id] = rec.path
            records.append(rec)
    if not records:
        raise MixtapeError(f"no usable track rows in {', '.join(map(str, table_paths))}")
    return records


def _heldout_track_mask(
    holdout_tracks: str | Path | None, matcher: TrackMatcher, n: int, report: CatalogReport
) -> np.ndarray:
    """Which tracks the split file holds out; ids it lists that are not in the catalogue are reported."""
    heldout_mask = np.zeros(n, dtype=bool)
    if holdout_tracks is not None:
        listed = read_track_list(holdout_tracks)
        idx = np.fromiter((matcher.by_id.get(t, -1) for t in listed), dtype=np.int64, count=len(listed))
        report.add(UNKNOWN_HOLDOUT, int((idx < 0).sum()), [t for t, i in zip(listed, idx, strict=True) if i < 0])
        heldout_mask[idx[idx >= 0]] = True
    return heldout_mask


@dataclass
class _MatchedPlaylists:
    """Training and held-out playlists matched to tracks, with the names of entries that matched none."""

    train: _Gathered
    held: _Gathered
    train_unmatched: dict[str, int]
    held_unmatched: dict[str, int]


def _match_playlists(
    playlists: Sequence[str | Path],
    heldout: Sequence[str | Path],
    matcher: TrackMatcher,
    columns: _TrackColumns,
    report: CatalogReport,
) -> _MatchedPlaylists:
    """Read and match the held-out playlists, then the training ones (a playlist id in both stays held
    out); giving playlists of which none can be read is an error."""
    fill = columns.group_fill()
    held_unmatched: dict[str, int] = {}
    train_unmatched: dict[str, int] = {}
    held = _gather(
        _read_sets([Path(p) for p in heldout], report, "held-out"), matcher, report, set(), set(), held_unmatched, fill
    )
    train = _gather(
        _read_sets([Path(p) for p in playlists], report, "training"),
        matcher,
        report,
        set(),
        set(held.ids),
        train_unmatched,
        fill,
    )
    for given, got, what in ((playlists, train, "training"), (heldout, held, "held-out")):
        if given and not got.ids:
            raise MixtapeError(
                f"no {what} playlist could be read from {', '.join(map(str, given))}\n" + report.summary()
            )
    return _MatchedPlaylists(train, held, train_unmatched, held_unmatched)


def _build_catalog(
    columns: _TrackColumns,
    matched: _MatchedPlaylists,
    heldout_mask: np.ndarray,
    keep_context: bool,
    report: CatalogReport,
    sources: dict[str, list[str]],
) -> Catalog:
    """The matrices (held-out tracks leave the training playlists here) and the catalogue around them."""
    n = len(columns.track_ids)
    pl, pl_ids, ctx = _assemble(matched.train, n, len(matched.train_unmatched), report, heldout_mask)
    hpl, hpl_ids, _ = _assemble(matched.held, n, len(matched.held_unmatched), report, None)
    unmatched_names = list(dict.fromkeys([*matched.train_unmatched, *matched.held_unmatched]))
    report.add(UNMATCHED_KEY, len(unmatched_names), unmatched_names)
    if matched.train.sources:  # with no training playlists given (`mixtape similarity`), every track would be listed
        in_no_playlist = (np.bincount(pl.indices, minlength=n) == 0) & ~heldout_mask
        report.add(TRACK_IN_NO_PLAYLIST, int(in_no_playlist.sum()), columns.track_ids[in_no_playlist][:5].tolist())
    context_ids = np.array(list(matched.train_unmatched), dtype=object)
    if not keep_context:
        ctx, context_ids = _empty_csr(pl.shape[0], 0), np.array([], dtype=object)
    return Catalog(
        track_ids=columns.track_ids,
        paths=columns.paths,
        artist=columns.artist,
        album=columns.album,
        durations=columns.durations,
        artist_ids=np.array(columns.artist_names, dtype=object),
        album_ids=np.array(columns.album_names, dtype=object),
        playlists=pl,
        playlist_ids=pl_ids,
        heldout_playlists=hpl,
        heldout_playlist_ids=hpl_ids,
        heldout_track_mask=heldout_mask,
        context=ctx,
        context_ids=context_ids,
        report=report,
        sources=sources,
    )


def load_catalog(
    tracks: str | Path | Sequence[str | Path],
    playlists: Sequence[str | Path] = (),
    heldout: Sequence[str | Path] = (),
    holdout_tracks: str | Path | None = None,
    audio_root: str | Path | None = None,
    *,
    mapping: str | Path | None = None,
    match: str = "auto",
    keep_context: bool = True,
) -> Catalog:
    """Read the tracks table(s), the training and held-out playlists, and the held-out track split.

    ``playlists``/``heldout`` are files or folders; each file's format comes from its suffix
    (``.json`` MPD slice, ``.m3u``/``.m3u8``, ``.jsonl``, ``.csv``/``.tsv``). Entries are matched
    to tracks by id, by path, or through ``mapping`` (see ``TrackMatcher``). Anything skipped or
    unmatched is counted in ``catalog.report``; only having nothing usable at all is an error.
    """
    report = CatalogReport()
    table_paths = [Path(tracks)] if isinstance(tracks, (str, Path)) else [Path(t) for t in tracks]
    columns = _TrackColumns.of(_read_track_records(table_paths, audio_root, report))
    mapping_dict = None
    if mapping is not None:
        mapping_dict = read_mapping(mapping, {tid: i for i, tid in enumerate(columns.track_ids)}, report)
    matcher = TrackMatcher(columns.track_ids, columns.paths, mapping_dict, match)
    heldout_mask = _heldout_track_mask(holdout_tracks, matcher, len(columns.track_ids), report)
    matched = _match_playlists(playlists, heldout, matcher, columns, report)
    sources = {
        "tracks": [str(p) for p in table_paths],
        "playlists": matched.train.sources,
        "heldout": matched.held.sources,
        "holdout_tracks": [str(holdout_tracks)] if holdout_tracks is not None else [],
        "mapping": [str(mapping)] if mapping is not None else [],
    }
    catalog = _build_catalog(columns, matched, heldout_mask, keep_context, report, sources)
    log.info("%s", catalog.summary())
    return catalog


def catalog_info(catalog: Catalog) -> dict[str, Any]:
    """Sizes and the report as plain JSON-able data, for statistics files."""
    return {
        "tracks": len(catalog),
        "heldout_tracks": int(catalog.heldout_track_mask.sum()),
        "artists": len(catalog.artist_ids),
        "albums": len(catalog.album_ids),
        "playlists": catalog.n_playlists,
        "playlist_entries": int(catalog.playlists.nnz),
        "heldout_playlists": int(catalog.heldout_playlists.shape[0]),
        "context_entries": len(catalog.context_ids),
        "report": catalog.report.to_dict(),
    }
