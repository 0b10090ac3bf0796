"""The batch sampler: no track twice in a batch, each anchor once per epoch, deterministic, DDP shares."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pairs.pairs_catalogs import playlists_matrix, random_catalog

from mixtape.catalog import Catalog
from mixtape.errors import MixtapeError
from mixtape.pairs import PairBatchSampler, build_positives, conflicting_pairs


def assert_clean(anchors: np.ndarray, positives: np.ndarray, batch_size: int) -> None:
    assert anchors.dtype == np.int64 and positives.dtype == np.int64
    assert len(anchors) == len(positives) == batch_size
    tracks = np.concatenate([anchors, positives[positives != anchors]])
    assert len(np.unique(tracks)) == len(tracks)


@pytest.fixture(scope="module")
def positives():
    return build_positives(random_catalog(seed=0, n_tracks=120, n_playlists=80), "playlist")


def test_batches_are_clean_and_cover_each_anchor_once(positives) -> None:
    sampler = PairBatchSampler(positives, batch_size=8, seed=1)
    seen = []
    for a, p in sampler:
        assert_clean(a, p, 8)
        seen.extend(a.tolist())
    assert len(seen) == len(sampler) * 8 == (len(positives.anchors) // 8) * 8
    assert len(set(seen)) == len(seen) and set(seen) <= set(positives.anchors.tolist())


def test_deterministic_per_seed_and_epoch(positives) -> None:
    def run(seed: int, epoch: int) -> list[list[int]]:
        s = PairBatchSampler(positives, 8, seed=seed)
        s.set_epoch(epoch)
        return [a.tolist() + p.tolist() for a, p in s]

    assert run(0, 0) == run(0, 0)
    assert run(0, 0) != run(0, 1) and run(0, 0) != run(1, 0)


def test_resume_mid_epoch_gives_the_same_tail(positives) -> None:
    full = list(PairBatchSampler(positives, 8, seed=3).batches(2))
    tail = list(PairBatchSampler(positives, 8, seed=3).batches(2, start=5))
    assert len(tail) == len(full) - 5
    assert all((a1 == a2).all() and (p1 == p2).all() for (a1, p1), (a2, p2) in zip(full[5:], tail, strict=True))


def test_ddp_ranks_take_disjoint_equal_shares(positives) -> None:
    ranks = [PairBatchSampler(positives, 4, seed=0, rank=r, world_size=3) for r in range(3)]
    assert len({len(s) for s in ranks}) == 1
    anchors = [set(np.concatenate([a for a, _ in s]).tolist()) for s in ranks]
    assert not (anchors[0] & anchors[1] or anchors[0] & anchors[2] or anchors[1] & anchors[2])
    per_rank = len(positives.anchors) // 3
    assert all(len(a) == (per_rank // 4) * 4 for a in anchors)


def test_self_pairs_keep_anchor_as_positive() -> None:
    pos = build_positives(random_catalog(seed=1), "self")
    for a, p in PairBatchSampler(pos, 10):
        assert (a == p).all() and len(np.unique(a)) == 10


def test_tight_artist_pairs_are_deferred_not_duplicated() -> None:
    # artists of exactly two tracks: each track's only positive is its partner
    n = 40
    cat = Catalog.from_arrays([f"t{i}" for i in range(n)], artist=np.arange(n) // 2)
    pos = build_positives(cat, "artist")
    sampler = PairBatchSampler(pos, batch_size=8, seed=0)
    seen = []
    for a, p in sampler:
        assert_clean(a, p, 8)
        assert (p == (a ^ 1)).all()
        seen.extend(a.tolist())
    # 20 partner pairs can't always pack 5 full batches: the last may be topped up from the start
    assert len(seen) == 40 and len(set(seen)) >= 38


def test_batch_too_large() -> None:
    cat = Catalog.from_arrays([f"t{i}" for i in range(6)], playlists_matrix([[0, 1, 2, 3, 4, 5]], 6))
    pos = build_positives(cat, "playlist")
    with pytest.raises(MixtapeError, match="cannot fill one batch"):
        PairBatchSampler(pos, batch_size=7)
    with pytest.raises(MixtapeError, match="without repeating a track"):
        PairBatchSampler(pos, batch_size=4).plan(0)  # 4 pairs need 8 distinct tracks, there are 6
    with pytest.raises(MixtapeError, match="rank"):
        PairBatchSampler(pos, batch_size=2, rank=2, world_size=2)


def test_conflicting_pairs_marks_later_repeats() -> None:
    a = np.array([0, 1, 2, 3, 4])
    p = np.array([5, 0, 6, 6, 4])
    assert conflicting_pairs(a, p).tolist() == [False, True, False, True, False]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(2, 12), world=st.integers(1, 3))
def test_property_every_batch_clean(seed: int, batch: int, world: int) -> None:
    cat = random_catalog(seed=seed % 7, n_tracks=90, n_playlists=50)
    pos = build_positives(cat, ["playlist", "cooc-topk", "album"][seed % 3], k=3, workers=1)
    if len(pos.anchors) // world < batch:
        return
    for rank in range(world):
        s = PairBatchSampler(pos, batch, seed=seed, rank=rank, world_size=world)
        try:
            batches = list(s)
        except MixtapeError as err:  # a strategy too narrow for this batch size says so
            assert "without repeating a track" in str(err)
            return
        assert len(batches) == len(s)
        for a, p in batches:
            assert_clean(a, p, batch)
            assert pos.covered[a].all()
