"""Playlists from simulated listeners: themed, popularity-skewed, with album runs and off-theme noise.

Each listener builds a playlist around one theme (a mood, a genre, an activity = tempo and energy
window, or a mood within a genre). Themes cut across artists, so two tracks that share playlists
tend to share mood and genre even when their artists differ: the signal playlist positives carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mixtape.world.latent import Catalogue
from mixtape.world.names import playlist_name
from mixtape.world.vocab import ACTIVITY_SPECS, GENRES, MOODS

THEME_KINDS: tuple[str, ...] = ("mood", "genre", "activity", "genre+mood")
THEME_WEIGHTS = np.array([0.40, 0.25, 0.20, 0.15])
MIN_POOL = 6  # a theme needs this many tracks to make a playlist of five
OFF_THEME = (0.10, 0.20)  # per playlist, the share of tracks drawn off-theme is uniform in this range
ALBUM_RUN_PROB = 0.25
MODIFIED_RANGE = (1_293_840_000, 1_509_494_400)  # 2011-01-01 .. 2017-11-01, like the MPD


@dataclass(frozen=True)
class Playlist:
    pid: int
    name: str
    kind: str  # one of THEME_KINDS
    theme: str  # "sad", "jazz", "workout", "jazz+sad"
    tracks: np.ndarray  # track indices in playlist order (no repeats)
    off_theme: np.ndarray  # bool per position: the listener's noise
    album_run: tuple[int, int] | None  # (first position, length) of a stretch taken from one album
    heldout: bool
    num_followers: int
    modified_at: int
    collaborative: bool


def theme_pools(cat: Catalogue) -> dict[tuple[str, str], np.ndarray]:
    """Track indices that fit each theme (only themes with at least MIN_POOL tracks)."""
    t = cat.tracks
    masks: dict[tuple[str, str], np.ndarray] = {}
    for m, mood in enumerate(MOODS):
        masks["mood", mood] = t.moods[:, m]
    for g, genre in enumerate(GENRES):
        masks["genre", genre] = t.genre == g
        for m, mood in enumerate(MOODS):
            masks["genre+mood", f"{genre}+{mood}"] = (t.genre == g) & t.moods[:, m]
    for act in ACTIVITY_SPECS:
        masks["activity", act.name] = (
            (t.tempo >= act.tempo[0])
            & (t.tempo <= act.tempo[1])
            & (t.energy >= act.energy[0])
            & (t.energy <= act.energy[1])
        )
    return {k: np.flatnonzero(v) for k, v in masks.items() if v.sum() >= MIN_POOL}


@dataclass(frozen=True)
class _Pool:
    """Tracks eligible for a theme, with their popularity CDF for fast weighted draws."""

    tracks: np.ndarray
    cdf: np.ndarray
    mask: np.ndarray  # bool over all tracks


def _pool(tracks: np.ndarray, weights: np.ndarray, n: int) -> _Pool:
    mask = np.zeros(n, dtype=bool)
    mask[tracks] = True
    return _Pool(tracks, np.cumsum(weights[tracks]), mask)


def _weighted_sample(
    rng: np.random.Generator, pool: _Pool, weights: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """k distinct pool tracks with probability ~ popularity, none where ``exclude`` (bool over tracks) is set.

    Draws with replacement from the CDF and keeps the first distinct ones (cost ~k, not ~pool size);
    only a pool too skewed to yield k distinct tracks falls back to exact Gumbel keys over the pool.
    """
    if k <= 0:
        return pool.tracks[:0]
    draws = pool.tracks[
        np.searchsorted(pool.cdf, rng.random(4 * k + 8) * pool.cdf[-1], side="right").clip(0, len(pool.tracks) - 1)
    ]
    if exclude is not None:
        draws = draws[~exclude[draws]]
    _, first = np.unique(draws, return_index=True)
    picked = draws[np.sort(first)][:k]
    if len(picked) < k:
        rest = pool.tracks[~np.isin(pool.tracks, picked)]
        if exclude is not None:
            rest = rest[~exclude[rest]]
        keys = np.log(weights[rest]) + rng.gumbel(size=len(rest))
        picked = np.concatenate([picked, rest[np.argsort(-keys)[: k - len(picked)]]])
    return picked


def _album_run(rng: np.random.Generator, album: np.ndarray, seed_track: int) -> np.ndarray:
    """Several consecutive tracks of one album, as a listener adding an album stretch would.

    Track indices are grouped by album (albums are contiguous, ascending), so bounds are two binary searches.
    """
    lo = int(np.searchsorted(album, album[seed_track], side="left"))
    hi = int(np.searchsorted(album, album[seed_track], side="right"))
    run = min(int(rng.integers(2, 6)), hi - lo)
    start = lo + int(rng.integers(0, hi - lo - run + 1))
    return np.arange(start, start + run)


def make_playlists(
    cat: Catalogue, n_playlists: int, heldout_fraction: float, rng: np.random.Generator, median_length: float = 18.0
) -> list[Playlist]:
    """Generate listeners' playlists; training ones get pids first, held-out ones the last pids."""
    n = len(cat.tracks)
    weights = cat.tracks.popularity
    pools = {key: _pool(tracks, weights, n) for key, tracks in theme_pools(cat).items()}
    everything = _pool(np.arange(n), weights, n)
    by_kind = {kind: [key for key in pools if key[0] == kind] for kind in THEME_KINDS}
    kinds = [k for k in THEME_KINDS if by_kind[k]]
    kind_p = np.array([THEME_WEIGHTS[THEME_KINDS.index(k)] for k in kinds])
    kind_p /= kind_p.sum()
    drafts: list[dict[str, Any]] = []  # every Playlist field but pid and heldout
    for _ in range(n_playlists):
        kind = kinds[int(rng.choice(len(kinds), p=kind_p))]
        key = by_kind[kind][int(rng.integers(0, len(by_kind[kind])))]
        pool = pools[key]
        length = int(np.clip(np.round(rng.lognormal(np.log(median_length), 0.75)), 5, 100))
        n_off = int(rng.binomial(length, rng.uniform(*OFF_THEME)))
        n_on = min(length - n_off, int(0.8 * len(pool.tracks)))
        on = _weighted_sample(rng, pool, weights, n_on)
        off = _weighted_sample(rng, everything, weights, min(n_off, n - len(pool.tracks)), exclude=pool.mask)
        tracks = np.concatenate([on, off])
        flags = np.concatenate([np.zeros(len(on), bool), np.ones(len(off), bool)])
        order = rng.permutation(len(tracks))
        tracks, flags = tracks[order], flags[order]
        run_at = None
        if len(tracks) >= 8 and rng.random() < ALBUM_RUN_PROB:
            run = _album_run(rng, cat.tracks.album, int(on[rng.integers(0, len(on))]))
            keep = np.flatnonzero(~np.isin(tracks, run))[: max(0, len(tracks) - len(run))]  # the run replaces tracks
            tracks, flags = tracks[keep], flags[keep]
            pos = int(rng.integers(0, len(tracks) + 1))
            tracks = np.concatenate([tracks[:pos], run, tracks[pos:]])
            flags = np.concatenate([flags[:pos], ~pool.mask[run], flags[pos:]])
            run_at = (pos, len(run))
        name = playlist_name(rng, kind, key[1])
        followers = int(1 + np.floor(rng.pareto(1.3)))
        modified = int(rng.integers(*MODIFIED_RANGE))
        drafts.append(
            {
                "name": name,
                "kind": kind,
                "theme": key[1],
                "tracks": tracks,
                "off_theme": flags,
                "album_run": run_at,
                "num_followers": followers,
                "modified_at": modified,
                "collaborative": bool(rng.random() < 0.03),
            }
        )
    n_heldout = int(round(heldout_fraction * n_playlists))
    heldout = np.zeros(n_playlists, dtype=bool)
    heldout[rng.choice(n_playlists, n_heldout, replace=False)] = True
    order = np.concatenate([np.flatnonzero(~heldout), np.flatnonzero(heldout)])
    return [Playlist(pid=pid, heldout=bool(heldout[i]), **drafts[i]) for pid, i in enumerate(order)]


def cooccurring_pairs(playlists: list[Playlist], heldout: bool = False) -> np.ndarray:
    """(n, 2) unordered track pairs that share a playlist (with repeats across playlists); for analysis."""
    pairs = []
    for p in playlists:
        if p.heldout != heldout:
            continue
        i, j = np.triu_indices(len(p.tracks), k=1)
        pairs.append(np.stack([p.tracks[i], p.tracks[j]], axis=1))
    return np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
