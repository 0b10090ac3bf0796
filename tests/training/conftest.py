"""Fixtures of the training tests: positives of the tiny world and one short reference run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from training.run_helpers import config_dict

from mixtape.training.config import PretrainConfig


@pytest.fixture(scope="session")
def tiny_pairs(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mixtape.pairs import run_pairs

    out = tmp_path_factory.mktemp("pairs") / "cooc-topk"
    run_pairs(tiny_world.tracks, out, "cooc-topk", playlists=[tiny_world.playlists], heldout=[tiny_world.heldout])
    return out


@pytest.fixture(scope="session")
def make_config(tiny_store, tiny_pairs) -> Callable[..., PretrainConfig]:
    """``make_config(out, **{"trainer.max_steps": 5})``: the test config with dotted overrides."""

    def make(out: Path, **overrides: Any) -> PretrainConfig:
        data = config_dict(tiny_store.path, tiny_pairs, out)
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split(".")
            node = data
            for p in parents:
                node = node[p]
            node[leaf] = value
        return PretrainConfig.model_validate(data)

    return make


@pytest.fixture(scope="session")
def reference_run(make_config, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted run, shared by the run-folder, export and resume tests."""
    from mixtape.training.run import pretrain

    return pretrain(make_config(tmp_path_factory.mktemp("runs") / "reference"))
