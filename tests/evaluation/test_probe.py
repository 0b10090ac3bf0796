"""The tagging probe on synthetic embeddings: it learns, it stops early, it is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixtape.evaluation.datasets import TagDataError, TagDataset, TagSplit, align_to_store
from mixtape.evaluation.metrics import macro_pr_auc
from mixtape.evaluation.probe import ProbeConfig, _predict, probe_embeddings, train_probe

SIZES = {"train": 240, "validation": 80, "test": 80}


def _separable(seed: int = 0, dim: int = 16, n_tags: int = 4) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Tags that are half-spaces of the embedding: a linear probe can separate them exactly."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(dim, n_tags))
    x = {s: rng.normal(size=(n, dim)).astype(np.float32) for s, n in SIZES.items()}
    y = {s: (x[s] @ w > 0.3) for s in SIZES}
    return x, y


def _dataset(y: dict[str, np.ndarray]) -> tuple[TagDataset, list[str]]:
    ids = {s: [f"{s}_{i}" for i in range(len(y[s]))] for s in SIZES}
    tags = [f"tag{t}" for t in range(y["train"].shape[1])]
    d = TagDataset("synthetic", tags, {s: TagSplit(s, ids[s], y[s], f"<{s}>") for s in SIZES})
    return d, [t for s in SIZES for t in ids[s]]


def test_probe_learns_a_separable_problem() -> None:
    x, y = _separable()
    d, store_ids = _dataset(y)
    a = align_to_store(d, store_ids)
    result = probe_embeddings(x, a, ProbeConfig(max_epochs=60, patience=10, seed=0))
    assert result.test.roc_auc > 0.9 and result.test.pr_auc > 0.8
    assert (
        result.predictions.shape == (SIZES["test"], 4) and ((result.predictions >= 0) & (result.predictions <= 1)).all()
    )
    assert result.metrics()["roc_auc"] == result.test.roc_auc and result.metrics()["test_tracks"] == SIZES["test"]
    assert result.test_track_ids[0] == "test_0"


def test_probe_stops_early_and_keeps_the_best_epoch() -> None:
    rng = np.random.default_rng(1)
    x = {s: rng.normal(size=(n, 8)).astype(np.float32) for s, n in SIZES.items()}
    y = {s: rng.random((n, 3)) < 0.3 for s, n in SIZES.items()}  # labels unrelated to the embeddings
    cfg = ProbeConfig(max_epochs=300, patience=3, seed=0)
    model, stopper = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg)
    assert len(stopper.history) < cfg.max_epochs
    assert len(stopper.history) == stopper.best_epoch + 1 + cfg.patience
    assert stopper.best_score == max(stopper.history)
    restored = macro_pr_auc(y["validation"], _predict(model, torch.from_numpy(x["validation"])))
    assert restored == pytest.approx(stopper.best_score)


def test_probe_is_deterministic_for_a_seed() -> None:
    x, y = _separable(seed=2)
    cfg = ProbeConfig(max_epochs=5, patience=5, seed=7)
    m1, _ = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg)
    m2, _ = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg)
    m3, _ = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg.model_copy(update={"seed": 8}))
    t = torch.from_numpy(x["test"])
    assert np.array_equal(_predict(m1, t), _predict(m2, t))
    assert not np.array_equal(_predict(m1, t), _predict(m3, t))


def test_probe_excludes_tag_without_test_positive() -> None:
    x, y = _separable(seed=3)
    y["test"][:, 1] = False  # tag1 present in train only
    d, ids = _dataset(y)
    result = probe_embeddings(x, align_to_store(d, ids), ProbeConfig(max_epochs=5, seed=0))
    assert "tag1" in result.test.excluded and result.test.n_evaluated == 3
    assert "tag1" in result.summary() and np.isfinite(result.test.roc_auc)


def test_probe_refuses_validation_without_positives() -> None:
    x, y = _separable(seed=4)
    with pytest.raises(TagDataError, match="validation split"):
        train_probe(x["train"], y["train"], x["validation"], np.zeros_like(y["validation"]), ProbeConfig(max_epochs=2))


def test_probe_config_is_strict() -> None:
    from mixtape.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="unknown key 'hiden'"):
        config_from_dict(ProbeConfig, {"hiden": 256})
    assert ProbeConfig().model_dump()["lr"] == 1e-3 and ProbeConfig().batch_size == 32 and ProbeConfig().hidden == 512
