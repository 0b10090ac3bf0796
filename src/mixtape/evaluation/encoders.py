"""The encoder under evaluation and the feature store it is evaluated on, checked against each other.

An encoder only means something on the features it was trained on: a store computed with another
hop size, mel scale or log compression gives inputs the network has never seen, and the numbers
that come out would be quietly meaningless. So the front-end recorded with the encoder (in its
export's ``encoder.json`` or its checkpoint) is compared with the store's, and a mismatch is refused
with both settings named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mixtape.errors import MixtapeError
from mixtape.io import get_logger

log = get_logger(__name__)


class MelMismatchError(MixtapeError, ValueError):
    """An encoder and a feature store made with different log-mel settings."""


@dataclass
class EvalEncoder:
    """An encoder with what it expects of its input: the log-mel settings (None when unrecorded) and patch length."""

    encoder: nn.Module
    mel: dict[str, Any] | None
    patch_frames: int
    source: str


def load_eval_encoder(path: str | Path) -> EvalEncoder:
    """An encoder from an export folder (``encoder.json`` + safetensors) or a pre-training checkpoint file."""
    path = Path(path)
    if path.is_dir():
        from mixtape.models.export import load_exported, read_export_config

        info = read_export_config(path)
        encoder = load_exported(path)
        mel, patch_frames = info.get("mel") or {}, info.get("patch_frames", 128)
        if not isinstance(mel, dict) or not isinstance(patch_frames, int) or isinstance(patch_frames, bool) or patch_frames < 1:
            raise MixtapeError(f"{path / 'encoder.json'}: 'mel' must be an object and 'patch_frames' a positive integer, got {mel!r} and {patch_frames!r}")
        return EvalEncoder(encoder, dict(mel) or None, patch_frames, str(path))
    if not path.exists():
        raise MixtapeError(f"encoder not found: {path} (give an export folder or a pre-training checkpoint)")
    try:
        from mixtape.training.export import load_checkpoint_encoder
    except ImportError as err:  # the training package is optional for evaluation
        raise MixtapeError(f"{path}: reading a checkpoint needs mixtape.training ({err}); export the encoder with `mixtape export` and pass the folder") from None
    encoder, meta = load_checkpoint_encoder(path)
    return EvalEncoder(encoder, dict(meta.get("mel") or {}) or None, int(meta.get("patch_frames", 128)), str(path))


def _as_dict(mel: Any) -> dict[str, Any]:
    if hasattr(mel, "model_dump"):
        return dict(mel.model_dump(mode="json"))
    return dict(mel)


def mel_differences(encoder_mel: Mapping[str, Any], store_mel: Any) -> list[str]:
    """``key: encoder X, store Y`` for each setting that differs (defaults filled in on both sides)."""
    from mixtape.audio.mel import MelConfig

    try:
        ours = MelConfig.model_validate(dict(encoder_mel)).model_dump(mode="json")
    except ValueError as err:
        raise MelMismatchError(f"the encoder's recorded mel settings are not valid: {err}") from None
    theirs = MelConfig.model_validate(_as_dict(store_mel)).model_dump(mode="json")
    return [f"{k}: encoder {ours[k]!r}, store {theirs[k]!r}" for k in ours if ours[k] != theirs.get(k)]


def check_mel_settings(encoder_mel: Mapping[str, Any] | None, store_mel: Any, encoder_source: str, store_source: str, encoder_n_mels: int | None = None) -> None:
    """Refuse an encoder whose training features differ from the store's, naming both sides.

    Without recorded settings (a bare module) only the number of mel bands can be checked; that is
    logged, not refused, so a user's own encoder can still be evaluated.
    """
    store = _as_dict(store_mel)
    if encoder_mel:
        diff = mel_differences(encoder_mel, store)
        if diff:
            raise MelMismatchError(
                f"encoder {encoder_source} was trained on log-mel features made with other settings than feature store {store_source}: "
                + "; ".join(diff)
                + ". Re-extract the features with the encoder's settings (or evaluate an encoder trained on this store)"
            )
        return
    log.warning("encoder %s records no log-mel settings; only the number of mel bands is checked against %s", encoder_source, store_source)
    if encoder_n_mels is not None and int(store.get("n_mels", 96)) != int(encoder_n_mels):
        raise MelMismatchError(f"encoder {encoder_source} takes {encoder_n_mels} mel bands but feature store {store_source} has n_mels={store.get('n_mels')}")


def open_store_for(encoder: EvalEncoder, store_path: str | Path) -> tuple[Any, Any]:
    """The feature store and a patch reader for it, after checking the encoder's mel settings against it."""
    from mixtape.audio import FeatureStore, PatchReader

    store = FeatureStore.open(store_path)
    check_mel_settings(encoder.mel, store.mel_config, encoder.source, str(store_path), getattr(encoder.encoder, "n_mels", None))
    return store, PatchReader(store, patch_frames=encoder.patch_frames)
