"""Resuming a run on what it was not trained with: a store of other log-mel settings, a foreign checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mixtape.audio.store import SETTINGS_FILE
from mixtape.models.checkpoint import CheckpointMismatchError
from mixtape.training.run import pretrain


def test_resume_refuses_a_store_of_other_mel_settings(reference_run, tiny_store, make_config, tmp_path: Path) -> None:
    # The same tracks, recorded as extracted with 64 mel bands and hop 512 (only the settings are read
    # before the refusal, so the copied frames need not be re-extracted).
    store = tmp_path / "features64"
    shutil.copytree(tiny_store.path, store, ignore=shutil.ignore_patterns(".lock"))
    settings = json.loads((store / SETTINGS_FILE).read_text())
    settings["mel"] |= {"n_mels": 64, "hop_size": 512}
    (store / SETTINGS_FILE).write_text(json.dumps(settings))
    run = tmp_path / "run"
    shutil.copytree(reference_run.run_dir / "checkpoints", run / "checkpoints")
    with pytest.raises(CheckpointMismatchError) as err:
        pretrain(make_config(run, **{"data.store": str(store)}), resume=True)
    message = str(err.value)
    assert f"feature store {store}" in message and "last.ckpt" in message
    assert "n_mels: checkpoint 96, store 64" in message and "hop_size: checkpoint 256, store 512" in message
    assert not (run / "config.yaml").exists()  # refused before anything was written


def test_resume_refuses_a_checkpoint_that_is_not_mixtapes(make_config, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save(
        {"epoch": 1, "state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"lr": 0.1}},
        run / "checkpoints" / "last.ckpt",
    )
    with pytest.raises(
        CheckpointMismatchError,
        match=r"last\.ckpt: not a mixtape pre-training checkpoint \(no model hyper-parameters\)",
    ):
        pretrain(make_config(run), resume=True)


def test_unreadable_checkpoint_files_are_named_without_torch_advice(
    reference_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from mixtape.cli import main

    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    old_style = (
        tmp_path / "namespace.ckpt"
    )  # hyper-parameters as an argparse.Namespace, as old Lightning projects save them
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=0.1)}, old_style)
    torn = tmp_path / "torn.ckpt"
    data = (reference_run.run_dir / "checkpoints" / "last.ckpt").read_bytes()
    torn.write_bytes(data[: len(data) // 2])
    expected = {
        garbage: "not a readable checkpoint (damaged, truncated, or not a PyTorch checkpoint file)",
        old_style: "not a readable checkpoint (it holds Python objects (argparse.Namespace) that a safe load refuses)",
        torn: "not a readable checkpoint (damaged, truncated, or not a PyTorch checkpoint file; ",
    }
    for path, message in expected.items():
        assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert f"mixtape export: error: {path}: {message}" in err and "weights_only" not in err
    assert not (tmp_path / "out").exists()
