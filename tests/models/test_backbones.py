"""The backbone registry and the four built-in architectures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixtape.errors import MixtapeError
from mixtape.models import BACKBONES, backbone_names, build_backbone, register_backbone

EXPECTED_DIMS = {"efficientnet_b0": 1280, "resnet": 2048, "vggish": 512, "small": 256}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_builtin_backbones_are_registered() -> None:
    assert set(EXPECTED_DIMS) <= set(backbone_names())
    assert set(EXPECTED_DIMS) <= set(BACKBONES)


@pytest.mark.parametrize("name", sorted(EXPECTED_DIMS))
@pytest.mark.parametrize("frames", [128, 50])
def test_backbone_maps_patches_to_embeddings(name: str, frames: int) -> None:
    torch.manual_seed(0)
    model = build_backbone(name, n_mels=96)
    assert model.embedding_dim == EXPECTED_DIMS[name]
    with torch.no_grad():
        out = model(torch.randn(2, 1, 96, frames))
    assert out.shape == (2, EXPECTED_DIMS[name])
    assert torch.isfinite(out).all()


def test_efficientnet_b0_has_the_reference_parameter_count() -> None:
    # torchvision's B0 feature extractor has 4,007,548 parameters with a 3-channel stem;
    # a 1-channel stem removes 2 × 3 × 3 × 32 = 576 of them.
    assert n_params(build_backbone("efficientnet_b0")) == 4_007_548 - 576


def test_resnet_has_the_resnet50_parameter_count() -> None:
    # torchvision's ResNet-50 without its classifier: 25,557,032 - 2,049,000; 1-channel stem: - 2 × 7 × 7 × 64.
    assert n_params(build_backbone("resnet")) == 25_557_032 - 2_049_000 - 2 * 7 * 7 * 64


def test_small_backbone_trains_on_a_batch() -> None:
    model = build_backbone("small")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16, 1, 96, 128)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(x).pow(2).mean()
    loss.backward()
    opt.step()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def test_efficientnet_stochastic_depth_is_off_in_eval() -> None:
    torch.manual_seed(0)
    model = build_backbone("efficientnet_b0", drop_path_rate=0.5)
    x = torch.randn(2, 1, 96, 64)
    model.train()
    with torch.no_grad():
        model(x)  # fill batch-norm statistics
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_unknown_backbone_lists_the_registered_names() -> None:
    with pytest.raises(MixtapeError) as info:
        build_backbone("efficientnet_b9")
    message = str(info.value)
    assert "efficientnet_b9" in message
    for name in EXPECTED_DIMS:
        assert name in message


def test_unknown_backbone_option_names_the_option_and_the_accepted_ones() -> None:
    with pytest.raises(MixtapeError) as info:
        build_backbone("small", widht=3)
    assert "widht" in str(info.value) and "channels" in str(info.value)


def test_bad_backbone_option_values_are_mixtape_errors() -> None:
    with pytest.raises(MixtapeError, match="drop_path_rate"):
        build_backbone("efficientnet_b0", drop_path_rate=1.5)
    with pytest.raises(MixtapeError, match="channels"):
        build_backbone("small", channels=(8,))
    with pytest.raises(MixtapeError, match="n_mels"):
        build_backbone("small", n_mels=0)


def test_registering_a_backbone_takes_one_function() -> None:
    @register_backbone("test_linear_probe")
    def tiny(n_mels: int = 96, dim: int = 8) -> nn.Module:
        model = nn.Sequential(nn.AdaptiveAvgPool2d((4, 1)), nn.Flatten(), nn.Linear(4, dim))
        model.embedding_dim = dim
        return model

    try:
        assert "test_linear_probe" in backbone_names()
        model = build_backbone("test_linear_probe", dim=5)
        assert model(torch.randn(3, 1, 96, 40)).shape == (3, 5)
        with pytest.raises(MixtapeError, match="already registered"):
            register_backbone("test_linear_probe")(lambda n_mels=96: tiny(n_mels))
    finally:
        BACKBONES.pop("test_linear_probe", None)


def test_factory_without_embedding_dim_is_refused() -> None:
    register_backbone("test_no_dim")(lambda n_mels=96: nn.Flatten())
    try:
        with pytest.raises(MixtapeError, match="embedding_dim"):
            build_backbone("test_no_dim")
    finally:
        BACKBONES.pop("test_no_dim", None)
