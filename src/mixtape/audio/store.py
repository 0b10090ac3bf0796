"""The feature store: one folder holding every track's log-mel frames, memory-mapped for training.

Layout (all in one folder):

- ``store.json``   settings: format version, :class:`MelConfig`, dtype, the short-track rule, shard;
- ``frames.f16``   raw little-endian float16, row-major ``[rows, n_mels]``: a track is a contiguous run
  of rows, so a patch of consecutive frames is one contiguous slice of the file;
- ``index.jsonl``  the committed index, append-only, one JSON object per track (``track_id, offset,
  n_frames, duration, checksum, size, mtime_ns, path, frames_checksum``). A line is appended only after
  the frames it points to are flushed and fsynced, so whatever a reader finds in the index is complete
  on disk. ``checksum`` is the source audio's blake2b, ``frames_checksum`` the blake2b of the exact
  frame bytes written for the track (absent in stores written before it was recorded: those tracks
  cannot be verified, see :func:`verify_frames`);
- ``index.npz``    a compact snapshot of the index up to a byte position of ``index.jsonl``, written at
  the end of each run, so opening a store of millions of tracks does not parse millions of JSON lines;
- ``failures.tsv`` ``track_id, path, reason`` for every track that could not be used.

When a track id appears twice in the index (its source file changed and it was recomputed), the
later entry wins; the rows of the earlier one stay in ``frames.f16`` as dead space until the store
is merged into a new folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
from pydantic import Field

from mixtape.config import StrictConfig, config_from_dict
from mixtape.errors import MixtapeError
from mixtape.fileio import (
    LOCK_FILE,
    acquire_folder_lock,
    atomic_open,
    atomic_write_text,
    get_logger,
    progress,
)
from mixtape.stagefolder import StageFolder, register_stage_folder

from .mel import MelConfig

log = get_logger(__name__)

STORE_FOLDER = register_stage_folder(
    StageFolder("feature store", "store.json", "mixtape-feature-store", 1, "create one with `mixtape features`")
)
SETTINGS_FILE = STORE_FOLDER.header_file
FRAMES_FILE = "frames.f16"
JOURNAL_FILE = "index.jsonl"
SNAPSHOT_FILE = "index.npz"
FAILURES_FILE = "failures.tsv"
FRAME_DTYPE = np.dtype("<f2")

SHORT_TRACK_RULE = (
    "audio shorter than min_duration_s is a failure ('too short'); audio with fewer than patch_frames "
    "frames is looped (the waveform repeated from its start) up to exactly patch_frames frames; "
    "audio whose peak is at or below silence_peak is a failure ('silent')"
)


class StoreError(MixtapeError):
    """A feature store that is missing, damaged, incompatible, or asked for a track it does not hold."""


class TrackNotInStore(StoreError, KeyError):
    """A track id the store does not hold; also a KeyError, so mapping-style code can catch it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreSettings(StrictConfig):
    """What a store holds and how it was made; a resumed run or a merge must agree with it exactly."""

    format: Literal["mixtape-feature-store"] = "mixtape-feature-store"
    version: int = STORE_FOLDER.version
    mel: MelConfig = Field(default_factory=MelConfig)
    dtype: Literal["float16"] = "float16"
    patch_frames: int = Field(128, gt=0)
    min_duration_s: float = Field(0.5, ge=0.0)
    silence_peak: float = Field(1e-5, ge=0.0)
    shard: tuple[int, int] = (0, 1)
    short_track_rule: str = SHORT_TRACK_RULE

    def differences(self, other: StoreSettings) -> list[str]:
        """Human-readable ``key: ours != theirs`` lines for every setting that differs."""
        a, b = self.model_dump(mode="json"), other.model_dump(mode="json")
        out = []
        for key in a:
            if key == "mel":
                out += [f"mel.{k}: {a['mel'][k]!r} != {b['mel'][k]!r}" for k in a["mel"] if a["mel"][k] != b["mel"][k]]
            elif a[key] != b[key]:
                out.append(f"{key}: {a[key]!r} != {b[key]!r}")
        return out


def read_settings(path: Path) -> StoreSettings:
    file = path / SETTINGS_FILE
    data = STORE_FOLDER.read_header(
        path,
        error=StoreError,
        hint=f"not a feature store: {path} has no {SETTINGS_FILE}; create one with `mixtape features`",
    )
    return config_from_dict(StoreSettings, data, str(file))


def write_settings(path: Path, settings: StoreSettings) -> None:
    STORE_FOLDER.write_header(path, settings.model_dump(mode="json"))


# --- the index -----------------------------------------------------------------------------------

_STR_COLUMNS = ("track_id", "path", "checksum", "frames_checksum")
#: Columns a store written by an older mixtape lacks; read as "" (unknown) there.
_OPTIONAL_COLUMNS = ("frames_checksum",)
_NUM_COLUMNS = {
    "offset": np.int64,
    "n_frames": np.int64,
    "duration": np.float64,
    "size": np.int64,
    "mtime_ns": np.int64,
}


@dataclass
class IndexColumns:
    """The index as columns: strings as lists, numbers as arrays; row ``i`` is track ``i`` of the store."""

    track_id: list[str]
    path: list[str]
    checksum: list[str]
    frames_checksum: list[str]
    offset: np.ndarray
    n_frames: np.ndarray
    duration: np.ndarray
    size: np.ndarray
    mtime_ns: np.ndarray

    @classmethod
    def empty(cls) -> IndexColumns:
        return cls.from_rows([])

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]]) -> IndexColumns:
        strs: dict[str, Any] = {k: [str(r[k]) for r in rows] for k in _STR_COLUMNS}
        nums: dict[str, Any] = {
            k: np.fromiter((r[k] for r in rows), dtype=t, count=len(rows)) for k, t in _NUM_COLUMNS.items()
        }
        return cls(**strs, **nums)

    def __len__(self) -> int:
        return len(self.track_id)

    def concat(self, other: IndexColumns) -> IndexColumns:
        if not len(other):
            return self
        strs: dict[str, Any] = {k: getattr(self, k) + getattr(other, k) for k in _STR_COLUMNS}
        nums: dict[str, Any] = {k: np.concatenate([getattr(self, k), getattr(other, k)]) for k in _NUM_COLUMNS}
        return IndexColumns(**strs, **nums)

    def take(self, keep: np.ndarray) -> IndexColumns:
        strs: dict[str, Any] = {k: [getattr(self, k)[i] for i in keep.tolist()] for k in _STR_COLUMNS}
        nums: dict[str, Any] = {k: getattr(self, k)[keep] for k in _NUM_COLUMNS}
        return IndexColumns(**strs, **nums)

    def latest(self) -> IndexColumns:
        """Drop entries superseded by a later entry for the same track id (a recomputed track)."""
        last = {tid: i for i, tid in enumerate(self.track_id)}
        if len(last) == len(self.track_id):
            return self
        return self.take(np.fromiter(sorted(last.values()), dtype=np.int64, count=len(last)))

    def rows_end(self) -> int:
        """First frame row not referenced by any entry: where the next track's frames go."""
        return int((self.offset + self.n_frames).max()) if len(self) else 0


def frames_checksum(frames: np.ndarray) -> str:
    """blake2b of a track's frames as stored (little-endian float16 bytes, row-major), hex."""
    data = np.ascontiguousarray(frames, dtype=FRAME_DTYPE)
    return hashlib.blake2b(data.data, digest_size=16).hexdigest()


def journal_line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def read_journal(path: Path, start: int = 0) -> tuple[IndexColumns, int]:
    """Parse complete lines of ``index.jsonl`` from byte ``start``; returns the entries and the byte
    position after the last complete line (a partial last line is what a killed writer leaves)."""
    try:
        with open(path / JOURNAL_FILE, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return IndexColumns.empty(), 0
    end = data.rfind(b"\n") + 1
    rows = []
    for lineno, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        try:
            row = json.loads(line)
            rows.append(
                {k: row.get(k, "") if k in _OPTIONAL_COLUMNS else row[k] for k in (*_STR_COLUMNS, *_NUM_COLUMNS)}
            )
        except (
            json.JSONDecodeError,
            UnicodeDecodeError,
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as err:  # AttributeError: a line that is not an object
            where = f"line {lineno}" if start == 0 else f"line {lineno} after byte {start}"
            raise StoreError(
                f"{path / JOURNAL_FILE}: {where} is damaged ({err}); the store cannot be trusted, re-extract it"
            ) from None
    try:
        columns = IndexColumns.from_rows(rows)
    except (TypeError, ValueError, OverflowError) as err:
        raise StoreError(f"{path / JOURNAL_FILE}: a numeric field is damaged ({err}); re-extract the store") from None
    return columns, start + end


def _join(strings: list[str]) -> np.ndarray:
    return np.frombuffer("\0".join(strings).encode("utf-8"), dtype=np.uint8)


def _split(blob: np.ndarray, count: int) -> list[str]:
    return blob.tobytes().decode("utf-8").split("\0") if count else []


def write_snapshot(path: Path, columns: IndexColumns, journal_bytes: int) -> None:
    """Save ``columns`` (the index up to byte ``journal_bytes`` of the journal) as one compact npz."""
    arrays = {k: getattr(columns, k) for k in _NUM_COLUMNS}
    arrays |= {k: _join(getattr(columns, k)) for k in _STR_COLUMNS}
    arrays |= {"journal_bytes": np.int64(journal_bytes), "count": np.int64(len(columns))}
    with atomic_open(path / SNAPSHOT_FILE, "wb") as f:
        np.savez(f, **arrays)


def _read_snapshot(path: Path, journal_size: int) -> tuple[IndexColumns, int] | None:
    """The snapshot and the journal position it covers, or None when absent or unusable."""
    try:
        with (
            open(path / SNAPSHOT_FILE, "rb") as f,
            np.load(f, allow_pickle=False) as z,
        ):  # our own handle: numpy leaks its own when the file is damaged
            covered, count = int(z["journal_bytes"]), int(z["count"])
            if covered > journal_size:
                log.warning("%s covers more of the index than exists; ignoring it", path / SNAPSHOT_FILE)
                return None
            strs: dict[str, Any] = {
                k: _split(z[k], count) if k in z.files or k not in _OPTIONAL_COLUMNS else [""] * count
                for k in _STR_COLUMNS
            }
            nums: dict[str, Any] = {k: z[k].astype(t, copy=False) for k, t in _NUM_COLUMNS.items()}
    except FileNotFoundError:
        return None
    except Exception as err:
        # only a cache of the journal: any damage (BadZipFile, EOFError, a bad shape...) means "read the journal"
        log.warning("%s is unreadable (%s); reading the whole index instead", path / SNAPSHOT_FILE, err)
        return None
    columns = IndexColumns(**strs, **nums)
    if (
        covered < 0
        or any(getattr(columns, k).ndim != 1 for k in _NUM_COLUMNS)
        or any(len(getattr(columns, k)) != count for k in (*_STR_COLUMNS, *_NUM_COLUMNS))
    ):
        log.warning("%s is inconsistent; reading the whole index instead", path / SNAPSHOT_FILE)
        return None
    return columns, covered


def read_index(path: Path) -> tuple[IndexColumns, int]:
    """All committed entries (snapshot + journal tail, superseded ones dropped) and the committed journal size."""
    try:
        journal_size = (path / JOURNAL_FILE).stat().st_size
    except FileNotFoundError:
        journal_size = 0
    snap = _read_snapshot(path, journal_size)
    base, start = snap if snap is not None else (IndexColumns.empty(), 0)
    tail, end = read_journal(path, start)
    columns = base.concat(tail).latest()
    _check_extents(path, columns)
    return columns, end


#: Largest frame offset or count an index entry may hold: far beyond any store, and small enough that
#: ``offset + n_frames`` cannot overflow int64 (which would make a damaged index look short).
_MAX_ROWS = 1 << 60


def _check_extents(path: Path, columns: IndexColumns) -> None:
    """Refuse index entries whose frame rows cannot exist (negative or absurd offset or count)."""
    bad = np.flatnonzero(
        (columns.offset < 0) | (columns.n_frames < 0) | (columns.offset > _MAX_ROWS) | (columns.n_frames > _MAX_ROWS)
    )
    if len(bad):
        i = int(bad[0])
        raise StoreError(
            f"{path / JOURNAL_FILE}: track {columns.track_id[i]!r} has frame offset {int(columns.offset[i])} and "
            f"{int(columns.n_frames[i])} frames: the index is damaged; re-extract the store"
        )


# --- failures ------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return str(text).replace("\t", " ").replace("\r", " ").replace("\n", " ").replace("\0", "\\0")


def write_failures(path: Path, failures: Iterable[tuple[str, str, str]]) -> None:
    lines = ["track_id\tpath\treason"] + ["\t".join(_clean(x) for x in row) for row in failures]
    atomic_write_text(path / FAILURES_FILE, "\n".join(lines) + "\n")


def read_failures(path: Path) -> list[tuple[str, str, str]]:
    try:
        lines = (path / FAILURES_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as err:
        raise StoreError(
            f"{path / FAILURES_FILE}: not UTF-8 text ({err}); it only lists failed tracks: delete it and "
            "re-run `mixtape features` to list them again"
        ) from None
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return [(r[0], r[1] if len(r) > 1 else "", "\t".join(r[2:])) for r in rows]


# --- the reader ----------------------------------------------------------------------------------


class FeatureStore:
    """Read access to a feature store: per-track metadata and frames as zero-copy memmap views.

    Safe to pickle into data-loader workers: the memmap is not pickled, each process maps the file.
    """

    def __init__(
        self, path: Path, settings: StoreSettings, columns: IndexColumns, failures: list[tuple[str, str, str]]
    ) -> None:
        self.path = path
        self.settings = settings
        self._columns = columns
        self.failures = failures
        self.rows = columns.rows_end()  # frame rows the index refers to, dead ones included
        self._positions: dict[str, int] | None = None
        self._frames: np.ndarray | None = None
        self._frames_file_id: tuple[int, int] | None = None  # (device, inode) of frames.f16 when first checked

    @classmethod
    def open(cls, path: str | Path) -> FeatureStore:
        """Open a store; only committed tracks are visible, even while a writer is still running."""
        path = Path(path)
        if not path.is_dir():
            raise StoreError(f"feature store not found: {path} (create it with `mixtape features`)")
        settings = read_settings(path)
        columns, _ = read_index(path)
        store = cls(path, settings, columns, read_failures(path))
        store.check_frames()
        return store

    # metadata ------------------------------------------------------------------------------------

    @property
    def mel_config(self) -> MelConfig:
        return self.settings.mel

    @property
    def n_mels(self) -> int:
        return self.settings.mel.n_mels

    @property
    def patch_frames(self) -> int:
        return self.settings.patch_frames

    def __len__(self) -> int:
        return len(self._columns)

    @property
    def track_ids(self) -> list[str]:
        return self._columns.track_id

    @property
    def offsets(self) -> np.ndarray:
        return self._columns.offset

    @property
    def n_frames(self) -> np.ndarray:
        return self._columns.n_frames

    @property
    def durations(self) -> np.ndarray:
        """Seconds of real audio per track (before any looping of short tracks)."""
        return self._columns.duration

    @property
    def paths(self) -> list[Path]:
        """Where each track's audio was read from when its features were computed."""
        return [Path(p) for p in self._columns.path]

    @property
    def checksums(self) -> list[str]:
        """blake2b of each source file (mixtape.fileio.file_checksum) at extraction time."""
        return self._columns.checksum

    @property
    def frames_checksums(self) -> list[str]:
        """blake2b of each track's stored frame bytes ("" for tracks stored before it was recorded)."""
        return self._columns.frames_checksum

    @property
    def source_sizes(self) -> np.ndarray:
        return self._columns.size

    @property
    def source_mtimes_ns(self) -> np.ndarray:
        return self._columns.mtime_ns

    @property
    def total_frames(self) -> int:
        return int(self.n_frames.sum())

    @property
    def hours(self) -> float:
        return float(self.durations.sum()) / 3600.0

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._position_map()

    def _position_map(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = {tid: i for i, tid in enumerate(self._columns.track_id)}
        return self._positions

    def index(self, track_id: str) -> int:
        """Row of ``track_id`` in this store's per-track arrays."""
        try:
            return self._position_map()[track_id]
        except KeyError:
            raise TrackNotInStore(
                f"track {track_id!r} is not in feature store {self.path} ({len(self)} tracks)"
            ) from None

    def indices(self, track_ids: Iterable[str]) -> np.ndarray:
        """Rows of many track ids at once; the error lists (up to 5 of) the ids that are absent."""
        pos = self._position_map()
        ids = list(track_ids)
        out = np.fromiter((pos.get(t, -1) for t in ids), dtype=np.int64, count=len(ids))
        if (out < 0).any():
            missing = [ids[i] for i in np.flatnonzero(out < 0)[:5]]
            raise TrackNotInStore(f"{int((out < 0).sum())} track(s) not in feature store {self.path}, e.g. {missing}")
        return out

    # frames --------------------------------------------------------------------------------------

    def check_frames(self) -> None:
        """Refuse a frames file shorter than the index says: reading it would crash (SIGBUS) or lie."""
        file = self.path / FRAMES_FILE
        need = self.rows * self.n_mels * FRAME_DTYPE.itemsize
        try:
            st = file.stat()
            have, file_id = st.st_size, (st.st_dev, st.st_ino)
        except FileNotFoundError:
            have, file_id = (0 if need == 0 else -1), None
        if have < need:
            got = "missing" if have < 0 else f"{have} bytes"
            raise StoreError(
                f"{file}: frames file is {got} but the index needs {need} bytes: the store was truncated or "
                "modified; re-extract it"
            )
        if self._frames_file_id is None:
            self._frames_file_id = file_id
        elif file_id is not None and file_id != self._frames_file_id:
            raise StoreError(
                f"{file}: the frames file was replaced after this store was opened (a merge or a new "
                "extraction into the same folder?); open the store again"
            )

    @property
    def frame_matrix(self) -> np.ndarray:
        """All committed rows ``[rows, n_mels]`` float16, memory-mapped read-only."""
        if self._frames is None:
            if self.rows == 0:
                self._frames = np.zeros((0, self.n_mels), dtype=FRAME_DTYPE)
            else:
                self.check_frames()
                self._frames = np.memmap(
                    self.path / FRAMES_FILE, dtype=FRAME_DTYPE, mode="r", shape=(self.rows, self.n_mels)
                )
        return self._frames

    def frames(self, i: int) -> np.ndarray:
        """Track ``i``'s frames ``[n_frames, n_mels]`` float16, a view into the memmap (no copy)."""
        if not -len(self) <= i < len(self):
            raise StoreError(f"track index {i} out of range for feature store {self.path} ({len(self)} tracks)")
        start = int(self.offsets[i])
        matrix = self.frame_matrix
        self.check_frames()  # one stat: a file truncated under the memmap would crash the read with SIGBUS
        return matrix[start : start + int(self.n_frames[i])]

    # reporting -----------------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def summary(self) -> str:
        dead = self.rows - self.total_frames
        text = (
            f"feature store {self.path}: {len(self)} tracks, {self.total_frames:,} frames "
            f"({self.hours:.2f} h of audio), {human_bytes(self.size_bytes)} on disk, {len(self.failures)} failed"
        )
        if self.failures:
            text += f" (see {self.path / FAILURES_FILE})"
        if dead:
            text += f"; {dead:,} rows superseded by recomputed tracks (merge into a new folder to reclaim them)"
        return text

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, tracks={len(self)}, frames={self.total_frames})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frames"] = None  # each process maps the file itself; pickling a memmap copies it
        state["_positions"] = None
        return state


def verify_frames(store: FeatureStore, *, desc: str = "hashing frames") -> tuple[list[int], int]:
    """Tracks whose frames no longer match the checksum recorded when they were written.

    Returns the positions of the damaged tracks and how many tracks could not be checked (stored
    without a frames checksum). Reads every frame once, with a progress bar.
    """
    store.check_frames()
    damaged: list[int] = []
    unchecked = 0
    for i in progress(range(len(store)), desc=desc, total=len(store), unit="track"):
        want = store.frames_checksums[i]
        if not want:
            unchecked += 1
        elif frames_checksum(store.frames(i)) != want:
            damaged.append(i)
    return damaged, unchecked


def store_fingerprint(store: FeatureStore) -> str:
    """blake2b over a feature store's mel settings, track ids, source checksums and frame counts:
    what an embeddings folder or a pre-training run records to say which store it read."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(store.mel_config.model_dump(mode="json"), sort_keys=True).encode("utf-8"))
    h.update("\0".join(store.track_ids).encode("utf-8"))
    h.update("\0".join(store.checksums).encode("utf-8"))
    h.update(np.asarray(store.n_frames, dtype=np.int64).tobytes())
    return h.hexdigest()


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# --- the writer ----------------------------------------------------------------------------------


def write_error(path: Path, file: str, err: OSError) -> StoreError:
    """A write the file system refused (disk full, file size limit, quota), as a message the user can act on."""
    return StoreError(
        f"feature store {path}: cannot write {file}: {err.strerror or err}. Free space (or raise the file size limit) "
        "and re-run the same command: the tracks committed so far are kept and the run continues after them"
    )


class StoreWriter:
    """Appends tracks to a store so that a killed run leaves only complete, committed tracks visible.

    Frames are written first; index lines are appended only after the frames are fsynced (``commit``).
    Opening a writer on an existing store truncates whatever a killed run left past the last
    committed entry. One writer per store at a time (an advisory lock refuses a second one).
    """

    def __init__(self, path: str | Path, settings: StoreSettings) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not a feature store folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = self._acquire_lock()
        try:
            if (self.path / SETTINGS_FILE).exists():
                existing = read_settings(self.path)
                diff = existing.differences(settings)
                if diff:
                    raise StoreError(
                        f"feature store {self.path} was made with other settings ({'; '.join(diff)}); write "
                        "to a new folder or use the same settings"
                    )
            elif any(p.name != LOCK_FILE for p in self.path.iterdir()):
                raise StoreError(f"{self.path} is not empty and not a feature store; choose a new folder for the store")
            else:
                write_settings(self.path, settings)
            self.settings = settings
            self.committed, journal_end = read_index(self.path)
            self._recover(journal_end)
            self._frames: IO[bytes] = open(self.path / FRAMES_FILE, "r+b")
            self._frames.seek(0, os.SEEK_END)
            self._journal: IO[bytes] = open(self.path / JOURNAL_FILE, "ab")
        except BaseException:
            self._release_lock()
            raise
        self.next_row = self.committed.rows_end()
        self._pending: list[bytes] = []
        self.pending_bytes = 0

    def _acquire_lock(self) -> IO[bytes] | None:
        return acquire_folder_lock(
            self.path,
            f"feature store {self.path} is being written by another process; wait for it or use another folder",
            StoreError,
        )

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _recover(self, journal_end: int) -> None:
        """Cut a partial index line and any frames past the last committed entry (a killed run's leftovers)."""
        journal = self.path / JOURNAL_FILE
        if journal.exists() and journal.stat().st_size > journal_end:
            log.info("%s: dropping an incomplete index line left by an interrupted run", journal)
            os.truncate(journal, journal_end)
        frames = self.path / FRAMES_FILE
        need = self.committed.rows_end() * self.settings.mel.n_mels * FRAME_DTYPE.itemsize
        if not frames.exists():
            if need:
                raise StoreError(
                    f"{frames} is missing but the index refers to {need} bytes of frames; delete the store "
                    "and re-extract"
                )
            frames.touch()
        have = frames.stat().st_size
        if have < need:
            raise StoreError(
                f"{frames} is {have} bytes but the index needs {need}: the store is damaged; delete it and re-extract"
            )
        if have > need:
            log.info("%s: dropping %d bytes of uncommitted frames left by an interrupted run", frames, have - need)
            os.truncate(frames, need)

    def add(
        self,
        track_id: str,
        frames: np.ndarray,
        *,
        duration: float,
        checksum: str,
        size: int,
        mtime_ns: int,
        path: str,
        expect_frames_checksum: str = "",
    ) -> None:
        """Write one track's frames; it becomes visible at the next :meth:`commit`.

        ``expect_frames_checksum`` (a merge copying another store's track): the checksum recorded for
        these frames where they come from; frames that no longer match it are refused, not copied.
        """
        data = np.ascontiguousarray(frames, dtype=FRAME_DTYPE)
        if data.ndim != 2 or data.shape[1] != self.settings.mel.n_mels:
            raise ValueError(f"track {track_id!r}: frames must be [n, {self.settings.mel.n_mels}], got {data.shape}")
        digest = frames_checksum(data)
        if expect_frames_checksum and digest != expect_frames_checksum:
            raise StoreError(
                f"track {track_id!r} ({path}): its frames no longer match the checksum recorded when they "
                "were written (the store they come from is damaged); re-extract that store"
            )
        try:
            self._frames.write(data.tobytes())
        except OSError as err:
            raise write_error(self.path, FRAMES_FILE, err) from None
        row = {
            "track_id": track_id,
            "offset": self.next_row,
            "n_frames": len(data),
            "duration": float(duration),
            "checksum": checksum,
            "size": int(size),
            "mtime_ns": int(mtime_ns),
            "path": path,
            "frames_checksum": digest,
        }
        self._pending.append(journal_line(row))
        self.next_row += len(data)
        self.pending_bytes += data.nbytes

    @property
    def pending_tracks(self) -> int:
        return len(self._pending)

    def commit(self) -> int:
        """Make every added track durable and visible; returns how many were committed."""
        if not self._pending:
            return 0
        file = FRAMES_FILE
        try:
            self._frames.flush()
            os.fsync(self._frames.fileno())
            file = JOURNAL_FILE
            self._journal.write(b"".join(self._pending))
            self._journal.flush()
            os.fsync(self._journal.fileno())
        except OSError as err:
            # Never retried: a second attempt could append whole lines after a torn one. The next
            # writer cuts whatever this left past the last complete index line.
            self._pending.clear()
            self.pending_bytes = 0
            raise write_error(self.path, file, err) from None
        n = len(self._pending)
        self._pending.clear()
        self.pending_bytes = 0
        return n

    def close(self, snapshot: bool = True) -> None:
        """Commit, write the index snapshot, release the lock."""
        try:
            self.commit()
            self._frames.close()
            self._journal.close()
            if snapshot:
                columns, end = read_index(self.path)
                write_snapshot(self.path, columns, end)
        finally:
            self._release_lock()

    def abort(self) -> None:
        """Close without committing pending tracks (their frames are cut by the next writer)."""
        with contextlib.suppress(OSError):  # closing flushes: on a full disk that fails again
            self._frames.close()
        with contextlib.suppress(OSError):
            self._journal.close()
        self._release_lock()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()
