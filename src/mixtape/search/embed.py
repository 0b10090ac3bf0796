"""`mixtape embed`: one embedding per track of a collection (audio folder, tracks table or feature store).

From audio, a feature store is built (or resumed) inside the output folder by ``extract_features``,
with the encoder's own log-mel settings, so decoding runs in worker processes and one bad file is a
listed failure, never a stopped run. Tracks are then embedded with ``mixtape.models.embed_tracks``
(mean over non-overlapping patches, the definition evaluation uses too) in chunks; each finished
chunk is saved, so an interrupted run resumes where it stopped, and a re-run after files were added
or changed reuses the vectors of unchanged tracks (same encoder, same audio checksum).

``shard=(i, n)`` embeds the tracks whose id hashes to shard ``i`` (``mixtape.audio.shard_of``, the
rule feature extraction uses), so a cluster can fan out; :func:`merge_embeddings` joins the shards.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixtape.audio.files import scan_audio_folder
from mixtape.audio.store import store_fingerprint
from mixtape.audio.tags import TagReadError, read_tags
from mixtape.catalog.tracks import TrackTable, read_tracks
from mixtape.errors import MixtapeError
from mixtape.fileio import ARRAY_FILE_ERRORS, atomic_open, folder_lock, get_logger, progress
from mixtape.models.bundle import EncoderBundle

from .embeddings import (
    FAILURES_FILE,
    META_FILE,
    Embeddings,
    EmbeddingsError,
    TrackMeta,
    write_embeddings,
)

log = get_logger(__name__)

PARTS_DIR = ".parts"
FEATURES_DIR = "features"
#: Tracks per saved chunk: what an interruption can lose at most.
CHUNK_TRACKS = 1024
#: Recorded in ``embeddings.json``: its ``tracks.tsv`` holds the names a person reads (titles, artist
#: names from the table or the files' tags). A folder written before is rewritten by the next run
#: (its vectors reused) so that its names are read.
NAMES_VERSION = 1


def collection_table(audio: str | Path, audio_root: str | Path | None = None) -> TrackTable:
    """A collection given as an audio folder (scanned) or a tracks table (CSV/TSV)."""
    audio = Path(audio)
    if audio.is_dir():
        return scan_audio_folder(audio)
    if not audio.exists():
        raise MixtapeError(f"--audio {audio}: no such folder or tracks table")
    return read_tracks(audio, audio_root)


@dataclass
class EmbedReport:
    """What one `mixtape embed` run did; ``summary()`` is what the CLI prints."""

    out: Path
    tracks: int = 0  # vectors in the output
    computed: int = 0  # embedded by this run
    reused: int = 0  # taken from a previous run (saved chunk or unchanged track)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    skipped_rows: list[str] = field(default_factory=list)  # tracks table rows that were unusable
    up_to_date: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        if self.up_to_date:
            return f"embeddings {self.out}: up to date ({self.tracks} tracks); nothing to do"
        lines = [
            f"embeddings -> {self.out}: {self.tracks} tracks",
            f"  embedded {self.computed}, reused {self.reused}, failed {len(self.failed)}, skipped table rows "
            f"{len(self.skipped_rows)}, {self.seconds:.1f} s",
        ]
        if self.failed:
            lines.append(f"  failures listed in {self.out / FAILURES_FILE}, e.g.:")
            lines += [f"    {tid}: {reason} ({path})" for tid, path, reason in self.failed[:5]]
        return "\n".join(lines)


def _in_shard(track_ids: Sequence[str], shard: tuple[int, int]) -> np.ndarray:
    from mixtape.audio import shard_of

    i, n = shard
    if n == 1:
        return np.ones(len(track_ids), dtype=bool)
    return np.fromiter((shard_of(t, n) == i for t in track_ids), dtype=bool, count=len(track_ids))


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise MixtapeError(f"shard {i}/{n}: need n >= 1 and 0 <= i < n")
    return int(i), int(n)


def _previous(out: Path, fingerprint: str, force: bool) -> Embeddings | None:
    """The complete embeddings already in ``out`` when made by the same encoder (their vectors are reusable)."""
    if not (out / META_FILE).exists():
        return None
    try:
        prev = Embeddings.open(out)
    except EmbeddingsError as err:
        log.warning("ignoring the previous embeddings in %s: %s", out, err)
        return None
    if prev.encoder_info.get("fingerprint") != fingerprint:
        if not force:
            raise EmbeddingsError(
                f"{out} holds embeddings of another encoder ({prev.encoder_info.get('source')}); "
                "write to a new folder, or pass --force to replace them"
            )
        return None
    return prev


class _PartStore:
    """Saved chunks of a run in progress: ``.parts/chunk-NNNNN.npz`` (track ids, source checksums, vectors)."""

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.dir = out / PARTS_DIR
        owner = self.dir / "encoder.json"
        if self.dir.exists():
            try:
                same = json.loads(owner.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
            except (OSError, ValueError, AttributeError, RecursionError):  # missing, not UTF-8, not JSON, not an object
                same = False
            if not same:
                log.info("discarding saved chunks of another encoder in %s", self.dir)
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(owner, "w", encoding="utf-8") as f:
            json.dump({"fingerprint": fingerprint}, f)

    def path(self, chunk: int) -> Path:
        return self.dir / f"chunk-{chunk:05d}.npz"

    def load(
        self, chunk: int, track_ids: list[str], checksums: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """The chunk's vectors, failed mask and failure reasons when saved for exactly these tracks and
        audio checksums, else None (not saved yet, or the store changed since)."""
        try:
            with (
                open(self.path(chunk), "rb") as f,
                np.load(f, allow_pickle=False) as z,
            ):  # our own handle: numpy leaks its own when the file is damaged
                if z["track_ids"].tolist() != track_ids or z["checksums"].tolist() != checksums:
                    return None
                vectors, failed = np.asarray(z["vectors"], dtype=np.float32), np.asarray(z["failed"], dtype=bool)
                reasons = [str(r) for r in np.asarray(z["reasons"]).reshape(-1).tolist()]
        except ARRAY_FILE_ERRORS as err:  # a torn or damaged chunk is recomputed, never trusted
            if not isinstance(err, FileNotFoundError):
                log.warning(
                    "%s: unreadable (%s: %s); embedding its tracks again", self.path(chunk), type(err).__name__, err
                )
            return None
        if (
            vectors.ndim != 2
            or failed.shape != (len(track_ids),)
            or len(vectors) != len(track_ids)
            or len(reasons) != int(failed.sum())
        ):
            log.warning("%s: arrays do not fit its %d tracks; embedding them again", self.path(chunk), len(track_ids))
            return None
        return vectors, failed, reasons

    def save(
        self,
        chunk: int,
        track_ids: list[str],
        checksums: list[str],
        vectors: np.ndarray,
        failed: np.ndarray,
        reasons: list[str],
    ) -> None:
        with atomic_open(self.path(chunk), "wb") as f:
            arrays: dict[str, Any] = {  # Any: numpy's stub would otherwise match a key to savez's allow_pickle
                "vectors": vectors,
                "failed": failed,
                "track_ids": np.array(track_ids, dtype=str),
                "checksums": np.array(checksums, dtype=str),
                "reasons": np.array(reasons, dtype=str),
            }
            np.savez(f, **arrays)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _embed_chunk(
    encoder: torch.nn.Module, reader: Any, rows: np.ndarray, batch_size: int, device: str, desc: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Vectors of store ``rows``, a mask of the tracks that failed, and why each failed.

    Failed tracks get zero vectors (dropped when the folder is written). When the whole chunk fails,
    its tracks are retried one by one so that one bad track never costs the others.
    """
    from mixtape.models import embed_tracks

    def one_pass(r: np.ndarray) -> np.ndarray:
        return embed_tracks(encoder, reader, r, batch_size=batch_size, device=device, desc=desc)

    try:
        vecs = one_pass(rows)
    except MixtapeError as err:
        log.warning("%s: %s; embedding its tracks one by one", desc, err)
        vecs = np.full((len(rows), int(getattr(encoder, "embedding_dim", 0))), np.nan, dtype=np.float32)
        errors: dict[int, str] = {}
        for j, row in enumerate(rows.tolist()):
            try:
                v = one_pass(np.array([row]))[0]
            except MixtapeError as one:
                errors[j] = str(one)
                continue
            if vecs.shape[1] != len(v):  # the encoder does not say its size: learnt from the first success
                vecs = np.full((len(rows), len(v)), np.nan, dtype=np.float32)
            vecs[j] = v
    else:
        errors = {}
    bad = ~np.isfinite(vecs).all(axis=1)
    reasons = [errors.get(j, "embedding is not finite (NaN/Inf)") for j in np.flatnonzero(bad).tolist()]
    vecs[bad] = 0.0
    return vecs, bad, reasons


@dataclass
class _EmbedPlan:
    """What a run embeds: the shard's tracks of the feature store, and which previous vectors it reuses."""

    enc: EncoderBundle
    fingerprint: str
    table: TrackTable | None  # artists and albums; None for a bare feature store
    store: Any
    reader: Any
    rows: np.ndarray  # store rows of the shard, in store order: the output's order
    ids: list[str]
    sums: list[str]
    shard_failures: list[tuple[str, str, str]]  # tracks of the shard the store could not extract
    meta: dict[str, Any]
    prev: Embeddings | None  # the folder's previous complete run by the same encoder
    up_to_date: bool  # ``prev`` already is what this run would write
    cached: np.ndarray  # per planned track: its row in ``prev`` to reuse, or -1 to embed it

    @property
    def skipped_rows(self) -> list[str]:
        return list(self.table.skipped) if self.table is not None else []


@dataclass
class _Computed:
    """The outcome of embedding a plan's tracks; the vectors themselves stay in the saved chunks."""

    failed: np.ndarray  # per planned track
    failures: list[tuple[str, str, str]]  # (track id, path, reason), the store's failures first
    computed: int = 0
    reused: int = 0


def _check_embed_args(
    out: Path, audio: str | Path | None, features: str | Path | None, chunk_tracks: int, batch_size: int
) -> None:
    """Refuse a wrong call before the folder is locked or anything is read."""
    if (audio is None) == (features is None):
        raise MixtapeError(
            "embed: give exactly one of --audio (a folder or tracks table) and --features (a feature store)"
        )
    if chunk_tracks < 1 or batch_size < 1:
        raise MixtapeError(f"embed: chunk size and batch size must be positive (got {chunk_tracks}, {batch_size})")
    if out.exists() and not out.is_dir():
        raise MixtapeError(f"embed: --out {out} is a file; give a folder")


def _collection_store(
    enc: EncoderBundle,
    out: Path,
    audio: str | Path | None,
    features: str | Path | None,
    tracks: str | Path | None,
    audio_root: str | Path | None,
    shard: tuple[int, int],
    workers: int | None,
) -> tuple[TrackTable | None, Path]:
    """The tracks table (if any) and the feature store to embed; from audio, the store is extracted (or
    resumed) into ``out`` first, with the encoder's own log-mel settings."""
    from mixtape.audio import MelConfig, extract_features

    table: TrackTable | None = None
    if audio is not None:
        table = collection_table(audio, audio_root)
        store_path = out / FEATURES_DIR
        mel = MelConfig.model_validate(enc.mel) if enc.mel else None
        extraction = extract_features(
            table.records, store_path, mel=mel, workers=workers, shard=shard, patch_frames=enc.patch_frames
        )
        log.info("%s", extraction.summary())
    else:
        store_path = Path(features)  # type: ignore[arg-type]
        if tracks is not None:
            table = read_tracks(tracks, audio_root)
    if table is not None:
        for reason in table.skipped:
            log.warning("skipped tracks table row: %s", reason)
    return table, store_path


def _embeddings_meta(
    enc: EncoderBundle, fingerprint: str, store: Any, store_path: Path, shard: tuple[int, int]
) -> dict[str, Any]:
    """What the folder records of its making: a later run compares it to decide what is reusable."""
    return {
        "encoder": {
            "source": enc.source,
            "fingerprint": fingerprint,
            "backbone": getattr(enc.encoder, "backbone_name", type(enc.encoder).__name__),
            "patch_frames": enc.patch_frames,
            "mel": enc.mel,
        },
        "store": {"path": str(Path(store_path).resolve()), "fingerprint": store_fingerprint(store)},
        "shard": list(shard),
        "names": NAMES_VERSION,
    }


def _is_up_to_date(
    prev: Embeddings | None, meta: dict[str, Any], ids: list[str], table: TrackTable | None, force: bool
) -> bool:
    """Whether the previous run embedded this very store shard, with the same tracks and table metadata."""
    if (
        prev is None
        or force
        or prev.meta.get("store") != meta["store"]
        or prev.meta.get("shard") != meta["shard"]
        or prev.meta.get("names") != meta["names"]  # written before names were: write them (vectors are reused)
    ):
        return False
    prev_failed = {f[0] for f in prev.failures}
    return prev.tracks.track_ids == [t for t in ids if t not in prev_failed] and _same_tables(prev, table)


def _reusable_rows(prev: Embeddings | None, ids: list[str], sums: list[str], force: bool) -> np.ndarray:
    """Per track, the row of its vector in ``prev`` when its audio is unchanged (same checksum), else -1."""
    if prev is None or force:
        return np.full(len(ids), -1, dtype=np.int64)
    old = {tid: (r, c) for r, (tid, c) in enumerate(zip(prev.tracks.track_ids, prev.tracks.checksums, strict=True))}
    return np.fromiter(
        (old[t][0] if t in old and old[t][1] == c and c else -1 for t, c in zip(ids, sums, strict=True)),
        dtype=np.int64,
        count=len(ids),
    )


def _plan_embedding(
    enc: EncoderBundle,
    out: Path,
    *,
    audio: str | Path | None,
    features: str | Path | None,
    tracks: str | Path | None,
    audio_root: str | Path | None,
    shard: tuple[int, int],
    workers: int | None,
    force: bool,
) -> _EmbedPlan:
    """Which tracks to embed and which vectors of a previous run in ``out`` still hold."""
    fingerprint = enc.fingerprint()
    table, store_path = _collection_store(enc, out, audio, features, tracks, audio_root, shard, workers)
    store, reader = enc.open_store(store_path)
    rows = np.flatnonzero(_in_shard(store.track_ids, shard))
    ids = [store.track_ids[i] for i in rows.tolist()]
    sums = [store.checksums[i] for i in rows.tolist()]
    shard_failures = [
        f for f, k in zip(store.failures, _in_shard([f[0] for f in store.failures], shard), strict=True) if k
    ]
    meta = _embeddings_meta(enc, fingerprint, store, store_path, shard)
    prev = _previous(out, fingerprint, force)
    up_to_date = _is_up_to_date(prev, meta, ids, table, force)
    cached = np.full(len(rows), -1, dtype=np.int64) if up_to_date else _reusable_rows(prev, ids, sums, force)
    return _EmbedPlan(
        enc, fingerprint, table, store, reader, rows, ids, sums, shard_failures, meta, prev, up_to_date, cached
    )


def _compute_vectors(plan: _EmbedPlan, parts: _PartStore, chunk_tracks: int, batch_size: int, device: str) -> _Computed:
    """Embed the tracks not reused, ``chunk_tracks`` at a time, each chunk saved as it is done; a chunk
    saved by an interrupted run for the same tracks is taken as it is."""
    todo = np.flatnonzero(plan.cached < 0)
    n_chunks = -(-len(todo) // chunk_tracks)
    done = _Computed(np.zeros(len(plan.rows), dtype=bool), list(plan.shard_failures))
    for c in progress(range(n_chunks), desc="embedding chunks", total=n_chunks, unit="chunk"):
        sel = todo[c * chunk_tracks : (c + 1) * chunk_tracks]
        cid, csum = [plan.ids[i] for i in sel.tolist()], [plan.sums[i] for i in sel.tolist()]
        saved = parts.load(c, cid, csum)
        if saved is not None:
            _, bad, reasons = saved
            done.reused += int((~bad).sum())
        else:
            vecs, bad, reasons = _embed_chunk(
                plan.enc.encoder, plan.reader, plan.rows[sel], batch_size, device, f"embedding chunk {c + 1}/{n_chunks}"
            )
            parts.save(c, cid, csum, vecs, bad, reasons)
            done.computed += int((~bad).sum())
        done.failed[sel[bad]] = True
        paths = [str(plan.store.paths[plan.rows[i]]) for i in sel[bad].tolist()]
        done.failures += list(zip([cid[j] for j in np.flatnonzero(bad).tolist()], paths, reasons, strict=True))
    done.reused += int((plan.cached >= 0).sum())
    return done


def _assemble_folder(out: Path, plan: _EmbedPlan, parts: _PartStore, done: _Computed) -> int:
    """Write the embeddings folder (vectors, tracks, failures, header last) and drop the saved chunks;
    returns the number of vectors written."""
    good = np.flatnonzero(~done.failed)
    reuse = plan.prev if plan.prev is not None and plan.prev.meta.get("names") == NAMES_VERSION else None
    track_meta = _track_meta(plan.store, plan.rows[good], plan.table, reuse, plan.cached[good])
    blocks = _assemble(parts, plan.cached, done.failed, plan.prev)
    first = next(blocks, None)
    if first is None:
        dim = int(getattr(plan.enc.encoder, "embedding_dim", 0))
        chain: Iterator[np.ndarray] = iter(())
    else:
        dim = first.shape[1]
        chain = _prepend(first, blocks)
    write_embeddings(out, chain, len(good), dim, track_meta, done.failures, plan.meta)
    parts.remove()
    return len(good)


def embed_collection(
    encoder: Any,
    out: str | Path,
    *,
    audio: str | Path | None = None,
    features: str | Path | None = None,
    tracks: str | Path | None = None,
    audio_root: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    workers: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    chunk_tracks: int = CHUNK_TRACKS,
    force: bool = False,
) -> EmbedReport:
    """Embed a collection into the embeddings folder ``out`` (see the module docstring).

    ``encoder``: an export folder, a pre-training checkpoint or an ``EncoderBundle``. Exactly one of
    ``audio`` (a folder of audio files or a tracks table) and ``features`` (an existing feature store,
    optionally with ``tracks`` for artists and albums) says what to embed.
    """
    started = time.perf_counter()
    out = Path(out)
    shard = _check_shard(shard)
    _check_embed_args(out, audio, features, chunk_tracks, batch_size)
    with folder_lock(
        out, f"embeddings folder {out} is being written by another `mixtape embed`; wait for it or use another --out"
    ):
        plan = _plan_embedding(
            EncoderBundle.of(encoder),
            out,
            audio=audio,
            features=features,
            tracks=tracks,
            audio_root=audio_root,
            shard=shard,
            workers=workers,
            force=force,
        )
        report = EmbedReport(out, skipped_rows=plan.skipped_rows)
        if plan.up_to_date:
            assert plan.prev is not None  # up to date means: the previous run is this one
            report.tracks, report.up_to_date, report.failed = len(plan.prev), True, plan.prev.failures
            return report
        parts = _PartStore(out, plan.fingerprint)
        done = _compute_vectors(plan, parts, chunk_tracks, batch_size, device)
        report.tracks = _assemble_folder(out, plan, parts, done)
        report.computed, report.reused, report.failed = done.computed, done.reused, done.failures
        report.seconds = time.perf_counter() - started
        log.info(
            "embedded %d tracks into %s (%d computed, %d reused, %d failed)",
            report.tracks,
            out,
            report.computed,
            report.reused,
            len(done.failures),
        )
        return report


def _same_tables(prev: Embeddings, table: TrackTable | None) -> bool:
    """Whether the artist/album metadata (and the names, where the table gives them) the previous run
    recorded is what the table says now."""
    if table is None:
        return True
    by_id = {r.track_id: r for r in table.records}
    t = prev.tracks
    for tid, artist, album, title, name in zip(t.track_ids, t.artists, t.albums, t.titles, t.artist_names, strict=True):
        r = by_id.get(tid)
        if r is None:
            continue
        if r.artist_id != artist or r.album_id != album:
            return False
        if (r.title or r.artist_name) and (r.title != title or r.artist_name != name):
            return False
    return True


def _prepend(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _assemble(
    parts: _PartStore, cached: np.ndarray, failed: np.ndarray, prev: Embeddings | None, block: int = 4096
) -> Iterator[np.ndarray]:
    """The output vectors in row order, failed rows dropped: cached rows from the previous vectors,
    computed rows streamed from the saved chunks one at a time (so memory stays one block + one chunk)."""
    n = len(cached)
    chunk_no, buf, pos = 0, np.zeros((0, 0), dtype=np.float32), 0

    def take(k: int) -> np.ndarray:
        nonlocal chunk_no, buf, pos
        got: list[np.ndarray] = []
        while k > 0:
            if pos >= len(buf):
                with np.load(parts.path(chunk_no), allow_pickle=False) as z:
                    buf = np.asarray(z["vectors"], dtype=np.float32)
                chunk_no, pos = chunk_no + 1, 0
            m = min(k, len(buf) - pos)
            got.append(buf[pos : pos + m])
            pos, k = pos + m, k - m
        return np.concatenate(got) if got else np.zeros((0, 0), dtype=np.float32)

    for start in range(0, n, block):
        c = cached[start : start + block]
        hit = c >= 0
        fresh = take(int((~hit).sum())) if (~hit).any() else None
        dim = fresh.shape[1] if fresh is not None else prev.dim  # type: ignore[union-attr]
        out = np.empty((len(c), dim), dtype=np.float32)
        if hit.any():
            out[hit] = np.asarray(prev.vectors[c[hit]], dtype=np.float32)  # type: ignore[union-attr]
        if fresh is not None:
            out[~hit] = fresh
        keep = ~failed[start : start + block]
        if keep.any():
            yield out[keep]


def _track_meta(
    store: Any,
    rows: np.ndarray,
    table: TrackTable | None,
    prev: Embeddings | None = None,
    cached: np.ndarray | None = None,
) -> TrackMeta:
    """The metadata of the store's ``rows``: artist and album from the table; the names a person reads
    from the table's ``title``/``artist_name`` columns, else (a track the table names neither way) from
    the audio file's own tags (:func:`track_names`), except for a track whose vector is reused
    (``cached`` row of ``prev`` >= 0, its audio unchanged), which keeps the names ``prev`` read."""
    by_id = {r.track_id: r for r in table.records} if table is not None else {}
    ids = [store.track_ids[i] for i in rows.tolist()]
    recs = [by_id.get(t) for t in ids]
    paths = [str(store.paths[i]) for i in rows.tolist()]
    titles: list[str | None] = []
    artist_names: list[str | None] = []
    from_tags = 0
    started = time.perf_counter()
    for j, (r, path) in enumerate(zip(recs, paths, strict=True)):
        if r is not None and (r.title or r.artist_name):
            title, name = r.title, r.artist_name
        elif prev is not None and cached is not None and cached[j] >= 0:
            title, name = prev.tracks.titles[int(cached[j])], prev.tracks.artist_names[int(cached[j])]
        else:
            title, name = track_names(path)
            from_tags += 1
        titles.append(title)
        artist_names.append(name)
    if from_tags:
        log.info(
            "embed: read the title and artist tags of %d audio file(s) in %.1f s (%d named)",
            from_tags,
            time.perf_counter() - started,
            sum(1 for t, a in zip(titles, artist_names, strict=True) if t or a),
        )
    return TrackMeta(
        ids,
        [r.artist_id if r else None for r in recs],
        [r.album_id if r else None for r in recs],
        paths,
        np.asarray(store.durations, dtype=np.float64)[rows] if len(rows) else np.zeros(0),
        [store.checksums[i] for i in rows.tolist()],
        titles,
        artist_names,
    )


def track_names(path: str | Path) -> tuple[str | None, str | None]:
    """The title and artist name an audio file's own tags give (``None`` for each it lacks); a file
    whose tags cannot be read (missing, damaged, not audio) gives none, and the run goes on."""
    if not path:
        return None, None
    try:
        tags = read_tags(path)
    except TagReadError as err:
        log.debug("no names for %s: %s", path, err.reason)
        return None, None
    return tags.get("title") or None, tags.get("artist") or None


# --- merging shards ------------------------------------------------------------------------------


def merge_embeddings(shards: Sequence[str | Path], out: str | Path) -> Embeddings:
    """Join shard embeddings (same encoder) into one folder; a track id in several shards is taken from the first."""
    out = Path(out)
    if not shards:
        raise MixtapeError("embed --merge: no shard folders given")
    parts = [Embeddings.open(s) for s in shards]
    base = parts[0]
    for p in parts[1:]:
        if p.encoder_info.get("fingerprint") != base.encoder_info.get("fingerprint"):
            raise EmbeddingsError(
                f"embed --merge: {p.path} was embedded with another encoder ({p.encoder_info.get('source')}) than "
                f"{base.path} ({base.encoder_info.get('source')})"
            )
        if p.dim != base.dim:
            raise EmbeddingsError(f"embed --merge: {p.path} has {p.dim}-d vectors, {base.path} has {base.dim}-d")
    if any(Path(s).resolve() == out.resolve() for s in shards):
        raise MixtapeError(f"embed --merge: --out {out} is one of the shards; merge into a new folder")
    seen: set[str] = set()
    keeps: list[np.ndarray] = []
    for p in parts:
        keep = np.fromiter((t not in seen for t in p.tracks.track_ids), dtype=bool, count=len(p))
        seen.update(p.tracks.track_ids)
        keeps.append(keep)
        if not keep.all():
            log.warning(
                "embed --merge: %d track(s) of %s already came from an earlier shard; keeping the first",
                int((~keep).sum()),
                p.path,
            )
    tracks = TrackMeta.empty()
    for p, keep in zip(parts, keeps, strict=True):
        tracks = tracks.concat(p.tracks.take(np.flatnonzero(keep)))
    failures = [f for p in parts for f in p.failures if f[0] not in seen]

    def blocks(block: int = 65536) -> Iterator[np.ndarray]:
        for p, keep in zip(parts, keeps, strict=True):
            start = 0
            for b in p.blocks(block):
                yield b[keep[start : start + len(b)]]
                start += len(b)

    shard_list = [p.meta.get("shard") for p in parts]
    meta = {
        "encoder": base.encoder_info,
        "store": {"merged_from": [str(p.path) for p in parts], "fingerprint": None},
        "shard": [0, 1],
        "merged_shards": shard_list,
    }
    with folder_lock(
        out, f"embeddings folder {out} is being written by another `mixtape embed`; wait for it or use another --out"
    ):
        merged = write_embeddings(
            out,
            progress(blocks(), desc="merging embeddings", unit="block"),
            len(tracks),
            base.dim,
            tracks,
            failures,
            meta,
        )
    log.info("merged %d shard(s) into %s: %d tracks", len(parts), out, len(merged))
    return merged


# --- one query file ------------------------------------------------------------------------------


@dataclass
class QueryEmbedding:
    vector: np.ndarray  # float32 [D]
    duration: float  # seconds of audio decoded (before any cut)
    seconds_used: float


def embed_audio_file(
    enc: EncoderBundle, path: str | Path, max_seconds: float | None = None, batch_size: int = 64
) -> QueryEmbedding:
    """Embed one audio file exactly as a collection track is embedded (same decoding, short-track
    looping, float16 features and patch rule: ``AudioEncoder``), so its neighbours are comparable.

    Raises ``AudioDecodeError`` (unreadable) or ``UnusableAudio`` (too short, silent).
    """
    from mixtape.audio import StoreSettings
    from mixtape.audio.extract import track_audio
    from mixtape.models.inference import AudioEncoder

    audio_encoder = AudioEncoder(enc, device="cpu", batch_size=batch_size)
    rate = audio_encoder.sample_rate
    audio, duration = track_audio(Path(path), StoreSettings(mel=audio_encoder.mel, patch_frames=enc.patch_frames))
    if max_seconds is not None and len(audio) > max_seconds * rate:
        audio = audio[: int(max_seconds * rate)]
    return QueryEmbedding(audio_encoder.embed(audio, rate), float(duration), len(audio) / rate)
