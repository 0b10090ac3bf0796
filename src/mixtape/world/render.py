"""Render one track to a 16-bit WAV: compose its section, synthesise, mix, master, loop, normalise.

A track's audio depends only on its ``TrackSpec`` (latent attributes, the artist's sound, its seeds),
so worker processes render in any order and any number and still write byte-identical files.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtape.fileio import atomic_write_bytes
from mixtape.world.latent import ARTIST_SOUND_KEY, RENDER_KEY, Catalogue, item_seed
from mixtape.world.score import compose
from mixtape.world.sizes import SAMPLE_RATE
from mixtape.world.synthesis import drive, drum_kit, master, noise, place_hits, render_line, room_response
from mixtape.world.vocab import GENRE_SPECS, GENRES, INSTRUMENT_SPECS, INSTRUMENTS, MOOD_SPECS

WAV_HEADER_BYTES = 44
_ROLE_GAIN = {"lead": 1.0, "counter": 0.55, "harmony": 0.32, "bass": 0.75}
_DRUM_GAIN = {"kick": 1.0, "snare": 0.7, "hat": 0.35, "open": 0.3, "ride": 0.25, "crash": 0.3, "shaker": 0.3}
_GUITAR = INSTRUMENTS.index("electricguitar")
_DRIVEN = {_GUITAR: 0.25, INSTRUMENTS.index("synthesizer"): 0.3}


@dataclass(frozen=True)
class TrackSpec:
    """Everything needed to render one track; small and picklable (sent to worker processes)."""

    index: int
    path: str  # absolute path of the WAV to write
    seed: int
    n_samples: int
    genre: int
    moods: tuple[int, ...]
    instruments: tuple[int, ...]
    tempo: float
    key: int
    major: bool
    energy: float
    brightness: float
    artist: int
    timbre: tuple[float, ...]  # per-instrument harmonic-tilt offset of the artist
    vibrato: float
    attack: float
    reverb_time: float
    reverb_wet: float
    lowpass_hz: float
    highpass_hz: float
    noise_db: float
    drive: float
    kit: tuple[float, float, float, float]


def track_specs(cat: Catalogue, root: Path) -> list[TrackSpec]:
    """One spec per track, the artist's and album's production folded in."""
    a, b, t = cat.artists, cat.albums, cat.tracks
    specs = []
    for i in range(len(t)):
        ar, al = int(t.artist[i]), int(t.album[i])
        specs.append(
            TrackSpec(
                index=i,
                path=str(root / cat.track_path(i)),
                seed=cat.seed,
                n_samples=int(round(float(t.duration[i]) * 10)) * (SAMPLE_RATE // 10),
                genre=int(t.genre[i]),
                moods=tuple(int(m) for m in np.flatnonzero(t.moods[i])),
                instruments=tuple(int(k) for k in np.flatnonzero(t.instruments[i])),
                tempo=float(t.tempo[i]),
                key=int(t.key[i]),
                major=bool(t.major[i]),
                energy=float(t.energy[i]),
                brightness=float(t.brightness[i]),
                artist=ar,
                timbre=tuple(float(x) for x in a.timbre[ar]),
                vibrato=float(a.vibrato[ar]),
                attack=float(a.attack[ar]),
                reverb_time=float(a.reverb_time[ar] * b.reverb_mult[al]),
                reverb_wet=float(np.clip(a.reverb_wet[ar], 0.0, 0.9)),
                lowpass_hz=float(a.lowpass_hz[ar] * b.lowpass_mult[al] * 2.0 ** (0.8 * t.brightness[i])),
                highpass_hz=float(a.highpass_hz[ar]),
                noise_db=float(a.noise_db[ar]),
                drive=float(a.drive[ar]),
                kit=tuple(float(x) for x in a.kit[ar]),  # type: ignore[arg-type]
            )
        )
    return specs


def _loudness_curve(spec: TrackSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Dynamics over the whole track: swells for calm/sad, a build for epic, small drifts otherwise."""
    shapes = {MOOD_SPECS[m].dynamics for m in spec.moods}
    knots = np.exp(rng.normal(0.0, 0.08, 6))  # six anchor levels, linear between them
    if "build" in shapes:
        knots *= np.linspace(0.45, 1.0, 6)
    elif "swell" in shapes:
        knots *= 0.75 + 0.25 * np.sin(np.linspace(0, np.pi, 6))
    edges = np.linspace(0, n, 6).astype(int)
    curve = np.concatenate(
        [np.linspace(knots[k], knots[k + 1], edges[k + 1] - edges[k], dtype=np.float32) for k in range(5)]
    )
    fade_in, fade_out = int(0.02 * SAMPLE_RATE), int(0.3 * SAMPLE_RATE)
    curve[:fade_in] *= np.linspace(0, 1, fade_in, dtype=np.float32)
    curve[-fade_out:] *= np.linspace(1, 0, fade_out, dtype=np.float32)
    return curve


@functools.lru_cache(maxsize=32)
def _artist_kit(seed: int, artist: int, kit: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    """The artist's drum kit, shared by all its tracks (cached: a worker renders an artist's tracks in a row)."""
    rng = np.random.default_rng(item_seed(seed, ARTIST_SOUND_KEY, artist).spawn(2)[0])
    return drum_kit(rng, *kit, sr=SAMPLE_RATE)


def render_samples(spec: TrackSpec) -> np.ndarray:
    """The track as int16 samples at SAMPLE_RATE (mono)."""
    sr = SAMPLE_RATE
    rng = np.random.default_rng(item_seed(spec.seed, RENDER_KEY, spec.index))
    score = compose(
        rng,
        genre=spec.genre,
        moods=spec.moods,
        instruments=spec.instruments,
        tempo=spec.tempo,
        key=spec.key,
        major=spec.major,
        energy=spec.energy,
        n_samples=spec.n_samples,
        sr=sr,
    )
    length = score.length
    mix = np.zeros(length, dtype=np.float32)
    bright_tilt = -0.35 * spec.brightness  # brighter moods keep more upper harmonics
    parts: dict[tuple[int, str], np.ndarray] = {}
    for line in score.lines:
        inst = INSTRUMENT_SPECS[line.instrument]
        audio = render_line(
            line.onset,
            line.midi,
            line.vel,
            line.gate,
            length,
            sr,
            spec=inst,
            tilt_offset=spec.timbre[line.instrument] + bright_tilt,
            attack_mult=spec.attack,
            vibrato_mult=spec.vibrato,
            rng=rng,
        )
        key = (line.instrument, line.role)
        parts[key] = parts[key] + audio if key in parts else audio
    heavy = GENRES[spec.genre] in ("rock", "metal")
    for (instrument, role), audio in parts.items():
        if instrument in _DRIVEN:  # guitars crunch in rock and metal; elsewhere drive is a light colour
            amount = 1.0 if heavy and instrument == _GUITAR else _DRIVEN[instrument]
            audio = drive(audio, 1.0 + (spec.drive - 1.0) * amount)
        level = GENRE_SPECS[spec.genre].bass_level if role == "bass" else 1.0
        mix += audio * np.float32(_ROLE_GAIN[role] * level * rng.lognormal(0.0, 0.2))
    if score.drums:
        kit = _artist_kit(spec.seed, spec.artist, spec.kit)
        drum_gain = np.float32(0.9 * GENRE_SPECS[spec.genre].drum_level * rng.lognormal(0.0, 0.2))
        for hits in score.drums:
            mix += drum_gain * _DRUM_GAIN[hits.kind] * place_hits(length, hits.onset, hits.vel, kit[hits.kind])
    mix += np.float32(10.0 ** (spec.noise_db / 20.0)) * noise(rng, length)
    room_rng = np.random.default_rng(item_seed(spec.seed, ARTIST_SOUND_KEY, spec.artist).spawn(2)[1])
    ir = room_response(room_rng, spec.reverb_time, sr, length)
    section = master(mix, ir, spec.reverb_wet, spec.lowpass_hz, spec.highpass_hz, sr)

    audio = np.resize(section, spec.n_samples) * _loudness_curve(spec, rng, spec.n_samples)
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) + 1e-9
    target = 10.0 ** ((-26.0 + 14.0 * spec.energy) / 20.0)  # louder when energetic: dynamics are audible
    audio *= np.float32(target / rms)
    peak = float(np.abs(audio).max())
    if peak > 0.97:  # never clip: scale down the whole track instead
        audio *= np.float32(0.97 / peak)
    return np.round(audio * 32767.0).astype("<i2")


def wav_bytes(samples: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    """A canonical 44-byte-header PCM WAV (mono, 16-bit): same samples, same bytes."""
    data = samples.astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data


def wav_is_complete(path: Path, n_samples: int) -> bool:
    """A WAV left by an earlier run is kept when its size is exactly right (writes are atomic)."""
    try:
        return path.stat().st_size == WAV_HEADER_BYTES + 2 * n_samples
    except FileNotFoundError:
        return False


def render_to_file(spec: TrackSpec) -> tuple[int, str | None]:
    """Worker entry point: render and write atomically; returns (index, error or None), never raises."""
    try:
        atomic_write_bytes(spec.path, wav_bytes(render_samples(spec)))
        return spec.index, None
    except Exception as err:  # one failed track must not lose the others' work; synth reports it
        return spec.index, f"{type(err).__name__}: {err}"
