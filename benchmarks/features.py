"""Feature extraction speed and accuracy: mixtape's pipeline against librosa on the same audio files.

    .venv/bin/python benchmarks/features.py                      # every file in ../shared/data/real-audio
    .venv/bin/python benchmarks/features.py --files 8 --workers 2

librosa side (one process, as a user would loop over files): ``librosa.load(sr=16000)`` (soundfile
decode, channel mean, soxr_hq resample) then ``librosa.feature.melspectrogram`` with the same
settings as mixtape (symmetric Hann, center=False, Slaney 96 bands 0-8 kHz, power 2) and
``log10(1 + 10000 x)``. mixtape side: ``extract_features`` into a fresh store with ``--workers``
processes, i.e. decode, resample, log-mel *and* writing the float16 store with its fsyncs.
Both sides are warmed up on one file first (imports, numba/torch initialisation are not timed).
The CPU-time ratio (workers included) is printed too: on a busy machine it is the steadier figure,
and speedup ~= CPU-time ratio x usable cores.

max_rel_err compares the stored frames (float16, as training reads them) with librosa on bins with
energy (librosa log-mel >= 0.01, mel power >= ~2.3e-6); float16 alone accounts for up to 4.9e-4.
The float32 figure (load_audio + log_mel, not timed) is printed in the table. The last line is:

    RESULT speedup_vs_librosa=X max_rel_err=Y files=N
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mixtape.audio import FeatureStore, MelConfig, extract_features, load_audio, log_mel  # noqa: E402
from mixtape.catalog.tracks import TrackRecord  # noqa: E402

AUDIO_EXTENSIONS = {".mp3", ".ogg", ".flac", ".wav"}
ENERGY_FLOOR = 1e-2


def find_files(folder: Path, limit: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        sys.exit(f"no audio files under {folder}")
    if limit:
        # Alternate folders (mp3 songs / ogg excerpts) so a small run still mixes both formats.
        by_dir: dict[Path, list[Path]] = {}
        for f in files:
            by_dir.setdefault(f.parent, []).append(f)
        mixed = [f for group in zip(*by_dir.values(), strict=False) for f in group]
        mixed += [f for f in files if f not in mixed]
        files = mixed[:limit]
    return files


def librosa_log_mel(path: Path, cfg: MelConfig) -> np.ndarray:
    import librosa

    y, _ = librosa.load(path, sr=cfg.sample_rate, mono=True, res_type="soxr_hq")
    s = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.frame_size,
        hop_length=cfg.hop_size,
        window=np.hanning(cfg.frame_size),
        center=False,
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=False,
        norm="slaney",
    )
    return np.log10(1.0 + cfg.log_multiplier * s).T


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the workers): robust on a busy machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def max_rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    n = min(len(ours), len(ref))
    ours, ref = ours[:n].astype(np.float64), ref[:n].astype(np.float64)
    mask = ref >= ENERGY_FLOOR
    return float((np.abs(ours - ref)[mask] / ref[mask]).max()) if mask.any() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--audio",
        type=Path,
        default=REPO.parent / "shared" / "data" / "real-audio",
        help="folder searched for audio files",
    )
    parser.add_argument("--files", type=int, default=0, help="use the first N files (0: all)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="mixtape worker processes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MIXTAPE_NO_PROGRESS", "1")
    cfg = MelConfig()
    files = find_files(args.audio, args.files)
    records = [TrackRecord(f"f{i:04d}", f) for i, f in enumerate(files)]

    with tempfile.TemporaryDirectory(prefix="mixtape-bench-") as tmp:
        # Warm-up, not timed: imports, numba JIT in librosa, torch and the worker pool's first start.
        librosa_log_mel(files[0], cfg)
        extract_features(records[:1], Path(tmp) / "warmup", workers=args.workers)

        t0, c0 = time.perf_counter(), cpu_seconds()
        reference = [librosa_log_mel(f, cfg) for f in files]
        librosa_s, librosa_cpu = time.perf_counter() - t0, cpu_seconds() - c0

        t0, c0 = time.perf_counter(), cpu_seconds()
        report = extract_features(records, Path(tmp) / "store", workers=args.workers)
        mixtape_s, mixtape_cpu = time.perf_counter() - t0, cpu_seconds() - c0

        store = FeatureStore.open(Path(tmp) / "store")
        if report.failed:
            print(f"warning: {len(report.failed)} files failed in mixtape: {report.failed[:3]}")
        audio_s = float(store.durations.sum())
        err16 = max(
            max_rel_err(store.frames(store.index(r.track_id)), ref)
            for r, ref in zip(records, reference, strict=True)
            if r.track_id in store
        )
        err32 = max(max_rel_err(log_mel(load_audio(f)), ref) for f, ref in zip(files, reference, strict=True))

    speedup = librosa_s / mixtape_s
    rows = [
        ("files", f"{len(files)} ({sum(f.suffix == '.mp3' for f in files)} mp3)"),
        ("audio", f"{audio_s / 60:.1f} min"),
        ("librosa, 1 process", f"{librosa_s:.2f} s ({audio_s / librosa_s:.0f}x real time)"),
        (f"mixtape, {args.workers} workers", f"{mixtape_s:.2f} s ({audio_s / mixtape_s:.0f}x real time)"),
        ("speedup", f"{speedup:.2f}x"),
        (
            "CPU s, librosa / mixtape",
            f"{librosa_cpu:.2f} / {mixtape_cpu:.2f} (CPU-time ratio {librosa_cpu / mixtape_cpu:.2f})",
        ),
        ("max rel err, float16 store", f"{err16:.2e}"),
        ("max rel err, float32 log_mel", f"{err32:.2e}"),
        ("cores", str(os.cpu_count())),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"RESULT speedup_vs_librosa={speedup:.2f} max_rel_err={err16:.2e} files={len(files)}")


if __name__ == "__main__":
    main()
