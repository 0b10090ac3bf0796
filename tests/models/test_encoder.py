"""The Encoder: input normalisation + backbone, the module that is evaluated and exported."""

from __future__ import annotations

import pytest
import torch

from mixtape.errors import MixtapeError
from mixtape.models import Encoder


def test_encoder_accepts_3d_and_4d_patches_alike() -> None:
    torch.manual_seed(0)
    encoder = Encoder("small", n_mels=96).eval()
    x = torch.randn(4, 96, 128)
    with torch.no_grad():
        a = encoder(x)
        b = encoder(x.unsqueeze(1))
    assert a.shape == (4, 256)
    assert torch.equal(a, b)
    assert encoder.embedding_dim == 256 and encoder.backbone_name == "small"


def test_encoder_with_other_mel_count_and_patch_length() -> None:
    encoder = Encoder("small", n_mels=64).eval()
    with torch.no_grad():
        assert encoder(torch.randn(2, 64, 300)).shape == (2, 256)


@pytest.mark.parametrize("shape", [(2, 80, 128), (2, 2, 96, 128), (96, 128)])
def test_encoder_rejects_wrong_input_shape(shape: tuple[int, ...]) -> None:
    encoder = Encoder("small", n_mels=96)
    with pytest.raises(MixtapeError, match=r"\[B, 96, T\]"):
        encoder(torch.randn(*shape))


def test_input_normalisation_learns_the_feature_scale() -> None:
    # Log-mel values are far from zero mean / unit variance; the input batch norm absorbs that.
    encoder = Encoder("small")
    encoder.train()
    with torch.no_grad():
        for _ in range(50):
            encoder(torch.randn(8, 96, 128) * 0.5 + 3.0)
    assert encoder.input_norm.running_mean.item() == pytest.approx(3.0, abs=0.05)
    assert encoder.input_norm.running_var.item() == pytest.approx(0.25, abs=0.02)


def test_encoder_config_rebuilds_the_same_architecture() -> None:
    encoder = Encoder("small", n_mels=96, channels=(8, 16, 32))
    config = encoder.config()
    assert config == {
        "backbone": "small",
        "n_mels": 96,
        "backbone_kwargs": {"channels": (8, 16, 32)},
        "embedding_dim": 32,
    }
    rebuilt = Encoder(config["backbone"], config["n_mels"], **config["backbone_kwargs"])
    rebuilt.load_state_dict(encoder.state_dict())
    assert rebuilt.embedding_dim == 32
