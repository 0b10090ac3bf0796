"""Sound: wavetable additive synthesis, drum one-shots, a room and a filter, all vectorised numpy.

Instruments differ by harmonic profile (a one-cycle wavetable), envelope, vibrato and breath
noise; an artist bends each profile (timbre), and puts the whole mix through its own room and
filter, which is the production signature every track of the artist shares. Signals here are
circular: the section they render loops, so reverb tails and drum decays wrap to its start.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.fft import irfft, rfft, rfftfreq

from mixtape.world.vocab import InstrumentSpec

TABLE_SIZE = 4096  # power of two: the phase-to-index wrap is a bit mask
NYQUIST_MARGIN = 0.45  # harmonics stay below 0.45 * sr, so nothing aliases

# Vowel formants (F1, F2, F3 in Hz) for the singing voice; each note picks a vowel.
VOWELS = np.array(
    [[800, 1200, 2500], [400, 2000, 2600], [300, 2300, 3000], [450, 800, 2500], [325, 700, 2500]], dtype=np.float64
)


_NOISE = np.random.default_rng(20230604).standard_normal(1 << 16).astype(np.float32)


def noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """White noise from a fixed table at a random offset: drawing fresh Gaussians costs more than the synthesis."""
    start = int(rng.integers(0, len(_NOISE)))
    return np.resize(np.concatenate([_NOISE[start:], _NOISE[:start]]), length)


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _formant_gain(freqs: np.ndarray, formants: np.ndarray, width: float) -> np.ndarray:
    """Sum of resonance bumps at the formants: what turns a buzz into a vowel or a reed."""
    f = freqs[..., None]
    return 0.08 + np.sum(1.0 / (1.0 + ((f - formants) / width) ** 2), axis=-1)


def harmonic_amplitudes(spec: InstrumentSpec, n_harm: int, tilt_offset: float, f0: float) -> np.ndarray:
    """(variants, n_harm) amplitudes: the instrument's spectral shape, bent by the artist and the mood."""
    h = np.arange(1, n_harm + 1, dtype=np.float64)
    amps = h ** -(spec.tilt + tilt_offset)
    amps[1::2] /= spec.odd_boost  # even harmonics weaker for square-ish or reedy tones
    if spec.name == "acousticguitar":
        amps *= 0.15 + np.abs(np.sin(np.pi * h * 0.18))  # plucked near the bridge: comb-filtered spectrum
    if spec.name == "piano":
        amps *= 1.0 + 0.5 * np.cos(np.pi * h * 0.125)  # hammer position
    if spec.name == "saxophone":
        amps *= _formant_gain(h * f0, np.array([[600.0, 1500.0]]), 400.0)[0]
    if spec.name == "voice":
        return amps[None, :] * _formant_gain((h * f0)[None, :], VOWELS[:, None, :], 120.0)
    return amps[None, :]


_MAX_HARMONICS = 32
_SINES = np.sin(2 * np.pi * np.arange(1, _MAX_HARMONICS + 1)[:, None] * (np.arange(TABLE_SIZE) / TABLE_SIZE)[None, :])


def wavetables(amps: np.ndarray) -> np.ndarray:
    """One cycle of each variant's waveform, peak-normalised, float32 (variants x TABLE_SIZE)."""
    tables = amps @ _SINES[: amps.shape[1]]
    return (tables / np.abs(tables).max(axis=1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=256)
def _tables(spec: InstrumentSpec, n_harm: int, tilt: float, midi: int) -> np.ndarray:
    """Wavetables for a quantised (tilt, register): an artist's tracks reuse them, and nobody hears the rounding."""
    return wavetables(harmonic_amplitudes(spec, n_harm, tilt, float(midi_to_hz(midi))))


def render_line(
    onset: np.ndarray,
    midi: np.ndarray,
    vel: np.ndarray,
    gate: np.ndarray,
    length: int,
    sr: int,
    *,
    spec: InstrumentSpec,
    tilt_offset: float,
    attack_mult: float,
    vibrato_mult: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Synthesise one monophonic line over ``length`` samples; each note owns the samples up to the next onset.

    Every quantity is built per sample with ``np.repeat`` over notes, the phase is frequency x time
    since onset and the waveform one table lookup: a few float32 array passes whatever the note count.
    """
    out = np.zeros(length, dtype=np.float32)
    if len(onset) == 0:
        return out
    if onset[0] > 0:  # a silent note covers the lead-in
        onset, midi, vel, gate = np.r_[0, onset], np.r_[midi[0], midi], np.r_[0.0, vel], np.r_[1, gate]
    slot = np.diff(np.append(onset, length))
    hz = midi_to_hz(midi)
    n_harm = int(max(1, min(spec.harmonics, NYQUIST_MARGIN * sr // hz.max())))
    tables = _tables(spec, n_harm, round(tilt_offset * 40) / 40, round(float(np.median(midi))))

    t = np.arange(length, dtype=np.float32) - np.repeat(onset, slot).astype(np.float32)  # samples since onset
    # Phase restarts at each onset (the envelope is zero there), so it is f * t per note: no running sum.
    cycles_per_sample = np.repeat((hz / sr).astype(np.float32), slot)
    phase = cycles_per_sample * t
    if spec.vibrato_cents > 0:  # vibrato as phase modulation: the integral of f * depth * sin(w t), fading in
        depth = np.float32(2.0 ** (spec.vibrato_cents * vibrato_mult / 1200.0) - 1.0)
        w = np.float32(2 * np.pi * spec.vibrato_hz / sr)
        fade_in = np.minimum(t * np.float32(1.0 / (0.3 * sr)), np.float32(1.0))
        phase += cycles_per_sample * (depth / w) * (1.0 - np.cos(w * t)) * fade_in
    index = (phase * np.float32(TABLE_SIZE)).astype(np.int32) & (TABLE_SIZE - 1)
    if len(tables) > 1:  # vowels: one table per note
        variant = np.repeat(rng.integers(0, len(tables), len(slot)), slot)
        wave = tables.ravel()[variant * TABLE_SIZE + index]
    else:
        wave = tables[0][index]
    if spec.breath > 0:
        wave = wave + spec.breath * noise(rng, length)

    attack = spec.attack * attack_mult * sr
    gate_t = np.repeat(gate, slot).astype(np.float32)
    env = np.minimum(t * np.float32(1.0 / attack), 1.0)
    env *= spec.sustain + (1.0 - spec.sustain) * np.exp(t * np.float32(-1.0 / (spec.decay * sr)))
    env *= np.exp(np.maximum(t - gate_t, 0.0) * np.float32(-1.0 / (spec.release * sr)))
    ramp = 0.004 * sr  # every note ends at zero exactly when the next begins: no clicks
    env *= np.clip((np.repeat(slot, slot).astype(np.float32) - t) * np.float32(1.0 / ramp), 0.0, 1.0)
    env *= np.repeat(vel.astype(np.float32), slot)
    out[:] = wave * env
    return out


def drive(signal: np.ndarray, gain: float) -> np.ndarray:
    """Soft saturation (distorted guitar, driven synth)."""
    return (np.tanh(signal * gain) / np.tanh(gain)).astype(np.float32)


def _lowpass_noise(rng: np.random.Generator, n: int, cutoff: float, sr: int, highpass: bool = False) -> np.ndarray:
    spec = rfft(rng.standard_normal(n))
    f = rfftfreq(n, 1.0 / sr)
    with np.errstate(divide="ignore"):
        h = (
            1.0 / np.sqrt(1.0 + (cutoff / np.maximum(f, 1e-9)) ** 4)
            if highpass
            else 1.0 / np.sqrt(1.0 + (f / cutoff) ** 4)
        )
    x = irfft(spec * h, n)
    return x / (np.abs(x).max() + 1e-12)


def drum_kit(
    rng: np.random.Generator, kick_hz: float, snare_hz: float, hat_hz: float, decay: float, sr: int
) -> dict[str, np.ndarray]:
    """One-shot samples of an artist's kit: pitched bursts (kick, snare body) and filtered noise (cymbals)."""

    def t_of(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * decay * sr)) / sr

    t = t_of(0.45)
    sweep = kick_hz + 3.0 * kick_hz * np.exp(-t / 0.025)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / (0.16 * decay))
    t = t_of(0.3)
    snare = 0.55 * _lowpass_noise(rng, len(t), 7000, sr) * np.exp(-t / (0.07 * decay)) + 0.5 * np.sin(
        2 * np.pi * snare_hz * t
    ) * np.exp(-t / 0.05)
    t = t_of(0.1)
    hat = _lowpass_noise(rng, len(t), hat_hz, sr, highpass=True) * np.exp(-t / 0.02)
    t = t_of(0.4)
    open_hat = _lowpass_noise(rng, len(t), hat_hz * 0.8, sr, highpass=True) * np.exp(-t / 0.12)
    t = t_of(0.9)
    partials = np.array([1.0, 1.48, 2.13, 2.77, 3.51]) * (hat_hz / 9.0)
    ride = 0.3 * np.sin(2 * np.pi * partials[:, None] * t[None, :]).sum(axis=0) / len(partials)
    ride = (ride + 0.4 * _lowpass_noise(rng, len(t), hat_hz * 0.7, sr, highpass=True)) * np.exp(-t / 0.35)
    t = t_of(1.4)
    crash = _lowpass_noise(rng, len(t), 3500, sr, highpass=True) * np.exp(-t / 0.6)
    t = t_of(0.12)
    shaker = _lowpass_noise(rng, len(t), 5000, sr, highpass=True) * np.sin(np.pi * t / t[-1]) ** 2
    kit = {
        "kick": kick,
        "snare": snare,
        "hat": 0.5 * hat,
        "open": 0.45 * open_hat,
        "ride": ride,
        "crash": 0.6 * crash,
        "shaker": 0.4 * shaker,
    }
    return {k: v.astype(np.float32) for k, v in kit.items()}


def place_hits(length: int, onset: np.ndarray, vel: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Sum copies of a one-shot at the onsets, wrapping around the section end (it loops)."""
    pos = (onset[:, None] + np.arange(len(sample))[None, :]) % length
    return np.bincount(pos.ravel(), weights=(vel[:, None] * sample[None, :]).ravel(), minlength=length).astype(
        np.float32
    )


def room_response(rng: np.random.Generator, rt60: float, sr: int, max_len: int) -> np.ndarray:
    """A diffuse room: exponentially decaying noise (60 dB down at rt60), a few early reflections."""
    n = int(min(rt60 * sr, max_len))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    early = rng.integers(int(0.005 * sr), max(int(0.005 * sr) + 1, min(n, int(0.06 * sr))), 6)
    ir[early] += rng.uniform(0.5, 1.5, 6) * 4.0
    return ir / np.sqrt(np.sum(ir**2))


def master(mix: np.ndarray, ir: np.ndarray, wet: float, lowpass_hz: float, highpass_hz: float, sr: int) -> np.ndarray:
    """Room (circular convolution: the section loops) and the artist's band-limiting, in one FFT pass."""
    n = len(mix)
    f = rfftfreq(n, 1.0 / sr)
    room = rfft(ir, n)
    with np.errstate(divide="ignore"):
        band = 1.0 / np.sqrt(1.0 + (f / lowpass_hz) ** 4) / np.sqrt(1.0 + (highpass_hz / np.maximum(f, 1e-9)) ** 4)
    return irfft(rfft(mix) * ((1.0 - wet) + wet * room) * band, n).astype(np.float32)
