"""Composition: turn a track's latent attributes into note and drum events for one looping section.

A track is a 4-bar section (chords, melody, bass line, accompaniment, drums) that loops for the
track's duration, as much popular music does; only the section is synthesised, which keeps
rendering cheap at every world size. Everything here works on whole arrays of steps or notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len

from mixtape.world.vocab import BASS, DRUMS, GENRE_SPECS, INSTRUMENT_SPECS, MOOD_SPECS

STEPS_PER_BAR = 16
BARS = 4
STEPS = STEPS_PER_BAR * BARS

MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])

# Chord roots as scale degrees, one chord per bar.
PROGRESSIONS = {
    True: ((0, 4, 5, 3), (0, 3, 4, 4), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 0, 4)),
    False: ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 3, 6, 2), (0, 5, 3, 4)),
}

# Onset probability of each 16th of a bar for a melody: strong beats first.
_METRIC = np.array([0.95, 0.10, 0.35, 0.10, 0.70, 0.10, 0.35, 0.12, 0.85, 0.10, 0.35, 0.10, 0.70, 0.12, 0.40, 0.15])

# Drum patterns: per kind, the onset probability of each 16th of a bar.
_DRUM_PATTERNS: dict[str, dict[str, dict[int, float]]] = {
    "rock": {
        "kick": {0: 1, 8: 1, 10: 0.3, 6: 0.15},
        "snare": {4: 1, 12: 1, 15: 0.1},
        "hat": {s: 0.95 for s in range(0, 16, 2)},
    },
    "metal": {"kick": {s: 0.85 for s in range(16)}, "snare": {4: 1, 12: 1}, "ride": {0: 0.8, 4: 0.8, 8: 0.8, 12: 0.8}},
    "four_floor": {
        "kick": {0: 1, 4: 1, 8: 1, 12: 1},
        "snare": {4: 0.9, 12: 0.9},
        "open": {2: 0.9, 6: 0.9, 10: 0.9, 14: 0.9},
        "hat": {s: 0.5 for s in range(16)},
    },
    "boom_bap": {
        "kick": {0: 1, 3: 0.2, 7: 0.4, 10: 0.8},
        "snare": {4: 1, 12: 1},
        "hat": {s: 0.9 for s in range(0, 16, 2)},
    },
    "swing": {
        "ride": {0: 1, 4: 1, 6: 0.9, 8: 1, 12: 1, 14: 0.9},
        "hat": {4: 0.9, 12: 0.9},
        "kick": {0: 0.3, 8: 0.2},
        "snare": {s: 0.08 for s in range(16)},
    },
    "folk": {"shaker": {s: 0.9 for s in range(0, 16, 2)}, "kick": {0: 0.8, 8: 0.6}, "snare": {4: 0.7, 12: 0.7}},
    "sparse": {"kick": {0: 0.7}, "hat": {8: 0.4}, "shaker": {4: 0.3, 12: 0.3}},
}
_DRUM_PATTERNS["none"] = _DRUM_PATTERNS["sparse"]  # a classical track that still has drums plays softly

# Bass patterns: steps of a bar and the chord tone (0 root, 1 third, 2 fifth, 7 octave) each plays.
_BASS_PATTERNS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "eighths": (tuple(range(0, 16, 2)), (0, 0, 0, 7, 0, 0, 0, 2)),
    "sixteenths": (tuple(range(16)), (0,) * 16),
    "offbeat": ((2, 6, 10, 14), (0, 0, 7, 0)),
    "syncopated": ((0, 3, 7, 10), (0, 0, 2, 0)),
    "walking": ((0, 4, 8, 12), (0, 1, 2, -1)),  # -1: approach tone to the next chord
    "root_fifth": ((0, 8), (0, 2)),
    "half_notes": ((0, 8), (0, 0)),
    "whole_notes": ((0,), (0,)),
}

# Accompaniment rhythm (steps of a bar) per harmony style.
_COMP_STEPS = {
    "pad": (0,),
    "strum": (0, 4, 6, 10, 12, 14),
    "power": tuple(range(0, 16, 2)),
    "arp": tuple(range(0, 16, 2)),
}
_STAB_STEPS = {"jazz": (0, 6, 10, 14), "hiphop": (0, 10), "electronic": (2, 6, 10, 14)}


@dataclass(frozen=True)
class Line:
    """One monophonic voice: each note sounds from its onset until the next one (its slot)."""

    instrument: int
    role: str  # "lead", "counter", "harmony" or "bass"
    onset: np.ndarray  # int64 samples, strictly increasing, inside [0, length)
    midi: np.ndarray  # float64 MIDI pitch
    vel: np.ndarray  # float32 0..1, 0 is a rest
    gate: np.ndarray  # int64 samples the note is held before its release


@dataclass(frozen=True)
class DrumHits:
    kind: str  # kick, snare, hat, open, ride, crash, shaker
    onset: np.ndarray  # int64 samples
    vel: np.ndarray  # float32


@dataclass(frozen=True)
class Score:
    length: int  # samples in the section; the rendered section loops seamlessly at this length
    lines: list[Line]
    drums: list[DrumHits]


@dataclass(frozen=True)
class Grid:
    """Where the 16th-note steps of the section fall, in samples (swing and timing looseness included)."""

    step_len: float
    swing: float
    length: int

    def onsets(self, steps: np.ndarray, rng: np.random.Generator, jitter_s: float, sr: int) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        swung = steps + np.where(steps % 4 == 2, 4 * self.swing - 2, 0.0)
        jitter = rng.normal(0.0, jitter_s * sr, steps.shape) if jitter_s > 0 else 0.0
        # Events past the end of a shortened section are dropped by the callers, not piled up at the end.
        return np.maximum(np.round(swung * self.step_len + jitter), 0).astype(np.int64)


def semitones(degree: np.ndarray, major: bool) -> np.ndarray:
    """Scale degree (any integer, 7 per octave) to semitones above the tonic."""
    degree = np.asarray(degree)
    scale = MAJOR_SCALE if major else MINOR_SCALE
    return scale[degree % 7] + 12 * (degree // 7)


def fold_into(midi: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Move pitches by octaves into an instrument's register (keeps pitch class)."""
    midi = np.where(midi > hi, midi - 12 * np.ceil((midi - hi) / 12), midi)
    return np.where(midi < lo, midi + 12 * np.ceil((lo - midi) / 12), midi)


def _octave_base(key: int, centre: float) -> int:
    """MIDI of the tonic nearest below the register centre, so degree 0..7 sits around it."""
    return int(key + 12 * np.round((centre - key - 5) / 12))


def _line(
    instrument: int,
    role: str,
    onset: np.ndarray,
    midi: np.ndarray,
    vel: np.ndarray,
    legato: float,
    length: int,
    sr: int,
) -> Line:
    inside = onset < length
    onset, midi, vel = onset[inside], midi[inside], vel[inside]
    order = np.argsort(onset, kind="stable")
    onset, midi, vel = onset[order], midi[order], vel[order]
    keep = np.ones(len(onset), dtype=bool)
    keep[1:] = np.diff(onset) > 0
    onset, midi, vel = onset[keep], midi[keep], vel[keep]
    slot = np.diff(np.append(onset, length))
    gate = np.maximum(np.round(slot * legato), int(0.03 * sr)).astype(np.int64)
    return Line(instrument, role, onset, midi.astype(np.float64), vel.astype(np.float32), gate)


def _velocity(rng: np.random.Generator, steps: np.ndarray, energy: float, spread: float) -> np.ndarray:
    accent = np.where(steps % 16 == 0, 1.0, np.where(steps % 4 == 0, 0.9, 0.78))
    return np.clip((0.5 + 0.5 * energy) * accent * rng.lognormal(0.0, spread, len(steps)), 0.05, 1.0)


def _rhythm(rng: np.random.Generator, density: float) -> np.ndarray:
    """Melody onset steps over the section; bar 3 repeats bar 1's rhythm (a motif), step 0 always sounds."""
    p = np.clip(_METRIC * density, 0.0, 0.98)
    bars = rng.random((BARS, STEPS_PER_BAR)) < p
    bars[2] = bars[0]
    bars[0, 0] = True
    return np.flatnonzero(bars.ravel())


def _chord_tones(root: np.ndarray, seventh: bool) -> np.ndarray:
    """(n, 3) chord-tone degrees; sevenths are voiced rootless (3rd, 5th, 7th) as jazz pianists do."""
    offsets = np.array([2, 4, 6]) if seventh else np.array([0, 2, 4])
    return np.asarray(root)[:, None] + offsets[None, :]


def _melody(
    rng: np.random.Generator,
    grid: Grid,
    roots: np.ndarray,
    key: int,
    major: bool,
    lo: int,
    hi: int,
    centre: float,
    density: float,
    energy: float,
    spread: float,
    sr: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tune: a motif-repeating rhythm, a stepwise walk over the scale that lands on chord tones on strong beats."""
    steps = _rhythm(rng, density)
    walk = np.cumsum(rng.choice([-3, -2, -1, 0, 1, 2, 3], size=len(steps), p=[0.05, 0.15, 0.25, 0.1, 0.25, 0.15, 0.05]))
    degree = np.clip(roots[0] + walk, -3, 10)
    # On the first and third beat, land on a tone of the bar's chord.
    strong = steps % 8 == 0
    bar_root = roots[steps // STEPS_PER_BAR]
    cands = (bar_root[:, None] + np.array([0, 2, 4])[None, :])[:, :, None] + 7 * np.arange(-1, 3)[None, None, :]
    cands = cands.reshape(len(steps), -1)
    nearest = cands[np.arange(len(steps)), np.abs(cands - degree[:, None]).argmin(axis=1)]
    degree = np.where(strong, nearest, degree)
    midi = fold_into(_octave_base(key, centre) + semitones(degree, major), lo, hi)
    vel = _velocity(rng, steps, energy, spread)
    vel[1:][rng.random(len(steps) - 1) < 0.12] = 0.0  # rests
    return grid.onsets(steps, rng, 0.004, sr), midi, vel


def _bass(
    rng: np.random.Generator,
    grid: Grid,
    roots: np.ndarray,
    key: int,
    major: bool,
    pattern: str,
    energy: float,
    spread: float,
    sr: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The genre's bass figure on the chord roots (walking lines approach the next chord)."""
    pattern_steps, pattern_tones = _BASS_PATTERNS[pattern]
    bar_steps, tones = np.array(pattern_steps), np.array(pattern_tones)
    bar = np.repeat(np.arange(BARS), len(bar_steps))
    steps = bar * STEPS_PER_BAR + np.tile(bar_steps, BARS)
    tone = np.tile(tones, BARS)
    root = roots[bar]
    next_root = roots[(bar + 1) % BARS]
    chord_step = np.where(tone == 1, 2, np.where(tone == 2, 4, 0))
    degree = np.where(tone == -1, next_root + rng.choice([-1, 1], len(steps)), root + chord_step)
    midi = _octave_base(key, 38) + semitones(degree, major) + np.where(tone == 7, 12, 0)
    keep = rng.random(len(steps)) < (0.75 if pattern == "sixteenths" else 0.95)
    keep[0] = True
    midi = fold_into(midi, 28, 52)
    return grid.onsets(steps[keep], rng, 0.003, sr), midi[keep], _velocity(rng, steps[keep], energy, spread)


def _accompaniment(
    rng: np.random.Generator,
    grid: Grid,
    roots: np.ndarray,
    key: int,
    major: bool,
    style: str,
    genre: str,
    inst: int,
    seventh: bool,
    energy: float,
    spread: float,
    sr: int,
    length: int,
) -> list[Line]:
    """The chords, as one line per chord voice (pads, stabs, strums, power chords) or one arpeggio line."""
    lo, hi = INSTRUMENT_SPECS[inst].register
    base = _octave_base(key, (lo + hi) / 2 - 4)
    if style == "stabs":
        bar_steps = np.array(_STAB_STEPS.get(genre, (0, 4, 8, 12)))
    else:
        bar_steps = np.array(_COMP_STEPS[style])
    bar = np.repeat(np.arange(BARS), len(bar_steps))
    steps = bar * STEPS_PER_BAR + np.tile(bar_steps, BARS)
    vel = _velocity(rng, steps, energy, spread) * 0.8
    onset = grid.onsets(steps, rng, 0.003, sr)
    tones = _chord_tones(roots[bar], seventh)
    if style == "arp":
        which = np.tile(np.arange(len(bar_steps)) % 3, BARS)
        midi = fold_into(base + semitones(tones[np.arange(len(steps)), which], major), lo, hi)
        return [_line(inst, "harmony", onset, midi, vel, 0.9, length, sr)]
    if style == "power":
        midi = base - 12 + semitones(roots[bar], major)
        voices = [midi, midi + 7]
        legato = 0.45 if rng.random() < 0.5 else 0.85
    else:
        voices = [base + semitones(tones[:, j], major) for j in range(3)]
        legato = {"pad": 0.97, "stabs": 0.35, "strum": 0.9}[style]
    strum = int(0.012 * sr) if style == "strum" else 0
    return [
        _line(inst, "harmony", onset + j * strum, fold_into(m, lo - 12, hi), vel, legato, length, sr)
        for j, m in enumerate(voices)
    ]


def _harmony_style(inst: int, genre: str) -> str:
    """How an instrument accompanies in a genre (a classical pianist arpeggiates, a jazz one comps)."""
    name = INSTRUMENT_SPECS[inst].name
    style = INSTRUMENT_SPECS[inst].harmony
    if name in ("piano", "acousticguitar") and genre == "classical":
        return "arp"
    if name == "piano" and genre in ("ambient", "folk"):
        return "arp" if genre == "folk" else "pad"
    if name == "electricguitar" and genre not in ("rock", "metal"):
        return "strum"
    if name == "synthesizer" and genre == "electronic":
        return "stabs"
    return style


def _drums(rng: np.random.Generator, grid: Grid, pattern: str, energy: float, spread: float, sr: int) -> list[DrumHits]:
    """The genre's groove, busier cymbals when energetic, the groove repeated, sometimes a closing fill."""
    hits = []
    for kind, probs in _DRUM_PATTERNS[pattern].items():
        bar_p = np.zeros(STEPS_PER_BAR)
        bar_p[list(probs)] = list(probs.values())
        if kind in ("hat", "shaker", "ride"):
            bar_p = np.clip(bar_p * (0.7 + 0.6 * energy), 0, 1)
        on = rng.random((BARS, STEPS_PER_BAR)) < bar_p
        on[2] = on[0]  # the groove repeats
        if kind == "snare" and rng.random() < 0.4:  # a fill closes the section
            on[3, 12:] = True
        steps = np.flatnonzero(on.ravel())
        onset, vel = grid.onsets(steps, rng, 0.003, sr), _velocity(rng, steps, energy, spread).astype(np.float32)
        inside = onset < grid.length
        if inside.any():
            hits.append(DrumHits(kind, onset[inside], vel[inside]))
    if pattern in ("rock", "metal", "four_floor") and rng.random() < 0.6:
        hits.append(DrumHits("crash", np.array([0], dtype=np.int64), np.array([0.8], dtype=np.float32)))
    return hits


def section_length(tempo: float, n_samples: int, sr: int) -> int:
    """Samples in one 4-bar section, rounded to an FFT-friendly length; no longer than needed for the track."""
    return int(min(next_fast_len(int(round(STEPS * 60.0 / tempo / 4 * sr))), next_fast_len(n_samples)))


def compose(
    rng: np.random.Generator,
    *,
    genre: int,
    moods: tuple[int, ...],
    instruments: tuple[int, ...],
    tempo: float,
    key: int,
    major: bool,
    energy: float,
    n_samples: int,
    sr: int,
) -> Score:
    """The section's events. Roles: the most lead-like melodic instrument sings, chord instruments accompany."""
    gspec = GENRE_SPECS[genre]
    mspecs = [MOOD_SPECS[m] for m in moods]
    density = float(np.mean([m.density for m in mspecs])) * (0.8 + 0.4 * energy)
    register = float(np.mean([m.register for m in mspecs]))
    legato = float(np.mean([m.legato for m in mspecs]))
    spread = 0.05 + 0.15 * energy  # dynamics: energetic playing is more accented

    natural = STEPS * 60.0 / tempo / 4 * sr
    length = section_length(tempo, n_samples, sr)
    full = next_fast_len(int(round(natural)))
    grid = Grid(step_len=full / STEPS, swing=gspec.swing, length=length)

    roots = np.array(PROGRESSIONS[bool(major)][int(rng.integers(0, 5))])
    seventh = gspec.chords == "seventh"

    melodic = [i for i in instruments if i not in (DRUMS, BASS)]
    lead_score = np.array([INSTRUMENT_SPECS[i].lead for i in melodic]) * rng.uniform(0.6, 1.4, len(melodic))
    lead = melodic[int(lead_score.argmax())]
    lines: list[Line] = []

    lo, hi = INSTRUMENT_SPECS[lead].register
    centre = float(np.clip((lo + hi) / 2 + register, lo + 5, hi - 5))
    onset, midi, vel = _melody(rng, grid, roots, key, major, lo, hi, centre, density, energy, spread, sr)
    lines.append(_line(lead, "lead", onset, midi, vel, legato, length, sr))

    others = [i for i in melodic if i != lead]
    chordal = [i for i in others if INSTRUMENT_SPECS[i].harmony]
    if not chordal and INSTRUMENT_SPECS[lead].harmony:
        chordal = [lead]  # a lone pianist or guitarist plays chords under the tune
    for inst in chordal:
        style = _harmony_style(inst, gspec.name)
        lines.extend(
            _accompaniment(rng, grid, roots, key, major, style, gspec.name, inst, seventh, energy, spread, sr, length)
        )
    for inst in others:
        if inst in chordal:
            continue
        lo, hi = INSTRUMENT_SPECS[inst].register
        onset, midi, vel = _melody(
            rng, grid, roots, key, major, lo, hi, (lo + hi) / 2, density * 0.6, energy, spread, sr
        )
        lines.append(_line(inst, "counter", onset, midi, vel, legato, length, sr))
    if BASS in instruments:
        onset, midi, vel = _bass(rng, grid, roots, key, major, gspec.bass_pattern, energy, spread, sr)
        lines.append(_line(BASS, "bass", onset, midi, vel, min(legato + 0.1, 0.95), length, sr))
    drums = _drums(rng, grid, gspec.drum_pattern, energy, spread, sr) if DRUMS in instruments else []
    return Score(length=length, lines=lines, drums=drums)
