"""The encoder bundle: an encoder with its input contract, checked against a store's mel settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mixtape.audio import MelConfig
from mixtape.errors import MixtapeError
from mixtape.models import Encoder
from mixtape.models.bundle import EncoderBundle, MelMismatchError
from mixtape.models.export import export_safetensors


def _export(folder: Path, mel: MelConfig, patch_frames: int = 128) -> Path:
    torch.manual_seed(0)
    export_safetensors(
        Encoder("small"), folder, metadata={"mel": mel.model_dump(mode="json"), "patch_frames": patch_frames}
    )
    return folder


def test_export_folder_carries_its_mel_settings(tmp_path: Path) -> None:
    enc = EncoderBundle.load(_export(tmp_path / "enc", MelConfig(hop_size=512), patch_frames=64))
    assert isinstance(enc.encoder, Encoder) and enc.mel is not None
    assert enc.mel["hop_size"] == 512 and enc.patch_frames == 64 and enc.n_mels == 96
    assert enc.source == str(tmp_path / "enc") and enc.info["format"] == "mixtape-encoder"


def test_the_fingerprint_names_the_weights_not_the_file(tmp_path: Path) -> None:
    a = EncoderBundle.load(_export(tmp_path / "a", MelConfig()))
    b = EncoderBundle.load(_export(tmp_path / "b", MelConfig(hop_size=512)))  # same seed: same weights
    assert a.fingerprint() == b.fingerprint()
    torch.manual_seed(1)
    assert EncoderBundle.of(Encoder("small")).fingerprint() != a.fingerprint()


def test_mel_mismatch_is_refused_naming_both(tmp_path: Path) -> None:
    enc = EncoderBundle.load(_export(tmp_path / "enc", MelConfig(hop_size=512, fmax=7000.0)))
    with pytest.raises(MelMismatchError) as err:
        enc.check_mel(MelConfig(), "/data/store")
    msg = str(err.value)
    assert str(tmp_path / "enc") in msg and "/data/store" in msg
    assert "hop_size: encoder 512, store 256" in msg and "fmax: encoder 7000.0, store 8000.0" in msg
    enc.check_mel(MelConfig(hop_size=512, fmax=7000.0), "/data/store")  # equal: accepted


def test_open_store_refuses_a_store_made_otherwise(tmp_path: Path, tiny_store) -> None:
    enc = EncoderBundle.load(_export(tmp_path / "enc", MelConfig(hop_size=512)))
    with pytest.raises(MelMismatchError, match="hop_size: encoder 512"):
        enc.open_store(tiny_store.path)
    same = EncoderBundle.load(_export(tmp_path / "same", tiny_store.mel_config, patch_frames=32))
    store, reader = same.open_store(tiny_store.path)
    assert len(store) == len(tiny_store) and reader.patch_frames == 32


def test_bare_module_checks_only_mel_bands() -> None:
    enc = EncoderBundle.of(Encoder("small", n_mels=64))
    assert enc.mel is None and enc.patch_frames == 128 and EncoderBundle.of(enc) is enc
    with pytest.raises(MelMismatchError, match="64 mel bands .* n_mels=96"):
        enc.check_mel(MelConfig(), "store")
    enc.check_mel(MelConfig(n_mels=64), "store")


def test_missing_encoder_path(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="encoder not found"):
        EncoderBundle.load(tmp_path / "nothing.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixtapeError, match="config.json"):
        EncoderBundle.load(tmp_path / "empty")
