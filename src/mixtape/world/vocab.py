"""The world's vocabulary: genres, moods, instruments and listener activities, with what each implies.

These tables are the ground truth the rest of the world is drawn from. They are written so that
no single audio cue gives a label away: tempo ranges and instrumentations overlap across genres,
moods shift tempo, mode, brightness and dynamics by amounts smaller than an artist's own habits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GENRES: tuple[str, ...] = ("rock", "metal", "electronic", "hiphop", "jazz", "folk", "classical", "ambient")
MOODS: tuple[str, ...] = ("happy", "sad", "energetic", "calm", "dark", "epic")
INSTRUMENTS: tuple[str, ...] = (
    "piano",
    "acousticguitar",
    "electricguitar",
    "bass",
    "drums",
    "synthesizer",
    "strings",
    "voice",
    "flute",
    "saxophone",
)
ACTIVITIES: tuple[str, ...] = ("workout", "running", "party", "focus", "chill", "sleep", "dinner")

# MTG-Jamendo tag prefixes, one family per latent attribute.
TAG_PREFIX = {"genre": "genre---", "moodtheme": "mood/theme---", "instrument": "instrument---"}

DRUMS = INSTRUMENTS.index("drums")
BASS = INSTRUMENTS.index("bass")


@dataclass(frozen=True)
class GenreSpec:
    """What a genre implies for rhythm, harmony and instrumentation (probabilities, never certainties)."""

    name: str
    tempo: tuple[float, float]  # bpm range before mood shifts
    swing: float  # 0.5 = straight eighths, 0.66 = triplet swing
    drum_pattern: str
    bass_pattern: str
    chords: str  # "triad", "seventh" or "power"
    instrument_prob: tuple[float, ...]  # per INSTRUMENTS entry
    mood_affinity: tuple[float, ...]  # per MOODS entry, multiplies mood odds
    energy: float  # offset added to the mood energy
    n_instruments: tuple[int, int]  # inclusive range, drums included
    neighbours: tuple[str, ...]  # genres an artist of this genre may also play
    brightness: float  # production habit: offset of the artist's brightness (-1 dark .. 1 bright)
    reverb: float  # production habit: multiplier of the artist's room size
    lowpass_hz: float  # production habit: centre of the artists' band limit (lo-fi hip hop .. crisp electronic)
    drum_level: float  # mixing habit: drums up front (electronic, hip hop) or brushed and back (jazz)
    bass_level: float  # mixing habit: how loud the bass line sits


# Instrument probabilities follow INSTRUMENTS order:
#   piano, acousticguitar, electricguitar, bass, drums, synthesizer, strings, voice, flute, saxophone
# Mood affinities follow MOODS order: happy, sad, energetic, calm, dark, epic.
GENRE_SPECS: tuple[GenreSpec, ...] = (
    GenreSpec(
        "rock",
        tempo=(100, 150),
        swing=0.5,
        drum_pattern="rock",
        bass_pattern="eighths",
        chords="triad",
        instrument_prob=(0.3, 0.25, 0.9, 0.85, 0.95, 0.15, 0.1, 0.6, 0.02, 0.05),
        mood_affinity=(1.2, 0.9, 1.3, 0.6, 0.9, 1.0),
        energy=0.1,
        n_instruments=(3, 5),
        neighbours=("metal", "folk"),
        brightness=0.1,
        reverb=1.0,
        lowpass_hz=8000,
        drum_level=1.0,
        bass_level=1.0,
    ),
    GenreSpec(
        "metal",
        tempo=(130, 195),
        swing=0.5,
        drum_pattern="metal",
        bass_pattern="sixteenths",
        chords="power",
        instrument_prob=(0.05, 0.05, 1.0, 0.9, 1.0, 0.1, 0.15, 0.5, 0.01, 0.01),
        mood_affinity=(0.4, 0.8, 1.6, 0.2, 1.8, 1.5),
        energy=0.25,
        n_instruments=(3, 5),
        neighbours=("rock",),
        brightness=0.35,
        reverb=0.8,
        lowpass_hz=9000,
        drum_level=1.1,
        bass_level=0.9,
    ),
    GenreSpec(
        "electronic",
        tempo=(118, 138),
        swing=0.5,
        drum_pattern="four_floor",
        bass_pattern="offbeat",
        chords="triad",
        instrument_prob=(0.2, 0.02, 0.05, 0.8, 0.95, 1.0, 0.2, 0.3, 0.05, 0.05),
        mood_affinity=(1.3, 0.7, 1.5, 0.8, 1.0, 1.0),
        energy=0.1,
        n_instruments=(3, 5),
        neighbours=("ambient", "hiphop"),
        brightness=0.35,
        reverb=1.0,
        lowpass_hz=10000,
        drum_level=1.4,
        bass_level=1.3,
    ),
    GenreSpec(
        "hiphop",
        tempo=(80, 100),
        swing=0.6,
        drum_pattern="boom_bap",
        bass_pattern="syncopated",
        chords="seventh",
        instrument_prob=(0.5, 0.05, 0.1, 0.85, 0.95, 0.5, 0.2, 0.7, 0.1, 0.2),
        mood_affinity=(1.0, 1.0, 1.1, 0.9, 1.3, 0.7),
        energy=0.0,
        n_instruments=(3, 5),
        neighbours=("electronic", "jazz"),
        brightness=-0.4,
        reverb=0.6,
        lowpass_hz=4500,
        drum_level=1.5,
        bass_level=1.4,
    ),
    GenreSpec(
        "jazz",
        tempo=(90, 190),
        swing=0.64,
        drum_pattern="swing",
        bass_pattern="walking",
        chords="seventh",
        instrument_prob=(0.8, 0.15, 0.2, 0.85, 0.8, 0.05, 0.1, 0.3, 0.2, 0.7),
        mood_affinity=(1.1, 1.0, 0.9, 1.3, 0.7, 0.6),
        energy=0.0,
        n_instruments=(3, 5),
        neighbours=("hiphop", "classical"),
        brightness=-0.1,
        reverb=0.8,
        lowpass_hz=6000,
        drum_level=0.55,
        bass_level=0.9,
    ),
    GenreSpec(
        "folk",
        tempo=(85, 130),
        swing=0.5,
        drum_pattern="folk",
        bass_pattern="root_fifth",
        chords="triad",
        instrument_prob=(0.2, 0.9, 0.1, 0.4, 0.5, 0.02, 0.3, 0.6, 0.4, 0.05),
        mood_affinity=(1.2, 1.2, 0.8, 1.2, 0.6, 0.8),
        energy=-0.05,
        n_instruments=(2, 4),
        neighbours=("rock", "classical"),
        brightness=0.0,
        reverb=1.0,
        lowpass_hz=7000,
        drum_level=0.6,
        bass_level=0.8,
    ),
    GenreSpec(
        "classical",
        tempo=(60, 130),
        swing=0.5,
        drum_pattern="none",
        bass_pattern="half_notes",
        chords="triad",
        instrument_prob=(0.7, 0.1, 0.01, 0.02, 0.03, 0.02, 0.9, 0.1, 0.5, 0.02),
        mood_affinity=(0.9, 1.2, 0.8, 1.2, 0.9, 1.5),
        energy=-0.1,
        n_instruments=(2, 4),
        neighbours=("ambient", "jazz"),
        brightness=-0.1,
        reverb=1.6,
        lowpass_hz=7500,
        drum_level=0.4,
        bass_level=0.8,
    ),
    GenreSpec(
        "ambient",
        tempo=(60, 92),
        swing=0.5,
        drum_pattern="sparse",
        bass_pattern="whole_notes",
        chords="seventh",
        instrument_prob=(0.4, 0.1, 0.1, 0.2, 0.25, 0.8, 0.6, 0.1, 0.2, 0.01),
        mood_affinity=(0.8, 1.1, 0.4, 1.8, 1.1, 0.8),
        energy=-0.2,
        n_instruments=(2, 4),
        neighbours=("electronic", "classical"),
        brightness=-0.35,
        reverb=2.0,
        lowpass_hz=5000,
        drum_level=0.5,
        bass_level=1.0,
    ),
)


@dataclass(frozen=True)
class MoodSpec:
    """How a mood colours a track: mode, tempo, brightness, dynamics, note density, register."""

    name: str
    major_prob: float
    tempo_mult: float
    brightness: float  # -1 dark .. +1 bright
    energy: float  # 0..1
    density: float  # multiplies note onset probabilities
    register: int  # semitone shift of melodic parts
    legato: float  # fraction of a note's slot that is held
    dynamics: str  # loudness curve over the track: "flat", "swell" or "build"


MOOD_SPECS: tuple[MoodSpec, ...] = (
    MoodSpec("happy", 0.90, 1.06, 0.6, 0.65, 1.15, 5, 0.65, "flat"),
    MoodSpec("sad", 0.12, 0.84, -0.5, 0.25, 0.75, -2, 0.95, "swell"),
    MoodSpec("energetic", 0.55, 1.12, 0.4, 0.90, 1.35, 0, 0.55, "flat"),
    MoodSpec("calm", 0.70, 0.86, -0.3, 0.20, 0.65, 0, 0.98, "swell"),
    MoodSpec("dark", 0.10, 0.95, -0.8, 0.50, 0.90, -7, 0.80, "flat"),
    MoodSpec("epic", 0.30, 1.00, 0.2, 0.75, 1.05, -3, 0.85, "build"),
)

# Moods a track never carries together (a second mood is drawn among the compatible ones).
MOOD_CLASHES: frozenset[frozenset[str]] = frozenset(
    frozenset(p)
    for p in (("happy", "sad"), ("happy", "dark"), ("energetic", "calm"), ("calm", "epic"), ("sad", "energetic"))
)


def mood_compatibility() -> np.ndarray:
    """Boolean (mood x mood) matrix: True where two different moods may co-occur on a track."""
    m = len(MOODS)
    ok = np.ones((m, m), dtype=bool)
    np.fill_diagonal(ok, False)
    for pair in MOOD_CLASHES:
        a, b = (MOODS.index(x) for x in pair)
        ok[a, b] = ok[b, a] = False
    return ok


@dataclass(frozen=True)
class InstrumentSpec:
    """Timbre and role of an instrument: additive-synthesis profile, envelope, vibrato, register."""

    name: str
    register: tuple[int, int]  # MIDI range of its notes
    harmonics: int  # harmonics in its wavetable before anti-alias limiting
    tilt: float  # harmonic amplitude ~ h ** -tilt
    odd_boost: float  # extra weight of odd harmonics (clarinet/square-like when > 1)
    attack: float  # seconds
    decay: float  # seconds, time constant of the fall towards sustain
    sustain: float  # level 0..1
    release: float  # seconds
    vibrato_cents: float
    vibrato_hz: float
    breath: float  # level of noise riding on the envelope (flute, voice, sax)
    lead: float  # preference to carry the melody
    harmony: str  # how it plays chords: "pad", "strum", "arp", "stabs", "power", or "" when it cannot


INSTRUMENT_SPECS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec("piano", (48, 84), 14, 1.5, 1.0, 0.004, 0.55, 0.0, 0.15, 0.0, 0.0, 0.0, 0.35, "stabs"),
    InstrumentSpec("acousticguitar", (45, 79), 16, 1.1, 1.0, 0.003, 0.40, 0.0, 0.12, 0.0, 0.0, 0.0, 0.25, "strum"),
    InstrumentSpec("electricguitar", (40, 76), 18, 0.9, 1.0, 0.006, 1.20, 0.6, 0.08, 8.0, 5.5, 0.0, 0.55, "power"),
    InstrumentSpec("bass", (28, 52), 10, 1.7, 1.0, 0.006, 0.35, 0.45, 0.06, 0.0, 0.0, 0.0, 0.0, ""),
    InstrumentSpec("drums", (0, 0), 0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ""),
    InstrumentSpec("synthesizer", (48, 88), 20, 1.0, 1.6, 0.012, 0.30, 0.75, 0.10, 6.0, 5.0, 0.0, 0.60, "pad"),
    InstrumentSpec("strings", (43, 84), 16, 1.15, 1.0, 0.180, 1.50, 0.85, 0.35, 14.0, 5.5, 0.02, 0.45, "pad"),
    InstrumentSpec("voice", (52, 79), 28, 1.2, 1.0, 0.040, 0.80, 0.80, 0.12, 28.0, 5.2, 0.04, 1.00, ""),
    InstrumentSpec("flute", (60, 93), 6, 2.6, 1.0, 0.050, 0.90, 0.80, 0.10, 18.0, 5.0, 0.08, 0.80, ""),
    InstrumentSpec("saxophone", (49, 80), 18, 0.8, 0.8, 0.030, 0.70, 0.75, 0.10, 20.0, 5.0, 0.03, 0.90, ""),
)


@dataclass(frozen=True)
class ActivitySpec:
    """A listener activity: a tempo window and an energy window (themes that cut across genres)."""

    name: str
    tempo: tuple[float, float]
    energy: tuple[float, float]


ACTIVITY_SPECS: tuple[ActivitySpec, ...] = (
    ActivitySpec("workout", (120, 240), (0.62, 1.0)),
    ActivitySpec("running", (140, 240), (0.50, 1.0)),
    ActivitySpec("party", (105, 140), (0.55, 1.0)),
    ActivitySpec("focus", (0, 125), (0.0, 0.45)),
    ActivitySpec("chill", (0, 105), (0.0, 0.55)),
    ActivitySpec("sleep", (0, 88), (0.0, 0.32)),
    ActivitySpec("dinner", (75, 125), (0.2, 0.6)),
)

assert tuple(a.name for a in ACTIVITY_SPECS) == ACTIVITIES and tuple(g.name for g in GENRE_SPECS) == GENRES
assert all(len(g.instrument_prob) == len(INSTRUMENTS) and len(g.mood_affinity) == len(MOODS) for g in GENRE_SPECS)


def genre_matrix(field: str) -> np.ndarray:
    """Stack one per-genre tuple field (instrument_prob, mood_affinity) into a (genre x item) array."""
    return np.array([getattr(g, field) for g in GENRE_SPECS], dtype=np.float64)


def genre_vector(field: str, item: int | None = None) -> np.ndarray:
    """One scalar per genre (``item`` picks an entry of a tuple field, e.g. the low end of ``tempo``)."""
    return np.array(
        [getattr(g, field) if item is None else getattr(g, field)[item] for g in GENRE_SPECS], dtype=np.float64
    )


def mood_vector(field: str) -> np.ndarray:
    return np.array([getattr(m, field) for m in MOOD_SPECS], dtype=np.float64)
