"""Tags from latent attributes, and artist-disjoint train/validation/test splits, MTG-Jamendo style.

MTG-Jamendo builds each family's split files from one all-tags split by dropping other families'
tags and tracks left with none; the same is done here so loaders written for it read the world as is.
"""

from __future__ import annotations

import numpy as np

from mixtape.world.latent import Catalogue
from mixtape.world.vocab import GENRES, INSTRUMENTS, MOODS, TAG_PREFIX

SPLITS: tuple[str, ...] = ("train", "validation", "test")
SPLIT_FRACTIONS = np.array([0.7, 0.15, 0.15])
# Split-file families; top50tags holds every tag (the world has fewer than 50).
FAMILIES: tuple[str, ...] = ("genre", "moodtheme", "instrument", "top50tags")


def tag_vocabulary() -> dict[str, list[str]]:
    """The full tag names of each family, in vocabulary order."""
    return {
        "genre": [TAG_PREFIX["genre"] + g for g in GENRES],
        "moodtheme": [TAG_PREFIX["moodtheme"] + m for m in MOODS],
        "instrument": [TAG_PREFIX["instrument"] + i for i in INSTRUMENTS],
    }


def tag_matrix(cat: Catalogue) -> tuple[list[str], np.ndarray]:
    """(tag names, bool tracks x tags): one genre, 1-2 moods, 2-5 instruments per track."""
    t = cat.tracks
    genre = np.zeros((len(t), len(GENRES)), dtype=bool)
    genre[np.arange(len(t)), t.genre] = True
    vocab = tag_vocabulary()
    names = vocab["genre"] + vocab["moodtheme"] + vocab["instrument"]
    return names, np.concatenate([genre, t.moods, t.instruments], axis=1)


def track_tags(cat: Catalogue, family: str = "top50tags") -> list[list[str]]:
    """Each track's tags of one family (or all), sorted as in MTG-Jamendo's files."""
    names, matrix = tag_matrix(cat)
    if family != "top50tags":
        prefix = TAG_PREFIX[family]
        cols = [j for j, n in enumerate(names) if n.startswith(prefix)]
        names, matrix = [names[j] for j in cols], matrix[:, cols]
    order = np.argsort(names)
    sorted_names = [names[j] for j in order]
    sorted_matrix = matrix[:, order]
    return [[sorted_names[j] for j in np.flatnonzero(row)] for row in sorted_matrix]


def assign_splits(cat: Catalogue, rng: np.random.Generator) -> np.ndarray:
    """Split index (0 train, 1 validation, 2 test) per artist: artist-disjoint, about 70/15/15 of tracks.

    Stratified by the artist's genre, and each genre's first three artists go to test, validation
    and train, so even the tiny world evaluates every genre in every split.
    """
    a = cat.artists
    counts = np.bincount(cat.tracks.artist, minlength=len(a))
    split = np.zeros(len(a), dtype=np.int64)
    for g in range(len(GENRES)):
        members = rng.permutation(np.flatnonzero(a.genre == g))
        target = SPLIT_FRACTIONS * counts[members].sum()
        assigned = np.zeros(3)
        for j, artist in enumerate(members):
            s = (2, 1, 0)[j] if j < 3 and len(members) >= 3 else int(np.argmax(target - assigned))
            split[artist] = s
            assigned[s] += counts[artist]
    return split
