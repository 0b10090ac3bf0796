"""The encoder: input normalisation + backbone, i.e. exactly the network whose output is evaluated,
searched and exported (the projection head and similarity are training-only and stay behind).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from mixtape.errors import MixtapeError
from mixtape.models.registry import build_backbone


class InputShapeError(MixtapeError, ValueError):
    """Log-mel patches of the wrong rank or with the wrong number of mel bands."""


class Encoder(nn.Module):
    """Log-mel patches ``[B, n_mels, T]`` (or ``[B, 1, n_mels, T]``) → embeddings ``[B, D]``.

    Input normalisation is a ``BatchNorm2d(1)`` over the whole patch: it learns the mean and scale
    of the log-compressed mel values during pre-training and applies the stored running statistics
    in eval mode, so features from another front-end (another log compression, another dataset)
    need no hand-set constants, and the exported model carries its own normalisation.
    """

    def __init__(self, backbone_name: str, n_mels: int = 96, **backbone_kwargs: Any) -> None:
        super().__init__()
        self.backbone_name = backbone_name
        self.n_mels = n_mels
        self.backbone_kwargs = dict(backbone_kwargs)
        self.input_norm = nn.BatchNorm2d(1)
        # Its scale and shift stay 1 and 0: a learnt affine map right before a convolution and its own
        # batch norm adds nothing the network cannot do, but learning it makes the stem convolution
        # compute its gradient with respect to the whole input patch (a quarter of the `small`
        # backbone's CPU step time; docs/evidence.md, "Speed").
        self.input_norm.weight.requires_grad_(False)
        self.input_norm.bias.requires_grad_(False)
        self.backbone = build_backbone(backbone_name, n_mels, **backbone_kwargs)
        dim: Any = self.backbone.embedding_dim  # a positive int: build_backbone checks it
        self.embedding_dim: int = int(dim)
        # Channels-last (NHWC) activations and weights: oneDNN's convolutions, batch norms and pools
        # run about twice as fast on the CPU in this layout (with the frozen affine above, the `small`
        # backbone's step is 226 → 142 ms; docs/evidence.md, "Speed"), and tensor cores want it too.
        cast(Any, self).to(memory_format=torch.channels_last)  # torch's stubs of Module.to omit memory_format

    def config(self) -> dict[str, Any]:
        """What rebuilds this architecture (stored beside weights and in checkpoints)."""
        return {
            "backbone": self.backbone_name,
            "n_mels": self.n_mels,
            "backbone_kwargs": dict(self.backbone_kwargs),
            "embedding_dim": self.embedding_dim,
        }

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
                raise InputShapeError(
                    f"encoder '{self.backbone_name}' expects log-mel patches [B, {self.n_mels}, T] or [B, 1, "
                    f"{self.n_mels}, T], got {list(x.shape)}"
                )
        return self.backbone(self.input_norm(x.contiguous(memory_format=torch.channels_last)))
