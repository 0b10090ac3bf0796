"""EfficientNet-B0 (Tan & Le, 2019) in plain PyTorch, on a 1-channel log-mel input.

This is the encoder of the paper's lineage (COLA, Discogs-EffNet): a 1×96×128 patch becomes a
1280-d embedding after global average pooling. Written here rather than imported because timm and
torchvision would pull a second torch. Layout follows the reference B0: a stride-2 stem, seven
stages of MBConv blocks (inverted bottleneck, depthwise conv, squeeze-and-excitation, SiLU) and a
1×1 head to 1280 channels. The only change is the 1-channel stem.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixtape.models.layers import ConvBNAct, GlobalAvgPool, init_conv_weights
from mixtape.models.registry import BackboneError, register_backbone

# expand ratio, kernel, stride, output channels, repeats: the standard B0 table.
B0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
B0_STEM_CHANNELS = 32
B0_HEAD_CHANNELS = 1280


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample while training (identity in eval/export)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep


class SqueezeExcite(nn.Module):
    """Channel gating from the globally pooled activations (squeeze width set by the block input)."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(self.act(self.reduce(scale))))
        return x * scale


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand → depthwise k×k → SE → 1×1 project (+ skip when shapes match)."""

    def __init__(
        self, in_channels: int, out_channels: int, expand_ratio: int, kernel_size: int, stride: int, drop_path: float
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=nn.SiLU))
        layers += [
            ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, activation=nn.SiLU),
            SqueezeExcite(hidden, max(1, in_channels // 4)),
            ConvBNAct(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + self.drop_path(out) if self.use_residual else out


class EfficientNet(nn.Module):
    """Stem → MBConv stages → 1×1 head → global average pool; ``embedding_dim`` = head channels."""

    def __init__(
        self,
        stages: tuple[tuple[int, int, int, int, int], ...] = B0_STAGES,
        stem_channels: int = B0_STEM_CHANNELS,
        head_channels: int = B0_HEAD_CHANNELS,
        in_channels: int = 1,
        drop_path_rate: float = 0.2,
        n_mels: int = 96,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels  # recorded for export; the network itself is fully convolutional
        if not 0.0 <= drop_path_rate < 1.0:
            raise BackboneError(f"efficientnet: drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.stem = ConvBNAct(in_channels, stem_channels, 3, stride=2, activation=nn.SiLU)
        total_blocks = sum(s[4] for s in stages)
        blocks: list[nn.Module] = []
        channels = stem_channels
        index = 0
        for expand, kernel, stride, out_channels, repeats in stages:
            stage: list[nn.Module] = []
            for r in range(repeats):
                # Stochastic depth grows linearly with depth, as in the reference B0 recipe.
                stage.append(
                    MBConv(
                        channels,
                        out_channels,
                        expand,
                        kernel,
                        stride if r == 0 else 1,
                        drop_path_rate * index / total_blocks,
                    )
                )
                channels = out_channels
                index += 1
            blocks.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*blocks)
        self.head = ConvBNAct(channels, head_channels, 1, activation=nn.SiLU)
        self.pool = GlobalAvgPool()
        self.embedding_dim = head_channels
        init_conv_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.head(self.stages(self.stem(x))))


@register_backbone("efficientnet_b0")
def efficientnet_b0(n_mels: int = 96, drop_path_rate: float = 0.2) -> nn.Module:
    """EfficientNet-B0 → 1280-d (about 4.0 M parameters); fully convolutional, so n_mels only sets the input height."""
    return EfficientNet(drop_path_rate=drop_path_rate, n_mels=n_mels)
