"""A small CNN for CPU runs: demos, tests and quick experiments on a laptop.

It trades frequency resolution for speed: a stride-2 stem and a max-pool bring a 96×128 patch to
24×32 before the first real conv block, and each following block halves it again, so a batch of
64 patches trains in a fraction of a second on one core. Not meant to compete with EfficientNet-B0.
"""

from __future__ import annotations

from torch import Tensor, nn

from mixtape.models.layers import ConvBNAct, GlobalAvgPool, init_conv_weights
from mixtape.models.registry import BackboneError, register_backbone


class SmallCNN(nn.Module):
    """Stem (3×3/2 conv + 2×2 pool) → conv blocks (3×3 conv + 2×2 pool, the last without pool) → average pool."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128, 256), n_mels: int = 96) -> None:
        super().__init__()
        if len(channels) < 2 or min(channels) < 1:
            raise BackboneError(
                f"small: channels needs at least two positive widths (stem + one block), got {channels}"
            )
        self.n_mels = n_mels  # recorded for export; the network itself is fully convolutional
        layers: list[nn.Module] = [ConvBNAct(1, channels[0], 3, stride=2), nn.MaxPool2d(2, ceil_mode=True)]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers.append(ConvBNAct(c_in, c_out, 3))
            if i < len(channels) - 2:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgPool()
        self.embedding_dim = channels[-1]
        init_conv_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))


@register_backbone("small")
def small(n_mels: int = 96, channels: tuple[int, ...] = (16, 32, 64, 128, 256)) -> nn.Module:
    """Five conv layers → 256-d (about 0.39 M parameters); the CPU default for demos and tests."""
    return SmallCNN(tuple(channels), n_mels)
