"""Trainer plumbing: a whole-run progress bar, crash-safe checkpoint files, the training curve."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ProgressBar

from mixtape.fileio import atomic_open, atomic_write_bytes, get_logger, progress

log = get_logger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints go through a temp file and a rename: a kill -9 mid-save never leaves a torn last.ckpt."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_open(Path(path), "wb") as f:
            torch.save(checkpoint, f)


def saved_step(path: Path) -> int | None:
    """The global step a checkpoint file holds (None when it is missing or unreadable)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # missing, torn or foreign: in every case not the step we want
        return None


def cut_torn_line(path: Path) -> None:
    """Drop a partial last line of an append-only text journal (what a process killed mid-write leaves),
    so the next line appended starts on a line of its own."""
    try:
        f = open(path, "rb+")  # closed below; the file is scanned backwards from its end
    except FileNotFoundError:
        return
    with f:
        end = f.seek(0, 2)
        pos = end
        while pos > 0:
            start = max(0, pos - (1 << 16))
            f.seek(start)
            chunk = f.read(pos - start)
            if pos == end and chunk.endswith(b"\n"):
                return  # complete
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                return
            pos = start
        f.truncate(0)  # no complete line at all


class BatchTrace(pl.Callback):
    """Appends each finished step's anchors to ``trace/batches-rank<R>.tsv`` (data-order audits).

    A callback rather than a module hook: Lightning runs every callback's ``on_train_batch_end``
    before the module's, and moves ModelCheckpoint to the end of the callbacks, so a step's line is
    written before any checkpoint that holds the step. A kill between the two then leaves a step
    traced but not saved (the resumed run repeats and traces it again), never saved but untraced.
    """

    def __init__(self, trace_dir: Path) -> None:
        self.trace_dir = Path(trace_dir)

    def path(self, rank: int) -> Path:
        return self.trace_dir / f"batches-rank{rank}.tsv"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Marks where a fresh or resumed run begins in the trace."""
        cut_torn_line(self.path(trainer.global_rank))
        self._write(trainer.global_rank, f"# start at step {trainer.global_step}\n")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """One line per finished step: step, epoch, batch number, rank and the anchors' store indices."""
        ids = ",".join(str(int(i)) for i in batch["anchor_index"].tolist())
        epoch, number = batch["meta"].tolist()
        rank = trainer.global_rank
        self._write(rank, f"{trainer.global_step}\t{epoch}\t{number}\t{rank}\t{ids}\n")

    def _write(self, rank: int, text: str) -> None:
        """Append one line: an append-only journal (not an atomic rewrite: a kill can tear only the
        last line, which the next start cuts)."""
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        with open(self.path(rank), "a", encoding="utf-8") as f:
            f.write(text)


class StepProgressBar(ProgressBar):
    """One bar over the whole run (steps done / max_steps, rate, ETA), not one per epoch.

    Epochs are an artefact of the pair sampler here (a tiny world has epochs of a few steps), so a
    per-epoch bar would give a meaningless ETA. Silent when MIXTAPE_NO_PROGRESS is set.
    """

    def __init__(self) -> None:
        super().__init__()
        self._bar: Any = None
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled and trainer.is_global_zero:
            self._bar = progress(
                None, desc="pretrain", total=trainer.max_steps, unit="step", initial=trainer.global_step
            )

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._bar is None:
            return
        self._bar.update(trainer.global_step - self._bar.n)
        metrics = trainer.progress_bar_metrics
        shown = {k.split("/")[-1]: f"{v:.3f}" for k, v in metrics.items() if k in ("train/loss", "train/acc")}
        if shown:
            self._bar.set_postfix(shown, refresh=False)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _version(path: Path) -> int:
    match = re.search(r"version_(\d+)$", path.parent.name)
    return int(match.group(1)) if match else -1


def read_metrics(log_root: Path) -> dict[str, dict[int, float]]:
    """Merge every CSV log segment under ``log_root`` (one per start or resume) into metric → step → value.

    Segments are read in version order, so after a kill and a resume the re-run steps of the later
    segment replace those the killed run had logged.
    """
    merged: dict[str, dict[int, float]] = {}
    for path in sorted(log_root.glob("version_*/metrics.csv"), key=_version):
        lines, skipped = _log_lines(path)
        header = _log_fields(lines[0]) if lines else None
        for line in lines[1:]:
            fields = _log_fields(line)
            if header is None or fields is None or len(fields) != len(header):
                skipped += 1
                continue
            row = dict(zip(header, fields, strict=True))
            step = _number(row.get("step", ""))
            if step is None or not step.is_integer():
                skipped += 1
                continue
            for key, value in row.items():
                if key != "step" and (number := _number(value)) is not None:
                    merged.setdefault(key, {})[int(step)] = number
        if skipped:
            log.warning("%s: %d damaged line(s) skipped (the training curve leaves them out)", path, skipped)
    return merged


def _log_lines(path: Path) -> tuple[list[str], int]:
    """The lines of a CSV log and how many hold bytes that are not UTF-8 (decoded as U+FFFD: their
    damaged cells are no numbers and are left out). An unreadable log is one whose lines are all lost."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        log.warning("%s: unreadable (%s); the training curve leaves it out", path, err.strerror or err)
        return [], 0
    lines = text.splitlines()
    return lines, sum("\ufffd" in line for line in lines)


def _log_fields(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # an over-long field
        return None


def _number(value: str) -> float | None:
    """A finite float from a log cell; None for an empty, non-numeric or infinite one."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if np.isfinite(number) and abs(number) < 2**62 else None


def plot_training_curve(metrics: dict[str, dict[int, float]], out: Path, title: str) -> Path | None:
    """Loss, in-batch accuracy and learning rate against the step, as one PNG (None when nothing was logged)."""
    panels = [
        (k, label)
        for k, label in (
            ("train/loss", "contrastive loss"),
            ("train/acc", "in-batch accuracy"),
            ("train/lr", "learning rate"),
        )
        if metrics.get(k)
    ]
    if panels and panels[-1][0] == "train/lr" and len(set(metrics["train/lr"].values())) == 1:
        panels.pop()  # a flat learning rate needs no plot
    if not panels:
        log.warning("no metrics logged yet; training curve not written")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.4 * len(panels)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], panels, strict=True):
        logged = sorted(metrics[key])
        steps = np.array(logged) + 1  # Lightning logs the 0-based batch; checkpoints count steps done
        values = np.array([metrics[key][s] for s in logged])
        smooth = max(1, len(values) // 25)
        ax.plot(steps, values, lw=1, alpha=0.45 if smooth > 1 else 1.0)
        if smooth > 1:
            kernel = np.ones(smooth) / smooth
            ax.plot(
                steps[smooth - 1 :], np.convolve(values, kernel, mode="valid"), lw=1.6, label=f"mean of {smooth} logs"
            )
            ax.legend(loc="best", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if key == "train/acc":
            ax.set_ylim(0, 1)
        if key == "train/loss" and np.isfinite(values).all():
            ax.set_title(f"{title}  (last loss {values[-1]:.3f} at step {steps[-1]})", fontsize=9)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())
