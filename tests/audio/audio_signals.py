"""Generated signals and audio files for the audio tests (real audio comes through conftest.shared_data).

Imported as ``audio.audio_signals`` (pytest puts tests/ on the path); not a conftest, so the one
top-level ``conftest`` module that test folders import ``shared_data`` from stays unambiguous.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(
    freq: float, seconds: float, sample_rate: int = 16000, amplitude: float = 0.3, channels: int = 1
) -> np.ndarray:
    """A sine, with a different phase per channel so a downmix is not a copy of one channel."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    cols = [amplitude * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32) if channels > 1 else cols[0].astype(np.float32)


def noise(seconds: float, sample_rate: int = 16000, seed: int = 0, amplitude: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(round(seconds * sample_rate))) * amplitude).astype(
        np.float32
    )


def peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[spectrum.argmax()])


def write_audio(path: Path, samples: np.ndarray, sample_rate: int = 16000, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sample_rate, **kwargs)
    return path
