"""Health checks of a feature store beyond what opening it checks (used by ``mixtape doctor``).

Opening a store refuses what would make reading it wrong (a damaged index, a frames file shorter
than the index). These functions find what makes a store stale or leaves debris: source audio that
changed or disappeared since extraction, bytes an interrupted run left past the committed index, a
writer still holding the store's lock. The frames themselves are verified by
:func:`mixtape.audio.store.verify_frames`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mixtape.fileio import LOCK_FILE, file_checksum, progress

from .store import FRAME_DTYPE, FRAMES_FILE, JOURNAL_FILE, FeatureStore


@dataclass(frozen=True)
class SourceChange:
    """A track whose source audio is no longer the file its features were computed from."""

    index: int  # position of the track in the store
    track_id: str
    path: str
    what: str  # "missing", or how it changed ("size 1200 -> 900 bytes", "content changed")


def source_changes(store: FeatureStore, *, desc: str = "checking source audio") -> list[SourceChange]:
    """Tracks whose source file is missing or changed since extraction: another size, or another
    modification time *and* other content (the rule `mixtape features` uses to recompute a track, so
    a mere `touch` is not a change)."""
    out: list[SourceChange] = []
    sizes, mtimes = store.source_sizes, store.source_mtimes_ns
    for i in progress(range(len(store)), desc=desc, total=len(store), unit="track"):
        path = str(store.paths[i])
        try:
            st = os.stat(path)
        except OSError:
            out.append(SourceChange(i, store.track_ids[i], path, "missing"))
            continue
        if st.st_size != int(sizes[i]):
            out.append(SourceChange(i, store.track_ids[i], path, f"size {int(sizes[i])} -> {st.st_size} bytes"))
        elif st.st_mtime_ns != int(mtimes[i]):
            try:
                same = file_checksum(path) == store.checksums[i]
            except OSError:
                same = True  # unreadable now: the decoder will say so if it is ever re-extracted
            if not same:
                out.append(SourceChange(i, store.track_ids[i], path, "content changed"))
    return out


def uncommitted_bytes(store: FeatureStore) -> tuple[int, int]:
    """Bytes of ``frames.f16`` and of ``index.jsonl`` past the committed index: what a killed run left
    (the next `mixtape features` run on the store cuts them)."""
    need = store.rows * store.n_mels * FRAME_DTYPE.itemsize
    try:
        frames = (store.path / FRAMES_FILE).stat().st_size - need
    except FileNotFoundError:
        frames = 0
    try:
        with open(store.path / JOURNAL_FILE, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - (1 << 20)))  # index lines are short: the last megabyte holds the last newline
            tail = f.read()
        journal = len(tail) - (tail.rfind(b"\n") + 1)
    except FileNotFoundError:
        journal = 0
    return max(0, frames), journal


def writer_active(path: Path) -> bool:
    """True when a process holds the store's writer lock right now (it is being written)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to ask
        return False
    try:
        lock = open(path / LOCK_FILE, "rb")  # closed in the finally below
    except OSError:
        return False
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return False
    finally:
        lock.close()
