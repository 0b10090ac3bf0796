"""An encoder and the input it expects: the one way every stage gets a trained encoder.

An encoder only means something on the features it was trained on: a store computed with another
hop size, mel scale or log compression gives inputs the network has never seen, and the numbers
that come out would be quietly meaningless. So the bundle carries the log-mel settings and patch
length recorded with the weights (in an export's ``config.json`` or a checkpoint's
hyper-parameters), and ``check_store`` refuses a feature store made differently, naming both sides.
Its ``fingerprint`` identifies the weights themselves, whichever file they came from, so an index
or a tagger can tell whether a query is embedded by the model that made the collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from mixtape.audio.mel import MelConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger

if TYPE_CHECKING:
    from mixtape.audio import FeatureStore, PatchReader

log = get_logger(__name__)

#: The patch length (frames) of an encoder that does not record one: the paper's 128 frames (~2 s).
DEFAULT_PATCH_FRAMES = 128


class MelMismatchError(MixtapeError, ValueError):
    """An encoder and a feature store made with different log-mel settings."""


def encoder_fingerprint(module: nn.Module) -> str:
    """blake2b over the parameter names and bytes: the same weights give the same fingerprint whether
    they came from a checkpoint or an export folder."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode("utf-8"))
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _mel_dict(mel: Any) -> dict[str, Any]:
    return dict(mel.model_dump(mode="json")) if hasattr(mel, "model_dump") else dict(mel)


def mel_differences(encoder_mel: Mapping[str, Any], store_mel: Any) -> list[str]:
    """``key: encoder X, store Y`` for each setting that differs (defaults filled in on both sides)."""
    try:
        ours = MelConfig.model_validate(dict(encoder_mel)).model_dump(mode="json")
    except ValueError as err:
        raise MelMismatchError(f"the encoder's recorded mel settings are not valid: {err}") from None
    theirs = MelConfig.model_validate(_mel_dict(store_mel)).model_dump(mode="json")
    return [f"{k}: encoder {ours[k]!r}, store {theirs[k]!r}" for k in ours if ours[k] != theirs.get(k)]


@dataclass
class EncoderBundle:
    """A trained encoder with its input contract: log-mel settings (None when unrecorded), patch length,
    where it came from, and what its export or checkpoint records besides (strategy, step, ...)."""

    encoder: nn.Module
    mel: dict[str, Any] | None
    patch_frames: int
    source: str
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> EncoderBundle:
        """From an export folder (``config.json`` + safetensors) or a pre-training checkpoint file;
        CPU, eval mode."""
        from mixtape.models.checkpoint import read_checkpoint_encoder
        from mixtape.models.export import load_export_folder

        path = Path(path)
        if path.is_dir():
            encoder, info = load_export_folder(path)
            mel, patch_frames = info.get("mel") or {}, info.get("patch_frames", DEFAULT_PATCH_FRAMES)
            if (
                not isinstance(mel, dict)
                or not isinstance(patch_frames, int)
                or isinstance(patch_frames, bool)
                or patch_frames < 1
            ):
                raise MixtapeError(
                    f"{path / 'config.json'}: 'mel' must be an object and 'patch_frames' a positive integer, "
                    f"got {mel!r} and {patch_frames!r}"
                )
            return cls(encoder, dict(mel) or None, patch_frames, str(path), info)
        if not path.exists():
            raise MixtapeError(f"encoder not found: {path} (give an export folder or a pre-training checkpoint)")
        encoder, meta = read_checkpoint_encoder(path)
        return cls(encoder, dict(meta.get("mel") or {}) or None, int(meta["patch_frames"]), str(path), meta)

    @classmethod
    def of(
        cls, encoder: EncoderBundle | nn.Module | str | Path, patch_frames: int = DEFAULT_PATCH_FRAMES
    ) -> EncoderBundle:
        """A bundle from a path (``load``), a bundle (itself), or a bare module (mel settings unknown)."""
        if isinstance(encoder, EncoderBundle):
            return encoder
        if isinstance(encoder, nn.Module):
            return cls(encoder, None, patch_frames, f"<{type(encoder).__name__} module>")
        return cls.load(encoder)

    @property
    def n_mels(self) -> int | None:
        """Mel bands the network takes (None for a module that does not say)."""
        n = getattr(self.encoder, "n_mels", None)
        return int(n) if n is not None else None

    @property
    def embedding_dim(self) -> int | None:
        n = getattr(self.encoder, "embedding_dim", None)
        return int(n) if n is not None else None

    def fingerprint(self) -> str:
        return encoder_fingerprint(self.encoder)

    def check_mel(self, store_mel: Any, store_source: str) -> None:
        """Refuse a feature store whose log-mel settings differ from the encoder's training features.

        Without recorded settings (a bare module) only the number of mel bands can be checked; that is
        logged, not refused, so a user's own encoder can still be evaluated.
        """
        if self.mel:
            diff = mel_differences(self.mel, store_mel)
            if diff:
                raise MelMismatchError(
                    f"encoder {self.source} was trained on log-mel features made with other settings than "
                    f"feature store {store_source}: "
                    + "; ".join(diff)
                    + ". Re-extract the features with the encoder's settings (or evaluate an encoder trained "
                    "on this store)"
                )
            return
        log.warning(
            "encoder %s records no log-mel settings; only the number of mel bands is checked against %s",
            self.source,
            store_source,
        )
        store = _mel_dict(store_mel)
        if self.n_mels is not None and int(store.get("n_mels", 96)) != self.n_mels:
            raise MelMismatchError(
                f"encoder {self.source} takes {self.n_mels} mel bands but feature store {store_source} "
                f"has n_mels={store.get('n_mels')}"
            )

    def open_store(self, store_path: str | Path) -> tuple[FeatureStore, PatchReader]:
        """The feature store and a patch reader of this encoder's patch length, after ``check_mel``."""
        from mixtape.audio import FeatureStore, PatchReader

        store = FeatureStore.open(store_path)
        self.check_mel(store.mel_config, str(store_path))
        return store, PatchReader(store, patch_frames=self.patch_frames)
