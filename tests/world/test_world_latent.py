"""Latent attributes: sizes, constraints per track, and the artist structure the paper's argument needs."""

from __future__ import annotations

import numpy as np
import pytest

from mixtape.world import SIZES
from mixtape.world.latent import build_catalogue
from mixtape.world.vocab import BASS, DRUMS, GENRES, MOODS, mood_compatibility


@pytest.fixture(scope="module")
def small():
    return build_catalogue(SIZES["small"], seed=0)


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_catalogue_has_the_sizes_it_promises(size: str) -> None:
    spec = SIZES[size]
    cat = build_catalogue(spec, seed=3)
    assert len(cat.tracks) == spec.n_tracks and len(cat.artists) == spec.n_artists
    assert np.bincount(cat.tracks.artist, minlength=spec.n_artists).min() >= 2  # every artist has a positive
    assert set(np.unique(cat.albums.artist)) == set(range(spec.n_artists))
    assert np.all(np.diff(cat.tracks.album) >= 0)  # album tracks are consecutive, like a catalogue dump
    assert np.all(np.abs(cat.tracks.duration / spec.duration - 1) <= 0.151)
    assert np.isclose(cat.tracks.popularity.sum(), 1.0)


def test_each_track_has_valid_moods_and_instruments(small) -> None:
    t = small.tracks
    n_moods = t.moods.sum(axis=1)
    assert n_moods.min() == 1 and n_moods.max() == 2 and (n_moods == 2).mean() > 0.2
    compatible = mood_compatibility()
    pairs = [np.flatnonzero(row) for row in t.moods if row.sum() == 2]
    assert all(compatible[a, b] for a, b in pairs)  # never happy and sad at once
    n_inst = t.instruments.sum(axis=1)
    assert n_inst.min() >= 2 and n_inst.max() <= 5
    melodic = np.delete(t.instruments, [DRUMS, BASS], axis=1)
    assert melodic.any(axis=1).all()  # something carries a tune
    assert set(np.unique(t.genre)) == set(range(len(GENRES)))
    assert ((t.energy > 0) & (t.energy < 1)).all() and (t.tempo >= 55).all() and (t.tempo <= 210).all()


def test_artists_keep_their_genre_but_span_moods(small) -> None:
    t, a = small.tracks, small.artists
    own_genre = (t.genre == a.genre[t.artist]).mean()
    assert 0.8 < own_genre < 1.0  # mostly consistent, with some neighbour-genre tracks
    prolific = np.flatnonzero(np.bincount(t.artist) >= 6)
    moods_per_artist = [t.moods[t.artist == i].any(axis=0).sum() for i in prolific]
    assert np.mean(moods_per_artist) >= 3  # an artist is not a mood


def test_energetic_tracks_are_faster_and_louder_than_calm_ones(small) -> None:
    t = small.tracks
    energetic, calm = t.moods[:, MOODS.index("energetic")], t.moods[:, MOODS.index("calm")]
    assert t.energy[energetic].mean() > t.energy[calm].mean() + 0.3
    for g in range(len(GENRES)):  # within a genre, so the genre's tempo range does not decide it
        e, c = energetic & (t.genre == g), calm & (t.genre == g)
        if e.sum() >= 5 and c.sum() >= 5:
            assert t.tempo[e].mean() > t.tempo[c].mean()


def test_same_seed_same_catalogue_other_seed_differs() -> None:
    a, b, c = (build_catalogue(SIZES["tiny"], seed=s) for s in (5, 5, 6))
    for field in ("genre", "moods", "instruments", "tempo", "key", "duration", "artist", "album"):
        assert np.array_equal(getattr(a.tracks, field), getattr(b.tracks, field))
    assert a.tracks.name == b.tracks.name and a.artists.name == b.artists.name
    assert not np.array_equal(a.tracks.tempo, c.tracks.tempo)
