"""`mixtape export`: the checkpoint's encoder as safetensors + JSON and ONNX, agreeing with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mixtape.cli import main
from mixtape.models.bundle import EncoderBundle
from mixtape.models.checkpoint import CheckpointMismatchError, read_checkpoint_encoder
from mixtape.training.export import export_checkpoint


def test_export_round_trips_and_onnx_agrees_with_torch(
    reference_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ort = pytest.importorskip("onnxruntime")
    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "export"), "--onnx"]) == 0
    assert "max |onnx - torch|" in capsys.readouterr().out

    encoder, meta = read_checkpoint_encoder(ckpt)
    assert meta["patch_frames"] == 64 and meta["strategy"] == "cooc-topk" and meta["mel"]["n_mels"] == 96
    exported = EncoderBundle.load(tmp_path / "export").encoder
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(5, 96, 64)).astype(np.float32))
    with torch.no_grad():
        want = encoder(x).numpy()
        torch.testing.assert_close(exported(x).numpy(), want)
    session = ort.InferenceSession(str(tmp_path / "export" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert got.shape == (5, encoder.embedding_dim)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_export_result_reports_the_onnx_difference(reference_run, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    result = export_checkpoint(reference_run.run_dir / "checkpoints" / "last.ckpt", tmp_path, onnx=True)
    assert result.onnx == tmp_path / "encoder.onnx" and result.onnx_max_diff is not None and result.onnx_max_diff < 1e-4


def test_export_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    bogus = tmp_path / "x.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="not a readable checkpoint"):
        export_checkpoint(bogus, tmp_path / "out")
