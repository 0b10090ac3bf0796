"""Export: safetensors + JSON round trip, ONNX graph that agrees with torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mixtape.errors import MixtapeError
from mixtape.models import Encoder
from mixtape.models.export import export_onnx, export_safetensors, load_export_folder, read_export_config


def calibrated(encoder: Encoder, seed: int = 0) -> Encoder:
    """Give every batch norm real running statistics (a fresh net in eval mode is near-degenerate)."""
    torch.manual_seed(seed)
    for m in encoder.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the statistics exactly
    encoder.train()
    with torch.no_grad():
        encoder(torch.randn(8, encoder.n_mels, 128) * 0.7 + 2.0)
    return encoder.eval()


def patches(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 96, 128, generator=torch.Generator().manual_seed(seed)) * 0.7 + 2.0


def test_safetensors_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    encoder = calibrated(Encoder("small"))
    mel = {"sample_rate": 16000, "n_mels": 96, "hop": 256}
    config_path = export_safetensors(encoder, tmp_path, {"mel": mel, "patch_frames": 128, "strategy": "cooc-topk"})
    info = json.loads(config_path.read_text())
    assert info["backbone"] == "small" and info["n_mels"] == 96 and info["embedding_dim"] == 256
    assert info["patch_frames"] == 128 and info["mel"] == mel and info["strategy"] == "cooc-topk"
    assert (tmp_path / "model.safetensors").is_file()
    loaded, _ = load_export_folder(tmp_path)
    assert not loaded.training
    x = patches(3)
    with torch.no_grad():
        assert torch.equal(loaded(x), encoder(x))


def test_round_trip_keeps_backbone_options(tmp_path: Path) -> None:
    encoder = calibrated(Encoder("small", channels=(8, 16, 24)))
    export_safetensors(encoder, tmp_path, {})
    loaded, _ = load_export_folder(tmp_path)
    assert loaded.embedding_dim == 24
    with torch.no_grad():
        assert torch.equal(loaded(patches(2)), encoder(patches(2)))


def test_export_leaves_the_callers_module_in_training_mode(tmp_path: Path) -> None:
    encoder = Encoder("small").train()
    export_safetensors(encoder, tmp_path, {})
    export_onnx(encoder, tmp_path / "encoder.onnx")
    assert encoder.training


def test_replaced_weights_are_detected(tmp_path: Path) -> None:
    export_safetensors(Encoder("small"), tmp_path, {})
    other = tmp_path / "other"
    export_safetensors(Encoder("small"), other, {})
    (tmp_path / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(MixtapeError, match="checksum"):
        load_export_folder(tmp_path)


def test_loading_a_folder_without_an_export_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="config.json"):
        load_export_folder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(MixtapeError, match="not valid JSON"):
        read_export_config(tmp_path)


def test_metadata_contradicting_the_encoder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="embedding_dim"):
        export_safetensors(Encoder("small"), tmp_path, {"embedding_dim": 1280})
    with pytest.raises(MixtapeError, match="JSON"):
        export_safetensors(Encoder("small"), tmp_path, {"run": object()})


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["melspectrogram"]
    assert [o.name for o in session.get_outputs()] == ["embeddings"]
    return session.run(["embeddings"], {"melspectrogram": x.numpy()})[0]


@pytest.mark.parametrize("backbone", ["small", "efficientnet_b0"])
def test_onnx_agrees_with_torch(backbone: str, tmp_path: Path) -> None:
    encoder = calibrated(Encoder(backbone))
    path = export_onnx(encoder, tmp_path / "encoder.onnx", n_mels=96, patch_frames=128)
    x = patches(3)  # the graph was traced with N=2: N=3 checks the dynamic batch axis
    with torch.no_grad():
        expected = encoder(x).numpy()
    assert expected.std(axis=0).mean() > 1e-3  # embeddings differ between patches: the check is not vacuous
    got = run_onnx(path, x)
    assert got.shape == (3, encoder.embedding_dim)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_onnx_carries_its_opset_and_metadata(tmp_path: Path) -> None:
    import onnx

    path = export_onnx(Encoder("small"), tmp_path / "encoder.onnx")
    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["backbone"] == "small" and props["embedding_dim"] == "256" and props["patch_frames"] == "128"


def test_onnx_export_refuses_a_different_mel_count(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="n_mels"):
        export_onnx(Encoder("small", n_mels=64), tmp_path / "encoder.onnx", n_mels=96)
