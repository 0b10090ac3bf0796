"""The LightningModule of contrastive pre-training: encoder → COLA head → similarity → loss.

One step encodes the anchors and positives of a batch in one forward pass, gathers the projected
vectors of every rank (the negatives are the global batch, see ``distributed``), fills the score
matrix and takes the cross-entropy with each pair on the diagonal. A non-finite loss stops the
run before the optimiser touches the weights, so the last checkpoint on disk stays a good one.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from mixtape.errors import MixtapeError
from mixtape.models import Encoder, ProjectionHead, build_similarity, contrastive_loss, in_batch_accuracy
from mixtape.training.config import ModelConfig, OptimConfig
from mixtape.training.distributed import gather_no_grad, gather_with_grad, world_size


class TrainingDivergedError(MixtapeError, RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def lr_factor(step: int, warmup_steps: int, max_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up, then flat or cosine to 0.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    return 1.0


def mask_shared_tracks(scores: Tensor, anchor_ids: Tensor, positive_ids: Tensor) -> Tensor:
    """Scores of off-diagonal pairs (i, j) that share a track become -inf: they are not negatives.

    Each rank's batch is free of repeated tracks, but under DDP two ranks can draw the same track
    (one rank's positive is another's anchor); in the gathered global batch that pair would be a
    false negative, so it is removed from the softmax instead.
    """
    a, p = anchor_ids[:, None], positive_ids[:, None]
    shared = (
        (a == anchor_ids[None, :])
        | (a == positive_ids[None, :])
        | (p == anchor_ids[None, :])
        | (p == positive_ids[None, :])
    )
    shared.fill_diagonal_(False)
    return scores.masked_fill(shared, float("-inf"))


class ContrastivePretrainer(pl.LightningModule):
    """Encoder + projection head + similarity, trained with the COLA / NT-Xent contrastive loss.

    The constructor takes plain dicts (the config sections dumped to JSON types) so that Lightning
    stores them as the checkpoint's hyper-parameters: a checkpoint rebuilds its own architecture.
    """

    def __init__(
        self,
        model: dict[str, Any],
        optim: dict[str, Any],
        max_steps: int,
        n_mels: int = 96,
        patch_frames: int = 128,
        global_batch_size: int | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = ModelConfig.model_validate(model)
        self.optim_cfg = OptimConfig.model_validate(optim)
        self.max_steps = max_steps
        self.encoder = Encoder(self.model_cfg.backbone, n_mels, **self.model_cfg.backbone_options)
        self.head = ProjectionHead(self.encoder.embedding_dim, self.model_cfg.projection_dim)
        self.similarity = build_similarity(
            self.model_cfg.similarity, self.model_cfg.projection_dim, self.model_cfg.temperature
        )
        self._interval_start: float | None = None
        self._interval_samples = 0

    def forward(self, patches: Tensor) -> Tensor:
        """Patches [B, n_mels, T] → encoder embeddings [B, D] (the representation that is evaluated)."""
        return self.encoder(patches)

    def scores(
        self, anchors: Tensor, positives: Tensor, anchor_ids: Tensor | None = None, positive_ids: Tensor | None = None
    ) -> Tensor:
        """The global score matrix [G, G] of a local batch of patch pairs (G = world size × B).

        With several ranks the track ids (store rows) are gathered too, and pairs of the global
        batch that share a track are masked out of each other's negatives.
        """
        b = anchors.shape[0]
        projected = self.head(self.encoder(torch.cat([anchors, positives], dim=0)))
        a = gather_with_grad(projected[:b], check_sizes=self.global_step == 0)
        p = gather_with_grad(projected[b:])
        # The similarity and the softmax run in float32 even under bf16 autocast: a temperature of
        # 0.1 or a 512-d bilinear form loses too much in 8 mantissa bits.
        with torch.autocast(device_type=a.device.type, enabled=False):
            scores = self.similarity(a.float(), p.float())
        if world_size() > 1 and anchor_ids is not None and positive_ids is not None:
            scores = mask_shared_tracks(scores, gather_no_grad(anchor_ids), gather_no_grad(positive_ids))
        return scores

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        scores = self.scores(batch["anchor"], batch["positive"], batch.get("anchor_index"), batch.get("positive_index"))
        loss = contrastive_loss(scores, symmetric=self.model_cfg.symmetric)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"loss became {loss.item()} at step {self.global_step + 1} (backbone '{self.model_cfg.backbone}', "
                f"lr {self._current_lr():g}); training stopped before this step changed the weights. "
                "Try a lower optim.lr, a warm-up (optim.warmup_steps) or precision 32-true."
            )
        b = scores.shape[0]  # given, so Lightning does not guess it from the batch dict
        self.log("train/loss", loss, on_step=True, prog_bar=True, batch_size=b)
        self.log("train/acc", in_batch_accuracy(scores), on_step=True, prog_bar=True, batch_size=b)
        self.log("train/lr", self._current_lr(), on_step=True, batch_size=b)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Throughput over the logging interval."""
        now = time.perf_counter()
        self._interval_samples += int(batch["anchor"].shape[0]) * self.trainer.world_size
        if self._interval_start is None:
            self._interval_start, self._interval_samples = now, 0
        elif self.global_step % self.trainer.log_every_n_steps == 0 and now > self._interval_start:  # type: ignore[attr-defined]
            self.log(
                "train/samples_per_s", self._interval_samples / (now - self._interval_start), on_step=True, batch_size=1
            )
            self._interval_start, self._interval_samples = now, 0

    def _current_lr(self) -> float:
        try:
            return float(self.optimizers().param_groups[0]["lr"])  # type: ignore[union-attr]
        except (RuntimeError, AttributeError):  # not attached to a trainer
            return self.optim_cfg.lr

    def configure_optimizers(self) -> Any:
        o = self.optim_cfg
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        optimizer = cls(self.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        if o.schedule == "none" and o.warmup_steps == 0:
            return optimizer
        factor = functools.partial(
            lr_factor, warmup_steps=o.warmup_steps, max_steps=self.max_steps, schedule=o.schedule
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
