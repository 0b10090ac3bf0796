"""`mixtape pretrain`: build the trainer, train, checkpoint, log, resume.

The run folder holds everything about a run::

    config.yaml                  the resolved config (what made these checkpoints)
    checkpoints/last.ckpt        the latest state (every checkpoint_every steps and at the end)
    checkpoints/step0001000.ckpt the periodic checkpoints (the newest keep_checkpoints of them)
    logs/version_N/metrics.csv   CSV log of one start or resume (loss, acc, lr, samples/s)
    tensorboard/version_N/       the same for TensorBoard (when tensorboard or tensorboardX is installed)
    training_curve.png           loss, accuracy and learning rate against the step (all segments merged)
    result.json                  the finished run: steps, loss, which data it trained on (the feature
                                 store's fingerprint, the checksum of the positives' metadata) and the
                                 checksum of the final checkpoint; ``mixtape doctor`` checks them
    trace/batches-rankR.tsv      per-step anchors, only with trainer.trace_batches (an append-only
                                 journal: a torn last line left by a kill is cut when the run resumes)
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mixtape.config import save_config
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, file_checksum, get_logger
from mixtape.models.checkpoint import CheckpointMismatchError, read_checkpoint
from mixtape.training.config import PretrainConfig

log = get_logger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


class RunFolderError(MixtapeError, ValueError):
    """A run folder that cannot be used as asked (checkpoints present without --resume, ...)."""


@dataclass
class PretrainResult:
    """What a finished run left behind, for the CLI, the demo and the experiment runner."""

    run_dir: Path
    checkpoint: Path
    steps: int
    strategy: str
    backbone: str
    loss: float | None
    accuracy: float | None
    seconds: float
    curve: Path | None

    def summary(self) -> str:
        loss = "n/a" if self.loss is None else f"{self.loss:.4f}"
        acc = "n/a" if self.accuracy is None else f"{self.accuracy:.3f}"
        lines = [
            f"pretrained {self.backbone} on strategy '{self.strategy}': {self.steps} steps in {self.seconds:.1f} s",
            f"  last loss {loss}, in-batch accuracy {acc}",
            f"  checkpoint {self.checkpoint}",
        ]
        if self.curve is not None:
            lines.append(f"  curve      {self.curve}")
        return "\n".join(lines)


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def _periodic_step(path: Path) -> int | None:
    match = re.fullmatch(r"step(\d+)\.ckpt", path.name)
    return int(match.group(1)) if match else None


def resume_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint of a run folder and its contents (None when there is none).

    Usually last.ckpt; but a kill between writing step N's periodic checkpoint and last.ckpt
    leaves last.ckpt one interval behind, and then the periodic one is newer.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    periodic = sorted(((s, p) for p in folder.glob("step*.ckpt") if (s := _periodic_step(p)) is not None), reverse=True)
    last = folder / LAST
    best: tuple[Path, dict[str, Any]] | None = None
    if last.is_file():
        best = (last, read_checkpoint(last))
    if periodic and (best is None or periodic[0][0] > int(best[1].get("global_step", -1))):
        best = (periodic[0][1], read_checkpoint(periodic[0][1]))
    return best


def check_resume(ckpt: dict[str, Any], path: Path, config: PretrainConfig) -> None:
    """Refuse to resume a checkpoint whose model differs from the config's, naming both."""
    saved = ckpt["hyper_parameters"]["model"]
    current = config.model.model_dump(mode="json")
    if saved.get("backbone") != current["backbone"]:
        raise CheckpointMismatchError(
            f"cannot resume {path}: it holds a '{saved.get('backbone')}' backbone but the config asks for "
            f"'{current['backbone']}' "
            "(use another --out for a new model, or set model.backbone back)"
        )
    changed = [f"model.{k}: checkpoint {saved.get(k)!r}, config {v!r}" for k, v in current.items() if saved.get(k) != v]
    if changed:
        raise CheckpointMismatchError(f"cannot resume {path}: the model config changed ({'; '.join(changed)})")


def data_record(config: PretrainConfig) -> dict[str, Any]:
    """Which data a run trains on, as result.json records it: the feature store's fingerprint and the
    checksum of the positives' metadata file (which itself records the checksum of every positives file)."""
    from mixtape.audio.store import FeatureStore, store_fingerprint
    from mixtape.pairs.positives import META_FILE

    store, positives = Path(config.data.store), Path(config.data.positives)
    return {
        "store": {"path": str(store.resolve()), "fingerprint": store_fingerprint(FeatureStore.open(store))},
        "positives": {"path": str(positives.resolve()), "metadata_checksum": file_checksum(positives / META_FILE)},
    }


def check_resume_features(ckpt: dict[str, Any], path: Path, store_mel: dict[str, Any], store: Path) -> None:
    """Refuse to resume on a feature store made with other log-mel settings than the checkpoint was
    trained on (its weights would meet inputs they never saw, or not fit them at all), naming both."""
    from mixtape.audio.mel import MelConfig

    saved = (ckpt["hyper_parameters"].get("data_info") or {}).get("mel")
    if not saved:
        return  # an older checkpoint without the record: the weights' shapes are still checked on load
    ours = MelConfig.model_validate(saved).model_dump(mode="json")
    theirs = MelConfig.model_validate(store_mel).model_dump(mode="json")
    diff = [f"{k}: checkpoint {ours[k]!r}, store {theirs.get(k)!r}" for k in ours if ours[k] != theirs.get(k)]
    if diff:
        raise CheckpointMismatchError(
            f"cannot resume {path}: it was trained on log-mel features made with other settings than feature store "
            f"{store} ({'; '.join(diff)}); resume with the store it was trained on, or start a new run folder"
        )


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' → bf16-mixed on a GPU that supports it (16-mixed on older ones), 32-true elsewhere."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if not on_gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def _loggers(out: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(out), name="logs")]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(out), name="tensorboard", default_hp_metric=False))
    except ModuleNotFoundError as err:
        log.warning("TensorBoard logging off (%s); install tensorboard or tensorboardX to enable it", err)
    return loggers


def _build_trainer(config: PretrainConfig) -> Any:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from mixtape.training.callbacks import AtomicCheckpointIO, BatchTrace, StepProgressBar

    t = config.trainer
    checkpoints = ModelCheckpoint(
        dirpath=str(config.out / CHECKPOINT_DIR),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=t.checkpoint_every,
        save_last=True,
        save_top_k=t.keep_checkpoints,
        monitor="step",
        mode="max",
        save_on_train_epoch_end=False,
    )
    precision = resolve_precision(t.precision, t.accelerator)
    callbacks: list[Any] = [checkpoints, StepProgressBar()]
    if t.trace_batches:
        callbacks.append(BatchTrace(Path(config.out) / "trace"))
    return pl.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=precision,  # type: ignore[arg-type]
        max_steps=t.max_steps,
        max_epochs=-1,
        log_every_n_steps=t.log_every,
        callbacks=callbacks,
        logger=_loggers(config.out),
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the pair sampler shards the global batch itself
        num_sanity_val_steps=0,
        enable_model_summary=True,
        default_root_dir=str(config.out),
        benchmark=torch.cuda.is_available(),
    )


def _route_lightning_logs_to_root() -> None:
    """Lightning adds its own stderr handler when imported before logging is set up; with a
    configured root logger that prints every message twice, so let the root handlers alone print."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def _user_error_behind(err: RuntimeError) -> BaseException:
    """The MixtapeError that Lightning's teardown masked, if any.

    When the data loader fails while an epoch starts (e.g. the pair sampler cannot fill a batch
    without repeating a track), Lightning's cleanup raises its own RuntimeError on top of it; the
    user should see the first, meaningful message.
    """
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, MixtapeError):
        cause = cause.__context__
    return cause if cause is not None else err


def _metric(trainer: Any, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def pretrain(config: PretrainConfig, resume: bool = False) -> PretrainResult:
    """Train an encoder on one pair strategy; with ``resume``, continue from the run folder's last.ckpt."""
    import lightning.pytorch as pl

    from mixtape.training.callbacks import plot_training_curve, read_metrics, saved_step
    from mixtape.training.data import PairDataModule, prepare_pair_data
    from mixtape.training.module import ContrastivePretrainer, TrainingDivergedError

    started = time.perf_counter()
    _route_lightning_logs_to_root()
    out = Path(config.out)
    last = last_checkpoint(out)
    ckpt_path: Path | None = None
    found = resume_checkpoint(out) if resume else None
    if found is not None:
        ckpt_path, ckpt = found
        check_resume(ckpt, ckpt_path, config)
        log.info("resuming from %s (step %d)", ckpt_path, int(ckpt.get("global_step", 0)))
    elif resume:
        log.info("--resume: no checkpoint in %s yet, starting a new run", out / CHECKPOINT_DIR)
    elif any((out / CHECKPOINT_DIR).glob("*.ckpt")):
        raise RunFolderError(
            f"run folder {out} already holds checkpoints; pass --resume to continue it, or choose another --out"
        )

    pl.seed_everything(config.trainer.seed, workers=False, verbose=False)
    trainer = _build_trainer(config)
    data = prepare_pair_data(config.data, world_size=trainer.world_size)
    if found is not None:
        check_resume_features(found[1], found[0], data.mel, config.data.store)
    global_batch = config.data.batch_size * trainer.world_size
    module = ContrastivePretrainer(
        model=config.model.model_dump(mode="json"),
        optim=config.optim.model_dump(mode="json"),
        max_steps=config.trainer.max_steps,
        n_mels=data.n_mels,
        patch_frames=config.data.patch_frames,
        global_batch_size=global_batch,
        data_info=data.info(),
    )
    record = data_record(config) if trainer.is_global_zero else {}
    if trainer.is_global_zero:
        save_config(config, out / "config.yaml")
    log.info(
        "pretraining %s (%s similarity) on strategy '%s': %d anchors, global batch %d, %d steps, precision %s, "
        "%d device(s)",
        config.model.backbone,
        config.model.similarity,
        data.strategy,
        data.n_anchors,
        global_batch,
        config.trainer.max_steps,
        trainer.precision,
        trainer.world_size,
    )
    datamodule = PairDataModule(data, config.data, seed=config.trainer.seed)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except TrainingDivergedError as err:
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been saved yet"
        raise TrainingDivergedError(f"{err}\n{kept}") from None
    except RuntimeError as err:
        raise _user_error_behind(err) from None
    if saved_step(last) != trainer.global_step:
        # last.ckpt (what evaluation and export read) must hold the final step. ModelCheckpoint writes it
        # only with a periodic checkpoint, so it lags when max_steps is not a multiple of
        # checkpoint_every; and a run killed between the final periodic checkpoint and last.ckpt
        # resumes from the periodic one and ends at once (Lightning then calls no training hook).
        trainer.save_checkpoint(last)

    curve = None
    if trainer.is_global_zero:
        curve = plot_training_curve(
            read_metrics(out / "logs"), out / "training_curve.png", f"{config.model.backbone} · {data.strategy}"
        )
    result = PretrainResult(
        run_dir=out,
        checkpoint=last,
        steps=int(trainer.global_step),
        strategy=data.strategy,
        backbone=config.model.backbone,
        loss=_metric(trainer, "train/loss"),
        accuracy=_metric(trainer, "train/acc"),
        seconds=time.perf_counter() - started,
        curve=curve,
    )
    if trainer.is_global_zero:
        summary = {k: str(v) if isinstance(v, Path) else v for k, v in result.__dict__.items()}
        summary |= {"data": record, "checkpoint_checksum": file_checksum(last) if last.is_file() else None}
        atomic_write_text(out / "result.json", json.dumps(summary, indent=2) + "\n")
    log.info("pretraining finished at step %d (%.1f s); checkpoint %s", result.steps, result.seconds, last)
    return result
