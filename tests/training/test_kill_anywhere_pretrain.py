"""kill -9 `mixtape pretrain --resume` at random points, re-run it.

Same steps, each once, same batches, same weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from killing import KillSchedule, Run, leftover_temps
from training.run_helpers import config_dict

from mixtape.models.checkpoint import read_checkpoint
from mixtape.training.run import CHECKPOINT_DIR, last_checkpoint, resume_checkpoint

MAX_STEPS = 120
CHECKPOINT_EVERY = 10
MARKER = r"pretraining small"  # logged once the data are ready, just before the trainer starts
END_MARKER = r"pretraining finished at step"  # logged after the curve and result.json are written


def _config(store: Path, positives: Path, out: Path, path: Path) -> Path:
    data = config_dict(store, positives, out)
    data["trainer"].update(max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY)
    path.write_text(yaml.safe_dump(data))
    return path


def _args(config: Path) -> list[str | Path]:
    return ["pretrain", "--config", config, "--resume"]  # the same command starts, and resumes, the run


@pytest.fixture(scope="module")
def reference(tiny_store, tiny_pairs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    folder = tmp_path_factory.mktemp("kill-pretrain-reference")
    config = _config(tiny_store.path, tiny_pairs, folder / "run", folder / "config.yaml")
    return folder / "run", KillSchedule(0, MARKER, END_MARKER).reference(_args(config), folder / "run.log")


def read_segments(path: Path) -> list[tuple[int, list[tuple[int, str]]]]:
    """The batch trace as (step the segment started from, [(step, anchors)]) per start or resume;
    a line torn by the kill is skipped."""
    segments: list[tuple[int, list[tuple[int, str]]]] = []
    for line in path.read_text().splitlines():
        if line.startswith("# start at step "):
            segments.append((int(line.rsplit(" ", 1)[1]), []))
            continue
        fields = line.split("\t")
        if len(fields) == 5 and fields[4] and segments:
            segments[-1][1].append((int(fields[0]), fields[4]))
    return segments


def _checkpoints_load(run: Path, context: str) -> None:
    """Every checkpoint file is whole (atomic writes), and a periodic one holds the step its name says."""
    for path in sorted((run / CHECKPOINT_DIR).glob("*.ckpt")):
        ckpt = read_checkpoint(path)  # raises CheckpointMismatchError on a torn or foreign file
        if path.name.startswith("step"):
            assert int(ckpt["global_step"]) == int(path.stem[4:]), (
                f"{context}: {path.name} holds step {ckpt['global_step']}"
            )
    found = resume_checkpoint(run)
    assert found is None or 0 < int(found[1]["global_step"]) <= MAX_STEPS, context


@pytest.mark.slow
def test_kill_anywhere_pretrain(tiny_store, tiny_pairs, reference: tuple[Path, Run], tmp_path: Path) -> None:
    ref_run_dir, ref_run = reference
    run = tmp_path / "run"
    config = _config(tiny_store.path, tiny_pairs, run, tmp_path / "config.yaml")
    schedule = KillSchedule(3003, MARKER, END_MARKER)

    def after_kill(killed: Run) -> None:
        _checkpoints_load(run, str(schedule))

    assert ref_run.work_seconds is not None
    schedule.run(_args(config), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()

    _checkpoints_load(run, str(schedule))
    final = read_checkpoint(last_checkpoint(run))
    assert int(final["global_step"]) == MAX_STEPS, f"{schedule}: last.ckpt is at step {final['global_step']}"

    # Each start or resume ran consecutive steps from the checkpoint it restored, and the last one
    # redid every step after its checkpoint exactly once: the effective history is 1..MAX_STEPS, each once.
    segments = read_segments(run / "trace" / "batches-rank0.tsv")
    assert segments and segments[0][0] == 0, f"{schedule}: {[s for s, _ in segments]}"
    for k, (start, steps) in enumerate(segments):
        assert [s for s, _ in steps] == list(range(start + 1, start + 1 + len(steps))), (
            f"{schedule}: segment {k} from step {start} repeats or skips a step"
        )
        if k + 1 < len(segments):
            resumed_from = segments[k + 1][0]
            assert resumed_from % CHECKPOINT_EVERY == 0, (
                f"{schedule}: segment {k + 1} resumed from step {resumed_from}, not a checkpoint"
            )
            # +1: the checkpoint of a step is saved just before that step's trace line is written
            assert resumed_from <= start + len(steps) + 1, (
                f"{schedule}: segment {k + 1} resumed from step {resumed_from}, beyond what segment {k} ran"
            )
    last_start, last_steps = segments[-1]
    assert [s for s, _ in last_steps] == list(range(last_start + 1, MAX_STEPS + 1)), (
        f"{schedule}: the final run did not redo each step after {last_start} once"
    )
    effective = [
        s
        for k, (_, steps) in enumerate(segments)
        for s, _ in steps
        if k + 1 == len(segments) or s <= segments[k + 1][0]
    ]
    assert len(effective) == len(set(effective)), f"{schedule}: a step is repeated in the effective history {effective}"
    untraced = set(range(1, MAX_STEPS + 1)) - set(
        effective
    )  # only a step killed between its checkpoint and its trace line
    assert untraced <= {start for start, _ in segments[1:]}, f"{schedule}: steps {sorted(untraced)} never ran"

    # The same batches as the uninterrupted run, step for step, and (nearly) the same weights.
    ((_, reference_steps),) = read_segments(ref_run_dir / "trace" / "batches-rank0.tsv")
    by_step = dict(reference_steps)
    for k, (_, steps) in enumerate(segments):
        for step, anchors in steps:
            assert anchors == by_step[step], (
                f"{schedule}: segment {k} step {step} drew other anchors than the uninterrupted run"
            )
    want = read_checkpoint(last_checkpoint(ref_run_dir))["state_dict"]
    # Bit-identity is not promised across processes, but a repeated or skipped Adam step moves
    # weights by about the learning rate (1e-3), far above this tolerance.
    for name, tensor in want.items():
        torch.testing.assert_close(
            final["state_dict"][name], tensor, rtol=1e-4, atol=1e-4, msg=lambda m, name=name: f"{schedule}: {name}: {m}"
        )
    assert leftover_temps(run) == [], f"{schedule}: {leftover_temps(run)}"
