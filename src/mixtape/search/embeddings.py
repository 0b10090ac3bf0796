"""The embeddings folder: one vector per track of a collection, with who the track is and what made it.

Layout (all in one folder, ``embeddings.json`` written last so its presence means complete):

- ``vectors.npy``     float32 ``[N, D]`` track embeddings (mean over non-overlapping patches), memory-mappable;
- ``tracks.tsv``      ``track_id, artist_id, album_id, path, duration, checksum`` (row i describes
  vector i; empty cells where unknown; ``checksum`` is the audio file's blake2b when it was embedded,
  so a re-run reuses the vectors of unchanged files);
- ``failures.tsv``    ``track_id, path, reason`` of every track that has no vector;
- ``embeddings.json`` format, count, dim, the encoder's fingerprint and source, the feature store's
  fingerprint, the shard, a checksum of ``vectors.npy``'s array bytes (checked by ``mixtape doctor``:
  hashing millions of vectors at every open would be slow) and of ``tracks.tsv`` (checked at open).

The fingerprints make staleness detectable: an index records the embeddings checksum it was built
from, and a query embedded with another encoder than the collection's is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from mixtape.errors import MixtapeError
from mixtape.fileio import ARRAY_FILE_ERRORS, atomic_write_text, file_checksum, progress
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder


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


class EmbeddingsError(MixtapeError):
    """An embeddings folder that is missing, incomplete, damaged or inconsistent with what uses it."""


@dataclass
class TrackMeta:
    """Per-track metadata as columns (row i = vector i); ``None`` where a value is unknown."""

    track_ids: list[str]
    artists: list[str | None]
    albums: list[str | None]
    paths: list[str]
    durations: np.ndarray  # float64 seconds, NaN when unknown
    checksums: list[str]  # blake2b of the audio file when it was embedded ("" when unknown)

    def __len__(self) -> int:
        return len(self.track_ids)

    @classmethod
    def empty(cls) -> TrackMeta:
        return cls([], [], [], [], np.zeros(0), [])

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
        )

    def concat(self, other: TrackMeta) -> TrackMeta:
        return TrackMeta(
            self.track_ids + other.track_ids,
            self.artists + other.artists,
            self.albums + other.albums,
            self.paths + other.paths,
            np.concatenate([self.durations, other.durations]),
            self.checksums + other.checksums,
        )

    def to_tsv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t", lineterminator="\n")
        w.writerow(TRACK_COLUMNS)
        rows = zip(
            self.track_ids, self.artists, self.albums, self.paths, self.durations.tolist(), self.checksums, strict=True
        )
        for tid, artist, album, path, dur, checksum in rows:
            w.writerow([tid, artist or "", album or "", path, "" if dur != dur else f"{dur:.3f}", checksum])
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
    if not rows or tuple(rows[0]) != TRACK_COLUMNS:
        raise EmbeddingsError(
            f"{path}: expected the header {list(TRACK_COLUMNS)}, got {rows[0] if rows else 'an empty file'}"
        )
    body = rows[1:]
    for lineno, row in enumerate(body, start=2):
        if len(row) != len(TRACK_COLUMNS):
            raise EmbeddingsError(
                f"{path}:{lineno}: expected {len(TRACK_COLUMNS)} tab-separated fields, got {len(row)}"
            )
    try:
        durations = np.array([float(r[4]) if r[4] else np.nan for r in body], dtype=np.float64)
    except ValueError as err:
        raise EmbeddingsError(f"{path}: a duration is not a number ({err})") from None
    return TrackMeta(
        [r[0] for r in body],
        [r[1] or None for r in body],
        [r[2] or None for r in body],
        [r[3] for r in body],
        durations,
        [r[5] for r in body],
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
        with open(self.path / VECTORS_FILE, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
            n, dim = shape
            for start in range(0, n, block):
                rows = min(block, n - start)
                yield np.fromfile(f, dtype=dtype, count=rows * dim).reshape(rows, dim).astype(np.float32, copy=False)

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
        text = (
            f"embeddings {self.path}: {len(self)} tracks x {self.dim} dims, encoder {enc.get('source')} "
            f"({enc.get('backbone')}), {len(self.failures)} failed"
        )
        if self.failures:
            text += f" (see {self.path / FAILURES_FILE})"
        return text


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
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, dim))
    h = hashlib.blake2b(digest_size=16)
    row = 0
    for block in vector_blocks:
        b = np.ascontiguousarray(block, dtype=np.float32)
        if b.ndim != 2 or b.shape[1] != dim or row + len(b) > count:
            raise EmbeddingsError(f"internal: vector block {list(b.shape)} does not fit [{count}, {dim}] at row {row}")
        out[row : row + len(b)] = b
        h.update(b.tobytes())
        row += len(b)
    if row != count:
        raise EmbeddingsError(f"internal: {row} vectors written, {count} expected")
    out.flush()
    del out
    with open(tmp, "rb+") as f:
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
