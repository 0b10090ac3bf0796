"""Contrastive pre-training (COLA bilinear / NT-Xent) on PyTorch Lightning, from the feature store
and any pair strategy; checkpoints, logs, resume, and export of the trained encoder."""

from mixtape.training.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    PretrainConfig,
    TrainerConfig,
    cpu_config,
    load_pretrain_config,
    parse_overrides,
)

__all__ = [
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "PretrainConfig",
    "TrainerConfig",
    "cpu_config",
    "load_pretrain_config",
    "parse_overrides",
    "pretrain",
    "PretrainResult",
    "export_checkpoint",
]

_LAZY = {
    "pretrain": "mixtape.training.run",
    "PretrainResult": "mixtape.training.run",
    "export_checkpoint": "mixtape.training.export",
}


def __getattr__(name: str) -> object:
    """Import torch and Lightning only when a run or an export is asked for (keeps `--help` instant)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixtape.training' has no attribute {name!r}")
