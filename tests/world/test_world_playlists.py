"""Playlists and triplets from the latent world (no audio needed): the listener model's properties."""

from __future__ import annotations

import numpy as np
import pytest

from mixtape.world import SIZES
from mixtape.world.latent import build_catalogue, purpose_rng
from mixtape.world.playlists import make_playlists
from mixtape.world.tags import assign_splits
from mixtape.world.triplets import aspect_similarity, make_triplets


@pytest.fixture(scope="module")
def world():
    cat = build_catalogue(SIZES["small"], seed=0)
    playlists = make_playlists(cat, SIZES["small"].n_playlists, 0.1, purpose_rng(0, "playlists"))
    return cat, playlists


def test_playlists_have_realistic_shapes(world) -> None:
    cat, playlists = world
    lengths = np.array([len(p.tracks) for p in playlists])
    assert lengths.min() >= 5 and lengths.max() <= 100 and 10 <= np.median(lengths) <= 30
    assert all(len(np.unique(p.tracks)) == len(p.tracks) for p in playlists)  # no repeats inside one
    assert [p.pid for p in playlists] == list(range(len(playlists)))
    held = [p.heldout for p in playlists]
    assert sum(held) == round(0.1 * len(playlists)) and held == sorted(held)  # held-out ones take the last pids
    assert {p.kind for p in playlists} == {"mood", "genre", "activity", "genre+mood"}
    artists = np.array([len(np.unique(cat.tracks.artist[p.tracks])) for p in playlists])
    assert np.median(artists) >= 5  # themes cut across artists


def test_noise_album_runs_and_popularity_skew(world) -> None:
    cat, playlists = world
    off = np.concatenate([p.off_theme for p in playlists])
    assert 0.08 < off.mean() < 0.25
    runs = [p for p in playlists if p.album_run]
    assert 0.1 < len(runs) / len(playlists) < 0.4
    for p in runs:
        start, n = p.album_run
        stretch = p.tracks[start : start + n]
        assert len(np.unique(cat.tracks.album[stretch])) == 1 and np.all(np.diff(stretch) == 1)
    counts = np.sort(np.bincount(np.concatenate([p.tracks for p in playlists]), minlength=len(cat.tracks)))[::-1]
    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()  # the top 10 % of tracks take a large share
    assert (counts > 0).mean() > 0.9  # but the long tail is still listened to


def test_splits_are_artist_disjoint_and_cover_every_genre() -> None:
    for size in ("tiny", "small"):
        cat = build_catalogue(SIZES[size], seed=0)
        split = assign_splits(cat, purpose_rng(0, "splits"))
        track_split = split[cat.tracks.artist]
        share = np.bincount(track_split, minlength=3) / len(track_split)
        assert share[0] > 0.4 and share[1] > 0.1 and share[2] > 0.1
        for s in range(3):
            assert set(np.unique(cat.tracks.genre[track_split == s])) == set(range(8))
    assert share[0] == pytest.approx(0.7, abs=0.06)  # small: close to 70/15/15


def test_triplet_votes_follow_latent_similarity_with_annotator_noise() -> None:
    cat = build_catalogue(SIZES["small"], seed=0)
    trip = make_triplets(cat, 2000, purpose_rng(0, "triplets"))
    t = cat.tracks
    assert (trip.anchor != trip.a).all() and (trip.anchor != trip.b).all() and (trip.a != trip.b).all()
    assert (t.artist[trip.a] != t.artist[trip.anchor]).all() and (t.artist[trip.b] != t.artist[trip.anchor]).all()
    assert ((trip.votes_a + trip.votes_b) == 5).all()
    weights = np.array([0.35, 0.30, 0.15, 0.10, 0.10])
    margin = (aspect_similarity(cat, trip.anchor, trip.a) - aspect_similarity(cat, trip.anchor, trip.b)) @ weights
    clear = np.abs(margin) > 0.1
    agree = (trip.votes_a > trip.votes_b) == (margin > 0)
    assert agree[clear].mean() > 0.85  # votes follow the latent similarity...
    split_votes = np.minimum(trip.votes_a, trip.votes_b) >= 2
    assert 0.05 < split_votes.mean() < 0.6  # ...but listeners disagree on a share of them
