"""Helpers of the training tests (imported as ``training.run_helpers``; pytest puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Small enough for two busy CPU cores: 8 pairs of 64-frame patches, a narrow `small` backbone.
MAX_STEPS = 24
CHECKPOINT_EVERY = 4


def config_dict(store: Path, positives: Path, out: Path) -> dict[str, Any]:
    """The test run's config as plain data (also written to YAML for the CLI tests)."""
    return {
        "data": {"store": str(store), "positives": str(positives), "batch_size": 8, "patch_frames": 64, "workers": 0},
        "model": {"backbone": "small", "backbone_options": {"channels": [8, 16, 32]}, "projection_dim": 32},
        "optim": {"lr": 1e-3},
        "trainer": {
            "max_steps": MAX_STEPS,
            "checkpoint_every": CHECKPOINT_EVERY,
            "keep_checkpoints": -1,
            "log_every": 2,
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "trace_batches": True,
            "seed": 3,
        },
        "out": str(out),
    }


def read_trace(path: Path) -> list[list[tuple[int, str]]]:
    """The segments of a batch trace (one per start or resume), each a list of (step, anchor store rows).

    A torn last line (the run was killed while writing it) is skipped.
    """
    segments: list[list[tuple[int, str]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# start"):
            segments.append([])
            continue
        fields = line.split("\t")
        if len(fields) == 5 and fields[4] and segments:
            segments[-1].append((int(fields[0]), fields[4]))
    return segments
