"""Track-level embeddings: the mean of a model's outputs over the patches that cover a track
(``PatchReader.track_patches``: consecutive non-overlapping patches, plus one ending at the track's end).

Evaluation (probe, similarity, fine-tuned tagging) and search all embed tracks through this one
function, so "the embedding of a track" means the same thing everywhere. Patches of several tracks
share one forward pass (a track longer than a batch is split across passes), and the per-track mean
is a segment sum on the outputs, so the cost is one forward per ``batch_size`` patches whatever the
track lengths are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from mixtape.errors import MixtapeError
from mixtape.fileio import progress


class EmptyTrackError(MixtapeError, ValueError):
    """A track whose features give no patch at all, so it has no embedding."""


class TrackPatchSource(Protocol):
    """What ``embed_tracks`` needs from ``mixtape.audio.PatchReader``."""

    def track_patches(self, i: int) -> np.ndarray: ...


def embed_tracks(
    encoder: nn.Module,
    reader: TrackPatchSource,
    indices: Sequence[int] | np.ndarray,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    desc: str = "embedding tracks",
) -> np.ndarray:
    """Embeddings ``float32 [len(indices), D]`` of the store tracks ``indices`` (mean over patches).

    ``encoder`` is any module mapping patches ``[B, n_mels, T]`` to ``[B, D]`` (an ``Encoder``, or an
    encoder followed by a tagging head and a sigmoid for track-level tag activations). It runs in
    eval mode under ``torch.inference_mode``, moved to ``device``; its previous train/eval mode is
    restored afterwards. ``batch_size`` is the number of patches per forward pass.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    dev = torch.device(device)
    was_training = encoder.training
    encoder.to(dev).eval()
    sums: torch.Tensor | None = None
    counts = np.zeros(len(idx), dtype=np.int64)
    patches: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    buffered = 0
    try:
        with torch.inference_mode():
            for row, track in enumerate(progress(idx, desc=desc, total=len(idx), unit="track")):
                p = np.asarray(reader.track_patches(int(track)), dtype=np.float32)
                if p.ndim != 3 or len(p) == 0:
                    raise EmptyTrackError(
                        f"store track {int(track)} gives no patches (shape {list(p.shape)}); cannot embed it"
                    )
                counts[row] = len(p)
                for start in range(0, len(p), batch_size):
                    chunk = p[start : start + batch_size]
                    if buffered + len(chunk) > batch_size and buffered:
                        sums = _flush(encoder, patches, owners, sums, len(idx), dev)
                        patches, owners, buffered = [], [], 0
                    patches.append(chunk)
                    owners.append(np.full(len(chunk), row, dtype=np.int64))
                    buffered += len(chunk)
            if buffered:
                sums = _flush(encoder, patches, owners, sums, len(idx), dev)
    finally:
        encoder.train(was_training)
    if sums is None:
        return np.zeros((0, int(getattr(encoder, "embedding_dim", 0))), dtype=np.float32)
    return (sums.cpu().numpy() / counts[:, None]).astype(np.float32)


def _flush(
    model: nn.Module,
    patches: list[np.ndarray],
    owners: list[np.ndarray],
    sums: torch.Tensor | None,
    n: int,
    device: torch.device,
) -> torch.Tensor:
    """One forward over the buffered patches; outputs are added into their tracks' rows of ``sums``."""
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(patches), dtype=np.float32)).to(device)
    out = model(x).to(torch.float64)
    if sums is None:
        sums = torch.zeros((n, out.shape[-1]), dtype=torch.float64, device=device)
    sums.index_add_(0, torch.from_numpy(np.concatenate(owners)).to(device), out)
    return sums
