"""Latent attributes of the world: artists, albums and tracks, drawn column-wise for every size at once.

The structure that matters downstream is set here: artists are mostly genre-consistent and carry
a production signature (timbre, reverb, filtering, tempo habit, instrument palette) shared by all
their tracks, while their tracks span several moods. Playlist themes then cut across artists, which
is what makes playlist positives carry mood/genre information that artist positives lack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixtape.world.names import artist_names, title_names
from mixtape.world.sizes import WorldSize
from mixtape.world.vocab import (
    BASS,
    DRUMS,
    GENRE_SPECS,
    GENRES,
    INSTRUMENTS,
    MOODS,
    genre_matrix,
    genre_vector,
    mood_compatibility,
    mood_vector,
)

# SeedSequence spawn keys, one per purpose, so adding a purpose never changes another's stream.
PURPOSES = {"artists": 1, "albums": 2, "tracks": 3, "names": 4, "splits": 5, "playlists": 6, "triplets": 7}
RENDER_KEY = 100  # + track index: one generator per rendered track
ARTIST_SOUND_KEY = 101  # + artist index: drum kit and room shared by all of an artist's tracks


def purpose_rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PURPOSES[purpose],)))


def item_seed(seed: int, key: int, index: int) -> np.random.SeedSequence:
    """The seed of one item (a track's render, an artist's sound), independent of worker count."""
    return np.random.SeedSequence(seed, spawn_key=(key, index))


@dataclass(frozen=True)
class Artists:
    name: list[str]
    genre: np.ndarray  # (A,) genre index
    second_genre: np.ndarray  # (A,) genre index or -1
    palette: np.ndarray  # (A, I) bool: the instruments the artist plays
    mood_pref: np.ndarray  # (A, M) probabilities: the artist's mood habits (broad on purpose)
    tempo_habit: np.ndarray  # (A,) 0..1 position inside the genre's tempo range
    brightness: np.ndarray  # (A,) -1..1
    timbre: np.ndarray  # (A, I) harmonic-tilt offset per instrument: the artist's sound
    vibrato: np.ndarray  # (A,) multiplier of vibrato depth
    attack: np.ndarray  # (A,) multiplier of attack times
    reverb_time: np.ndarray  # (A,) seconds (RT60)
    reverb_wet: np.ndarray  # (A,) 0..1
    lowpass_hz: np.ndarray  # (A,)
    highpass_hz: np.ndarray  # (A,)
    noise_db: np.ndarray  # (A,) hiss level, dBFS
    drive: np.ndarray  # (A,) guitar/synth saturation gain
    kit: np.ndarray  # (A, 4) kick Hz, snare tone Hz, hat brightness Hz, decay multiplier
    popularity: np.ndarray  # (A,) Zipf weight

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class Albums:
    name: list[str]
    artist: np.ndarray  # (B,)
    mood_focus: np.ndarray  # (B,) mood index the album leans to
    reverb_mult: np.ndarray  # (B,) production drift from the artist's room
    lowpass_mult: np.ndarray  # (B,)
    tempo_shift: np.ndarray  # (B,) added to the artist's tempo habit

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class Tracks:
    name: list[str]
    artist: np.ndarray  # (T,)
    album: np.ndarray  # (T,)
    genre: np.ndarray  # (T,)
    moods: np.ndarray  # (T, M) bool, 1-2 per track
    instruments: np.ndarray  # (T, I) bool, 2-5 per track
    tempo: np.ndarray  # (T,) bpm
    key: np.ndarray  # (T,) 0..11, C = 0
    major: np.ndarray  # (T,) bool
    energy: np.ndarray  # (T,) 0..1
    brightness: np.ndarray  # (T,) -1..1
    duration: np.ndarray  # (T,) seconds, multiple of 0.1
    popularity: np.ndarray  # (T,) sums to 1: Zipf-like listener attention

    def __len__(self) -> int:
        return len(self.name)


@dataclass(frozen=True)
class Catalogue:
    size: WorldSize
    seed: int
    artists: Artists
    albums: Albums
    tracks: Tracks

    def track_id(self, i: int) -> str:
        return f"track_{i:06d}"

    def artist_id(self, i: int) -> str:
        return f"artist_{i:06d}"

    def album_id(self, i: int) -> str:
        return f"album_{i:06d}"

    def track_path(self, i: int) -> str:
        """Relative to the world root: audio/<artist>/<album>/<track>.wav."""
        t = self.tracks
        return f"audio/{self.artist_id(int(t.artist[i]))}/{self.album_id(int(t.album[i]))}/{self.track_id(i)}.wav"


def _gumbel_topk(rng: np.random.Generator, weights: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Row-wise weighted sampling without replacement (Plackett-Luce via Gumbel keys): bool mask, k[i] per row."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    ranks = np.argsort(np.argsort(-keys, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks < k[:, None]


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    ranks = rng.permutation(n) + 1
    return 1.0 / ranks.astype(np.float64) ** exponent


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _draw_artists(rng: np.random.Generator, n: int) -> Artists:
    n_genres, n_inst, n_moods = len(GENRES), len(INSTRUMENTS), len(MOODS)
    # Balanced genres across artists, so even the tiny world has every genre in every split.
    genre = rng.permutation(np.resize(np.arange(n_genres), n))
    second = np.full(n, -1)
    has_second = rng.random(n) < 0.5
    for g, spec in enumerate(GENRE_SPECS):
        rows = np.flatnonzero(has_second & (genre == g))
        neighbours = np.array([GENRES.index(x) for x in spec.neighbours])
        second[rows] = neighbours[rng.integers(0, len(neighbours), len(rows))]
    inst_prob = genre_matrix("instrument_prob")[genre]
    palette = _gumbel_topk(rng, inst_prob**2, rng.integers(3, 6, n))  # squared: line-ups typical of the genre
    mood_pref = rng.dirichlet(np.full(n_moods, 3.0), n)  # broad: an artist's tracks span moods
    metal = genre == GENRES.index("metal")
    ambient = genre == GENRES.index("ambient")
    kit = np.stack(
        [rng.uniform(45, 72, n), rng.uniform(150, 260, n), rng.uniform(5000, 9500, n), rng.uniform(0.7, 1.4, n)], axis=1
    )
    return Artists(
        name=[],  # filled by the caller from the names stream
        genre=genre,
        second_genre=second,
        palette=palette,
        mood_pref=mood_pref,
        tempo_habit=rng.beta(2.0, 2.0, n),
        brightness=np.clip(genre_vector("brightness")[genre] + rng.normal(0.0, 0.3, n), -1, 1),
        timbre=rng.normal(0.0, 0.35, (n, n_inst)),
        vibrato=_log_uniform(rng, 0.5, 1.8, n),
        attack=_log_uniform(rng, 0.6, 1.8, n),
        reverb_time=_log_uniform(rng, 0.25, 1.8, n) * genre_vector("reverb")[genre],
        reverb_wet=rng.uniform(0.05, 0.4, n) + np.where(ambient, 0.15, 0.0),
        lowpass_hz=_log_uniform(rng, 0.7, 1.4, n) * genre_vector("lowpass_hz")[genre],
        highpass_hz=_log_uniform(rng, 30, 180, n),
        noise_db=rng.uniform(-80, -50, n),
        drive=_log_uniform(rng, 1.5, 5.0, n) * np.where(metal, 2.5, 1.0),
        kit=kit,
        popularity=_zipf_weights(rng, n, 0.9),
    )


def _artist_track_counts(rng: np.random.Generator, n_artists: int, n_tracks: int) -> np.ndarray:
    """At least two tracks per artist (so the artist strategy has a positive), the rest skewed."""
    if n_tracks < 2 * n_artists:
        raise ValueError(f"{n_tracks} tracks cannot give {n_artists} artists two tracks each")
    w = rng.lognormal(0.0, 0.6, n_artists)
    return 2 + rng.multinomial(n_tracks - 2 * n_artists, w / w.sum())


def _album_sizes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Split one artist's tracks into albums of about 8, each album at least 2 tracks when possible."""
    n_albums = int(np.clip(1 + (count - 1) // 8 + (rng.random() < 0.3), 1, max(1, count // 2)))
    return (
        2 + rng.multinomial(count - 2 * n_albums, np.full(n_albums, 1.0 / n_albums))
        if count >= 2 * n_albums
        else np.array([count])
    )


def build_catalogue(size: WorldSize, seed: int) -> Catalogue:
    """Draw every latent attribute of a world; cheap (no audio), deterministic for (size, seed)."""
    rng_art, rng_alb, rng_trk, rng_names = (purpose_rng(seed, p) for p in ("artists", "albums", "tracks", "names"))
    n_moods = len(MOODS)
    artists = _draw_artists(rng_art, size.n_artists)
    counts = _artist_track_counts(rng_art, size.n_artists, size.n_tracks)

    # Albums: per artist, consecutive track ids (like a real catalogue dump).
    album_sizes = [_album_sizes(rng_alb, int(c)) for c in counts]
    album_artist = np.repeat(np.arange(size.n_artists), [len(s) for s in album_sizes])
    n_albums = len(album_artist)
    focus_logits = np.log(artists.mood_pref[album_artist]) + rng_alb.gumbel(size=(n_albums, n_moods))
    albums = Albums(
        name=title_names(rng_names, n_albums, "{b} of the {a} {b}s"),
        artist=album_artist,
        mood_focus=focus_logits.argmax(axis=1),
        reverb_mult=np.exp(rng_alb.normal(0.0, 0.15, n_albums)),
        lowpass_mult=np.exp(rng_alb.normal(0.0, 0.1, n_albums)),
        tempo_shift=rng_alb.normal(0.0, 0.08, n_albums),
    )
    track_album = np.repeat(np.arange(n_albums), np.concatenate(album_sizes))
    track_artist = album_artist[track_album]
    n = len(track_album)

    # Genre: the artist's own, sometimes its neighbour genre.
    a_genre, a_second = artists.genre[track_artist], artists.second_genre[track_artist]
    use_second = (a_second >= 0) & (rng_trk.random(n) < 0.15)
    genre = np.where(use_second, a_second, a_genre)

    # Moods: artist habit x genre affinity x album focus; a second, compatible mood for ~40 %.
    logits = np.log(artists.mood_pref[track_artist]) + np.log(genre_matrix("mood_affinity")[genre])
    logits[np.arange(n), albums.mood_focus[track_album]] += np.log(2.5)
    first = (logits + rng_trk.gumbel(size=logits.shape)).argmax(axis=1)
    compat = mood_compatibility()[first]
    second_logits = np.where(compat, logits + rng_trk.gumbel(size=logits.shape), -np.inf)
    second_mood = second_logits.argmax(axis=1)
    moods = np.zeros((n, n_moods), dtype=bool)
    moods[np.arange(n), first] = True
    two = rng_trk.random(n) < 0.4
    moods[np.flatnonzero(two), second_mood[two]] = True

    # Instruments: mostly from the artist's palette, weighted by the track genre's habits.
    gprob = genre_matrix("instrument_prob")[genre]
    palette = artists.palette[track_artist]
    weights = gprob * np.where(palette, 3.0, 0.15) + 1e-6
    lo, hi = genre_vector("n_instruments", 0)[genre], genre_vector("n_instruments", 1)[genre]
    k = (lo + np.floor(rng_trk.random(n) * (hi - lo + 1))).astype(int)
    instruments = _gumbel_topk(rng_trk, weights, k)
    melodic = np.ones(len(INSTRUMENTS), dtype=bool)
    melodic[[DRUMS, BASS]] = False
    no_melody = ~instruments[:, melodic].any(axis=1)
    if no_melody.any():  # swap the least likely chosen part for the most likely melodic instrument
        rows = np.flatnonzero(no_melody)
        w = weights[rows]
        drop = np.where(instruments[rows], w, np.inf).argmin(axis=1)
        add = np.where(melodic, w, -np.inf).argmax(axis=1)
        instruments[rows, drop] = False
        instruments[rows, add] = True

    # Tempo, key, mode, energy, brightness.
    tempo_lo, tempo_hi = genre_vector("tempo", 0)[genre], genre_vector("tempo", 1)[genre]
    habit = np.clip(
        artists.tempo_habit[track_artist] + albums.tempo_shift[track_album] + rng_trk.normal(0, 0.12, n), 0, 1
    )
    n_mood = moods.sum(axis=1)

    def mood_mean(field: str) -> np.ndarray:  # a two-mood track sits between its moods
        return (moods * mood_vector(field)).sum(axis=1) / n_mood

    tempo = np.round(np.clip((tempo_lo + habit * (tempo_hi - tempo_lo)) * mood_mean("tempo_mult"), 55, 210), 1)
    major = rng_trk.random(n) < mood_mean("major_prob")
    energy = np.clip(mood_mean("energy") + genre_vector("energy")[genre] + rng_trk.normal(0, 0.08, n), 0.02, 0.98)
    brightness = np.clip(
        0.5 * mood_mean("brightness") + artists.brightness[track_artist] + rng_trk.normal(0, 0.1, n), -1, 1
    )
    key = rng_trk.integers(0, 12, n)
    duration = np.round(size.duration * rng_trk.uniform(0.85, 1.15, n), 1)
    pop = artists.popularity[track_artist] * rng_trk.lognormal(0.0, 0.8, n)

    artists = Artists(**{**artists.__dict__, "name": artist_names(rng_names, size.n_artists)})
    tracks = Tracks(
        name=title_names(rng_names, n),
        artist=track_artist,
        album=track_album,
        genre=genre,
        moods=moods,
        instruments=instruments,
        tempo=tempo,
        key=key,
        major=major,
        energy=energy,
        brightness=brightness,
        duration=duration,
        popularity=pop / pop.sum(),
    )
    return Catalogue(size=size, seed=seed, artists=artists, albums=albums, tracks=tracks)
