"""The embeddings folder: one vector per track of a collection, with who the track is and what made it.

Layout (all in one folder, ``embeddings.json`` written last so its presence means complete):

- ``vectors.npy``     float32 ``[N, D]`` track embeddings (mean over non-overlapping patches), memory-mappable;
- ``tracks.tsv``      ``track_id, artist_id, album_id, path, duration, checksum[, title, artist_name]``
  (row i describes vector i; empty cells where unknown; ``checksum`` is the audio file's blake2b when it
  was embedded, so a re-run reuses the vectors of unchanged files; ``title`` and ``artist_name``, the
  names a person reads, are written when any track has one, and a file without them reads as unknown);
- ``failures.tsv``    ``track_id, path, reason`` of every track that has no vector;
- ``embeddings.json`` format, count, dim, the encoder's fingerprint and source, the feature store's
  fingerprint, the shard, a checksum of ``vectors.npy``'s array bytes (checked by ``mixtape doctor``:
  hashing millions of vectors at every open would be slow) and of ``tracks.tsv`` (checked at open).

The fingerprints make staleness detectable: an index records the embeddings checksum it was built
from, and a query embedded with another encoder than the collection's is refused.

``read_track_vectors`` also reads vectors that another model made (an ``.npz`` of ``ids`` and ``embeddings``,
or a folder of ``vectors.npy`` and ``tracks.tsv`` without ``embeddings.json``) and checks them; written
as an embeddings folder (``TrackVectors.as_embeddings``), their header's ``encoder`` records where they
came from under ``outside_vectors`` and no fingerprint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from mixtape.errors import MixtapeError
from mixtape.fileio import (
    ARRAY_FILE_ERRORS,
    LOCK_FILE,
    atomic_write_text,
    file_checksum,
    folder_lock,
    progress,
    read_text_file,
)
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder
from mixtape.text import and_more, one_line, quoted


class EmbeddingsHeader(StageHeader):
    """What ``embeddings.json``'s readers use, typed: the shape the vectors must have and their provenance."""

    count: int = Field(ge=0)
    dim: int = Field(ge=0)
    encoder: dict[str, Any]
    vectors_checksum: str
    tracks_checksum: str | None = None


EMBEDDINGS_FOLDER = register_stage_folder(
    StageFolder(
        "embeddings folder",
        "embeddings.json",
        "mixtape-embeddings",
        1,
        "create it with `mixtape embed`",
        model=EmbeddingsHeader,
    )
)
META_FILE = EMBEDDINGS_FOLDER.header_file
VECTORS_FILE = "vectors.npy"
TRACKS_FILE = "tracks.tsv"
FAILURES_FILE = "failures.tsv"
TRACK_COLUMNS = ("track_id", "artist_id", "album_id", "path", "duration", "checksum")
#: Optional columns of ``tracks.tsv`` after ``TRACK_COLUMNS``: the names a person reads (written only
#: when some track has one, so folders of tracks without names keep the header they always had).
NAME_COLUMNS = ("title", "artist_name")


class EmbeddingsError(MixtapeError):
    """An embeddings folder that is missing, incomplete, damaged or inconsistent with what uses it."""


@dataclass
class TrackMeta:
    """Per-track metadata as columns (row i = vector i); ``None`` where a value is unknown.

    ``titles`` and ``artist_names`` are the names a person reads (a track's title, its artist's name);
    left empty, they are unknown (``None``) for every track."""

    track_ids: list[str]
    artists: list[str | None]
    albums: list[str | None]
    paths: list[str]
    durations: np.ndarray  # float64 seconds, NaN when unknown
    checksums: list[str]  # blake2b of the audio file when it was embedded ("" when unknown)
    titles: list[str | None] = field(default_factory=list)
    artist_names: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.track_ids)
        if not self.titles and n:
            self.titles = [None] * n
        if not self.artist_names and n:
            self.artist_names = [None] * n
        if len(self.titles) != n or len(self.artist_names) != n:
            raise ValueError(
                f"TrackMeta: {len(self.titles)} titles and {len(self.artist_names)} artist names for {n} tracks"
            )

    def __len__(self) -> int:
        return len(self.track_ids)

    @classmethod
    def empty(cls) -> TrackMeta:
        return cls([], [], [], [], np.zeros(0), [])

    @property
    def has_names(self) -> bool:
        """Whether any track has a title or an artist name."""
        return any(self.titles) or any(self.artist_names)

    def take(self, rows: Sequence[int] | np.ndarray) -> TrackMeta:
        idx = np.asarray(rows, dtype=np.int64)
        pick = idx.tolist()
        return TrackMeta(
            [self.track_ids[i] for i in pick],
            [self.artists[i] for i in pick],
            [self.albums[i] for i in pick],
            [self.paths[i] for i in pick],
            self.durations[idx] if len(idx) else np.zeros(0),
            [self.checksums[i] for i in pick],
            [self.titles[i] for i in pick],
            [self.artist_names[i] for i in pick],
        )

    def concat(self, other: TrackMeta) -> TrackMeta:
        return TrackMeta(
            self.track_ids + other.track_ids,
            self.artists + other.artists,
            self.albums + other.albums,
            self.paths + other.paths,
            np.concatenate([self.durations, other.durations]),
            self.checksums + other.checksums,
            self.titles + other.titles,
            self.artist_names + other.artist_names,
        )

    def to_tsv(self) -> str:
        """``tracks.tsv``: ``TRACK_COLUMNS``, then ``NAME_COLUMNS`` when any track has a name."""
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t", lineterminator="\n")
        names = self.has_names
        w.writerow(TRACK_COLUMNS + NAME_COLUMNS if names else TRACK_COLUMNS)
        rows = zip(
            self.track_ids,
            self.artists,
            self.albums,
            self.paths,
            self.durations.tolist(),
            self.checksums,
            self.titles,
            self.artist_names,
            strict=True,
        )
        for tid, artist, album, path, dur, checksum, title, artist_name in rows:
            row = [tid, artist or "", album or "", path, "" if dur != dur else f"{dur:.3f}", checksum]
            if names:
                row += [one_line(title), one_line(artist_name)]
            w.writerow(row)
        return buf.getvalue()


def read_track_meta(path: Path) -> TrackMeta:
    """Read ``tracks.tsv``; a damaged row is an error naming the file and line (the folder is corrupt)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EmbeddingsError(f"{path}: missing (the embeddings/index folder is incomplete)") from None
    except UnicodeDecodeError as err:
        raise EmbeddingsError(
            f"{path}: not UTF-8 text ({err}); the embeddings/index folder is damaged, re-run the command that wrote it"
        ) from None
    rows = _tsv_rows(path, text)
    if not rows or tuple(rows[0]) not in (TRACK_COLUMNS, TRACK_COLUMNS + NAME_COLUMNS):
        raise EmbeddingsError(
            f"{path}: expected the header {list(TRACK_COLUMNS)} (optionally followed by {list(NAME_COLUMNS)}), "
            f"got {rows[0] if rows else 'an empty file'}"
        )
    return _track_columns(path, rows[0], rows[1:])


def _track_columns(path: Path, header: Sequence[str], body: list[list[str]]) -> TrackMeta:
    """Track metadata from tab-separated rows under ``header`` (``track_id`` and any other of
    ``TRACK_COLUMNS`` and ``NAME_COLUMNS``, in any order; a column that is absent is unknown for every track)."""
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise EmbeddingsError(f"{path}:{lineno}: expected {len(header)} tab-separated fields, got {len(row)}")
    where = {name: header.index(name) for name in TRACK_COLUMNS + NAME_COLUMNS if name in header}

    def column(name: str) -> list[str]:
        i = where.get(name)
        return [r[i] for r in body] if i is not None else [""] * len(body)

    try:
        durations = np.array([float(d) if d else np.nan for d in column("duration")], dtype=np.float64)
    except ValueError as err:
        raise EmbeddingsError(f"{path}: a duration is not a number ({err})") from None
    return TrackMeta(
        column("track_id"),
        [a or None for a in column("artist_id")],
        [a or None for a in column("album_id")],
        column("path"),
        durations,
        column("checksum"),
        [t or None for t in column("title")],
        [a or None for a in column("artist_name")],
    )


def write_failures(path: Path, failures: Iterable[tuple[str, str, str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["track_id", "path", "reason"])
    for row in failures:
        w.writerow([str(x).replace("\t", " ").replace("\n", " ") for x in row])
    return atomic_write_text(path, buf.getvalue())


def _tsv_rows(path: Path, text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text), delimiter="\t"))
    except csv.Error as err:  # a bare carriage return or an over-long field
        raise EmbeddingsError(
            f"{path}: malformed tab-separated text ({err}); the folder is damaged, re-run the command that wrote it"
        ) from None


def read_failures(path: Path) -> list[tuple[str, str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as err:
        raise EmbeddingsError(
            f"{path}: not UTF-8 text ({err}); it only lists failed tracks: delete it, or re-run the command "
            "that wrote it"
        ) from None
    rows = _tsv_rows(path, text)
    return [(r[0], r[1] if len(r) > 1 else "", r[2] if len(r) > 2 else "") for r in rows[1:] if r]


# --- fingerprints --------------------------------------------------------------------------------


def array_checksum(chunks: Iterable[np.ndarray]) -> str:
    """blake2b of arrays' raw bytes in order: the same vectors give the same checksum wherever they are stored."""
    h = hashlib.blake2b(digest_size=16)
    for chunk in chunks:
        h.update(np.ascontiguousarray(chunk).tobytes())
    return h.hexdigest()


def vectors_checksum(vectors: np.ndarray, block: int = 65536) -> str:
    """Checksum of a (possibly memory-mapped) ``[N, D]`` array, read in row blocks to bound memory."""
    return array_checksum(np.asarray(vectors[i : i + block], dtype=np.float32) for i in range(0, len(vectors), block))


def changed_vectors(emb: Embeddings) -> bool:
    """True when ``vectors.npy`` no longer holds the vectors whose checksum ``embeddings.json`` records
    (reads every vector once, in blocks, with a progress bar)."""
    blocks = progress(emb.blocks(), desc="hashing vectors", total=-(-len(emb) // 65536), unit="block")
    return array_checksum(blocks) != emb.checksum


# --- the folder ----------------------------------------------------------------------------------


@dataclass
class Embeddings:
    """An opened embeddings folder: vectors memory-mapped, metadata in columns."""

    path: Path
    meta: dict[str, Any]
    vectors: np.ndarray
    tracks: TrackMeta
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> Embeddings:
        path = Path(path)
        meta = read_meta(path)
        try:
            vectors = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise EmbeddingsError(
                f"{path / VECTORS_FILE}: missing (the embeddings folder is incomplete; re-run `mixtape embed`)"
            ) from None
        except ARRAY_FILE_ERRORS as err:  # empty, torn, a damaged header
            raise EmbeddingsError(
                f"{path / VECTORS_FILE}: not a readable .npy array ({type(err).__name__}: {err}); re-run "
                "`mixtape embed`"
            ) from None
        if (
            vectors.ndim != 2
            or vectors.dtype != np.float32
            or vectors.shape != (meta["count"], meta["dim"])
            or not vectors.flags.c_contiguous
        ):
            raise EmbeddingsError(
                f"{path / VECTORS_FILE}: array {vectors.dtype} {list(vectors.shape)} does not match "
                f"{META_FILE} (float32 [{meta['count']}, {meta['dim']}])"
            )
        tracks = read_track_meta(path / TRACKS_FILE)
        if meta.get("tracks_checksum") is not None and file_checksum(path / TRACKS_FILE) != meta["tracks_checksum"]:
            raise EmbeddingsError(
                f"{path / TRACKS_FILE}: changed since the embeddings were written (its checksum differs from "
                f"{META_FILE}); re-run `mixtape embed` into {path}"
            )
        if len(tracks) != len(vectors):
            raise EmbeddingsError(f"{path / TRACKS_FILE}: {len(tracks)} tracks for {len(vectors)} vectors")
        return cls(path, meta, vectors, tracks, read_failures(path / FAILURES_FILE))

    def __len__(self) -> int:
        return len(self.tracks)

    def blocks(self, block: int = 65536) -> Iterator[np.ndarray]:
        """The vectors in row blocks read with plain file reads, not through the memory map: a pass over
        millions of vectors then leaves nothing mapped in this process (its resident memory stays one block)."""
        with RowFile(self.path / VECTORS_FILE) as rows:
            for b in rows.blocks(block):
                yield b.astype(np.float32, copy=False)

    def rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (float32 ``[len(rows), D]``, in the order given), read with positioned
        reads: a sample of a million vectors costs this process its own size, nothing mapped."""
        with RowFile(self.path / VECTORS_FILE) as f:
            return f.take(rows).astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def checksum(self) -> str:
        return str(self.meta["vectors_checksum"])

    @property
    def encoder_info(self) -> dict[str, Any]:
        return dict(self.meta.get("encoder") or {})

    def summary(self) -> str:
        enc = self.encoder_info
        made_by = outside_model(enc) or f"encoder {enc.get('source')} ({enc.get('backbone')})"
        text = f"embeddings {self.path}: {len(self)} tracks x {self.dim} dims, {made_by}, {len(self.failures)} failed"
        if self.failures:
            text += f" (see {self.path / FAILURES_FILE})"
        return text


def npy_header(dtype: Any, shape: tuple[int, int]) -> bytes:
    """The bytes of a C-ordered ``.npy`` header for ``shape`` (numpy pads it so that the first axis can
    grow to 21 digits without changing its length)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


class RowFile:
    """Rows of a C-ordered 2-D ``.npy`` file, read on demand with positioned reads (``os.pread``).

    Nothing is memory-mapped: the rows a search reads stay in the operating system's page cache,
    shared and evictable, where the touched pages of a memory map would count as this process's
    resident memory. Positioned reads share no file offset, so one ``RowFile`` serves many threads.
    A file whose header or size does not describe a 2-D array is a ``ValueError`` naming it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
            except (ValueError, EOFError, SyntaxError, TypeError) as err:
                raise ValueError(f"{self.path}: not a readable .npy array ({err})") from None
            self.offset = f.tell()
            size = os.fstat(f.fileno()).st_size
        if len(shape) != 2 or fortran or dtype.hasobject:
            raise ValueError(f"{self.path}: not a C-ordered 2-D array of numbers ({dtype} {list(shape)})")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        if size < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(
                f"{self.path}: {size} bytes, too short for the {list(self.shape)} array its header declares"
            )
        self._fd: int | None = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __enter__(self) -> RowFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()

    def _fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: read after close")
        return self._fd

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``rows`` (in the order given, repeats allowed) as ``[len(rows), D]`` in the file's dtype."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row out of range [0, {self.shape[0]})")
        out = np.empty((len(idx), self.shape[1]), dtype=self.dtype)
        view = out.data.cast("B")
        fd, rb, offset = self._fileno(), self.row_bytes, self.offset
        for j, r in enumerate(idx.tolist()):
            if os.preadv(fd, [view[j * rb : (j + 1) * rb]], offset + r * rb) != rb:
                raise ValueError(f"{self.path}: shorter than its header says (row {r} is cut)")
        return out

    def blocks(self, block: int = 65536) -> Iterator[np.ndarray]:
        """Every row, in order, in blocks of ``block`` rows (sequential reads)."""
        n, dim = self.shape
        fd = self._fileno()
        for start in range(0, n, block):
            count = min(block, n - start)
            out = np.empty((count, dim), dtype=self.dtype)
            view = out.data.cast("B")
            done = 0
            while done < len(view):
                got = os.preadv(fd, [view[done:]], self.offset + start * self.row_bytes + done)
                if got <= 0:
                    raise ValueError(f"{self.path}: shorter than its header says")
                done += got
            yield out


def read_meta(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise EmbeddingsError(f"embeddings folder not found: {path} (create it with `mixtape embed`)")
    return EMBEDDINGS_FOLDER.read_header(
        path,
        error=EmbeddingsError,
        hint="the embeddings are incomplete or this is not an embeddings folder; re-run `mixtape embed` to finish it",
    )


def write_embeddings(
    path: Path,
    vector_blocks: Iterable[np.ndarray],
    count: int,
    dim: int,
    tracks: TrackMeta,
    failures: Sequence[tuple[str, str, str]],
    meta: dict[str, Any],
) -> Embeddings:
    """Write a complete embeddings folder, streaming ``vector_blocks`` (in row order) into ``vectors.npy``.

    Every file goes through a temp file and a rename; ``embeddings.json`` comes last, so a reader that
    finds it finds complete vectors and metadata.
    """
    path.mkdir(parents=True, exist_ok=True)
    if len(tracks) != count:
        raise EmbeddingsError(f"internal: {len(tracks)} track rows for {count} vectors")
    (path / META_FILE).unlink(missing_ok=True)  # the folder is no longer complete until the new meta lands
    tmp = path / f".{VECTORS_FILE}.tmp"
    h = hashlib.blake2b(digest_size=16)
    row = 0
    # plain writes, not a memory map: the pages of a written map count as this process's resident
    # memory until it is unmapped (5 GB for a million 1280-d vectors)
    with open(tmp, "wb") as f:
        f.write(npy_header(np.float32, (count, dim)))
        for block in vector_blocks:
            b = np.ascontiguousarray(block, dtype=np.float32)
            if b.ndim != 2 or b.shape[1] != dim or row + len(b) > count:
                raise EmbeddingsError(
                    f"internal: vector block {list(b.shape)} does not fit [{count}, {dim}] at row {row}"
                )
            data = b.tobytes()
            f.write(data)
            h.update(data)
            row += len(b)
        if row != count:
            raise EmbeddingsError(f"internal: {row} vectors written, {count} expected")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path / VECTORS_FILE)
    tracks_file = atomic_write_text(path / TRACKS_FILE, tracks.to_tsv())
    write_failures(path / FAILURES_FILE, failures)
    full = {
        "count": count,
        "dim": dim,
        "dtype": "float32",
        **meta,
        "vectors_checksum": h.hexdigest(),
        "tracks_checksum": file_checksum(tracks_file),
        "failed": len(failures),
    }
    EMBEDDINGS_FOLDER.write_header(path, full)
    return Embeddings.open(path)


# --- vectors of any model ------------------------------------------------------------------------
#
# Evaluation and the index also take vectors that another model made (MERT, CLAP, Essentia, ...), in
# one of two shapes: an ``.npz`` file holding ``ids`` (track ids, strings) and ``embeddings`` ([N, D]
# numbers), or a folder holding ``vectors.npy`` and ``tracks.tsv`` as `mixtape embed` writes them but
# without its ``embeddings.json`` (``tracks.tsv`` then needs only a header naming a ``track_id`` column;
# ``artist_id``, ``album_id``, ``path``, ``duration`` are used when present). ``read_track_vectors`` is the one
# reader of both, and of mixtape's own embeddings folders.

NPZ_IDS = "ids"
NPZ_VECTORS = "embeddings"
#: Key of an embeddings header's ``encoder`` saying that no mixtape encoder made its vectors: the
#: file or folder an outside model's vectors were read from (there is no encoder fingerprint then).
OUTSIDE_KEY = "outside_vectors"
#: What `mixtape embed` leaves in a folder it is writing, or was killed writing, before
#: ``embeddings.json``: such a folder is an unfinished embeddings folder, not vectors of another model.
_EMBED_LEAVES = (LOCK_FILE, FAILURES_FILE)
_FORMS = (
    f"a folder holding {VECTORS_FILE} and {TRACKS_FILE} (as `mixtape embed` writes them; for vectors of "
    f"another model, {TRACKS_FILE} needs only a header naming a track_id column, then one row per vector), "
    f"or an .npz file holding '{NPZ_IDS}' (track ids) and '{NPZ_VECTORS}' ([tracks, dims] numbers)"
)
_CHECK_BLOCK = 65536


def outside_model(encoder_info: Mapping[str, Any]) -> str | None:
    """What made vectors that no mixtape encoder made (from an embeddings or index header's
    ``encoder``), in words; None for mixtape's own."""
    source = encoder_info.get(OUTSIDE_KEY)
    return f"vectors of an outside model (read from {source})" if source else None


def holds_outside_vectors(path: str | Path) -> bool:
    """Whether ``path`` is meant as vectors of an outside model: a file (an ``.npz``), or a folder with
    ``vectors.npy`` or ``tracks.tsv`` that `mixtape embed` did not write (no ``embeddings.json``, and none
    of the files it leaves while working)."""
    path = Path(path)
    if path.suffix == ".npz" or path.is_file():
        return True
    return (
        path.is_dir()
        and not (path / META_FILE).exists()
        and not any((path / name).exists() for name in _EMBED_LEAVES)
        and any((path / name).exists() for name in (VECTORS_FILE, TRACKS_FILE))
    )


@dataclass
class TrackVectors:
    """One checked vector per track id: a mixtape embeddings folder, or vectors of any other model
    (:func:`read_track_vectors` reads both). Evaluation scores them as they are; the index needs an
    embeddings folder, which :meth:`as_embeddings` gives."""

    path: Path  # the folder or file they were read from
    vectors: np.ndarray  # [N, D] float32, all finite (memory-mapped where the file allows it)
    tracks: TrackMeta  # row i describes vector i (for an .npz: only the track ids are known)
    encoder: dict[str, Any]  # what made them: mixtape's encoder info, or {OUTSIDE_KEY: where they came from}
    embeddings: Embeddings | None = None  # the embeddings folder they were read from, when they are one

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def track_ids(self) -> list[str]:
        return self.tracks.track_ids

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def source(self) -> str | None:
        """The mixtape encoder that made the vectors (its export folder or checkpoint); None for an outside model."""
        source = self.encoder.get("source")
        return str(source) if source else None

    def describe(self) -> str:
        made_by = outside_model(self.encoder) or f"encoder {self.source}"
        return f"{self.path}: {len(self)} tracks x {self.dim} dims, {made_by}"

    def as_embeddings(self, out: str | Path) -> Embeddings:
        """These vectors as a mixtape embeddings folder (what the index reads): the folder they came
        from, or, for vectors of an outside model, a copy written into ``out`` (kept when ``out`` already
        holds these very vectors and tracks). Such a copy records where the vectors came from and no
        encoder fingerprint."""
        if self.embeddings is not None:
            return self.embeddings
        out = Path(out)
        with folder_lock(out, f"{out} is being written by another command; wait for it"):
            if (out / META_FILE).exists():
                try:
                    prev: Embeddings | None = Embeddings.open(out)
                except EmbeddingsError:
                    prev = None
                if (
                    prev is not None
                    and prev.encoder_info == self.encoder
                    and prev.tracks.to_tsv() == self.tracks.to_tsv()
                    and prev.checksum == vectors_checksum(self.vectors)
                ):
                    return prev
            blocks = (self.vectors[i : i + _CHECK_BLOCK] for i in range(0, len(self), _CHECK_BLOCK))
            return write_embeddings(out, blocks, len(self), self.dim, self.tracks, [], {"encoder": self.encoder})


def read_track_vectors(path: str | Path) -> TrackVectors:
    """The vectors at ``path`` with their track ids, checked: a mixtape embeddings folder, a folder of an
    outside model's ``vectors.npy`` and ``tracks.tsv``, or an ``.npz`` of ``ids`` and ``embeddings``.

    What cannot be used is an ``EmbeddingsError`` naming the file and the problem: a missing file, ids
    and vectors of different lengths, a duplicate or empty id, a vector holding NaN or Inf (named by
    its track id), vectors that are not a 2-D array of numbers, an empty set.
    """
    path = Path(path)
    if not path.exists():
        raise EmbeddingsError(f"{path}: not found (expected {_FORMS})")
    if not holds_outside_vectors(path):
        if not any((path / name).exists() for name in (META_FILE, *_EMBED_LEAVES)):
            raise EmbeddingsError(f"{path}: holds no vectors (expected {_FORMS})")
        emb = Embeddings.open(path)  # unfinished or damaged folders are refused here, with the fix
        vectors = _checked(emb.vectors, emb.tracks.track_ids, path / VECTORS_FILE, path / TRACKS_FILE)
        return TrackVectors(path, vectors, emb.tracks, emb.encoder_info, emb)
    if path.is_dir():
        absent = [name for name in (VECTORS_FILE, TRACKS_FILE) if not (path / name).is_file()]
        if absent:
            raise EmbeddingsError(f"{path / absent[0]}: missing (expected {_FORMS})")
        tracks = _outside_tracks(path / TRACKS_FILE)
        vectors = _checked(
            _outside_array(path / VECTORS_FILE), tracks.track_ids, path / VECTORS_FILE, path / TRACKS_FILE
        )
    else:
        ids, raw = _npz_arrays(path)
        n = len(ids)
        tracks = TrackMeta(ids, [None] * n, [None] * n, [""] * n, np.full(n, np.nan), [""] * n)
        vectors = _checked(raw, ids, path, path)
    encoder = {"source": None, "fingerprint": None, OUTSIDE_KEY: str(path.resolve())}
    return TrackVectors(path, vectors, tracks, encoder)


def _checked(vectors: np.ndarray, ids: list[str], vectors_file: Path, ids_file: Path) -> np.ndarray:
    """``vectors`` as float32 after checking them against their ids (see :func:`read_track_vectors`)."""
    if vectors.ndim != 2:
        raise EmbeddingsError(
            f"{vectors_file}: vectors of shape {list(vectors.shape)}; expected a 2-D array [tracks, dims]"
        )
    if vectors.dtype.kind not in "fiu":
        raise EmbeddingsError(f"{vectors_file}: vectors of type {vectors.dtype}; expected numbers (float32 or float64)")
    if len(ids) != len(vectors):
        where = "" if ids_file == vectors_file else f" in {vectors_file.name}"
        raise EmbeddingsError(
            f"{ids_file}: {len(ids)} track ids for {len(vectors)} vectors{where}; give one id per vector, in the "
            "same order"
        )
    if len(vectors) == 0:
        raise EmbeddingsError(f"{vectors_file}: no vectors (an empty set): there is nothing to score or index")
    if vectors.shape[1] == 0:
        raise EmbeddingsError(f"{vectors_file}: vectors of 0 dimensions ({len(vectors)} tracks x 0)")
    empty = [i for i, t in enumerate(ids) if not t.strip()]
    if empty:
        raise EmbeddingsError(f"{ids_file}: an empty track id for vector(s) {and_more(empty)} (rows counted from 0)")
    repeated = [t for t, count in Counter(ids).items() if count > 1]
    if repeated:
        raise EmbeddingsError(
            f"{ids_file}: {len(repeated)} track id(s) appear more than once: {and_more(repeated, show=quoted)}; "
            "give each track one vector"
        )
    if vectors.dtype != np.float32:
        with np.errstate(over="ignore"):  # beyond float32's range becomes Inf, refused below
            vectors = vectors.astype(np.float32)
    bad = [
        int(start + i)
        for start in range(0, len(vectors), _CHECK_BLOCK)
        for i in np.flatnonzero(~np.isfinite(vectors[start : start + _CHECK_BLOCK]).all(axis=1))
    ]
    if bad:
        raise EmbeddingsError(
            f"{vectors_file}: NaN or Inf (or a value beyond float32's range) in the vector(s) of {len(bad)} "
            f"track(s): {and_more([ids[i] for i in bad], show=quoted)}; remove those tracks or compute their "
            "vectors again"
        )
    return vectors


def _outside_array(path: Path) -> np.ndarray:
    """``vectors.npy`` of an outside model (memory-mapped)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ARRAY_FILE_ERRORS as err:
        raise EmbeddingsError(
            f"{path}: not a readable .npy array ({type(err).__name__}: {err}); write it with numpy.save"
        ) from None
    if not isinstance(array, np.ndarray):  # an .npz archive under the .npy name
        raise EmbeddingsError(f"{path}: an .npz archive, not a .npy array; write it with numpy.save")
    return array


def _outside_tracks(path: Path) -> TrackMeta:
    """``tracks.tsv`` of an outside model: a header naming ``track_id`` (and any other of ``TRACK_COLUMNS``
    and ``NAME_COLUMNS``),
    then one tab-separated row per vector; blank lines are ignored."""
    text = read_text_file(path, "tracks file", EmbeddingsError)
    rows = [row for row in _tsv_rows(path, text) if row]
    header = [h.strip() for h in rows[0]] if rows else []
    if "track_id" not in header:
        optional = ", ".join(c for c in TRACK_COLUMNS[1:] + NAME_COLUMNS if c != "checksum")
        raise EmbeddingsError(
            f"{path}: the first line must be a tab-separated header naming a track_id column (optional: "
            f"{optional}), got {rows[0] if rows else 'an empty file'}"
        )
    return _track_columns(path, header, rows[1:])


def _npz_arrays(path: Path) -> tuple[list[str], np.ndarray]:
    """Track ids (as text) and the raw vectors of an ``.npz`` file."""
    how = f"save them with numpy.savez(path, {NPZ_IDS}=track_ids, {NPZ_VECTORS}=vectors)"
    try:
        data = np.load(path, allow_pickle=False)
    except ARRAY_FILE_ERRORS as err:
        raise EmbeddingsError(f"{path}: not a readable .npz file ({type(err).__name__}: {err}); {how}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise EmbeddingsError(f"{path}: a single array, not an .npz archive of '{NPZ_IDS}' and '{NPZ_VECTORS}'; {how}")
    with data:
        absent = [name for name in (NPZ_IDS, NPZ_VECTORS) if name not in data.files]
        if absent:
            held = ", ".join(map(repr, data.files)) or "nothing"
            raise EmbeddingsError(f"{path}: no {' and no '.join(map(repr, absent))} array (it holds {held}); {how}")
        try:
            ids, vectors = data[NPZ_IDS], data[NPZ_VECTORS]
        except ARRAY_FILE_ERRORS as err:
            if "allow_pickle" in str(err):
                raise EmbeddingsError(
                    f"{path}: an array is stored as Python objects (pickled), which is not loaded; save the ids "
                    "as strings: numpy.array(track_ids, dtype=str)"
                ) from None
            raise EmbeddingsError(f"{path}: a damaged .npz file ({type(err).__name__}: {err})") from None
    return _track_ids(path, ids), vectors


def _track_ids(path: Path, ids: np.ndarray) -> list[str]:
    if ids.ndim != 1:
        raise EmbeddingsError(
            f"{path}: '{NPZ_IDS}' has shape {list(ids.shape)}; expected one track id per vector (a 1-D array)"
        )
    if ids.dtype.kind in "Uiu":
        return [str(t) for t in ids.tolist()]
    if ids.dtype.kind == "S":
        try:
            return [t.decode("utf-8") for t in ids.tolist()]
        except UnicodeDecodeError as err:
            raise EmbeddingsError(f"{path}: a track id in '{NPZ_IDS}' is not UTF-8 ({err})") from None
    raise EmbeddingsError(
        f"{path}: '{NPZ_IDS}' holds {ids.dtype} values; expected track ids as strings "
        "(numpy.array(track_ids, dtype=str))"
    )
