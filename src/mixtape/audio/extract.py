"""Feature extraction: decode every track, compute its log-mel frames, append them to a feature store.

Work is spread over worker processes (decode + resample + log-mel, one torch thread each); the
parent appends results in the order of the tracks table, so a store's layout is reproducible.
A run is resumable (tracks already committed are skipped), shardable (``shard=(i, n)`` keeps the
tracks whose id hashes to ``i``; shards are merged with :func:`merge_stores`), and never stopped by
one bad file: the track is listed in ``failures.tsv`` with its reason and the run goes on.

Short tracks (see ``SHORT_TRACK_RULE`` in :mod:`mixtape.audio.store`): under ``min_duration_s``
(0.5 s) a track fails as 'too short'; between that and one patch (128 frames, 2.06 s) its waveform is
looped from the start up to exactly one patch, so every stored track yields at least one full patch.

A source file that changed since its features were stored (other size, or other mtime *and* other
checksum) is recomputed on the next run; the new entry supersedes the old one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from mixtape.catalog.tracks import TrackRecord
from mixtape.errors import MixtapeError
from mixtape.fileio import file_checksum, get_logger, progress
from mixtape.workers import WorkerCrashed, map_ordered

from .decode import AudioDecodeError, load_audio
from .mel import MelConfig, log_mel_batch
from .store import (
    FAILURES_FILE,
    FRAMES_FILE,
    FeatureStore,
    StoreError,
    StoreSettings,
    StoreWriter,
    human_bytes,
    read_failures,
    write_failures,
)

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Commit (fsync frames, then append index lines) after this many tracks, bytes or seconds.
COMMIT_TRACKS = 256
COMMIT_BYTES = 64 << 20
COMMIT_SECONDS = 10.0
#: Failures logged one by one; beyond this only the count is logged (the failures file has them all).
LOG_FAILURES = 20
#: Float audio louder than this is refused: its power spectrum overflows float32 into NaN features.
#: Clipped or un-normalised float files (peaks of 2, 100, 1000) are far below it and are kept.
MAX_PEAK = 1e6


def shard_of(track_id: str, n_shards: int) -> int:
    """The shard a track belongs to: a stable hash of its id, so shards agree across machines and table orders."""
    if n_shards == 1:
        return 0
    digest = hashlib.blake2b(track_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


# --- one track -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    settings: StoreSettings
    mel_in_worker: bool  # False when the parent computes log-mel on a GPU


@dataclass
class TrackResult:
    """What a worker sends back for one track: frames (or audio for GPU log-mel), or the reason it failed."""

    track_id: str
    path: str
    reason: str | None = None
    frames: np.ndarray | None = None
    audio: np.ndarray | None = None
    duration: float = 0.0
    checksum: str = ""
    size: int = 0
    mtime_ns: int = 0


class UnusableAudio(AudioDecodeError):
    """Audio that decodes but cannot make a training example: too short or silent."""


def track_audio(path: Path, settings: StoreSettings) -> tuple[np.ndarray, float]:
    """Decoded audio ready for log-mel, looped up to one patch if short, and its real duration.

    Raises AudioDecodeError when unreadable, UnusableAudio when too short or silent.
    """
    mel = settings.mel
    audio = load_audio(path, mel.sample_rate, quality=mel.resample_quality)
    duration = len(audio) / mel.sample_rate
    if len(audio) == 0 or duration < settings.min_duration_s:
        raise UnusableAudio(path, f"too short: {duration:.3f} s of audio, the minimum is {settings.min_duration_s} s")
    peak = float(np.abs(audio).max())
    if peak <= settings.silence_peak:
        raise UnusableAudio(path, f"silent: peak amplitude {peak:.2g} is at or below {settings.silence_peak:g}")
    if peak > MAX_PEAK:
        raise UnusableAudio(
            path,
            f"amplitude out of range: peak {peak:.3g} (float samples belong near [-1, 1]; above {MAX_PEAK:g} "
            "the spectrum overflows)",
        )
    need = mel.samples_for(settings.patch_frames)
    if len(audio) < need:
        audio = np.resize(audio, need)  # np.resize repeats the array cyclically: the loop rule
    return audio, duration


def process_track(track_id: str, path: str, job: _Job) -> TrackResult:
    """Decode and featurise one track; every problem becomes a reason, never an exception."""
    result = TrackResult(track_id, path)
    try:
        st = os.stat(path) if os.path.exists(path) else None  # before decoding: the state the features reflect
        audio, result.duration = track_audio(Path(path), job.settings)
        assert st is not None
        result.size, result.mtime_ns = st.st_size, st.st_mtime_ns
        if job.mel_in_worker:
            result.frames = log_mel_batch(torch.from_numpy(audio), job.settings.mel).half().numpy()
        else:
            result.audio = audio
        result.checksum = file_checksum(path)
    except AudioDecodeError as err:
        result.reason = err.reason
    except FileNotFoundError:
        result.reason = "file not found"
    except Exception as err:  # a decoder bug on one file must not stop a million-file run
        result.reason = f"unexpected {type(err).__name__}: {err}"
    if result.reason is not None:
        result.frames = result.audio = None
    return result


_WORKER_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    """One torch thread per process (the processes are the parallelism); Ctrl-C is the parent's to handle."""
    global _WORKER_JOB
    _WORKER_JOB = job
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_process(task: tuple[str, str]) -> TrackResult:
    assert _WORKER_JOB is not None, "worker used without _init_worker"
    return process_track(task[0], task[1], _WORKER_JOB)


# --- an ordered, crash-tolerant process pool -----------------------------------------------------


# --- the run -------------------------------------------------------------------------------------


@dataclass
class ExtractionReport:
    """What one extraction run did; ``summary()`` is what the CLI prints."""

    out: Path
    shard: tuple[int, int]
    records: int  # tracks given
    in_shard: int  # of those, tracks of this run's shard
    done: int = 0  # computed and committed by this run
    recomputed: int = 0  # of ``done``, tracks whose source file had changed since they were stored
    skipped_existing: int = 0  # already in the store, unchanged
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (track_id, path, reason) of this run
    seconds: float = 0.0
    store_tracks: int = 0
    store_size_bytes: int = 0

    def summary(self) -> str:
        i, n = self.shard
        lines = [
            f"features -> {self.out}"
            + (f" (shard {i}/{n}: {self.in_shard} of {self.records} tracks)" if n > 1 else ""),
            f"  done {self.done} (recomputed {self.recomputed} changed sources), skipped-existing "
            f"{self.skipped_existing}, failed {len(self.failed)}, {self.seconds:.1f} s",
            f"  store: {self.store_tracks} tracks, {human_bytes(self.store_size_bytes)} on disk",
        ]
        if self.failed:
            lines.append(f"  failures listed in {self.out / FAILURES_FILE}, e.g.:")
            lines += [f"    {tid}: {reason} ({path})" for tid, path, reason in self.failed[:5]]
        return "\n".join(lines)


def _source_unchanged(path: Path, size: int, mtime_ns: int, checksum: str) -> bool:
    """True unless the file now differs: other size, or other mtime and other content (a `touch` is not a change).
    A source that has disappeared keeps its stored features."""
    try:
        st = path.stat()
    except OSError:
        return True
    if st.st_size != size:
        return False
    if st.st_mtime_ns == mtime_ns:
        return True
    try:
        return file_checksum(path) == checksum
    except OSError:
        return True


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise MixtapeError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MixtapeError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    return dev


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise MixtapeError(f"shard {i}/{n}: need n >= 1 and 0 <= i < n")
    return int(i), int(n)


def extract_features(
    records: Sequence[TrackRecord],
    out: str | Path,
    mel: MelConfig | None = None,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    *,
    patch_frames: int = 128,
    min_duration_s: float = 0.5,
    device: str = "cpu",
) -> ExtractionReport:
    """Compute the log-mel frames of ``records`` (those of ``shard``) into the store at ``out``.

    ``workers``: decoding processes (default: all cores; 0 runs in this process). ``device='cuda'``
    lets workers only decode and computes log-mel here on the GPU. Re-running resumes.
    """
    started = time.perf_counter()
    out = Path(out)
    shard = _check_shard(shard)
    settings = StoreSettings(
        mel=mel or MelConfig(), patch_frames=patch_frames, min_duration_s=min_duration_s, shard=shard
    )
    if workers is not None and workers < 0:
        raise MixtapeError(f"workers must be 0 (this process) or more, got {workers}")
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    mel_in_worker = _check_device(device).type == "cpu"
    writer = StoreWriter(out, settings)
    try:
        report, todo, stale, failures = _plan(records, writer, shard)
        log.info(
            "features: %d tracks%s; %d already in %s, %d to compute with %s",
            report.in_shard,
            f" in shard {shard[0]}/{shard[1]}" if shard[1] > 1 else "",
            report.skipped_existing,
            out,
            len(todo),
            f"{workers} worker processes" if workers else "this process",
        )
        job = _Job(settings, mel_in_worker)
        tasks = [(r.track_id, str(r.path)) for r in todo]
        if workers > 1:
            tasks = _longest_first(tasks)
        if workers == 0 or len(tasks) <= 1:
            results: Iterable[TrackResult | WorkerCrashed] = (process_track(tid, p, job) for tid, p in tasks)
        else:
            results = map_ordered(_worker_process, tasks, min(workers, len(tasks)), _init_worker, (job,))
        _consume(results, writer, job, device, failures, report, stale, total=len(tasks))
    except BaseException:
        try:
            writer.close(snapshot=False)  # whatever completed is committed; the snapshot waits for a clean finish
        except Exception:
            writer.abort()
        raise
    writer.close()
    store = FeatureStore.open(out)
    report.seconds = time.perf_counter() - started
    report.store_tracks, report.store_size_bytes = len(store), store.size_bytes
    log.info(
        "features: done %d, skipped-existing %d, failed %d in %.1f s -> %s",
        report.done,
        report.skipped_existing,
        len(report.failed),
        report.seconds,
        out,
    )
    return report


def _longest_first(tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Tasks by file size, largest first: with results taken in order, a long track dispatched last
    keeps one worker busy while the others idle (and one dispatched first keeps them from idling).
    Sizes stand in for durations; an unreadable file sorts last and fails in its worker as before."""

    def size(task: tuple[str, str]) -> int:
        try:
            return os.stat(task[1]).st_size
        except OSError:
            return -1

    return sorted(tasks, key=size, reverse=True)


def _plan(
    records: Sequence[TrackRecord], writer: StoreWriter, shard: tuple[int, int]
) -> tuple[ExtractionReport, list[TrackRecord], set[str], dict[str, tuple[str, str]]]:
    """Which records this run computes: those of its shard not already committed with an unchanged source."""
    i, n = shard
    seen: set[str] = set()
    mine: list[TrackRecord] = []
    invalid: list[tuple[str, str, str]] = []
    for r in records:
        if r.track_id in seen:
            continue
        seen.add(r.track_id)
        if shard_of(r.track_id, n) != i:
            continue
        if not r.track_id or "\0" in r.track_id:
            invalid.append((r.track_id, str(r.path), "track id is empty or contains a NUL character"))
        else:
            mine.append(r)
    if len(seen) < len(records):
        log.warning(
            "features: %d records repeat a track id already given; only the first of each is used",
            len(records) - len(seen),
        )
    report = ExtractionReport(writer.path, shard, len(records), len(mine) + len(invalid))
    report.failed.extend(invalid)
    committed = writer.committed
    position = {tid: k for k, tid in enumerate(committed.track_id)}
    todo: list[TrackRecord] = []
    stale: set[str] = set()
    for r in progress(mine, desc="checking store", unit="track", total=len(mine)) if position else mine:
        k = position.get(r.track_id)
        if k is None:
            todo.append(r)
        elif _source_unchanged(Path(r.path), int(committed.size[k]), int(committed.mtime_ns[k]), committed.checksum[k]):
            report.skipped_existing += 1
        else:
            todo.append(r)
            stale.add(r.track_id)
    failures = {tid: (path, reason) for tid, path, reason in read_failures(writer.path) if tid not in position}
    failures.update({tid: (path, reason) for tid, path, reason in invalid})
    return report, todo, stale, failures


def _consume(
    results: Iterable[TrackResult | WorkerCrashed],
    writer: StoreWriter,
    job: _Job,
    device: str,
    failures: dict[str, tuple[str, str]],
    report: ExtractionReport,
    stale: set[str],
    total: int,
) -> None:
    """Append results in order, committing in groups; failures go to the report and failures.tsv."""
    last_commit = time.monotonic()
    failures_dirty = False
    try:
        for res in progress(results, desc="features", total=total, unit="track"):
            if isinstance(res, WorkerCrashed):
                tid, path = res.task
                res = TrackResult(tid, path, reason="the decoder crashed its worker process on this file")
            if res.reason is None and not job.mel_in_worker:
                try:
                    assert res.audio is not None
                    res.frames = (
                        log_mel_batch(torch.from_numpy(res.audio).to(device), job.settings.mel).half().cpu().numpy()
                    )
                except Exception as err:  # e.g. out of GPU memory on one very long track
                    res.reason = f"log-mel on {device} failed: {type(err).__name__}: {err}"
            if res.reason is not None:
                report.failed.append((res.track_id, res.path, res.reason))
                failures[res.track_id] = (res.path, res.reason)
                failures_dirty = True
                if len(report.failed) <= LOG_FAILURES:
                    log.warning("skipped %s (%s): %s", res.track_id, res.path, res.reason)
                continue
            assert res.frames is not None
            writer.add(
                res.track_id,
                res.frames,
                duration=res.duration,
                checksum=res.checksum,
                size=res.size,
                mtime_ns=res.mtime_ns,
                path=res.path,
            )
            report.done += 1
            report.recomputed += res.track_id in stale
            if failures.pop(res.track_id, None) is not None:
                failures_dirty = True
            now = time.monotonic()
            if (
                writer.pending_tracks >= COMMIT_TRACKS
                or writer.pending_bytes >= COMMIT_BYTES
                or now - last_commit >= COMMIT_SECONDS
            ):
                writer.commit()
                if failures_dirty:
                    write_failures(writer.path, ((t, p, r) for t, (p, r) in failures.items()))
                    failures_dirty = False
                last_commit = now
    finally:
        writer.commit()
        write_failures(writer.path, ((t, p, r) for t, (p, r) in failures.items()))
        if len(report.failed) > LOG_FAILURES:
            log.warning(
                "%d more tracks skipped; all are listed in %s",
                len(report.failed) - LOG_FAILURES,
                writer.path / FAILURES_FILE,
            )


# --- merging shards ------------------------------------------------------------------------------


def merge_stores(shard_dirs: Sequence[str | Path], out: str | Path) -> FeatureStore:
    """Merge shard stores (same settings) into a new store at ``out``; also compacts a single store.

    Built in a hidden folder beside ``out`` and renamed into place at the end, so ``out`` never
    holds a half-merged store. A track id present in several shards is taken from the first.
    """
    out = Path(out)
    if not shard_dirs:
        raise MixtapeError("merge: no shard stores given")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MixtapeError(f"merge: {out} already exists and is not empty; merge into a new folder")
    stores = [FeatureStore.open(d) for d in shard_dirs]
    base = stores[0].settings.model_copy(update={"shard": (0, 1)})
    for s in stores[1:]:
        diff = base.differences(s.settings.model_copy(update={"shard": (0, 1)}))
        if diff:
            raise StoreError(f"merge: {s.path} was made with other settings than {stores[0].path} ({'; '.join(diff)})")
    _check_shard_set(stores)
    tmp = out.parent / f".{out.name}.merging-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    writer = StoreWriter(tmp, base)
    seen: set[str] = set()
    duplicates = 0
    try:
        total = sum(len(s) for s in stores)
        bar = progress(((s, i) for s in stores for i in range(len(s))), desc="merging", total=total, unit="track")
        paths = {id(s): [str(p) for p in s.paths] for s in stores}
        for s, i in bar:
            tid = s.track_ids[i]
            if tid in seen:
                duplicates += 1
                continue
            seen.add(tid)
            try:
                writer.add(
                    tid,
                    s.frames(i),
                    duration=float(s.durations[i]),
                    checksum=s.checksums[i],
                    size=int(s.source_sizes[i]),
                    mtime_ns=int(s.source_mtimes_ns[i]),
                    path=paths[id(s)][i],
                    expect_frames_checksum=s.frames_checksums[i],
                )
            except StoreError as err:
                raise StoreError(f"merge: {s.path / FRAMES_FILE}: {err}") from None
            if writer.pending_bytes >= COMMIT_BYTES:
                writer.commit()
        failures: dict[str, tuple[str, str]] = {}
        for s in stores:
            for tid, path, reason in s.failures:
                if tid not in seen:
                    failures.setdefault(tid, (path, reason))
        write_failures(tmp, ((t, p, r) for t, (p, r) in failures.items()))
        writer.close()
    except BaseException:
        writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()  # empty (checked above); rename needs the name free on every platform
    os.replace(tmp, out)
    if duplicates:
        log.warning("merge: %d track ids appeared in more than one shard; the first copy was kept", duplicates)
    merged = FeatureStore.open(out)
    log.info("merged %d stores into %s: %d tracks", len(stores), out, len(merged))
    return merged


def _check_shard_set(stores: Sequence[FeatureStore]) -> None:
    """Refuse a shard given twice or shards of different splits; warn when some shards are missing."""
    counts = {s.settings.shard[1] for s in stores}
    if len(counts) > 1:
        raise StoreError(
            f"merge: the stores come from different shard splits ({sorted(counts)}): {[str(s.path) for s in stores]}"
        )
    n = counts.pop()
    if n == 1:
        return
    got: dict[int, Path] = {}
    for s in stores:
        i = s.settings.shard[0]
        if i in got:
            raise StoreError(f"merge: shard {i}/{n} given twice ({got[i]} and {s.path})")
        got[i] = s.path
    missing = sorted(set(range(n)) - set(got))
    if missing:
        log.warning("merge: shards %s of %d are missing; the merged store lacks their tracks", missing, n)
