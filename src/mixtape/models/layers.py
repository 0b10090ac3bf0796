"""Building blocks shared by the backbones (conv + batch norm + activation, global pooling)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias: the norm has one) → BatchNorm2d → optional activation, 'same' padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True) if activation in (nn.ReLU, nn.SiLU) else activation())
        super().__init__(*layers)


class GlobalAvgPool(nn.Module):
    """[B, C, H, W] → [B, C]: the time and frequency average that makes every backbone accept any T."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def init_conv_weights(module: nn.Module) -> None:
    """He init for convs (fan-out, as the reference CNNs) and unit/zero batch norms."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
