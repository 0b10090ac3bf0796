"""Patch loading speed: random 96x128 float32 patches per second from a memory-mapped feature store.

    .venv/bin/python benchmarks/loader.py                       # 5,000 tracks of ~30 s
    .venv/bin/python benchmarks/loader.py --tracks 5000 --frames 1875 --batch 256 --seconds 10

The store is written directly through mixtape's StoreWriter with synthetic float16 frames (no audio
is decoded: the reader never decodes audio either), track lengths uniform in [frames/2, 3*frames/2].
Then one process calls ``PatchReader.random_patches`` on batches of random track indices, as the
training data set does, for ``--seconds``. The store is in the page cache (it was just written and
the default size fits in memory), which is the steady state of a training run whose store fits in
RAM; a colder store is bounded by the disk's random-read rate instead. The last line is:

    RESULT patches_per_s=X
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mixtape.audio import FeatureStore, PatchReader  # noqa: E402
from mixtape.audio.store import StoreSettings, StoreWriter  # noqa: E402
from mixtape.fileio import progress  # noqa: E402


def build_store(path: Path, n_tracks: int, mean_frames: int, seed: int = 0) -> FeatureStore:
    """Synthetic log-mel-like frames (0..5, as log10(1 + 10^4 x) gives), written as a real store."""
    rng = np.random.default_rng(seed)
    settings = StoreSettings()
    n_mels = settings.mel.n_mels
    lengths = rng.integers(max(settings.patch_frames, mean_frames // 2), mean_frames * 3 // 2 + 1, size=n_tracks)
    pool = (rng.random((int(lengths.max()) * 4, n_mels)) * 5).astype(np.float16)  # sliced per track: fast to make
    with StoreWriter(path, settings) as writer:
        for k, n in enumerate(progress(lengths.tolist(), desc="writing store", unit="track")):
            start = int(rng.integers(0, len(pool) - n))
            writer.add(
                f"track{k:07d}",
                pool[start : start + n],
                duration=n * 0.016,
                checksum="0" * 32,
                size=0,
                mtime_ns=0,
                path=f"/synthetic/{k}.wav",
            )
            if writer.pending_bytes >= 64 << 20:
                writer.commit()
    return FeatureStore.open(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=1875, help="mean frames per track (1875 = 30 s)")
    parser.add_argument("--batch", type=int, default=256, help="patches per random_patches call")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to read")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the store (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mixtape-loader-", dir=args.dir) as tmp:
        t0 = time.perf_counter()
        store = build_store(Path(tmp) / "store", args.tracks, args.frames)
        build_s = time.perf_counter() - t0
        reader = PatchReader(store)
        rng = np.random.default_rng(1)
        reader.random_patches(rng.integers(0, len(store), args.batch), rng)  # map the file, warm the code path
        n, calls = 0, 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < args.seconds:
            batch = reader.random_patches(rng.integers(0, len(store), args.batch), rng)
            n += len(batch)
            calls += 1
        rate = n / elapsed
        rows = [
            ("tracks", f"{len(store):,}"),
            ("frames", f"{store.total_frames:,} ({store.hours:.1f} h)"),
            ("store size", f"{store.size_bytes / 2**30:.2f} GiB (written in {build_s:.1f} s)"),
            ("batch", f"{args.batch} patches of {store.n_mels}x{reader.patch_frames} float32"),
            ("batches read", f"{calls} in {elapsed:.1f} s, 1 process"),
            ("patches/s", f"{rate:,.0f}"),
            ("MiB/s out", f"{rate * store.n_mels * reader.patch_frames * 4 / 2**20:,.0f}"),
            ("cores", str(os.cpu_count())),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    print(f"RESULT patches_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
