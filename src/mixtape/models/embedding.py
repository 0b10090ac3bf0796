"""Track-level embeddings: the mean of a model's outputs over the patches that cover a track
(``PatchReader.track_patches``: consecutive non-overlapping patches, plus one ending at the track's end).

Evaluation (probe, similarity, fine-tuned tagging), search and the audio API (``mixtape.load_encoder``)
all embed through :class:`PatchPooler`, so "the embedding of a track" means the same thing everywhere.
Patches of several tracks share one forward pass (a track longer than a batch is split across passes),
and the per-track mean is a segment sum on the outputs, so the cost is one forward per ``batch_size``
patches whatever the track lengths are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def inference(encoder: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode on ``device`` under ``torch.inference_mode``; the module's train/eval mode is restored."""
    was_training = encoder.training
    encoder.to(device).eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        encoder.train(was_training)


class PatchPooler:
    """Runs a model over the patches of many items, ``batch_size`` patches per forward pass, and sums
    the outputs per item (a segment sum), so items of any length share passes.

    Use inside :func:`inference`. ``add(item, patches)`` may be called several times per item (a long
    track arrives in chunks); ``means()`` divides each item's sum by its patch count.
    """

    def __init__(self, model: nn.Module, n_items: int, batch_size: int, device: torch.device) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model, self.n_items, self.batch_size, self.device = model, n_items, batch_size, device
        self.counts = np.zeros(n_items, dtype=np.int64)
        self._sums: torch.Tensor | None = None
        self._patches: list[torch.Tensor] = []
        self._owners: list[torch.Tensor] = []
        self._buffered = 0

    def add(self, item: int | np.ndarray, patches: np.ndarray | torch.Tensor) -> None:
        """Queue ``patches`` ``[k, n_mels, T]`` of ``item`` (or of ``item[j]`` each, given an array of
        ``k`` items); runs the model whenever a batch is full."""
        x = torch.as_tensor(patches, dtype=torch.float32)
        if isinstance(item, np.ndarray):
            owners = torch.from_numpy(item.astype(np.int64, copy=False))
            np.add.at(self.counts, item, 1)
        else:
            owners = torch.full((len(x),), int(item), dtype=torch.int64)
            self.counts[item] += len(x)
        for start in range(0, len(x), self.batch_size):
            chunk = x[start : start + self.batch_size]
            if self._buffered + len(chunk) > self.batch_size and self._buffered:
                self._flush()
            self._patches.append(chunk)
            self._owners.append(owners[start : start + self.batch_size])
            self._buffered += len(chunk)

    def _flush(self) -> None:
        x = torch.cat(self._patches).to(self.device, non_blocking=True).contiguous()
        out = self.model(x).to(torch.float64)
        if self._sums is None:
            self._sums = torch.zeros((self.n_items, out.shape[-1]), dtype=torch.float64, device=self.device)
        self._sums.index_add_(0, torch.cat(self._owners).to(self.device), out)
        self._patches, self._owners, self._buffered = [], [], 0

    def means(self) -> np.ndarray:
        """``float32 [n_items, D]``: each item's mean output (NaN for an item that got no patch)."""
        if self._buffered:
            self._flush()
        if self._sums is None:
            dim = int(getattr(self.model, "embedding_dim", 0))
            return np.full((self.n_items, dim), np.nan, dtype=np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self._sums.cpu().numpy() / self.counts[:, None]).astype(np.float32)


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
    if len(idx) == 0:
        return np.zeros((0, int(getattr(encoder, "embedding_dim", 0))), dtype=np.float32)
    with inference(encoder, dev):
        pooler = PatchPooler(encoder, len(idx), batch_size, dev)
        for row, track in enumerate(progress(idx, desc=desc, total=len(idx), unit="track")):
            p = np.asarray(reader.track_patches(int(track)), dtype=np.float32)
            if p.ndim != 3 or len(p) == 0:
                raise EmptyTrackError(
                    f"store track {int(track)} gives no patches (shape {list(p.shape)}); cannot embed it"
                )
            pooler.add(row, p)
        return pooler.means()
