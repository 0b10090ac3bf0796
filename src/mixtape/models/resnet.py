"""A ResNet-50-style 2-D CNN (He et al., 2016) on a 1-channel log-mel input → 2048-d.

The bottleneck layout of ResNet-50 ([3, 4, 6, 3] blocks, widths 64-128-256-512, expansion 4) with
a 1-channel 7×7 stem; the larger-capacity comparison point against EfficientNet-B0.
"""

from __future__ import annotations

from torch import Tensor, nn

from mixtape.models.layers import ConvBNAct, GlobalAvgPool, init_conv_weights
from mixtape.models.registry import BackboneError, register_backbone

EXPANSION = 4


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride) → 1×1 expand, plus a projected shortcut when shapes change."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.branch = nn.Sequential(
            ConvBNAct(in_channels, width, 1),
            ConvBNAct(width, width, 3, stride),
            ConvBNAct(width, out_channels, 1, activation=None),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


class ResNet(nn.Module):
    """7×7/2 stem → 3×3/2 max-pool → four bottleneck stages → global average pool."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), base_width: int = 64, n_mels: int = 96) -> None:
        super().__init__()
        if not blocks or any(b < 1 for b in blocks) or base_width < 1:
            raise BackboneError(
                f"resnet: blocks must be positive counts and base_width >= 1, got blocks={blocks}, "
                f"base_width={base_width}"
            )
        self.n_mels = n_mels  # recorded for export; the network itself is fully convolutional
        self.stem = nn.Sequential(ConvBNAct(1, base_width, 7, stride=2), nn.MaxPool2d(3, stride=2, padding=1))
        stages: list[nn.Module] = []
        channels = base_width
        for i, count in enumerate(blocks):
            width = base_width * 2**i
            stage = [
                Bottleneck(channels if j == 0 else width * EXPANSION, width, 2 if (i > 0 and j == 0) else 1)
                for j in range(count)
            ]
            channels = width * EXPANSION
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalAvgPool()
        self.embedding_dim = channels
        init_conv_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x)))


@register_backbone("resnet")
def resnet(n_mels: int = 96, blocks: tuple[int, ...] = (3, 4, 6, 3), base_width: int = 64) -> nn.Module:
    """ResNet-50 layout → 2048-d (about 23.5 M parameters); fewer ``blocks`` give a ResNet-26/38-style net."""
    return ResNet(tuple(blocks), base_width, n_mels)
