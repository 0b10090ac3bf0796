"""A VGGish-style CNN (Hershey et al., 2017) → 512-d.

VGGish's conv stack (3×3 convs with 64, 128, 256-256, 512-512 channels, each group followed by a
2×2 max-pool), with two changes that make it a pre-training backbone rather than a fixed feature
extractor: batch norm after every conv (trains from scratch without VGGish's careful init), and
global average pooling instead of the fully connected layers, so any patch length works and the
embedding is the last conv width (512).
"""

from __future__ import annotations

from torch import Tensor, nn

from mixtape.models.layers import ConvBNAct, GlobalAvgPool, init_conv_weights
from mixtape.models.registry import BackboneError, register_backbone

VGGISH_GROUPS: tuple[tuple[int, ...], ...] = ((64,), (128,), (256, 256), (512, 512))


class VGGish(nn.Module):
    """Conv groups, each ending in a 2×2 max-pool, then global average pooling."""

    def __init__(self, groups: tuple[tuple[int, ...], ...] = VGGISH_GROUPS, n_mels: int = 96) -> None:
        super().__init__()
        if not groups or any(not g or min(g) < 1 for g in groups):
            raise BackboneError(f"vggish: every conv group needs at least one positive channel count, got {groups}")
        self.n_mels = n_mels  # recorded for export; the network itself is fully convolutional
        layers: list[nn.Module] = []
        channels = 1
        for group in groups:
            for width in group:
                layers.append(ConvBNAct(channels, width, 3))
                channels = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = GlobalAvgPool()
        self.embedding_dim = channels
        init_conv_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x))


@register_backbone("vggish")
def vggish(n_mels: int = 96) -> nn.Module:
    """VGGish conv stack with batch norm → 512-d (about 4.5 M parameters)."""
    return VGGish(VGGISH_GROUPS, n_mels)
