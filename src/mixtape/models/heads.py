"""Heads on top of an encoder: COLA's projection head and pair similarities (training only), and the
tag probe that downstream tagging trains on frozen embeddings.

COLA: embedding → Dense 512 → LayerNorm → tanh, then a learned bilinear similarity s(a, p) = aᵀ W p.
The alternative is cosine similarity divided by a temperature (NT-Xent, as in SimCLR/CLMR).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixtape.errors import MixtapeError

SIMILARITIES = ("bilinear", "cosine")


class SimilarityError(MixtapeError, ValueError):
    """An unknown similarity kind or an invalid parameter (a non-positive temperature or width)."""


class ProjectionHead(nn.Module):
    """Dense → LayerNorm → tanh (COLA): bounds the projected vectors so bilinear scores stay finite."""

    def __init__(self, in_dim: int, out_dim: int = 512) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise SimilarityError(f"projection head needs positive widths, got in_dim={in_dim}, out_dim={out_dim}")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def _check_pair_batch(a: Tensor, p: Tensor, dim: int | None) -> None:
    if a.dim() != 2 or p.dim() != 2 or a.shape[1] != p.shape[1] or (dim is not None and a.shape[1] != dim):
        want = f"[B, {dim}]" if dim is not None else "[B, d] with the same d"
        raise SimilarityError(
            f"similarity expects anchors and positives {want}, got {list(a.shape)} and {list(p.shape)}"
        )


class BilinearSimilarity(nn.Module):
    """scores[i, j] = a_i W p_jᵀ, a learned (not necessarily symmetric) bilinear form, as in COLA."""

    def __init__(self, dim: int = 512, init_std: float = 0.05) -> None:
        super().__init__()
        if dim < 1 or init_std <= 0:
            raise SimilarityError(
                f"bilinear similarity needs dim >= 1 and init_std > 0, got dim={dim}, init_std={init_std}"
            )
        self.dim = dim
        # N(0, 0.05²), the Keras 'random_normal' default used by the reference COLA code.
        self.weight = nn.Parameter(torch.randn(dim, dim) * init_std)

    def forward(self, a: Tensor, p: Tensor) -> Tensor:
        _check_pair_batch(a, p, self.dim)
        return (a @ self.weight) @ p.transpose(0, 1)


class CosineSimilarity(nn.Module):
    """scores[i, j] = cos(a_i, p_j) / temperature (NT-Xent); a lower temperature sharpens the softmax."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if not temperature > 0:
            raise SimilarityError(f"cosine similarity needs temperature > 0, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, a: Tensor, p: Tensor) -> Tensor:
        _check_pair_batch(a, p, None)
        return F.normalize(a, dim=1) @ F.normalize(p, dim=1).transpose(0, 1) / self.temperature


def build_similarity(kind: str, dim: int = 512, temperature: float = 0.1) -> nn.Module:
    """The similarity named in a config; ``dim`` is used by bilinear, ``temperature`` by cosine."""
    if kind == "bilinear":
        return BilinearSimilarity(dim)
    if kind == "cosine":
        return CosineSimilarity(temperature)
    raise SimilarityError(f"unknown similarity '{kind}'; choose one of: {', '.join(SIMILARITIES)}")


class TagProbe(nn.Module):
    """Standardisation (fixed, from training data) → Linear → ReLU → Dropout → Linear: logits per tag."""

    mean: Tensor
    scale: Tensor

    def __init__(self, dim: int, n_tags: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_tags))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp((x - self.mean) / self.scale)
