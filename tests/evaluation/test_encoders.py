"""The encoder under evaluation against the store's mel settings: a mismatch is refused, naming both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mixtape.audio import MelConfig
from mixtape.errors import MixtapeError
from mixtape.evaluation.encoders import MelMismatchError, check_mel_settings, load_eval_encoder
from mixtape.evaluation.tasks import as_eval_encoder
from mixtape.models import Encoder
from mixtape.models.export import export_safetensors


def _export(folder: Path, mel: MelConfig, patch_frames: int = 128) -> Path:
    torch.manual_seed(0)
    export_safetensors(Encoder("small"), folder, metadata={"mel": mel.model_dump(mode="json"), "patch_frames": patch_frames})
    return folder


def test_export_folder_carries_its_mel_settings(tmp_path: Path) -> None:
    enc = load_eval_encoder(_export(tmp_path / "enc", MelConfig(hop_size=512), patch_frames=64))
    assert isinstance(enc.encoder, Encoder) and enc.mel is not None and enc.mel["hop_size"] == 512 and enc.patch_frames == 64
    assert enc.source == str(tmp_path / "enc")


def test_mel_mismatch_is_refused_naming_both(tmp_path: Path) -> None:
    enc = load_eval_encoder(_export(tmp_path / "enc", MelConfig(hop_size=512, fmax=7000.0)))
    with pytest.raises(MelMismatchError) as err:
        check_mel_settings(enc.mel, MelConfig(), enc.source, "/data/store")
    msg = str(err.value)
    assert str(tmp_path / "enc") in msg and "/data/store" in msg
    assert "hop_size: encoder 512, store 256" in msg and "fmax: encoder 7000.0, store 8000.0" in msg
    check_mel_settings(enc.mel, MelConfig(hop_size=512, fmax=7000.0), enc.source, "/data/store")  # equal: accepted


def test_bare_module_checks_only_mel_bands() -> None:
    enc = as_eval_encoder(Encoder("small", n_mels=64))
    assert enc.mel is None and enc.patch_frames == 128
    with pytest.raises(MelMismatchError, match="64 mel bands .* n_mels=96"):
        check_mel_settings(enc.mel, MelConfig(), enc.source, "store", 64)
    check_mel_settings(None, MelConfig(n_mels=64), enc.source, "store", 64)


def test_missing_encoder_path(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="encoder not found"):
        load_eval_encoder(tmp_path / "nothing.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixtapeError, match="encoder.json"):
        load_eval_encoder(tmp_path / "empty")
