"""The data plan without a store: track-id mapping, resume position, data-order guard."""

from __future__ import annotations

import numpy as np
import pytest

from mixtape.training.data import PairDataError, PairLoader, PairPlan, map_track_ids


def test_map_track_ids_finds_rows_and_marks_missing() -> None:
    rows = map_track_ids(["c", "a", "zz", "b"], ["a", "b", "c", "d"])
    assert rows.tolist() == [2, 0, -1, 1]
    assert map_track_ids(["a"], []).tolist() == [-1]


def _source(epoch: int, start: int):
    for b in range(start, 4):
        base = 100 * epoch + 10 * b
        yield np.array([base, base + 1]), np.array([base + 2, base + 3])


def _plan(position: int) -> PairPlan:
    rows = np.arange(1000) + 5000  # catalogue index i lives in store row 5000 + i
    return PairPlan(_source, batches_per_epoch=4, store_rows=rows, position=lambda: position)


def test_plan_starts_at_the_trainer_position_and_maps_to_store_rows() -> None:
    fresh = [(p.epoch, p.batch, p.anchors.tolist()) for p in _plan(0)]
    assert fresh == [(0, b, [5000 + 10 * b, 5001 + 10 * b]) for b in range(4)]
    resumed = list(_plan(6))  # 6 steps done: epoch 1, batch 2
    assert [(p.epoch, p.batch) for p in resumed] == [(1, 2), (1, 3)]
    assert resumed[0].anchor_tracks.tolist() == [120, 121] and resumed[0].positives.tolist() == [5122, 5123]
    assert len(_plan(0)) == 4


def test_loader_refuses_a_resume_that_changes_the_data_order() -> None:
    order = {"seed": 0, "batch_size": 8, "world_size": 1}
    loader = PairLoader([], batch_size=None, order=order)
    loader.load_state_dict(dict(order))  # same order: accepted
    with pytest.raises(PairDataError, match=r"batch_size: checkpoint 16, now 8"):
        loader.load_state_dict({**order, "batch_size": 16})


def test_tracks_in_use_follows_the_hops_from_the_anchors() -> None:
    import scipy.sparse as sp

    from mixtape.pairs import Positives
    from mixtape.training.data import tracks_in_use

    ids = np.array([f"t{i}" for i in range(6)], dtype=object)
    # one hop (cooc-topk-like): 0 → 4, 1 → 0; track 5 is in no row reached from an anchor
    cooc = sp.csr_matrix((np.ones(2), ([0, 1], [4, 0])), shape=(6, 6))
    assert tracks_in_use(Positives("cooc-topk", ids, np.array([0, 1]), (cooc,))).tolist() == [0, 1, 4]
    # two hops (artist-like): tracks 0, 1 → artist 0 → {0, 1}; tracks 2, 3 → artist 1 → {2, 3}; track 4 alone
    to_artist = sp.csr_matrix((np.ones(5), ([0, 1, 2, 3, 4], [0, 0, 1, 1, 2])), shape=(6, 3))
    to_tracks = to_artist.T.tocsr()
    artist = Positives("artist", ids, np.array([0, 2]), (to_artist, to_tracks))
    assert tracks_in_use(artist).tolist() == [0, 1, 2, 3]
