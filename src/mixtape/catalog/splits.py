"""Splits for evaluation: held-out playlists, and track splits in which no artist crosses a boundary.

Artist-disjoint splits matter because an artist's tracks share timbre and production: a model
tested on tracks of artists it trained on scores artist recognition, not generalisation (the
MTG-Jamendo splits are artist-disjoint for this reason).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mixtape.catalog.catalog import Catalog
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text

SPLIT_NAMES = ("train", "validation", "test")


def hold_out_playlists(catalog: Catalog, fraction: float, seed: int = 0) -> Catalog:
    """A catalogue with a random ``fraction`` of its training playlists moved to the held-out set.

    For catalogues that came without a held-out set: the moved playlists leave ``playlists`` (and
    their unmatched context) entirely, so no strategy built afterwards sees them.
    """
    if not 0.0 < fraction < 1.0:
        raise MixtapeError(f"held-out playlist fraction must be in (0, 1), got {fraction}")
    n = catalog.n_playlists
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[: int(round(fraction * n))]] = True
    train_rows, held_rows = np.flatnonzero(~held), np.flatnonzero(held)
    return dataclasses.replace(
        catalog,
        playlists=catalog.playlists[train_rows],
        playlist_ids=catalog.playlist_ids[train_rows],
        context=catalog.context[train_rows],
        heldout_playlists=sp.vstack(
            [catalog.heldout_playlists, catalog.playlists[held_rows]], format="csr", dtype=np.int32
        ),
        heldout_playlist_ids=np.concatenate([catalog.heldout_playlist_ids, catalog.playlist_ids[held_rows]]),
        _index=None,
    )


def artist_groups(artist: np.ndarray) -> np.ndarray:
    """Group per track: its artist code, or a group of its own when the artist is unknown."""
    artist = np.asarray(artist, dtype=np.int64)
    groups = artist.copy()
    unknown = np.flatnonzero(artist < 0)
    groups[unknown] = artist.max(initial=-1) + 1 + np.arange(len(unknown))
    return groups


def artist_disjoint_split(
    artist: np.ndarray, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> np.ndarray:
    """Split label per track (index into ``fractions``) such that no artist spans two splits.

    Artists are shuffled, then cut where the running track count crosses the cumulative fractions
    (each artist goes where its middle falls), so split sizes follow ``fractions`` up to one artist.
    Tracks of unknown artist are split one by one.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if len(fr) < 2 or (fr <= 0).any():
        raise MixtapeError(f"split fractions must be two or more positive numbers, got {list(fractions)}")
    groups = artist_groups(artist)
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int8)
    _, groups = np.unique(groups, return_inverse=True)
    sizes = np.bincount(groups).astype(np.float64)
    order = np.random.default_rng(seed).permutation(len(sizes))
    middle = (np.cumsum(sizes[order]) - sizes[order] / 2) / sizes.sum()
    label_of_group = np.empty(len(sizes), dtype=np.int8)
    label_of_group[order] = np.minimum(np.searchsorted(np.cumsum(fr / fr.sum()), middle, side="right"), len(fr) - 1)
    return label_of_group[groups]


def artists_shared(artist: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Artist codes (known ones) that have tracks in more than one split: empty for a disjoint split."""
    artist, labels = np.asarray(artist), np.asarray(labels)
    known = artist >= 0
    pairs = np.unique(np.stack([artist[known], labels[known]], axis=1), axis=0)
    codes, counts = np.unique(pairs[:, 0], return_counts=True)
    return codes[counts > 1]


def write_track_split(
    catalog: Catalog, labels: np.ndarray, folder: str | Path, names: Sequence[str] = SPLIT_NAMES
) -> list[Path]:
    """One ``<name>.tsv`` per split (``track_id`` column): the format ``--holdout-tracks`` reads."""
    labels = np.asarray(labels)
    if len(labels) != len(catalog):
        raise MixtapeError(f"split has {len(labels)} labels for {len(catalog)} tracks")
    if labels.max(initial=0) >= len(names):
        raise MixtapeError(f"split labels go up to {labels.max()}, but only {len(names)} names were given")
    out = []
    for k, name in enumerate(names):
        ids = catalog.track_ids[labels == k]
        out.append(atomic_write_text(Path(folder) / f"{name}.tsv", "track_id\n" + "".join(f"{t}\n" for t in ids)))
    return out
