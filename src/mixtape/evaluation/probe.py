"""Linear-ish probe: frozen track embeddings → MLP (512 ReLU, dropout) → one sigmoid per tag.

The probe measures what the pre-trained representation already holds: the encoder never changes,
its track embeddings are computed once, and only a small MLP is trained (Adam 1e-3, weight decay
1e-5, batch 32, early stopping on validation macro PR-AUC, as in the paper's downstream protocol).
Runs are deterministic for a seed: weights, dropout masks and batch order all come from it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from pydantic import Field
from torch import nn

from mixtape.config import StrictConfig
from mixtape.evaluation.datasets import AlignedTagDataset, TagDataError
from mixtape.evaluation.metrics import macro_pr_auc
from mixtape.evaluation.tagging import EarlyStopping, TaggingResult
from mixtape.fileio import get_logger, progress
from mixtape.models.embedding import TrackPatchSource, embed_tracks
from mixtape.models.heads import TagProbe

log = get_logger(__name__)


class ProbeConfig(StrictConfig):
    """The probe's training recipe (defaults from the paper's downstream protocol; epochs and patience are ours)."""

    hidden: int = Field(512, gt=0)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-5, ge=0.0)
    batch_size: int = Field(32, gt=0)
    max_epochs: int = Field(200, gt=0)
    patience: int = Field(10, gt=0)
    standardize: bool = True  # z-score features with training-split statistics (stored in the probe)
    seed: int = 0


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: a 512-unit MLP on batches of 32 is far too small to gain from
    intra-op threads, and on a shared machine their spin-waiting makes it several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _predict(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return torch.cat([torch.sigmoid(model(x[i : i + batch])) for i in range(0, len(x), batch)]).numpy()


def train_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, config: ProbeConfig | None = None
) -> tuple[TagProbe, EarlyStopping]:
    """Fit the probe on embeddings, stopping when validation PR-AUC has not improved for ``patience`` epochs.

    Returns the probe with its best epoch's weights and the early-stopping record.
    """
    cfg = config or ProbeConfig()
    y_val_b = np.asarray(y_val).astype(bool)
    pos = y_val_b.sum(axis=0)
    if not ((pos > 0) & (pos < len(y_val_b))).any():
        raise TagDataError(
            f"the validation split ({len(y_val_b)} tracks) has no tag with both positives and negatives: early "
            "stopping has nothing to measure"
        )
    xt = torch.as_tensor(np.asarray(x_train, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    xv = torch.as_tensor(np.asarray(x_val, dtype=np.float32))
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(cfg.seed)
        model = TagProbe(xt.shape[1], yt.shape[1], cfg.hidden, cfg.dropout)
        if cfg.standardize:
            model.mean.copy_(xt.mean(dim=0))
            model.scale.copy_(xt.std(dim=0, unbiased=False).clamp_min(1e-6))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(cfg.seed)
        stopper = EarlyStopping(cfg.patience)
        n_batches = math.ceil(len(xt) / cfg.batch_size)
        epochs = progress(range(cfg.max_epochs), desc="probe epochs", total=cfg.max_epochs, unit="epoch")
        for epoch in epochs:
            model.train()
            order = torch.from_numpy(rng.permutation(len(xt)))
            for b in range(n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xt[idx]), yt[idx]).backward()
                opt.step()
            score = macro_pr_auc(y_val_b, _predict(model, xv))
            if stopper.update(epoch, score, model):
                break
        stopper.restore(model)
    log.info(
        "probe: best validation PR-AUC %.4f at epoch %d of %d",
        stopper.best_score,
        stopper.best_epoch + 1,
        len(stopper.history),
    )
    return model.eval(), stopper


def probe_embeddings(
    embeddings: dict[str, np.ndarray], dataset: AlignedTagDataset, config: ProbeConfig | None = None
) -> TaggingResult:
    """Train on ``embeddings['train']``, stop on ``'validation'``, score ``'test'`` (rows = the dataset's split "
    "rows)."""
    cfg = config or ProbeConfig()
    s = dataset.splits
    for name, split in s.items():
        if len(embeddings[name]) != len(split):
            raise TagDataError(f"{len(embeddings[name])} {name} embeddings for {len(split)} {name} tracks")
    model, stopper = train_probe(
        embeddings["train"], s["train"].labels, embeddings["validation"], s["validation"].labels, cfg
    )
    pred = _predict(model, torch.as_tensor(np.asarray(embeddings["test"], dtype=np.float32)))
    return TaggingResult.scored("probe", dataset, pred, stopper)


def run_probe(
    encoder: nn.Module,
    reader: TrackPatchSource,
    dataset: AlignedTagDataset,
    config: ProbeConfig | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> TaggingResult:
    """Embed every split's tracks with the frozen ``encoder`` (mean over non-overlapping patches), then probe."""
    embeddings = {
        name: embed_tracks(encoder, reader, split.rows, batch_size=batch_size, device=device, desc=f"embedding {name}")
        for name, split in dataset.splits.items()
    }
    return probe_embeddings(embeddings, dataset, config)
