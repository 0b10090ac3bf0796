"""The world is learnable but not trivial, and its playlists carry what artist identity does not.

These are the two properties every later experiment relies on: audio separates genres only
partly (so models have something to learn), and playlist co-occurrence across artists agrees on
mood and genre far more than chance (so playlist positives teach what artist positives cannot).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from mixtape.catalog import read_tracks
from mixtape.world import World


def _mel_stats(path, sr_expected: int = 22050) -> np.ndarray:
    import librosa

    y, sr = sf.read(path, dtype="float32")
    assert sr == sr_expected
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=96)
    log_mel = np.log10(1.0 + 10_000.0 * mel)
    return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])


def test_mel_statistics_separate_genres_better_than_chance_but_not_perfectly(tiny_world: World) -> None:
    pytest.importorskip("librosa")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    genre = {t["track_id"]: t["genre"] for t in tiny_world.latent()["tracks"]}
    records = read_tracks(tiny_world.tracks).records
    features = np.stack([_mel_stats(r.path) for r in records])
    labels = np.array([genre[r.track_id] for r in records])
    artists = np.array([r.artist_id for r in records])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    # Grouped by artist: a model may not recognise the artist's production and call that genre.
    predicted = cross_val_predict(model, features, labels, groups=artists, cv=GroupKFold(n_splits=5))
    accuracy = float((predicted == labels).mean())
    chance = 1.0 / len(set(labels))
    assert 2 * chance < accuracy < 0.95, accuracy


def _cooccurring_pairs(folder, index: dict[str, int]) -> np.ndarray:
    pairs = []
    for path in sorted(folder.glob("mpd.slice.*.json")):
        for p in json.loads(path.read_text())["playlists"]:
            ids = np.array([index[t["track_uri"].rsplit(":", 1)[1]] for t in p["tracks"]])
            i, j = np.triu_indices(len(ids), k=1)
            pairs.append(np.stack([ids[i], ids[j]], axis=1))
    return np.concatenate(pairs)


def test_playlists_carry_mood_and_genre_across_artists(tiny_world: World) -> None:
    tracks = tiny_world.latent()["tracks"]
    index = {t["track_id"]: i for i, t in enumerate(tracks)}
    artist = np.array([t["artist_id"] for t in tracks])
    genre = np.array([t["genre"] for t in tracks])
    moods = np.array([[m in t["moods"] for m in ("happy", "sad", "energetic", "calm", "dark", "epic")] for t in tracks])

    def agreement(pairs: np.ndarray) -> tuple[float, float]:
        a, b = pairs[:, 0], pairs[:, 1]
        return float((genre[a] == genre[b]).mean()), float((moods[a] & moods[b]).any(axis=1).mean())

    cooc = _cooccurring_pairs(tiny_world.playlists, index)
    cooc = cooc[artist[cooc[:, 0]] != artist[cooc[:, 1]]]
    rng = np.random.default_rng(0)
    rand = rng.integers(0, len(tracks), (20_000, 2))
    rand = rand[artist[rand[:, 0]] != artist[rand[:, 1]]]
    same = np.array([(i, j) for i in range(len(tracks)) for j in range(i + 1, len(tracks)) if artist[i] == artist[j]])

    cooc_genre, cooc_mood = agreement(cooc)
    rand_genre, rand_mood = agreement(rand)
    _, same_mood = agreement(same)
    assert len(cooc) > 1000
    assert cooc_genre > 1.6 * rand_genre and cooc_mood > 1.6 * rand_mood, (cooc_genre, rand_genre, cooc_mood, rand_mood)
    assert cooc_mood > same_mood + 0.05, (cooc_mood, same_mood)  # an artist's tracks do not share a mood as much
