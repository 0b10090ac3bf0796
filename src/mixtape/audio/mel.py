"""Log-mel features, computed with torch: the input every model in mixtape sees.

The defaults reproduce the frame-level input of Essentia's MusiCNN/Discogs-EffNet models
(``TensorflowInputMusiCNN``): 16 kHz, 512-sample frames, hop 256, power spectrum, 96 Slaney mel
bands over 0-8 kHz, ``log10(1 + 10000 x)``. Two conventions matter when comparing with other tools:

- the Hann window is *symmetric* (``numpy.hanning``, as Essentia's ``Windowing(type='hann')``);
  librosa's ``window='hann'`` is the periodic one and differs by up to ~10% per band, so a librosa
  reference must pass ``window=numpy.hanning(512)``;
- frames are not centred (``center=False``): frame ``t`` covers samples ``[t*hop, t*hop + 512)`` and a
  partial last frame is dropped, like Essentia's ``FrameGenerator(startFromZero=True,
  validFrameThresholdRatio=1)`` and librosa's ``center=False``.
Both are fields of :class:`MelConfig`, which is saved in every feature store and checkpoint so a
mismatch between stages is refused rather than silently degrading a model.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from mixtape.config import StrictConfig

#: Frames per torch call when a track is long: bounds the complex spectrum kept in memory (~8 MB).
CHUNK_FRAMES = 4096


class MelConfig(StrictConfig):
    """Everything that defines the features; two stages agree on features iff their configs are equal."""

    sample_rate: int = Field(16000, gt=0)
    frame_size: int = Field(512, gt=1)
    hop_size: int = Field(256, gt=0)
    n_mels: int = Field(96, gt=0)
    fmin: float = Field(0.0, ge=0.0)
    fmax: float = Field(8000.0, gt=0.0)
    log_multiplier: float = Field(10000.0, gt=0.0)
    window: Literal["hann_symmetric", "hann_periodic"] = "hann_symmetric"
    center: bool = False
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney", "none"] = "slaney"
    resample_quality: Literal["VHQ", "HQ", "MQ", "LQ"] = "HQ"

    @model_validator(mode="after")
    def _check_band_edges(self) -> MelConfig:
        if self.fmax > self.sample_rate / 2:
            raise ValueError(
                f"fmax={self.fmax} is above the Nyquist frequency {self.sample_rate / 2} of "
                f"sample_rate={self.sample_rate}"
            )
        if self.fmin >= self.fmax:
            raise ValueError(f"fmin={self.fmin} must be below fmax={self.fmax}")
        return self

    @property
    def n_bins(self) -> int:
        return self.frame_size // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        """How many frames ``log_mel`` returns for a waveform of ``n_samples``."""
        if self.center:
            n_samples += 2 * (self.frame_size // 2)
        return 0 if n_samples < self.frame_size else 1 + (n_samples - self.frame_size) // self.hop_size

    def samples_for(self, n_frames: int) -> int:
        """The fewest samples that give ``n_frames`` frames (used to pad short tracks)."""
        n = self.frame_size + (n_frames - 1) * self.hop_size
        return max(n - 2 * (self.frame_size // 2), 1) if self.center else n


def _hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 steps per factor 6.4).
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / f_sp
    log = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, linear)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(config: MelConfig) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_bins]`` (float64), built in Hz like Slaney's Auditory Toolbox.

    Filter ``m`` rises from edge ``m`` to ``m+1`` and falls to ``m+2`` (edges equally spaced in mel);
    with ``mel_norm='slaney'`` each is scaled by ``2 / bandwidth_hz`` so bands have equal area.
    """
    bin_hz = np.linspace(0.0, config.sample_rate / 2, config.n_bins)
    edges_mel = np.linspace(
        _hz_to_mel(np.array(config.fmin), config.mel_scale),
        _hz_to_mel(np.array(config.fmax), config.mel_scale),
        config.n_mels + 2,
    )
    edges_hz = _mel_to_hz(edges_mel, config.mel_scale)
    widths = np.diff(edges_hz)  # [n_mels + 1]
    ramps = edges_hz[:, None] - bin_hz[None, :]  # [n_mels + 2, n_bins]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if config.mel_norm == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights


def frame_window(config: MelConfig) -> np.ndarray:
    n = config.frame_size
    if config.window == "hann_symmetric":
        return np.hanning(n)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@functools.lru_cache(maxsize=16)
def _constants(config_json: str, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Window and transposed filterbank on ``device``, built once per config (the cache key is its JSON)."""
    config = MelConfig.model_validate_json(config_json)
    window = torch.as_tensor(frame_window(config), dtype=torch.float32, device=device)
    fb_t = torch.as_tensor(mel_filterbank(config).T.copy(), dtype=torch.float32, device=device)
    return window, fb_t


def default_device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def log_mel_batch(
    waveforms: torch.Tensor, config: MelConfig | None = None, chunk_frames: int = CHUNK_FRAMES
) -> torch.Tensor:
    """Log-mel of equal-length waveforms ``[..., n_samples]`` -> ``[..., n_frames, n_mels]`` float32.

    Runs on the waveforms' device. Frames are processed ``chunk_frames`` at a time so a long track
    never holds its whole complex spectrum in memory.
    """
    config = config or MelConfig()
    x = waveforms.to(torch.float32)
    if config.center:
        half = config.frame_size // 2
        x = torch.nn.functional.pad(x, (half, half))
    lead = x.shape[:-1]
    n_frames = config.n_frames(waveforms.shape[-1])
    out = torch.empty((*lead, n_frames, config.n_mels), dtype=torch.float32, device=x.device)
    if n_frames == 0:
        return out
    window, fb_t = _constants(config.model_dump_json(), str(x.device))
    frames = x.unfold(-1, config.frame_size, config.hop_size)  # a view: [..., n_frames, frame_size]
    for start in range(0, n_frames, chunk_frames):
        spectrum = torch.fft.rfft(frames[..., start : start + chunk_frames, :] * window)
        power = spectrum.real.square() + spectrum.imag.square()  # |X|^2 without the sqrt of abs()
        out[..., start : start + chunk_frames, :] = power @ fb_t
    # log10(1 + m x) through log1p: exact for the many near-silent bands where 1 + m x rounds to 1.
    return out.mul_(config.log_multiplier).log1p_().div_(math.log(10.0))


def log_mel(
    waveform: np.ndarray | torch.Tensor, config: MelConfig | None = None, device: str | torch.device | None = "cpu"
) -> np.ndarray:
    """Log-mel of one mono waveform at ``config.sample_rate``: ``[n_frames, n_mels]`` float32.

    ``device=None`` picks the GPU when present. A waveform shorter than one frame gives 0 frames.
    """
    config = config or MelConfig()
    x = torch.as_tensor(waveform)
    if x.ndim != 1:
        raise ValueError(f"log_mel expects a 1-D mono waveform, got shape {tuple(x.shape)}")
    dev = default_device() if device is None else torch.device(device)
    return log_mel_batch(x.to(dev), config).cpu().numpy()
