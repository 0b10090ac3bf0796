"""Shared fixtures: the tiny world and its feature store are built once per test session."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("MIXTAPE_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """CLI tests configure the root logger onto pytest's captured stderr, which is closed after the
    test; put the handlers back so later tests do not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (it sits beside the repo in CI; a fresh clone has none)")
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory):
    from mixtape.world import synth

    return synth(tmp_path_factory.mktemp("world") / "tiny", size="tiny", seed=0, workers=2)


@pytest.fixture(scope="session")
def tiny_store(tiny_world, tmp_path_factory: pytest.TempPathFactory):
    from mixtape.audio import FeatureStore, extract_features
    from mixtape.catalog import read_tracks

    out = tmp_path_factory.mktemp("store") / "features"
    extract_features(read_tracks(tiny_world.tracks).records, out, workers=2)
    return FeatureStore.open(out)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised narrow `small` encoder (64-d) exported with the tiny store's mel settings."""
    import torch

    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-encoder") / "small"
    export_safetensors(
        Encoder("small", channels=(8, 16, 32, 64)),
        folder,
        metadata={"mel": tiny_store.mel_config.model_dump(mode="json"), "patch_frames": 128},
    )
    return folder
