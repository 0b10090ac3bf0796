"""Training data: pairs of random log-mel patches, read from the feature store in the order the
pair strategy's batch sampler dictates.

No audio is decoded here. The batch sampler runs in the training process and only decides *which*
tracks form each batch (catalogue indices, mapped once to store rows); loader workers read the two
patches of every pair from the memory-mapped store. Every batch is a pure function of
(seed, epoch, batch number, rank) — the sampler's choice of tracks and the patch offsets alike — so
a run resumed from a checkpoint at global step g sees exactly the batches g, g+1, ... that an
uninterrupted run would have seen, whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.models import check_distinct_tracks
from mixtape.text import and_more, quoted
from mixtape.training.config import DataConfig

log = get_logger(__name__)


class PairDataError(MixtapeError, ValueError):
    """Positives and feature store that cannot train together (missing tracks, too few anchors, ...)."""


def map_track_ids(catalog_ids: Sequence[str], store_ids: Sequence[str]) -> np.ndarray:
    """Store row of every catalogue track (-1 where the store lacks it), by sorting and binary search."""
    store = np.asarray(store_ids, dtype=object).astype(str)
    wanted = np.asarray(catalog_ids, dtype=object).astype(str)
    if store.size == 0 or wanted.size == 0:
        return np.full(wanted.size, -1, dtype=np.int64)
    order = np.argsort(store, kind="stable")
    pos = np.searchsorted(store[order], wanted).clip(max=store.size - 1)
    rows = order[pos]
    return np.where(store[rows] == wanted, rows, -1).astype(np.int64)


@dataclass(frozen=True)
class BatchPlan:
    """What one loader worker needs to build one batch: its place in the run and its store rows."""

    epoch: int
    batch: int
    anchors: np.ndarray
    positives: np.ndarray
    anchor_tracks: np.ndarray = field(repr=False)
    positive_tracks: np.ndarray = field(repr=False)


BatchSource = Callable[[int, int], Iterator[tuple[np.ndarray, np.ndarray]]]


class PairPlan(Sampler[BatchPlan]):
    """The loader's sampler: one ``BatchPlan`` per step, starting where the trainer's step says.

    ``position()`` returns the number of batches already trained (the trainer's global step); the
    plan turns it into (epoch, first batch), so a fresh epoch and a resumed one start at the right
    batch without replaying or skipping any.
    """

    def __init__(
        self, batches: BatchSource, batches_per_epoch: int, store_rows: np.ndarray, position: Callable[[], int]
    ) -> None:
        if batches_per_epoch < 1:
            raise PairDataError("the pair sampler yields no batch per epoch")
        self._batches = batches
        self.batches_per_epoch = batches_per_epoch
        self._rows = store_rows
        self._position = position

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[BatchPlan]:
        epoch, start = divmod(int(self._position()), self.batches_per_epoch)
        for number, (anchors, positives) in enumerate(self._batches(epoch, start), start=start):
            a, p = np.asarray(anchors, dtype=np.int64), np.asarray(positives, dtype=np.int64)
            yield BatchPlan(epoch, number, self._rows[a], self._rows[p], a, p)


class PatchPairDataset(Dataset[dict[str, torch.Tensor]]):
    """Reads the anchor and positive patches of a ``BatchPlan`` from the store (in a loader worker).

    The store is opened lazily in each process, so workers (forked or spawned) never share a
    file handle and nothing large is pickled.
    """

    def __init__(self, store_path: Path, patch_frames: int, seed: int, rank: int, allow_self_pairs: bool) -> None:
        self.store_path = Path(store_path)
        self.patch_frames = patch_frames
        self.seed = seed
        self.rank = rank
        self.allow_self_pairs = allow_self_pairs
        self._reader: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}

    def _patches(self) -> Any:
        if self._reader is None:
            from mixtape.audio import FeatureStore, PatchReader

            self._reader = PatchReader(FeatureStore.open(self.store_path), patch_frames=self.patch_frames)
        return self._reader

    def __getitem__(self, plan: BatchPlan) -> dict[str, torch.Tensor]:
        check_distinct_tracks(plan.anchor_tracks, plan.positive_tracks, allow_self_pairs=self.allow_self_pairs)
        rng = np.random.default_rng([self.seed, plan.epoch, plan.batch, self.rank])
        patches = self._patches().random_patches(np.concatenate([plan.anchors, plan.positives]), rng)
        b = len(plan.anchors)
        return {
            "anchor": torch.from_numpy(np.ascontiguousarray(patches[:b], dtype=np.float32)),
            "positive": torch.from_numpy(np.ascontiguousarray(patches[b:], dtype=np.float32)),
            "anchor_index": torch.from_numpy(plan.anchors.copy()),
            "positive_index": torch.from_numpy(plan.positives.copy()),
            "meta": torch.tensor([plan.epoch, plan.batch], dtype=torch.int64),
        }


class PairLoader(DataLoader):
    """A DataLoader whose state (the data-order parameters) is saved in the checkpoint.

    Lightning stores ``state_dict()`` with the checkpoint and hands it back on resume; a resume that
    would change the order of the batches (another seed, batch size, world size or anchor set) is
    refused instead of silently training on a different sequence. The position itself is the
    trainer's global step, read by ``PairPlan``.
    """

    def __init__(self, *args: Any, order: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order

    def state_dict(self) -> dict[str, Any]:
        return dict(self.order)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        changed = {k: (state[k], v) for k, v in self.order.items() if k in state and state[k] != v}
        if changed:
            what = "; ".join(f"{k}: checkpoint {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise PairDataError(
                f"cannot resume with the same data order, the run's data changed ({what}); start a new run "
                "folder instead"
            )


@dataclass
class PairData:
    """Positives and feature store checked against each other, with the catalogue → store mapping."""

    store_path: Path
    positives: Any
    store_rows: np.ndarray
    n_mels: int
    mel: dict[str, Any]
    strategy: str
    n_anchors: int
    n_store_tracks: int
    allow_self_pairs: bool

    def info(self) -> dict[str, Any]:
        """JSON-able facts recorded in the checkpoint and the export."""
        return {
            "strategy": self.strategy,
            "anchors": self.n_anchors,
            "store_tracks": self.n_store_tracks,
            "store": str(self.store_path),
            "mel": self.mel,
        }


def _strategies(positives: Any) -> set[str]:
    """The strategy names of ``positives`` and, for a mixture, of its parts."""
    names = {str(positives.strategy)}
    for part in getattr(positives, "parts", ()) or ():
        names |= _strategies(part)
    return names


def tracks_in_use(positives: Any) -> np.ndarray:
    """Catalogue indices that can appear in a batch: the anchors and every track their hops reach.

    Follows the positives' sparse hops (track → candidates, or track → group → tracks) from the
    anchor set, so a track the store lacks is found before training rather than at some later step.
    """
    anchors = np.unique(np.asarray(positives.anchors, dtype=np.int64))
    parts = getattr(positives, "parts", ()) or ()
    if parts:
        reached = [tracks_in_use(p) for p in parts]
        return np.unique(np.concatenate([anchors, *reached]))
    current = anchors
    for hop in getattr(positives, "hops", ()) or ():
        current = np.unique(hop[current].indices).astype(np.int64)
    return np.union1d(anchors, current)


def prepare_pair_data(cfg: DataConfig, world_size: int = 1) -> PairData:
    """Open the store and the positives and check that they can train together, before any trainer starts."""
    from mixtape.audio import FeatureStore
    from mixtape.pairs import Positives

    store = FeatureStore.open(cfg.store)
    positives = Positives.load(cfg.positives)
    store_ids = list(store.track_ids)
    if len(store_ids) == 0:
        failed = len(getattr(store, "failures", []) or [])
        why = f"; {failed} track(s) failed extraction, see {Path(cfg.store) / 'failures.tsv'}" if failed else ""
        raise PairDataError(
            f"feature store {cfg.store} holds no usable tracks{why} (run `mixtape features` on a tracks table "
            "with readable audio)"
        )
    catalog_ids = list(positives.track_ids)
    rows = map_track_ids(catalog_ids, store_ids)
    positives = _without_failed_tracks(positives, rows, store, cfg)
    n_anchors = int(len(positives.anchors))
    if n_anchors == 0:
        raise PairDataError(
            f"positives {cfg.positives} (strategy '{positives.strategy}') have no anchors: no track has a positive"
        )
    global_batch = cfg.batch_size * world_size
    if global_batch > n_anchors:
        per = f" ({cfg.batch_size} per device × {world_size} devices)" if world_size > 1 else ""
        raise PairDataError(
            f"batch size {global_batch}{per} is larger than the {n_anchors} anchors of strategy '{positives.strategy}' "
            f"in {cfg.positives}; lower data.batch_size (a batch never holds a track twice)"
        )
    mel = store.mel_config
    return PairData(
        store_path=Path(cfg.store),
        positives=positives,
        store_rows=rows,
        n_mels=int(mel.n_mels),
        mel=mel.model_dump(mode="json"),
        strategy=str(positives.strategy),
        n_anchors=n_anchors,
        n_store_tracks=len(store_ids),
        allow_self_pairs="self" in _strategies(positives),  # only `self` pairs a track with another patch of itself
    )


def _without_failed_tracks(positives: Any, rows: np.ndarray, store: Any, cfg: DataConfig) -> Any:
    """The positives without the tracks whose audio failed extraction (listed in the store's failures):
    one bad file among thousands must not stop pre-training. A paired track that is neither in the store
    nor among its failures means the store was made from another tracks table: refused."""
    used = tracks_in_use(positives)
    missing = used[rows[used] < 0]
    if not missing.size:
        return positives
    catalog_ids = list(positives.track_ids)
    failed = {str(row[0]) for row in getattr(store, "failures", None) or []}
    unexplained = [catalog_ids[i] for i in missing if catalog_ids[i] not in failed]
    if unexplained:
        raise PairDataError(
            f"positives {cfg.positives} (strategy '{positives.strategy}') do not match feature store {cfg.store}: "
            f"{len(unexplained)} of the {used.size} tracks they pair are not in the store ({len(store.track_ids)} "
            f"tracks) nor among its failures, e.g. {and_more(unexplained, show=quoted)}; extract features for the "
            "same tracks table the pairs were built from"
        )
    restricted = positives.among(rows >= 0)
    if (rows[tracks_in_use(restricted)] < 0).any():  # among() keeps only present tracks; a bug if not
        raise PairDataError(f"positives {cfg.positives}: tracks without features remain after leaving them out")
    log.warning(
        "%d of the %d tracks the positives pair failed feature extraction (%s, listed in %s); they are left out of "
        "pre-training: %d of %d anchors remain",
        missing.size,
        used.size,
        and_more([catalog_ids[i] for i in missing], show=quoted),
        Path(cfg.store) / "failures.tsv",
        len(restricted.anchors),
        len(positives.anchors),
    )
    return restricted


def _batch_source(sampler: Any) -> BatchSource:
    """(epoch, start) → the sampler's batches of that epoch from batch ``start`` on."""

    def batches(epoch: int, start: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(sampler.batches(epoch, start=start))

    return batches


class PairDataModule(pl.LightningDataModule):
    """Builds the loader for this rank once the trainer knows the rank and the world size."""

    def __init__(self, data: PairData, cfg: DataConfig, seed: int) -> None:
        super().__init__()
        self.data = data
        self.cfg = cfg
        self.seed = seed

    def train_dataloader(self) -> PairLoader:
        from mixtape.pairs import PairBatchSampler

        trainer = self.trainer
        assert trainer is not None, "PairDataModule needs a trainer (it reads rank, world size and global step from it)"
        rank, world = trainer.global_rank, trainer.world_size
        sampler = PairBatchSampler(
            self.data.positives, self.cfg.batch_size, seed=self.seed, rank=rank, world_size=world
        )
        # Plan the first epoch now (the sampler caches it): a strategy that cannot fill a batch
        # without repeating a track fails here with its own message, not inside the loader.
        sampler.plan(trainer.global_step // len(sampler))
        plan = PairPlan(
            _batch_source(sampler), len(sampler), self.data.store_rows, position=lambda: trainer.global_step
        )
        dataset = PatchPairDataset(
            self.data.store_path, self.cfg.patch_frames, self.seed, rank, self.data.allow_self_pairs
        )
        workers = self.cfg.workers
        order = {
            "seed": self.seed,
            "batch_size": self.cfg.batch_size,
            "world_size": world,
            "strategy": self.data.strategy,
            "anchors": self.data.n_anchors,
            "batches_per_epoch": len(sampler),
        }
        log.info(
            "rank %d/%d: %d batches of %d pairs per epoch, %d loader workers",
            rank,
            world,
            len(sampler),
            self.cfg.batch_size,
            workers,
        )
        return PairLoader(
            dataset,
            batch_size=None,
            sampler=plan,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            prefetch_factor=self.cfg.prefetch if workers > 0 else None,
            order=order,
        )
