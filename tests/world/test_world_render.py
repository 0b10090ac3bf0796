"""Rendering: correct pitch and envelopes, deterministic samples, canonical WAV bytes, no clipping."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixtape.world import SAMPLE_RATE, SIZES
from mixtape.world.latent import build_catalogue
from mixtape.world.render import render_samples, render_to_file, track_specs, wav_bytes, wav_is_complete
from mixtape.world.score import compose
from mixtape.world.synthesis import place_hits, render_line
from mixtape.world.vocab import DRUMS, GENRES, INSTRUMENT_SPECS, INSTRUMENTS

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("render")
    return track_specs(build_catalogue(SIZES["tiny"], seed=0), root)


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[spectrum.argmax()])


@pytest.mark.parametrize("name", [n for n in INSTRUMENTS if n != "drums"])
def test_each_instrument_sounds_its_notes_and_ends_them_silently(name: str) -> None:
    half = SR // 2
    y = render_line(
        np.array([0, half]),
        np.array([69.0, 57.0]),
        np.array([1.0, 0.5], dtype=np.float32),
        np.array([half - 3000, half - 3000]),
        SR,
        SR,
        spec=INSTRUMENT_SPECS[INSTRUMENTS.index(name)],
        tilt_offset=0.0,
        attack_mult=1.0,
        vibrato_mult=1.0,
        rng=np.random.default_rng(0),
    )
    assert y.dtype == np.float32 and y.shape == (SR,)
    assert abs(_peak_hz(y[:half]) - 440) < 6 and abs(_peak_hz(y[half:]) - 220) < 6
    assert abs(y[half - 1]) < 0.02 and abs(y[-1]) < 0.02  # each note fades out by its slot's end: no clicks
    assert np.abs(y[half:]).max() < np.abs(y[:half]).max()  # velocity 0.5 is softer


def test_harmonics_stay_below_nyquist() -> None:
    spec = INSTRUMENT_SPECS[INSTRUMENTS.index("synthesizer")]
    y = render_line(
        np.array([0]),
        np.array([100.0]),
        np.array([1.0], dtype=np.float32),
        np.array([SR]),
        SR,
        SR,
        spec=spec,
        tilt_offset=-0.5,
        attack_mult=1.0,
        vibrato_mult=0.0,
        rng=np.random.default_rng(0),
    )
    spectrum = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    assert spectrum[freqs > 0.46 * SR].max() < 1e-3 * spectrum.max()  # 2637 Hz fundamental: no aliased harmonics


def test_drum_hits_wrap_around_the_looping_section() -> None:
    out = place_hits(100, np.array([95]), np.array([1.0], dtype=np.float32), np.ones(10, dtype=np.float32))
    assert out[95:].sum() == 5 and out[:5].sum() == 5 and out[5:95].sum() == 0


def test_composition_gives_every_present_instrument_a_part(specs) -> None:
    for spec in specs[:40]:
        score = compose(
            np.random.default_rng(spec.index),
            genre=spec.genre,
            moods=spec.moods,
            instruments=spec.instruments,
            tempo=spec.tempo,
            key=spec.key,
            major=spec.major,
            energy=spec.energy,
            n_samples=spec.n_samples,
            sr=SR,
        )
        voiced = {line.instrument for line in score.lines} | ({DRUMS} if score.drums else set())
        assert voiced == set(spec.instruments)
        for line in score.lines:
            assert np.all(np.diff(line.onset) > 0) and line.onset[0] >= 0 and line.onset[-1] < score.length
            assert (line.vel > 0).any()


def test_rendering_is_deterministic_and_seed_dependent(specs) -> None:
    spec = specs[7]
    a, b = render_samples(spec), render_samples(spec)
    assert a.dtype == np.dtype("<i2") and a.shape == (spec.n_samples,)
    assert np.array_equal(a, b)
    other = render_samples(dataclasses.replace(spec, seed=1))
    assert not np.array_equal(a, other)


def test_tracks_are_loud_enough_and_never_clip(specs) -> None:
    for spec in specs[::12]:
        y = render_samples(spec).astype(np.float64) / 32768
        rms_db = 20 * np.log10(np.sqrt(np.mean(y**2)))
        assert -30 < rms_db < -10, (spec.index, GENRES[spec.genre], rms_db)
        assert np.abs(y).max() < 0.98


def test_wav_bytes_are_a_canonical_16bit_mono_wav(specs, tmp_path: Path) -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype="<i2")
    data = wav_bytes(samples)
    assert len(data) == 44 + 2 * len(samples)
    read, sr = sf.read(io.BytesIO(data), dtype="int16")
    assert sr == SR and np.array_equal(read, samples)
    spec = dataclasses.replace(specs[0], path=str(tmp_path / "a" / "t.wav"))
    assert not wav_is_complete(Path(spec.path), spec.n_samples)
    assert render_to_file(spec) == (spec.index, None)
    assert wav_is_complete(Path(spec.path), spec.n_samples)
    info = sf.info(spec.path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (SR, 1, "PCM_16", spec.n_samples)


def test_a_failing_track_is_reported_not_raised(specs, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    spec = dataclasses.replace(specs[0], path=str(blocker / "t.wav"))  # parent is a file: the write fails
    index, error = render_to_file(spec)
    assert index == spec.index and error is not None
