"""kill -9 `mixtape experiment CONFIG` at random points and re-run it: the same result rows, no finished task redone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from killing import KillSchedule, Run, leftover_temps

from mixtape.audio import FeatureStore
from mixtape.errors import MixtapeError
from mixtape.experiment import ResultRow, read_results
from mixtape.models.checkpoint import read_checkpoint
from mixtape.pairs import Positives

MARKER = r"features: \d+ tracks"  # the first stage that works (the world's files are given)
#: Metric values may differ this much from the uninterrupted run's (see test docstring).
VALUE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def config(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baseline + 2 strategies x 1 seed x (probe genre + similarity), 30 steps of a narrow `small` backbone."""
    data = {
        "name": "kill",
        "data": {
            "tracks": str(tiny_world.tracks),
            "playlists": [str(tiny_world.playlists)],
            "heldout": [str(tiny_world.heldout)],
            "splits": str(tiny_world.splits),
            "triplets": str(tiny_world.triplets),
            "workers": 1,
        },
        "strategies": ["self", "cooc-topk"],
        "backbones": [{"name": "small", "options": {"channels": [8, 16, 32]}}],
        "seeds": [0],
        "threads": 1,
        "pretrain": {
            "data": {"batch_size": 16, "patch_frames": 64, "workers": 0},
            "model": {"projection_dim": 32},
            "trainer": {
                "max_steps": 30,
                "checkpoint_every": 5,
                "log_every": 2,
                "accelerator": "cpu",
                "devices": 1,
                "precision": "32-true",
            },
        },
        "tasks": {"probe": ["genre"], "maps": [], "probe_config": {"max_epochs": 20, "patience": 5}},
    }
    path = tmp_path_factory.mktemp("kill-experiment") / "experiment.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _args(config: Path, out: Path) -> list[str | Path]:
    return ["experiment", config, "--out", out]


@pytest.fixture(scope="module")
def reference(config: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    folder = tmp_path_factory.mktemp("kill-experiment-reference")
    return folder / "run", KillSchedule(0, MARKER).reference(_args(config, folder / "run"), folder / "run.log")


def _done_markers(out: Path) -> dict[Path, tuple[int, int, str]]:
    """Each task's done.json with its inode, mtime and text: rewriting one means the task ran again."""
    return {
        p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_text())
        for p in sorted(out.glob("runs/*/*/seed*/eval/*/done.json"))
    }


def _rows(path: Path) -> dict[tuple[str, str, int, str, str], float]:
    rows: list[ResultRow] = read_results(path)
    return {(r.strategy, r.backbone, r.seed, r.task, r.metric): r.value for r in rows}


def _readable(out: Path, context: str) -> None:
    """What a killed experiment leaves is readable by each stage's reader, or says it is incomplete."""
    if (out / "features" / "store.json").exists():
        FeatureStore.open(out / "features")
    for meta in out.glob("pairs/**/positives.json"):
        if not meta.parent.name.startswith("part"):
            try:
                Positives.load(meta.parent)
            except MixtapeError as err:
                raise AssertionError(f"{context}: {meta.parent}: complete positives that do not load: {err}") from None
    for ckpt in out.glob("runs/*/*/seed*/pretrain/checkpoints/*.ckpt"):
        read_checkpoint(ckpt)  # a torn checkpoint raises
    for done in _done_markers(out):
        assert json.loads(done.read_text())["task"] == done.parent.name, context
        json.loads((done.parent / "metrics.json").read_text())
    if (out / "results.csv").exists():
        read_results(out / "results.csv")


@pytest.mark.slow
def test_kill_anywhere_experiment(config: Path, reference: tuple[Path, Run], tmp_path: Path) -> None:
    """Tolerance: in practice every value is bit-identical (single-threaded runs resumed from a checkpoint
    reach the very same weights, see the pretrain kill test, and every evaluation is seeded);
    VALUE_TOLERANCE only absorbs float summation-order noise should thread counts differ between runs,
    and stays far below the gaps between strategies that the table reports."""
    ref_out, ref_run = reference
    want = _rows(ref_out / "results.csv")
    out = tmp_path / "run"
    schedule = KillSchedule(5005, MARKER, kills=4)
    completed: dict[Path, tuple[int, int, str]] = {}

    def after_kill(run: Run) -> None:
        _readable(out, str(schedule))
        completed.update(_done_markers(out))

    assert ref_run.work_seconds is not None
    schedule.run(_args(config, out), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()

    got = _rows(out / "results.csv")
    assert set(got) == set(want), f"{schedule}: result rows differ: {sorted(set(got) ^ set(want))}"
    far = {k: (got[k], want[k]) for k in want if not math.isclose(got[k], want[k], rel_tol=0, abs_tol=VALUE_TOLERANCE)}
    assert not far, f"{schedule}: values differ from the uninterrupted run: {far}"
    # A task whose done.json existed after a kill was not run again: its marker is the very same file.
    final = _done_markers(out)
    rerun = [str(p.relative_to(out)) for p, stamp in completed.items() if final.get(p) != stamp]
    assert not rerun, f"{schedule}: finished tasks were run again: {rerun}"
    assert {p.relative_to(out) for p in final} == {p.relative_to(ref_out) for p in _done_markers(ref_out)}, str(
        schedule
    )
    assert json.loads((out / "failures.json").read_text()) == [], str(schedule)
    assert leftover_temps(out) == [], f"{schedule}: {leftover_temps(out)}"
