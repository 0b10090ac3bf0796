"""`mixtape.hear` passes the HEAR 2021 validator's checks.

The `hearvalidator` package (PyPI 2021.0.2) imports tensorflow at module level, which cannot sit next to
our torch pin in the test environment, so its checks are re-created here from its documented contract:
a torch module with `sample_rate` in {16000, 22050, 44100, 48000} and integer embedding sizes;
16 clips of 2 s white noise give float32 `[16, T, D]` timestamp embeddings with `[16, T]` timestamps
at regular intervals (within 1 ms), ideally at most 50 ms apart; 8 clips of 3.74 s give float32 `[8, D]`
scene embeddings.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from mixtape.errors import MixtapeError
from mixtape.models import Encoder
from mixtape.models.export import export_safetensors


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hear") / "encoder"
    export_safetensors(Encoder("small", channels=(8, 16, 32)), folder, metadata={"mel": {}, "patch_frames": 128})
    return folder


def _white_noise(n: int, seconds: float, rate: int) -> torch.Tensor:
    return torch.rand((n, int(seconds * rate)), generator=torch.Generator().manual_seed(0)) * 2 - 1.0


def test_the_validator_checks(model_path: Path) -> None:
    module = importlib.import_module("mixtape.hear")
    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(module, name)), name
    model = module.load_model(str(model_path))
    assert isinstance(model, torch.nn.Module)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    assert model.sample_rate in (16000, 22050, 44100, 48000)
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)

    audio = _white_noise(16, 2.0, model.sample_rate).to(device)
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and embeddings.shape[0] == 16
    assert embeddings.shape[:2] == timestamps.shape and embeddings.shape[2] == model.timestamp_embedding_size
    diff = torch.diff(timestamps)
    average = torch.mean(diff.float())
    assert average <= 50.0, "HEAR asks for timestamps at most 50 ms apart"
    assert torch.all(torch.abs(diff - average) < 1e-3)

    scene = module.get_scene_embeddings(_white_noise(8, 3.74, model.sample_rate).to(device), model)
    assert scene.dtype == torch.float32 and scene.shape == (8, model.scene_embedding_size)


def test_timestamps_span_the_clip_and_scenes_are_mixtape_embeddings(model_path: Path) -> None:
    from mixtape import hear, load_encoder

    model = hear.load_model(model_path, device="cpu")
    audio = _white_noise(3, 3.0, 16000)
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert timestamps[0, 0] == 0.0 and 3000.0 - 48.0 < float(timestamps[0, -1]) <= 3000.0
    assert torch.equal(timestamps[0], timestamps[2]) and torch.isfinite(embeddings).all()
    scene = hear.get_scene_embeddings(audio, model)
    want = load_encoder(model_path, device="cpu").embed(audio[1].numpy(), 16000)
    np.testing.assert_allclose(scene[1].numpy(), want, atol=1e-6)


def test_bad_calls_are_named(model_path: Path) -> None:
    from mixtape import hear

    with pytest.raises(MixtapeError, match="needs model_file_path"):
        hear.load_model()
    model = hear.load_model(model_path, device="cpu")
    with pytest.raises(MixtapeError, match=r"\[n_sounds, n_samples\], got \(32000,\)"):
        hear.get_scene_embeddings(torch.zeros(32000), model)
    with pytest.raises(MixtapeError, match="must come from mixtape.hear.load_model"):
        hear.get_scene_embeddings(torch.zeros(1, 32000), torch.nn.Linear(2, 2))  # type: ignore[arg-type]
