"""Track embeddings: the mean of the encoder's outputs over a track's patches, batched across tracks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mixtape.models import EmptyTrackError, Encoder, embed_tracks


class _Reader:
    """Tracks of given patch counts; patch j of track i is filled with the value 100·i + j."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths = lengths

    def track_patches(self, i: int) -> np.ndarray:
        vals = 100.0 * i + np.arange(self.lengths[i], dtype=np.float32)
        return np.broadcast_to(vals[:, None, None], (self.lengths[i], 96, 128)).copy()


class _Recorder(nn.Module):
    """Outputs [mean, mean²] of each patch and records batch sizes and the mode it ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.modes: list[bool] = []
        self.embedding_dim = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        self.modes.append(self.training)
        m = x.mean(dim=(1, 2))
        return torch.stack([m, m**2], dim=1)


def test_mean_over_patches_batched_across_tracks() -> None:
    lengths = [1, 5, 19, 2, 3]
    model = _Recorder().train()
    out = embed_tracks(model, _Reader(lengths), [4, 2, 0, 1], batch_size=8)
    for row, track in enumerate([4, 2, 0, 1]):
        vals = 100.0 * track + np.arange(lengths[track])
        assert out[row] == pytest.approx([vals.mean(), (vals**2).mean()], rel=1e-6)
    assert out.dtype == np.float32 and out.shape == (4, 2)
    assert max(model.batches) <= 8 and sum(model.batches) == 3 + 19 + 1 + 5
    assert len(model.batches) < 3 + 19 + 1 + 5  # never one forward per patch
    assert not any(model.modes) and model.training  # ran in eval mode, mode restored


def test_empty_track_and_empty_selection() -> None:
    with pytest.raises(EmptyTrackError, match="store track 1"):
        embed_tracks(_Recorder(), _Reader([2, 0]), [0, 1])
    assert embed_tracks(_Recorder(), _Reader([2]), []).shape == (0, 2)
    with pytest.raises(ValueError, match="batch_size"):
        embed_tracks(_Recorder(), _Reader([2]), [0], batch_size=0)


def test_encoder_embeddings_do_not_depend_on_batching() -> None:
    torch.manual_seed(0)
    enc = Encoder("small")
    reader = _Reader([3, 1, 4])
    rng = np.random.default_rng(0)
    noise = {i: rng.normal(size=(n, 96, 128)).astype(np.float32) for i, n in enumerate(reader.lengths)}
    reader.track_patches = lambda i: noise[i]  # type: ignore[method-assign]
    a = embed_tracks(enc, reader, [0, 1, 2], batch_size=2)
    b = embed_tracks(enc, reader, [0, 1, 2], batch_size=64)
    assert a.shape == (3, enc.embedding_dim) and np.allclose(a, b, atol=1e-5)
    with torch.no_grad():
        want = enc.eval()(torch.from_numpy(noise[2])).mean(dim=0).numpy()
    assert np.allclose(a[2], want, atol=1e-5)
