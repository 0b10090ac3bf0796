"""The LightningModule on fake patches: score matrix, loss, NaN refusal, learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from mixtape.models import contrastive_loss
from mixtape.training.module import ContrastivePretrainer, TrainingDivergedError, lr_factor, mask_shared_tracks

MODEL = {
    "backbone": "small",
    "backbone_options": {"channels": [4, 8]},
    "projection_dim": 16,
    "similarity": "bilinear",
    "temperature": 0.1,
    "symmetric": False,
}
OPTIM = {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "none", "warmup_steps": 0}


def _module(**model: object) -> ContrastivePretrainer:
    torch.manual_seed(0)
    return ContrastivePretrainer(model={**MODEL, **model}, optim=OPTIM, max_steps=10, n_mels=96, patch_frames=32)


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "anchor": torch.randn(b, 96, 32, generator=g),
        "positive": torch.randn(b, 96, 32, generator=g),
        "anchor_index": torch.arange(b),
        "meta": torch.tensor([0, 0]),
    }


def test_scores_are_the_head_similarity_of_both_views_on_one_process() -> None:
    module = _module().eval()
    batch = _batch()
    with torch.no_grad():
        scores = module.scores(batch["anchor"], batch["positive"])
        a = module.head(module.encoder(batch["anchor"]))
        p = module.head(module.encoder(batch["positive"]))
        torch.testing.assert_close(scores, module.similarity(a, p))
    assert scores.shape == (4, 4)


def test_cosine_scores_are_bounded_by_the_temperature() -> None:
    module = _module(similarity="cosine", temperature=0.5).eval()
    batch = _batch()
    with torch.no_grad():
        scores = module.scores(batch["anchor"], batch["positive"])
    assert scores.abs().max() <= 2.0 + 1e-5


def test_training_step_loss_is_the_contrastive_loss_and_trains() -> None:
    module = _module()
    batch = _batch(6)
    module.log = lambda *a, **k: None  # type: ignore[method-assign]  # not attached to a trainer
    optimizer = module.configure_optimizers()
    losses = []
    for _ in range(15):
        loss = module.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    module.eval()
    with torch.no_grad():
        want = contrastive_loss(module.scores(batch["anchor"], batch["positive"]))
    assert torch.isfinite(want)


def test_nan_loss_stops_with_a_clear_message() -> None:
    module = _module()
    batch = _batch()
    batch["anchor"][0, 0, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 1 .*backbone 'small'"):
        module.training_step(batch, 0)


def test_lr_factor_warms_up_then_follows_the_schedule() -> None:
    assert [lr_factor(s, 4, 20, "none") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(10, 4, 20, "none") == 1.0
    assert lr_factor(4, 4, 20, "cosine") == pytest.approx(1.0)
    assert lr_factor(12, 4, 20, "cosine") == pytest.approx(0.5)
    assert lr_factor(20, 4, 20, "cosine") == pytest.approx(0.0)
    assert lr_factor(25, 0, 20, "cosine") == pytest.approx(0.0)


def test_scheduler_is_stepped_per_optimiser_step() -> None:
    module = ContrastivePretrainer(
        model=MODEL, optim={**OPTIM, "schedule": "cosine", "warmup_steps": 2}, max_steps=10, n_mels=96
    )
    config = module.configure_optimizers()
    assert config["lr_scheduler"]["interval"] == "step"
    assert config["optimizer"].param_groups[0]["lr"] == pytest.approx(0.5e-3)


def test_pairs_sharing_a_track_are_masked_out_of_the_negatives() -> None:
    scores = torch.zeros(4, 4, requires_grad=True)
    anchors = torch.tensor([10, 11, 12, 13])
    positives = torch.tensor([20, 21, 10, 23])  # pair 2's positive is pair 0's anchor (two ranks drew track 10)
    masked = mask_shared_tracks(scores, anchors, positives)
    inf = torch.isinf(masked)
    assert inf.nonzero().tolist() == [[0, 2], [2, 0]]
    loss = contrastive_loss(masked, symmetric=True)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
    assert loss.item() == pytest.approx(
        (2 * torch.log(torch.tensor(3.0)) + 2 * torch.log(torch.tensor(4.0))).item() / 4
    )
