"""The shared tiny_store fixture: the embedded world's audio through the real extraction pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mixtape.audio import FeatureStore, MelConfig, PatchReader, extract_features


@pytest.fixture
def store(request: pytest.FixtureRequest) -> FeatureStore:
    world = pytest.importorskip("mixtape.world")
    if not hasattr(world, "synth"):
        pytest.skip("mixtape.world.synth is not available yet")
    return request.getfixturevalue("tiny_store")


def test_tiny_world_store_holds_every_track(store: FeatureStore, tiny_world) -> None:
    from mixtape.catalog import read_tracks

    table = read_tracks(tiny_world.tracks)
    assert len(store) + len(store.failures) == len(table.records)
    assert store.failures == []  # rendered audio is all valid
    assert set(store.track_ids) == {r.track_id for r in table.records}
    assert store.mel_config == MelConfig() and (store.n_frames >= 128).all()
    frames = store.frame_matrix
    assert np.isfinite(frames).all() and frames.max() > 1.0  # real signal, not silence


def test_tiny_world_store_feeds_the_patch_reader(store: FeatureStore) -> None:
    reader = PatchReader(store)
    patches = reader.random_patches(np.arange(len(store)), np.random.default_rng(0))
    assert patches.shape == (len(store), 96, 128)
    assert reader.track_patches(0).shape[1:] == (96, 128)


def test_rerun_on_the_tiny_world_is_a_no_op(store: FeatureStore, tiny_world, tmp_path: Path) -> None:
    from mixtape.catalog import read_tracks

    copy = Path(shutil.copytree(store.path, tmp_path / "copy"))  # the session fixture stays untouched
    report = extract_features(read_tracks(tiny_world.tracks).records, copy, workers=1)
    assert (report.done, report.skipped_existing) == (0, len(store))
    assert FeatureStore.open(copy).track_ids == store.track_ids
