"""Fine-tuning: the whole pre-trained encoder plus a new output layer, trained on tags.

Training sees one random patch per track per step (as pre-training did); validation and test are at
track level, by averaging the sigmoid activations over the track's non-overlapping patches (the same
``embed_tracks`` averaging the probe's embeddings use). The encoder gets a lower learning rate than
the new layer, so the pre-trained weights are adjusted rather than overwritten in the first steps.
The caller's encoder is copied, never changed.
"""

from __future__ import annotations

import copy
import math
from typing import Protocol

import numpy as np
import torch
from pydantic import Field
from torch import nn

from mixtape.config import StrictConfig
from mixtape.evaluation.datasets import AlignedTagDataset, TagDataError
from mixtape.evaluation.metrics import macro_pr_auc
from mixtape.evaluation.tagging import EarlyStopping, TaggingResult
from mixtape.fileio import get_logger, progress

log = get_logger(__name__)


class PatchSource(Protocol):
    """What fine-tuning needs from ``mixtape.audio.PatchReader``."""

    def random_patches(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def track_patches(self, i: int) -> np.ndarray: ...


class FinetuneConfig(StrictConfig):
    """The fine-tuning recipe; an epoch is one random patch of every training track."""

    lr: float = Field(1e-3, gt=0.0)  # the new output layer
    encoder_lr: float = Field(1e-4, gt=0.0)  # the pre-trained encoder
    weight_decay: float = Field(1e-5, ge=0.0)
    batch_size: int = Field(32, gt=1)  # > 1: the encoder's batch norm needs two samples
    max_epochs: int = Field(30, gt=0)
    patience: int = Field(5, gt=0)
    eval_batch_size: int = Field(64, gt=0)  # patches per forward pass at track-level evaluation
    seed: int = 0


class TaggingNetwork(nn.Module):
    """Encoder → Linear: one logit per tag for each patch."""

    def __init__(self, encoder: nn.Module, n_tags: int) -> None:
        super().__init__()
        self.encoder = encoder
        dim = getattr(encoder, "embedding_dim", None)
        if not isinstance(dim, int):
            raise TagDataError(
                f"fine-tuning needs an encoder with an integer .embedding_dim, got {type(encoder).__name__}"
            )
        self.head = nn.Linear(dim, n_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def track_activations(
    model: TaggingNetwork,
    reader: PatchSource,
    rows: np.ndarray,
    batch_size: int = 64,
    device: str = "cpu",
    desc: str = "tagging tracks",
) -> np.ndarray:
    """Track-level tag activations: sigmoid of each non-overlapping patch's logits, averaged over the track."""
    from mixtape.models.embedding import embed_tracks

    return embed_tracks(
        nn.Sequential(model, nn.Sigmoid()), reader, rows, batch_size=batch_size, device=device, desc=desc
    )


def finetune(
    encoder: nn.Module,
    reader: PatchSource,
    dataset: AlignedTagDataset,
    config: FinetuneConfig | None = None,
    device: str = "cpu",
) -> TaggingResult:
    """Fine-tune a copy of ``encoder`` with a new tag layer.

    Early stopping on validation PR-AUC; the test is scored at track level.
    """
    cfg = config or FinetuneConfig()
    s = dataset.splits
    y_val = s["validation"].labels
    pos = y_val.sum(axis=0)
    if not ((pos > 0) & (pos < len(y_val))).any():
        raise TagDataError(
            f"the validation split ({len(y_val)} tracks) has no tag with both positives and negatives: early "
            "stopping has nothing to measure"
        )
    if len(s["train"]) < 2:
        raise TagDataError(f"fine-tuning needs at least 2 training tracks with features, got {len(s['train'])}")
    dev = torch.device(device)
    train_rows = s["train"].rows
    y_train = torch.as_tensor(s["train"].labels, dtype=torch.float32)
    batch = min(cfg.batch_size, len(train_rows))
    n_batches = math.ceil(len(train_rows) / batch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = TaggingNetwork(copy.deepcopy(encoder), len(dataset.tags)).to(dev)
        opt = torch.optim.Adam(
            [
                {"params": model.encoder.parameters(), "lr": cfg.encoder_lr},
                {"params": model.head.parameters(), "lr": cfg.lr},
            ],
            weight_decay=cfg.weight_decay,
        )
        loss_fn = nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(cfg.seed)
        stopper = EarlyStopping(cfg.patience)
        for epoch in progress(range(cfg.max_epochs), desc="fine-tuning epochs", total=cfg.max_epochs, unit="epoch"):
            model.train()
            order = rng.permutation(len(train_rows))
            # A final batch of one would break batch norm; fold it into the previous batch.
            bounds = [min(b * batch, len(order)) for b in range(n_batches + 1)]
            if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
                bounds.pop(-2)
            losses = []
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                idx = order[lo:hi]
                x = torch.from_numpy(
                    np.ascontiguousarray(reader.random_patches(train_rows[idx], rng), dtype=np.float32)
                ).to(dev)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y_train[idx].to(dev))
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            val = track_activations(model, reader, s["validation"].rows, cfg.eval_batch_size, device, desc="validating")
            score = macro_pr_auc(y_val, val)
            log.info(
                "fine-tuning epoch %d: train loss %.4f, validation PR-AUC %.4f",
                epoch + 1,
                float(np.mean(losses)),
                score,
            )
            if stopper.update(epoch, score, model):
                break
        stopper.restore(model)
    pred = track_activations(model, reader, s["test"].rows, cfg.eval_batch_size, device, desc="testing")
    return TaggingResult.scored("finetune", dataset, pred, stopper)
