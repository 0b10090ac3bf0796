"""Reading a pre-training checkpoint: the one place that opens a Lightning ``.ckpt`` file.

It sits with the models (not with training) because everything downstream of training — export,
evaluation, search, doctor — needs the encoder a checkpoint holds, and none of them may depend on the
training engine to get it. Loads are ``weights_only``: a checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from mixtape.errors import MixtapeError
from mixtape.models.encoder import Encoder
from mixtape.models.weights import build_for_weights


class CheckpointMismatchError(MixtapeError, ValueError):
    """A checkpoint that cannot be read, or does not fit the config it is resumed or exported with."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint as a dict (tensors on CPU), with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatchError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's own text suggests an unsafe load: say what the file is instead
        found = re.search(r"GLOBAL (\S+)", str(err))
        what = (
            f"it holds Python objects ({found[1]}) that a safe load refuses"
            if found
            else "damaged, truncated, or not a PyTorch checkpoint file"
        )
        raise CheckpointMismatchError(f"{path}: not a readable checkpoint ({what})") from None
    except Exception as err:  # torch raises several types for a torn or foreign file
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointMismatchError(
            f"{path}: not a readable checkpoint "
            f"(damaged, truncated, or not a PyTorch checkpoint file; {type(err).__name__}: {first})"
        ) from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if (
        not isinstance(hp, dict)
        or not isinstance(hp.get("model"), dict)
        or not isinstance(ckpt.get("state_dict"), dict)
    ):
        raise CheckpointMismatchError(f"{path}: not a mixtape pre-training checkpoint (no model hyper-parameters)")
    return ckpt


def _is_count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def read_checkpoint_encoder(path: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """The encoder of a pre-training checkpoint (CPU, eval mode) and what an export records about it:
    ``patch_frames``, ``mel``, ``strategy``, ``step``, ``similarity``, ``checkpoint``."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    model = hp["model"]
    options, info = model.get("backbone_options", {}), hp.get("data_info") or {}
    patch_frames, step = hp.get("patch_frames", 128), ckpt.get("global_step", 0)
    if (
        not isinstance(options, dict)
        or not isinstance(info, dict)
        or not isinstance(info.get("mel", {}), dict)
        or not _is_count(patch_frames, 1)
        or not _is_count(step, 0)
    ):
        raise CheckpointMismatchError(
            f"{path}: damaged hyper-parameters (backbone_options {options!r}, data_info of type "
            f"{type(info).__name__}, patch_frames {patch_frames!r}, global_step {step!r})"
        )
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if isinstance(k, str) and k.startswith(prefix)}
    # Built only once its shapes match the weights: damaged hyper-parameters cannot make it allocate
    # more than the checkpoint holds.
    encoder = build_for_weights(
        lambda: Encoder(model.get("backbone"), int(hp.get("n_mels", 96)), **options),
        state,
        str(path),
        CheckpointMismatchError,
        f"encoder weights do not fit backbone {model.get('backbone')!r}",
    )
    meta = {
        "patch_frames": patch_frames,
        "mel": info.get("mel", {}),
        "strategy": info.get("strategy"),
        "step": step,
        "similarity": model.get("similarity"),
        "checkpoint": str(path),
    }
    return encoder.eval(), meta
