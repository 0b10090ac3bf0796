"""Batches of (anchor, positive) pairs for contrastive training, free of false negatives.

Every other positive in a batch serves as a negative, so the same track twice in a batch (as two
anchors, two positives, or one of each) would teach the model to push a track away from itself.
The sampler forms batches greedily from a shuffled anchor stream: a pair that would repeat a track
already in the batch is deferred to the next batch (with a fresh positive then), so each covered
anchor is still used once per epoch.

Under DDP every rank shuffles with the same (seed, epoch) and takes a disjoint, equal share of the
anchors, so all ranks run the same number of steps. An epoch's plan is computed once (a few
vectorised operations per batch) and cached, so resuming mid-epoch (``batches(epoch, start=n)``)
skips the first n batches without re-sampling them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mixtape.errors import MixtapeError
from mixtape.pairs.positives import Positives


def conflicting_pairs(anchors: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Mask of pairs that share a track with an earlier pair of the list (a pair whose positive is
    its own anchor, as under ``self``, counts that track once)."""
    m = len(anchors)
    own = positives == anchors
    tracks = np.concatenate([anchors, positives[~own]])
    owner = np.concatenate([np.arange(m), np.flatnonzero(~own)])
    order = np.lexsort((owner, tracks))
    t, o = tracks[order], owner[order]
    run_start = np.ones(len(t), dtype=bool)
    run_start[1:] = t[1:] != t[:-1]
    first_owner = o[np.maximum.accumulate(np.where(run_start, np.arange(len(t)), 0))]
    conflicted = np.zeros(m, dtype=bool)
    conflicted[o[first_owner < o]] = True
    return conflicted


class PairBatchSampler:
    """Yields (anchors, positives) int64 arrays of ``batch_size`` distinct tracks, rank by rank.

    An epoch covers each of this rank's anchors once (the remainder of fewer than ``batch_size``
    is dropped, a different one each epoch); the order is a function of (seed, epoch, rank). When
    the pairs deferred near the end cannot fill the last batch without a repeat (tiny catalogues:
    an artist's two tracks are each other's only positive), it is topped up with anchors from the
    start of the epoch, as ``DistributedSampler`` pads, so every rank still runs ``len(self)`` steps.
    """

    def __init__(
        self, positives: Positives, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise MixtapeError(f"pair sampler: rank {rank} is not in [0, world_size={world_size})")
        if batch_size < 1:
            raise MixtapeError(f"pair sampler: batch_size must be at least 1, got {batch_size}")
        per_rank = len(positives.anchors) // world_size
        if per_rank < batch_size:
            raise MixtapeError(
                f"pair sampler: {len(positives.anchors)} anchors with a positive ({positives.strategy}) over "
                f"{world_size} rank(s) "
                f"cannot fill one batch of {batch_size}; lower the batch size or use a strategy that covers more tracks"
            )
        self.positives = positives
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.per_rank = per_rank
        self.epoch = 0
        self._plan: tuple[int, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        return self.per_rank // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.batches(self.epoch)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of ``epoch`` from batch ``start`` on (to resume a run mid-epoch)."""
        anchors, positives = self.plan(epoch)
        for b in range(max(0, start), len(anchors)):
            yield anchors[b].copy(), positives[b].copy()

    def share(self, epoch: int) -> np.ndarray:
        """This rank's anchors for ``epoch`` in stream order: a strided slice of a permutation every
        rank computes identically, so the shares are disjoint and of equal size."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.positives.anchors)
        return perm[self.rank :: self.world_size][: self.per_rank]

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """All batches of ``epoch`` on this rank: two [n_batches × batch_size] arrays (cached)."""
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1], self._plan[2]
        share = self.share(epoch)
        rng = np.random.default_rng([self.seed, epoch, self.rank, 1])
        B, n_batches = self.batch_size, len(self)
        out_a = np.empty((n_batches, B), dtype=np.int64)
        out_p = np.empty((n_batches, B), dtype=np.int64)
        pending = np.zeros(0, dtype=np.int64)  # deferred anchors, first in line for the next batch
        ptr = 0
        for b in range(n_batches):
            lookahead = B + max(8, B // 8)
            while True:
                fresh = share[np.arange(ptr, ptr + max(0, lookahead - len(pending))) % len(share)]
                cand = np.concatenate([pending, fresh])
                pos = self.positives.sample(cand, rng)
                ok = np.flatnonzero(~conflicting_pairs(cand, pos))
                if len(ok) >= B:
                    break
                if lookahead >= len(share) + len(pending):
                    raise MixtapeError(
                        f"pair sampler: cannot form a batch of {B} pairs without repeating a track "
                        f"({self.positives.strategy} positives of {len(self.positives.anchors)} anchors); "
                        "lower the batch size"
                    )
                lookahead = min(2 * lookahead, len(share) + len(pending))
            take = ok[:B]
            last = int(take[-1]) + 1  # candidates looked at: taken, or deferred to the next batch
            out_a[b], out_p[b] = cand[take], pos[take]
            deferred = np.ones(last, dtype=bool)
            deferred[take] = False
            ptr += max(0, last - len(pending))
            pending = np.concatenate([cand[:last][deferred], pending[last:]])
        self._plan = (epoch, out_a, out_p)
        return out_a, out_p
