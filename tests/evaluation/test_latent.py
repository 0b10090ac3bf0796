"""Latent-attribute probes: what an embedding holds of a world's genre, moods and artist."""

from __future__ import annotations

import numpy as np
import pytest

from mixtape.evaluation.latent import LatentDataError, LatentTruth, latent_probe


def _truth(n: int = 240, seed: int = 0) -> LatentTruth:
    rng = np.random.default_rng(seed)
    artist = np.repeat(np.arange(n // 6), 6)  # 40 artists of 6 tracks
    genre = artist % 4  # artists keep to their genre
    moods = rng.random((n, 3)) < 0.4
    moods[np.arange(n), rng.integers(0, 3, n)] = True
    test = artist % 5 == 0  # artist-disjoint test split
    return LatentTruth(tuple(f"t{i}" for i in range(n)), genre, moods, artist, test, tuple("abcd"), tuple("xyz"))


def test_an_embedding_of_the_genre_alone_knows_the_genre_but_not_the_artist() -> None:
    t = _truth()
    emb = np.eye(4)[t.genre] + 0.01 * np.random.default_rng(1).standard_normal((len(t.genre), 4))
    got = latent_probe(emb, t)
    assert got["genre_acc"] == 1.0
    assert 0.4 <= got["mood_auc"] <= 0.6  # moods were drawn independently of the genre
    assert got["artist_acc"] < 0.15  # 10 artists share each genre: chance among them is 0.1


def test_an_artist_embedding_knows_the_artist_and_through_it_nothing_of_held_out_genres() -> None:
    t = _truth()
    emb = np.eye(40)[t.artist]
    got = latent_probe(emb, t)
    assert got["artist_acc"] == 1.0
    assert got["genre_acc"] <= 0.5  # test artists were never seen: their one-hot columns carry no weight


def test_moods_are_found_when_the_embedding_holds_them() -> None:
    t = _truth()
    got = latent_probe(t.moods.astype(float) + 0.01 * np.random.default_rng(2).standard_normal(t.moods.shape), t)
    assert got["mood_auc"] > 0.99


def test_mismatched_rows_are_refused() -> None:
    with pytest.raises(LatentDataError, match=r"\[3, 2\] embeddings for 240 tracks"):
        latent_probe(np.zeros((3, 2)), _truth())
