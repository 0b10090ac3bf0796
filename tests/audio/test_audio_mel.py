"""Log-mel features: the filterbank, framing conventions, and agreement with librosa and Essentia."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audio.audio_signals import tone
from conftest import shared_data

from mixtape.audio import MelConfig, load_audio, log_mel, log_mel_batch, mel_filterbank
from mixtape.config import ConfigError, config_from_dict

# Two real files (one mp3, one ogg) keep the comparison honest yet fast; 20 s of each is plenty.
REAL_FILES = [
    ("jamendo", "Confession_-_Quesabe.mp3"),
    ("excerpts", "Kevin_MacLeod_-_Vibe_Ace.ogg"),
    ("excerpts", "glacier-bay-humpback.ogg"),
]
SECONDS = 20
# Bins with energy: log-mel >= 0.01, i.e. mel power >= ~2.3e-6 (about -56 dB re a full-scale band).
# Below that, both sides are single-precision FFT noise and a relative error means nothing.
ENERGY_FLOOR = 1e-2


def _real_audio(folder: str, name: str) -> np.ndarray:
    path = shared_data("real-audio", folder, name)
    return load_audio(path)[: SECONDS * 16000]


def _librosa_log_mel(y: np.ndarray, config: MelConfig, window: str | np.ndarray | None = None) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    s = librosa.feature.melspectrogram(
        y=y,
        sr=config.sample_rate,
        n_fft=config.frame_size,
        hop_length=config.hop_size,
        window=np.hanning(config.frame_size) if window is None else window,  # symmetric Hann, as mixtape/Essentia
        center=config.center,
        pad_mode="constant",
        power=2.0,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=config.mel_scale == "htk",
        norm="slaney" if config.mel_norm == "slaney" else None,
    )
    return np.log10(1.0 + config.log_multiplier * s).T


def _max_rel_err(ours: np.ndarray, ref: np.ndarray, floor: float = ENERGY_FLOOR) -> float:
    mask = ref >= floor
    assert mask.mean() > 0.3, "the comparison needs bins with energy"
    return float((np.abs(ours - ref)[mask] / ref[mask]).max())


def test_filterbank_matches_librosa_slaney_and_htk() -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    np.testing.assert_allclose(mel_filterbank(MelConfig()), ref, rtol=1e-5, atol=1e-8)
    cfg = MelConfig(mel_scale="htk", mel_norm="none", n_mels=40, fmin=50.0, fmax=7000.0)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=50.0, fmax=7000.0, htk=True, norm=None)
    np.testing.assert_allclose(mel_filterbank(cfg), ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("folder", "name"), REAL_FILES)
def test_log_mel_matches_librosa_on_real_audio(folder: str, name: str) -> None:
    y = _real_audio(folder, name)
    ours = log_mel(y)
    ref = _librosa_log_mel(y, MelConfig())
    assert ours.shape == ref.shape == (MelConfig().n_frames(len(y)), 96)
    assert ours.dtype == np.float32
    assert _max_rel_err(ours, ref) <= 1e-3


@pytest.mark.parametrize(("folder", "name"), REAL_FILES)
def test_log_mel_matches_essentia_musicnn_input(folder: str, name: str) -> None:
    """Essentia's TensorflowInputMusiCNN (the Discogs-EffNet input) on the same frames.

    Aligning conventions: Essentia's algorithm takes one 512-sample frame at a time, so frames are cut
    with FrameGenerator(startFromZero=True, validFrameThresholdRatio=1) = our center=False framing (its
    default startFromZero=False would centre frame 0 on sample 0). Its Hann window is symmetric, like
    ours. Essentia computes in single precision throughout, so its values carry ~1e-4 absolute noise:
    the bound here is absolute, plus relative on clearly energetic bins.
    """
    es = pytest.importorskip("essentia.standard")
    y = _real_audio(folder, name)
    extractor = es.TensorflowInputMusiCNN()
    ref = np.array(
        [
            extractor(f)
            for f in es.FrameGenerator(y, frameSize=512, hopSize=256, startFromZero=True, validFrameThresholdRatio=1)
        ]
    )
    ours = log_mel(y)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 2e-3
    assert _max_rel_err(ours, ref, floor=0.1) <= 1e-2


def test_frame_convention_not_centred() -> None:
    cfg = MelConfig()
    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert cfg.n_frames(511) == 0 and cfg.n_frames(512) == 1 and cfg.n_frames(767) == 1 and cfg.n_frames(768) == 2
    assert log_mel(y[:511]).shape == (0, 96)
    # Frame t covers samples [256 t, 256 t + 512): frame 3 of y equals frame 0 of y[768:].
    np.testing.assert_allclose(log_mel(y)[3], log_mel(y[768 : 768 + 512])[0], rtol=1e-5, atol=1e-6)
    assert cfg.n_frames(cfg.samples_for(128)) == 128 and cfg.n_frames(cfg.samples_for(128) - 1) == 127


def test_centred_and_periodic_options_match_librosa() -> None:
    cfg = MelConfig(center=True, window="hann_periodic")
    y = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    ours = log_mel(y, cfg)
    ref = _librosa_log_mel(y, cfg, window="hann")
    assert ours.shape == ref.shape == (cfg.n_frames(len(y)), 96)
    assert _max_rel_err(ours, ref) <= 1e-3
    assert cfg.n_frames(cfg.samples_for(128)) == 128


def test_a_tone_lands_in_the_band_around_its_frequency() -> None:
    cfg = MelConfig()
    band = int(log_mel(tone(1000.0, 1.0)).mean(axis=0).argmax())
    fb = mel_filterbank(cfg)
    centre_hz = np.linspace(0, 8000, cfg.n_bins)[fb[band].argmax()]
    assert abs(centre_hz - 1000.0) < 100.0


def test_batch_and_chunking_give_the_same_frames() -> None:
    rng = np.random.default_rng(2)
    waves = torch.from_numpy(rng.standard_normal((3, 20000)).astype(np.float32) * 0.1)
    batch = log_mel_batch(waves, MelConfig(), chunk_frames=7)
    assert batch.shape == (3, MelConfig().n_frames(20000), 96)
    for i in range(3):
        np.testing.assert_allclose(batch[i].numpy(), log_mel(waves[i].numpy()), rtol=1e-5, atol=1e-6)


def test_log_mel_rejects_multichannel_input() -> None:
    with pytest.raises(ValueError, match="1-D mono"):
        log_mel(np.zeros((2, 1000), dtype=np.float32))


def test_mel_config_refuses_impossible_bands() -> None:
    with pytest.raises(ConfigError, match="Nyquist"):
        config_from_dict(MelConfig, {"sample_rate": 16000, "fmax": 9000.0})
    with pytest.raises(ConfigError, match="unknown key 'n_mel'"):
        config_from_dict(MelConfig, {"n_mel": 64})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_log_mel_on_gpu_matches_cpu() -> None:
    y = np.random.default_rng(3).standard_normal(16000 * 5).astype(np.float32) * 0.1
    np.testing.assert_allclose(log_mel(y, device="cuda"), log_mel(y, device="cpu"), rtol=1e-4, atol=1e-5)
