"""kill -9 in the middle of `mixtape pretrain`, then --resume: same steps, same batches, same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from training.run_helpers import CHECKPOINT_EVERY, MAX_STEPS, config_dict, read_trace


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _pretrain(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MIXTAPE_NO_PROGRESS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mixtape.cli", "pretrain", "--config", str(config), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_kill_then_resume_repeats_and_skips_no_step(reference_run, tiny_store, tiny_pairs, tmp_path: Path) -> None:
    run = tmp_path / "run"
    data = config_dict(tiny_store.path, tiny_pairs, run)
    data["data"]["workers"] = 1  # the reference ran without workers: the order must not depend on them
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))

    killed = _pretrain(config)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    output = killed.communicate()[0].decode(errors="replace")
    assert killed.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{output[-3000:]}"
    saved = max([_state(last)["global_step"]] + [int(p.stem[4:]) for p in (run / "checkpoints").glob("step*.ckpt")])
    assert CHECKPOINT_EVERY <= saved < MAX_STEPS

    resumed = _pretrain(config, "--resume")
    output = resumed.communicate(timeout=600)[0].decode(errors="replace")
    assert resumed.returncode == 0, output[-3000:]
    assert _state(last)["global_step"] == MAX_STEPS

    killed_steps, resumed_steps = read_trace(run / "trace" / "batches-rank0.tsv")
    assert [s for s, _ in killed_steps] == list(range(1, len(killed_steps) + 1))  # the killed run: no gap
    assert len(killed_steps) >= saved
    assert [s for s, _ in resumed_steps] == list(
        range(saved + 1, MAX_STEPS + 1)
    )  # resumed from the checkpoint, each step once
    (reference,) = read_trace(reference_run.run_dir / "trace" / "batches-rank0.tsv")
    by_step = dict(reference)
    assert all(
        anchors == by_step[step] for step, anchors in killed_steps + resumed_steps
    )  # the batches of the run without a kill

    want = _state(reference_run.run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    got = _state(last)["state_dict"]
    # Bit-identity is not promised across processes: thread counts change the order of float sums
    # (channels-last convolutions and batch norms reduce in blocks), and Adam turns that noise into a few
    # elements off by ~1e-4. A repeated or skipped step instead moves nearly every weight by about the
    # learning rate (1e-3), so each tensor's *mean* difference is held far below that, and every element
    # to the learning rate itself.
    for name, tensor in want.items():
        if not tensor.is_floating_point():
            assert torch.equal(got[name], tensor), name
            continue
        diff = (got[name] - tensor).abs()
        # batch norms' running statistics move by momentum x (batch mean - running mean), ~1e-2, per step
        bound = 1e-4 if name.endswith(("running_mean", "running_var")) else 2e-5
        assert float(diff.mean()) < bound, f"{name}: mean difference {float(diff.mean()):.2e} (a step repeated?)"
        assert float(diff.max()) < 1e-3, f"{name}: largest difference {float(diff.max()):.2e}"
