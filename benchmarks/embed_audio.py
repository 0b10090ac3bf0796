"""The embedding API on raw audio: an hour of audio in bounded memory, and tracks per second.

    .venv/bin/python benchmarks/embed_audio.py                       # small backbone, CPU
    .venv/bin/python benchmarks/embed_audio.py --backbone efficientnet_b0 --device cuda --batch-size 256

Runs the real path (`mixtape.load_encoder(folder).embed` / `.embed_batch`) on a randomly initialised
encoder exported to a temporary folder (weights do not change the cost). Each measurement runs in a
fresh child process so its peak RSS is its own:

- `hour`: one waveform of `--minutes` (60) of synthetic audio at 16 kHz, embedded with the default
  chunking (64 patches of log-mel at a time), and again with chunking off (every frame of the hour at
  once): the difference is what the chunking saves. The waveform itself (230 MB for an hour) is
  counted in both.
- `tracks`: `--tracks` (64) clips of 30 s embedded with `embed_batch`: tracks per second.

The last line is machine-readable:

    RESULT backbone=... device=... minutes=... hour_s=... hour_peak_gib=... unchunked_peak_gib=...
        tracks_per_s=...
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def synthetic(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """Noise shaped by a slow random envelope plus a few tones: audio-like levels, cheap to make.
    Made a minute at a time into one float32 array, so that making an hour peaks at the hour's
    230 MB (plus a minute), not at the float64 temporaries of a whole-hour expression."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    freqs = rng.uniform(80, 2000, size=3)
    levels = rng.uniform(0.05, 0.3, size=n // rate + 1).astype(np.float32)
    out = np.empty(n, dtype=np.float32)
    block = 60 * rate
    for start in range(0, n, block):
        stop = min(n, start + block)
        t = np.arange(start, stop, dtype=np.float64) / rate
        tones = sum(np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)
        envelope = levels[np.arange(start, stop) // rate]
        out[start:stop] = envelope * (0.3 * tones + rng.standard_normal(stop - start, dtype=np.float32))
    return out


def child(args: argparse.Namespace) -> dict[str, float]:
    import torch

    import mixtape

    torch.set_num_threads(args.threads)
    encoder = mixtape.load_encoder(args.folder, device=args.device, batch_size=args.batch_size)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    if args.mode in ("hour", "unchunked"):
        if args.mode == "unchunked":
            encoder.chunk_patches = 10**9
        audio = synthetic(args.minutes * 60, seed=0)
        encoder.embed(audio[: 16000 * 10], 16000)  # warm-up
        sync()
        start = time.perf_counter()
        encoder.embed(audio, 16000)
        sync()
        return {"seconds": time.perf_counter() - start, "peak_gib": peak_gib()}
    clips = [synthetic(30, seed=i) for i in range(args.tracks)]
    encoder.embed_batch(clips[:2], 16000)  # warm-up
    sync()
    start = time.perf_counter()
    encoder.embed_batch(clips, 16000)
    sync()
    return {"tracks_per_s": args.tracks / (time.perf_counter() - start), "peak_gib": peak_gib()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64, help="patches per forward pass")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--tracks", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode is not None:
        print(json.dumps(child(args)))
        return

    import torch

    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        export_safetensors(Encoder(args.backbone), tmp, metadata={"mel": {}, "patch_frames": 128})
        results = {}
        for mode in ("hour", "unchunked", "tracks"):
            cmd = [sys.executable, __file__, "--mode", mode, "--folder", tmp] + [
                f"--{k.replace('_', '-')}={v}"
                for k, v in vars(args).items()
                if k not in ("mode", "folder") and v is not None
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            results[mode] = json.loads(out)
    hour, unchunked, tracks = results["hour"], results["unchunked"], results["tracks"]
    print(f"| measurement | {args.backbone} on {args.device}, batch {args.batch_size} |")
    print("|---|---|")
    chunked = f"{hour['seconds']:.1f} s, peak RSS {hour['peak_gib']:.2f} GiB"
    print(f"| {args.minutes:g} min of audio, chunked (default) | {chunked} |")
    print(f"| same, every frame at once | {unchunked['seconds']:.1f} s, peak RSS {unchunked['peak_gib']:.2f} GiB |")
    print(f"| {args.tracks} clips of 30 s | {tracks['tracks_per_s']:.1f} tracks/s |")
    print(
        f"RESULT backbone={args.backbone} device={args.device} minutes={args.minutes:g} hour_s={hour['seconds']:.2f} "
        f"hour_peak_gib={hour['peak_gib']:.2f} unchunked_peak_gib={unchunked['peak_gib']:.2f} "
        f"tracks_per_s={tracks['tracks_per_s']:.1f}"
    )


if __name__ == "__main__":
    main()
