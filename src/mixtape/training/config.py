"""The typed pre-training config: one YAML file says everything a run needs to be reproduced.

Every section is strict (an unknown or misspelt key fails at load time with its dotted name), and
the resolved config is written into the run folder beside the checkpoints, so a checkpoint always
says which data, model and optimiser made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from mixtape.config import ConfigError, StrictConfig, load_config

Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"]


class DataConfig(StrictConfig):
    """Where the patches and the positives come from, and how many are read per step."""

    store: Path = Field(description="feature store folder (written by `mixtape features`)")
    positives: Path = Field(description="positives folder of one pair strategy (written by `mixtape pairs`)")
    patch_frames: int = Field(128, ge=8, description="frames per patch (128 ≈ 2 s at hop 256, 16 kHz)")
    batch_size: int = Field(
        256, ge=2, description="pairs per device and step; the negatives come from the global batch"
    )
    workers: int = Field(4, ge=0, description="loader processes reading patches (0: read in the training process)")
    prefetch: int = Field(4, ge=1, description="batches each worker prepares ahead")


class ModelConfig(StrictConfig):
    """Encoder, COLA head (Dense 512 → LayerNorm → tanh) and the similarity that fills the score matrix."""

    backbone: str = "efficientnet_b0"
    backbone_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword options of the backbone factory"
    )
    projection_dim: int = Field(512, ge=1)
    # Cosine / 0.1 rather than COLA's bilinear form: measured in docs/evidence.md, the bilinear form
    # starts with logits of standard deviation ~9 (W ~ N(0, 0.05²) over 512 tanh units), a saturated
    # softmax that learned so little in a CPU budget that even the oracle `theme` positives did no
    # better than artist ones; cosine lifted every strategy and the oracle most.
    similarity: Literal["bilinear", "cosine"] = "cosine"
    temperature: float = Field(0.1, gt=0, description="cosine similarity only: scores are cos / temperature (NT-Xent)")
    symmetric: bool = Field(False, description="average the anchor→positive and positive→anchor losses")


class OptimConfig(StrictConfig):
    """COLA trains with Adam at 1e-3; the schedule is a choice the paper does not state."""

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["none", "cosine"] = "none"
    warmup_steps: int = Field(0, ge=0, description="linear warm-up from 0 to lr over this many steps")


class TrainerConfig(StrictConfig):
    """Lightning trainer settings; 'auto' precision means bf16-mixed on a GPU, 32-bit elsewhere."""

    max_steps: int = Field(10_000, ge=1)
    precision: Precision = "auto"
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = "auto"
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="Lightning strategy: auto, ddp, ddp_find_unused_parameters_true, ...")
    checkpoint_every: int = Field(1000, ge=1, description="save a checkpoint (and last.ckpt) every this many steps")
    keep_checkpoints: int = Field(3, ge=-1, description="periodic checkpoints kept besides last.ckpt (-1: all)")
    log_every: int = Field(50, ge=1, description="steps between logged metrics")
    seed: int = 0
    trace_batches: bool = Field(
        False, description="append each step's anchor store indices to trace/batches-rank<R>.tsv (data-order audits)"
    )


class PretrainConfig(StrictConfig):
    """A whole pre-training run: data, model, optimiser, trainer and the run folder."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    out: Path = Field(Path("runs/pretrain"), description="run folder: config, checkpoints, logs, curves")


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["trainer.max_steps=100", "model.symmetric=true"]`` → dotted keys with YAML-typed values."""
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value (dotted key, YAML value), got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {err}") from None
    return overrides


def load_pretrain_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """Load a pre-training YAML file; ``overrides`` (dotted keys) win over the file."""
    return load_config(PretrainConfig, path, overrides)


def cpu_config(
    store: str | Path, positives: str | Path, out: str | Path, max_steps: int = 150, batch_size: int = 32, seed: int = 0
) -> PretrainConfig:
    """The `small` backbone on one CPU (what `mixtape demo` and quick experiments run).

    Checkpoints at the end and midway.
    """
    return PretrainConfig(
        data=DataConfig(store=Path(store), positives=Path(positives), batch_size=batch_size, workers=1),
        model=ModelConfig(backbone="small"),
        trainer=TrainerConfig(
            max_steps=max_steps,
            precision="32-true",
            accelerator="cpu",
            devices=1,
            checkpoint_every=max(1, max_steps // 2),
            keep_checkpoints=1,
            log_every=max(1, min(10, max_steps // 10)),
            seed=seed,
        ),
        out=Path(out),
    )
