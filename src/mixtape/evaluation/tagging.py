"""What probing and fine-tuning share: early stopping on validation PR-AUC and the tagging result."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from mixtape.evaluation.datasets import AlignedTagDataset
from mixtape.evaluation.metrics import TagScores, tag_scores


class EarlyStopping:
    """Keeps the best weights seen so far by validation PR-AUC; says when ``patience`` epochs passed without a gain."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, Any] | None = None
        self.history: list[float] = []

    def update(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Record an epoch's score; True when training should stop."""
        self.history.append(score)
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


@dataclass
class TaggingResult:
    """Test metrics of a tagging run, the per-tag table, and the test predictions (track-level)."""

    method: str  # "probe" or "finetune"
    dataset: str
    tags: list[str]
    test: TagScores
    val_pr_auc: float
    best_epoch: int
    epochs: int
    test_track_ids: list[str]
    predictions: np.ndarray  # [n_test, n_tags] sigmoid activations
    data: dict[str, Any] = field(default_factory=dict)  # split sizes, missing features, notes
    val_history: list[float] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # per split: track ids without features

    @classmethod
    def scored(
        cls, method: str, dataset: AlignedTagDataset, predictions: np.ndarray, stopper: EarlyStopping
    ) -> TaggingResult:
        """Score test-split ``predictions`` of a probe or fine-tune run that ``stopper`` early-stopped."""
        splits = dataset.splits
        return cls(
            method=method,
            dataset=dataset.name,
            tags=list(dataset.tags),
            test=tag_scores(splits["test"].labels, predictions, dataset.tags, split="test"),
            val_pr_auc=float(stopper.best_score),
            best_epoch=stopper.best_epoch,
            epochs=len(stopper.history),
            test_track_ids=list(splits["test"].track_ids),
            predictions=predictions,
            data=dataset.report(),
            val_history=list(stopper.history),
            missing={name: list(split.missing) for name, split in splits.items() if split.missing},
        )

    def metrics(self) -> dict[str, Any]:
        """Flat metric dict (the experiment runner's ``roc_auc``/``pr_auc`` plus context)."""
        return {
            **self.test.as_dict(),
            "val_pr_auc": self.val_pr_auc,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            "test_tracks": len(self.test_track_ids),
        }

    def summary(self) -> str:
        m = self.test
        lines = [
            f"{self.method} on {self.dataset}: ROC-AUC {m.roc_auc:.4f}  PR-AUC {m.pr_auc:.4f}  "
            f"({m.n_evaluated} tags, {len(self.test_track_ids)} test tracks; best epoch {self.best_epoch + 1} of "
            f"{self.epochs}, validation PR-AUC {self.val_pr_auc:.4f})"
        ]
        if m.excluded:
            shown = ", ".join(f"{t} ({why})" for t, why in list(m.excluded.items())[:5])
            more = f" and {len(m.excluded) - 5} more" if len(m.excluded) > 5 else ""
            lines.append(f"excluded from the macro averages: {len(m.excluded)} tag(s): {shown}{more}")
        return "\n".join(lines)
