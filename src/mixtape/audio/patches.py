"""Patch reading: what training and embedding read, straight from the memory-mapped frames.

A patch is ``patch_frames`` consecutive frames of one track, returned as ``[n_mels, patch_frames]``
float32 (mel bands as image rows, time as columns: the 1x96x128 input of the encoders). No audio is
decoded: one fancy-index gather from the memmap, then a torch copy that converts float16 to float32
and transposes in a single pass (about 2x faster than numpy's ``astype`` on a transposed view).
"""

from __future__ import annotations

import numpy as np
import torch

from .store import FeatureStore, StoreError

#: torch's intra-op grain (at::internal::GRAIN_SIZE): smaller element-wise ops are not parallelised.
TORCH_GRAIN = 32768


def covering_starts(n_frames: int, patch_frames: int) -> np.ndarray:
    """Starts of the patches that cover ``n_frames`` frames: every ``patch_frames`` frames, plus one
    patch ending exactly at the end when the length is not a multiple (only that one overlaps). A
    track shorter than one patch gets the single start 0 (it is read cyclically)."""
    p = patch_frames
    starts = np.arange(0, max(n_frames - p, 0) + 1, p, dtype=np.int64)
    if n_frames > p and starts[-1] + p < n_frames:
        starts = np.append(starts, n_frames - p)
    return starts


class PatchReader:
    """Random and covering patches of a store's tracks, by track index (the store's row order).

    A track shorter than ``patch_frames`` (possible only when reading longer patches than the store
    was padded for) is read cyclically, the same looping rule the store applies to short audio.
    """

    def __init__(self, store: FeatureStore, patch_frames: int = 128) -> None:
        if patch_frames <= 0:
            raise ValueError(f"patch_frames must be positive, got {patch_frames}")
        self.store = store
        self.patch_frames = patch_frames
        self._steps = np.arange(patch_frames, dtype=np.int64)
        self._offsets = store.offsets.astype(np.int64, copy=False)
        self._n_frames = store.n_frames.astype(np.int64, copy=False)
        # Every stored track has >= store.patch_frames frames, so usually no track needs wrapping.
        self._all_fit = bool(len(store) == 0 or self._n_frames.min() >= patch_frames)

    def __len__(self) -> int:
        return len(self.store)

    def _check(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.store)):
            bad = idx[(idx < 0) | (idx >= len(self.store))][0]
            raise StoreError(
                f"track index {int(bad)} out of range for feature store {self.store.path} ({len(self.store)} tracks)"
            )
        self.store.check_frames()  # a truncated file would crash the gather with SIGBUS instead of an error
        return idx

    def _gather(self, idx: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Patches of tracks ``idx`` beginning at frame ``starts`` (relative to each track), ``[N, n_mels, P]``."""
        if self._all_fit:
            rows = (self._offsets[idx] + starts)[:, None] + self._steps
        else:
            n = self._n_frames[idx][:, None]
            rows = self._offsets[idx][:, None] + (starts[:, None] + self._steps) % n
        frames = torch.from_numpy(np.asarray(self.store.frame_matrix[rows])).permute(0, 2, 1)  # [N, n_mels, P] f16 view
        out = torch.empty((len(idx), self.store.n_mels, self.patch_frames), dtype=torch.float32)
        if torch.get_num_threads() == 1:
            out.copy_(frames)
        else:
            # torch splits one big strided copy across threads and runs ~3x slower per patch (measured);
            # copies below its parallel grain size run inline on this thread.
            step = max(1, TORCH_GRAIN // (self.store.n_mels * self.patch_frames))
            for k in range(0, len(idx), step):
                out[k : k + step].copy_(frames[k : k + step])
        return out.numpy()

    def random_patches(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One patch per index (indices may repeat), at a uniformly random start within the track:
        ``[N, n_mels, patch_frames]`` float32."""
        idx = self._check(indices)
        room = np.maximum(self._n_frames[idx] - self.patch_frames, 0)
        starts = rng.integers(0, room + 1) if len(idx) else np.zeros(0, dtype=np.int64)
        return self._gather(idx, starts.astype(np.int64, copy=False))

    def patch_starts(self, i: int) -> np.ndarray:
        """Starts of the patches that cover track ``i``: every ``patch_frames`` frames, plus one patch
        ending exactly at the track's end when the length is not a multiple (only that one overlaps)."""
        return covering_starts(int(self._n_frames[i]), self.patch_frames)

    def track_patches(self, i: int) -> np.ndarray:
        """Patches covering track ``i`` (track-level outputs average over them): ``[P, n_mels, patch_frames]``."""
        idx = self._check(np.array([i]))
        starts = self.patch_starts(int(idx[0]))
        return self._gather(np.repeat(idx, len(starts)), starts)
