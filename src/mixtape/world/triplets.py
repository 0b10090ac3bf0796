"""Similarity triplets in the dim-sim protocol: an anchor, two candidates, votes of simulated listeners.

Each annotator judges with their own weighting of genre, mood, instrumentation, tempo and energy
and with their own consistency, so votes are driven by the latent attributes but disagree at times,
as human judgements do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixtape.world.latent import Catalogue

ASPECTS: tuple[str, ...] = ("genre", "mood", "instruments", "tempo", "energy")
ASPECT_WEIGHTS = np.array([0.35, 0.30, 0.15, 0.10, 0.10])
VOTES_PER_TRIPLET = 5
N_ANNOTATORS = 24


@dataclass(frozen=True)
class Annotators:
    weights: np.ndarray  # (N, aspects) each annotator's idea of similarity
    temperature: np.ndarray  # (N,) lower = more consistent
    lapse: np.ndarray  # (N,) probability of a random click


@dataclass(frozen=True)
class Triplets:
    anchor: np.ndarray
    a: np.ndarray
    b: np.ndarray
    votes_a: np.ndarray
    votes_b: np.ndarray
    annotators: Annotators


def aspect_similarity(cat: Catalogue, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, aspects) similarity in [0, 1] of track pairs, per aspect."""
    t = cat.tracks

    def jaccard(m: np.ndarray) -> np.ndarray:
        inter = (m[x] & m[y]).sum(axis=1)
        union = (m[x] | m[y]).sum(axis=1)
        return inter / np.maximum(union, 1)

    return np.stack(
        [
            (t.genre[x] == t.genre[y]).astype(np.float64),
            jaccard(t.moods),
            jaccard(t.instruments),
            np.exp(-np.abs(t.tempo[x] - t.tempo[y]) / 25.0),
            1.0 - np.abs(t.energy[x] - t.energy[y]),
        ],
        axis=1,
    )


def _candidates(rng: np.random.Generator, cat: Catalogue, anchor: np.ndarray, same_genre: np.ndarray) -> np.ndarray:
    """One candidate per anchor, never by the anchor's artist; a same-genre one where asked (harder choices)."""
    t = cat.tracks
    n = len(t)
    by_genre = np.argsort(t.genre, kind="stable")
    starts = np.searchsorted(t.genre[by_genre], np.arange(t.genre.max() + 2))
    cand = np.empty(len(anchor), dtype=np.int64)
    todo = np.arange(len(anchor))
    for _ in range(50):  # redraw the few that hit the anchor's artist
        g = t.genre[anchor[todo]]
        lo, hi = starts[g], starts[g + 1]
        genre_pick = by_genre[lo + np.floor(rng.random(len(todo)) * (hi - lo)).astype(np.int64)]
        cand[todo] = np.where(same_genre[todo], genre_pick, rng.integers(0, n, len(todo)))
        todo = todo[t.artist[cand[todo]] == t.artist[anchor[todo]]]
        if len(todo) == 0:
            break
    if len(todo):  # an artist dominating its genre: fall back to any other artist's track
        others = np.flatnonzero(t.artist != t.artist[anchor[todo[0]]])
        cand[todo] = others[rng.integers(0, len(others), len(todo))]
    return cand


def make_triplets(cat: Catalogue, n_triplets: int, rng: np.random.Generator) -> Triplets:
    """Triplets whose candidates are distinct tracks by artists other than the anchor's."""
    n = len(cat.tracks)
    annotators = Annotators(
        weights=rng.dirichlet(ASPECT_WEIGHTS * 30.0, N_ANNOTATORS),
        temperature=rng.uniform(0.04, 0.15, N_ANNOTATORS),
        lapse=rng.uniform(0.0, 0.1, N_ANNOTATORS),
    )
    anchor = rng.integers(0, n, n_triplets)
    a = _candidates(rng, cat, anchor, rng.random(n_triplets) < 0.5)
    b = _candidates(rng, cat, anchor, rng.random(n_triplets) < 0.3)
    clash = a == b
    while clash.any():
        b[clash] = _candidates(rng, cat, anchor[clash], np.zeros(int(clash.sum()), dtype=bool))
        clash = a == b
    sa, sb = aspect_similarity(cat, anchor, a), aspect_similarity(cat, anchor, b)
    who = np.argsort(rng.random((n_triplets, N_ANNOTATORS)), axis=1)[:, :VOTES_PER_TRIPLET]  # distinct annotators
    w = annotators.weights[who]  # (n, votes, aspects)
    margin = np.einsum("nva,na->nv", w, sa - sb)
    p_a = 1.0 / (1.0 + np.exp(-margin / annotators.temperature[who]))
    lapse = annotators.lapse[who]
    p_a = (1 - lapse) * p_a + lapse * 0.5
    votes_a = (rng.random(p_a.shape) < p_a).sum(axis=1)
    return Triplets(anchor, a, b, votes_a, VOTES_PER_TRIPLET - votes_a, annotators)
