"""The contrastive objective over a batch of (anchor, positive) pairs, and the batch rule it relies on.

Row i of the B×B score matrix scores anchor i against every positive of the batch; its own positive
sits on the diagonal and the other B−1 positives are its negatives. That is only sound when no track
appears twice in the batch, otherwise a 'negative' is the anchor's own track (a false negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mixtape.errors import MixtapeError


class DuplicateTrackError(MixtapeError, ValueError):
    """A batch that holds one track twice; ``track_ids`` lists the offenders."""

    def __init__(self, message: str, track_ids: list[Any]) -> None:
        super().__init__(message)
        self.track_ids = track_ids


class ScoreMatrixError(MixtapeError, ValueError):
    """A score matrix that is not a square B×B matrix with B >= 2."""


def _check_scores(scores: Tensor) -> None:
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ScoreMatrixError(f"contrastive loss expects a square [B, B] score matrix, got {list(scores.shape)}")
    if scores.shape[0] < 2:
        raise ScoreMatrixError("contrastive loss needs at least 2 pairs per batch (the other pairs are the negatives)")


def contrastive_loss(scores: Tensor, symmetric: bool = False) -> Tensor:
    """Mean cross-entropy of each row's softmax against its diagonal entry.

    ``symmetric`` averages it with the same loss over columns (each positive must also pick its own
    anchor), as in CLIP/NT-Xent. Computed in float32 whatever the autocast dtype.
    """
    _check_scores(scores)
    scores = scores.float()
    target = torch.arange(scores.shape[0], device=scores.device)
    loss = F.cross_entropy(scores, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(scores.transpose(0, 1), target))
    return loss


@torch.no_grad()
def in_batch_accuracy(scores: Tensor) -> Tensor:
    """Fraction of anchors whose highest score is their own positive (the training log's accuracy)."""
    _check_scores(scores)
    target = torch.arange(scores.shape[0], device=scores.device)
    return (scores.argmax(dim=1) == target).float().mean()


def _as_array(ids: Sequence[Any] | np.ndarray | Tensor) -> np.ndarray:
    if isinstance(ids, Tensor):
        return ids.detach().cpu().numpy().reshape(-1)
    return np.asarray(ids).reshape(-1)


def check_distinct_tracks(
    anchor_ids: Sequence[Any] | np.ndarray | Tensor,
    positive_ids: Sequence[Any] | np.ndarray | Tensor,
    allow_self_pairs: bool,
) -> None:
    """Refuse a batch in which a track appears twice among its anchors and positives.

    Under the ``self`` strategy an anchor's positive is another patch of the same track, so a row
    with anchor == positive counts once (``allow_self_pairs=True``); under every other strategy it
    is a duplicate like any other.
    """
    anchors = _as_array(anchor_ids)
    positives = _as_array(positive_ids)
    if anchors.shape != positives.shape:
        raise DuplicateTrackError(
            f"batch has {anchors.size} anchors but {positives.size} positives; they must pair up one to one", []
        )
    if allow_self_pairs:
        positives = positives[positives != anchors]
    values, counts = np.unique(np.concatenate([anchors, positives]), return_counts=True)
    duplicated = values[counts > 1]
    if duplicated.size:
        tracks = [v.item() if hasattr(v, "item") else v for v in duplicated]
        shown = ", ".join(repr(t) for t in tracks[:10]) + (f" and {len(tracks) - 10} more" if len(tracks) > 10 else "")
        rule = "" if allow_self_pairs else " (anchor == positive is only allowed under the 'self' strategy)"
        raise DuplicateTrackError(
            f"batch of {anchors.size} pairs holds {len(tracks)} track(s) more than once: {shown}; "
            f"a repeated track would be its own negative{rule}",
            tracks,
        )
