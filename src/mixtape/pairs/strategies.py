"""The pair strategies: where the positive of each anchor track comes from.

| name        | positive for an anchor                                                    |
|-------------|---------------------------------------------------------------------------|
| self        | the anchor itself (another patch of it, read by the data loader)          |
| artist      | a random other track by the same artist                                   |
| album       | a random other track from the same album                                  |
| playlist    | a random playlist holding the anchor, then a random other track of it     |
| cooc-topk   | a random one of the K tracks co-occurring most with it (count/PMI/Jaccard) |
| track2vec   | a random one of its K nearest neighbours in skip-gram track embeddings    |
| pmi-svd     | a random one of its K nearest neighbours in a truncated SVD of the tracks' |
|             | positive PMI matrix (the matrix skip-gram factorises implicitly)          |
| theme       | oracle, on a generated world only: a track sharing the anchor's latent     |
|             | genre and one of its moods (read from the world's ``world.json``)         |
| mix         | a weighted mixture of the above                                           |

Strategies live in a registry (``register_strategy``), as backbones do: each has one typed parameter
model (:mod:`mixtape.pairs.params`) that its builder takes. All builders read only ``catalog.playlists``
(training playlists, held-out tracks already removed)
and ``catalog.trainable``, so nothing held out for evaluation can become an anchor or a positive.
Every build reports who has no positive and why, and how often the positive shares the anchor's
artist: playlist positives differ from artist positives exactly there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from mixtape.catalog.catalog import Catalog
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.pairs.cooc import binary_incidence, cooc_topk
from mixtape.pairs.params import (
    PARAMS,
    SUMMARIES,
    CoocParams,
    MixParams,
    PmiSvdParams,
    StrategyParams,
    ThemeParams,
    Track2VecParams,
    params_model,
    resolve_params,
)
from mixtape.pairs.pmisvd import train_pmi_svd
from mixtape.pairs.positives import Positives
from mixtape.pairs.track2vec import nearest_neighbours, train_track2vec
from mixtape.world.truth import LatentDataError, read_latent

log = get_logger(__name__)

STRATEGIES = tuple(PARAMS)  # the built-in strategies, in the order commands list them
STATS_SAMPLES = 100_000

HELD_OUT = "held out for evaluation"
NO_PLAYLIST = "in no training playlist"


# --- statistics --------------------------------------------------------------------------------


def _reasons(covered: np.ndarray, ordered: list[tuple[str, np.ndarray]]) -> dict[str, int]:
    """Why tracks have no positive: the first matching reason per uncovered track, in order."""
    remaining = ~covered
    out: dict[str, int] = {}
    for reason, mask in ordered:
        hit = remaining & mask
        if hit.any():
            out[reason] = int(hit.sum())
        remaining &= ~mask
    if remaining.any():
        out["other"] = int(remaining.sum())
    return out


def _distribution(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {}
    q = np.percentile(values, [0, 5, 25, 50, 75, 95, 100])
    return {
        "min": float(q[0]),
        "p5": float(q[1]),
        "p25": float(q[2]),
        "median": float(q[3]),
        "mean": float(values.mean()),
        "p75": float(q[4]),
        "p95": float(q[5]),
        "max": float(q[6]),
    }


def _sampled_shares(pos: Positives, catalog: Catalog, n: int = STATS_SAMPLES) -> dict[str, Any]:
    """Share of sampled positives by the anchor's artist / on its album (pairs with both known).

    Estimated from ``n`` pairs drawn as training draws them (uniform anchor, then the strategy's
    sampler), with a fixed seed so the statistics of a build are reproducible.
    """
    if not len(pos.anchors):
        return {"pairs_sampled": 0}
    rng = np.random.default_rng(0)
    anchors = pos.anchors[rng.integers(0, len(pos.anchors), size=n)]
    positives = pos.sample(anchors, rng)
    out: dict[str, Any] = {"pairs_sampled": n, "same_track_share": float((anchors == positives).mean())}
    for what, codes in (("artist", catalog.artist), ("album", catalog.album)):
        a, p = codes[anchors], codes[positives]
        known = (a >= 0) & (p >= 0)
        out[f"same_{what}_share"] = float((a[known] == p[known]).mean()) if known.any() else None
        out[f"{what}_known_pairs"] = int(known.sum())
    return out


def compute_stats(
    pos: Positives, catalog: Catalog, no_positive: dict[str, int], per_anchor: np.ndarray, per_anchor_note: str
) -> dict[str, Any]:
    trainable = int(catalog.trainable.sum())
    return {
        "strategy": pos.strategy,
        "params": pos.params,
        "tracks": len(catalog),
        "trainable_tracks": trainable,
        "anchors": len(pos.anchors),
        "anchor_share_of_trainable": len(pos.anchors) / trainable if trainable else 0.0,
        "no_positive": no_positive,
        "positives_per_anchor": {**_distribution(np.asarray(per_anchor, dtype=np.float64)), "note": per_anchor_note},
        **_sampled_shares(pos, catalog),
        **({"parts": {p.strategy: p.stats for p in pos.parts}} if pos.parts else {}),
    }


def format_stats(stats: Mapping[str, Any]) -> str:
    """The statistics of one build as a small table for the terminal."""
    rows = [
        ("tracks", f"{stats['tracks']:,} ({stats['tracks'] - stats['trainable_tracks']:,} held out)"),
        (
            "anchors with a positive",
            f"{stats['anchors']:,} ({100 * stats['anchor_share_of_trainable']:.1f}% of trainable tracks)",
        ),
    ]
    rows += [(f"  no positive: {reason}", f"{n:,}") for reason, n in stats["no_positive"].items()]
    d = stats.get("positives_per_anchor", {})
    if "median" in d:
        rows.append(
            (
                "positives per anchor",
                f"min {d['min']:g} · median {d['median']:g} · mean {d['mean']:.1f} · p95 {d['p95']:g} · max "
                f"{d['max']:g}",
            )
        )
        rows.append(("", f"({d['note']})"))
    for what in ("artist", "album"):
        share = stats.get(f"same_{what}_share")
        if share is not None:
            rows.append(
                (
                    f"positive by the same {what}",
                    f"{100 * share:.1f}% (of {stats[f'{what}_known_pairs']:,} sampled pairs with both known)",
                )
            )
    for name, part in stats.get("parts", {}).items():
        rows.append((f"  part {name}", f"weight {stats['params']['mix'][name]:g}, {part['anchors']:,} anchors"))
    width = max(len(r[0]) for r in rows)
    return "\n".join([f"pairs: strategy {stats['strategy']}"] + [f"  {k:<{width}}  {v}" for k, v in rows])


# --- builders ----------------------------------------------------------------------------------


def _walk_hops(membership: sp.csr_matrix, n_tracks: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(track → group, group → track) CSR hops from a [groups × tracks] membership matrix."""
    group_to_track = sp.csr_matrix(membership, dtype=np.int8, copy=True)
    group_to_track.data[:] = 1
    track_to_group = group_to_track.T.tocsr()
    track_to_group.sort_indices()
    return track_to_group, group_to_track


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its parameter model, its builder and a one-line summary."""

    name: str
    params: type[StrategyParams]
    build: Callable[[Catalog, Any], Positives]
    summary: str


REGISTRY: dict[str, Strategy] = {}
P = TypeVar("P", bound=StrategyParams)


def register_strategy(
    name: str, params: type[P], summary: str
) -> Callable[[Callable[[Catalog, P], Positives]], Callable[[Catalog, P], Positives]]:
    """Decorator: make ``build(catalog, params) -> Positives`` buildable by ``name`` (one builder per name)."""

    def decorate(build: Callable[[Catalog, P], Positives]) -> Callable[[Catalog, P], Positives]:
        if name in REGISTRY:
            raise MixtapeError(f"pair strategy {name!r} is registered twice")
        REGISTRY[name] = Strategy(name, params, build, summary)
        return build

    return decorate


def _registered(name: str) -> Callable[[Callable[[Catalog, Any], Positives]], Callable[[Catalog, Any], Positives]]:
    """A built-in strategy: its parameter model and summary come from :mod:`mixtape.pairs.params`."""
    return register_strategy(name, PARAMS[name], SUMMARIES[name])


@_registered("self")
def _build_self(catalog: Catalog, params: StrategyParams) -> Positives:
    """Positive = the anchor: every trainable track is an anchor."""
    anchors = np.flatnonzero(catalog.trainable)
    pos = Positives("self", catalog.track_ids, anchors)
    pos.stats = compute_stats(
        pos,
        catalog,
        _reasons(pos.covered, [(HELD_OUT, catalog.heldout_track_mask)]),
        np.ones(len(anchors)),
        "the anchor itself",
    )
    return pos


def _build_group(catalog: Catalog, codes: np.ndarray, what: str) -> Positives:
    """Positive = another trainable track with the same ``codes`` value (artist or album)."""
    n = len(catalog)
    usable = (codes >= 0) & catalog.trainable
    n_groups = int(codes.max(initial=-1)) + 1
    members = np.flatnonzero(usable)
    size = np.bincount(codes[members], minlength=n_groups)
    in_pairs = members[size[codes[members]] >= 2]
    membership = sp.csr_matrix((np.ones(len(in_pairs), np.int8), (codes[in_pairs], in_pairs)), shape=(n_groups, n))
    hop0, hop1 = _walk_hops(membership, n)
    pos = Positives(what, catalog.track_ids, np.sort(in_pairs), (hop0, hop1))
    reasons = _reasons(
        pos.covered,
        [
            (HELD_OUT, catalog.heldout_track_mask),
            (f"unknown {what}", codes < 0),
            (f"only track of its {what}", np.ones(n, bool)),
        ],
    )
    per_anchor = size[codes[pos.anchors]] - 1
    pos.stats = compute_stats(pos, catalog, reasons, per_anchor, f"other tracks of the anchor's {what}")
    return pos


@_registered("artist")
def _build_artist(catalog: Catalog, params: StrategyParams) -> Positives:
    return _build_group(catalog, catalog.artist, "artist")


@_registered("album")
def _build_album(catalog: Catalog, params: StrategyParams) -> Positives:
    return _build_group(catalog, catalog.album, "album")


def _training_incidence(catalog: Catalog) -> sp.csr_matrix:
    """Training playlists as 0/1, restricted to trainable tracks (a second guard on the held-out)."""
    return binary_incidence(catalog.playlists, catalog.trainable)


def _playlist_reasons(catalog: Catalog, covered: np.ndarray, x: sp.csr_matrix, last: str) -> dict[str, int]:
    in_playlist = np.diff(x.tocsc().indptr) > 0
    return _reasons(
        covered,
        [(HELD_OUT, catalog.heldout_track_mask), (NO_PLAYLIST, ~in_playlist), (last, np.ones(len(catalog), bool))],
    )


@_registered("playlist")
def _build_playlist(catalog: Catalog, params: StrategyParams) -> Positives:
    """Positive = a random other track of a random training playlist holding the anchor."""
    x = _training_incidence(catalog)
    lengths = np.diff(x.indptr)
    usable = x[np.flatnonzero(lengths >= 2)]
    hop0, hop1 = _walk_hops(usable, len(catalog))
    anchors = np.flatnonzero(np.diff(hop0.indptr) > 0)
    pos = Positives("playlist", catalog.track_ids, anchors, (hop0, hop1))
    reasons = _playlist_reasons(catalog, pos.covered, x, "no other trainable track in its playlists")
    per_anchor = (hop0 @ (np.diff(usable.indptr) - 1).astype(np.float64))[anchors]
    pos.stats = compute_stats(
        pos,
        catalog,
        reasons,
        per_anchor,
        "co-occurring tracks summed over the anchor's playlists, a track counted once per shared playlist",
    )
    return pos


@_registered("cooc-topk")
def _build_cooc(catalog: Catalog, params: CoocParams) -> Positives:
    """Positive = one of the anchor's K most co-occurring trainable tracks."""
    k, norm, min_count, workers = params.k, params.norm, params.min_count, params.workers
    x = _training_incidence(catalog)
    neighbours = cooc_topk(x, k=k, norm=norm, min_count=min_count, workers=workers)
    anchors = np.flatnonzero(np.diff(neighbours.indptr) > 0)
    pos = Positives("cooc-topk", catalog.track_ids, anchors, (neighbours,))
    last = (
        "no other trainable track in its playlists"
        if min_count <= 1
        else f"no track co-occurring in {min_count}+ playlists"
    )
    reasons = _playlist_reasons(catalog, pos.covered, x, last)
    pos.stats = compute_stats(
        pos,
        catalog,
        reasons,
        np.diff(neighbours.indptr)[anchors],
        f"top-{k} co-occurring tracks by {norm} (fewer when fewer co-occur)",
    )
    return pos


def _vector_positives(
    catalog: Catalog,
    strategy: str,
    tracks: np.ndarray,
    vectors: np.ndarray,
    k: int,
    workers: int,
    exact_limit: int,
    nprobe: int,
    seed: int,
    what: str,
) -> Positives:
    """Positives = each track's K nearest others by cosine of ``vectors`` (rows of ``tracks``)."""
    n = len(catalog)
    ids, sims = nearest_neighbours(
        vectors, k, workers=workers, exact_limit=exact_limit, nprobe=nprobe, seed=seed, desc=f"{strategy} neighbours"
    )
    valid = ids >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    counts[tracks] = valid.sum(axis=1)
    np.cumsum(counts, out=indptr[1:])
    neighbours = sp.csr_matrix((sims[valid], tracks[ids[valid]].astype(np.int32), indptr), shape=(n, n))
    anchors = np.flatnonzero(counts > 0)
    pos = Positives(strategy, catalog.track_ids, anchors, (neighbours,))
    reasons = _playlist_reasons(catalog, pos.covered, _training_incidence(catalog), "no other track with a vector")
    search = "exact" if len(tracks) <= exact_limit else f"IVF, nprobe {nprobe}"
    pos.stats = compute_stats(
        pos, catalog, reasons, counts[anchors], f"top-{k} nearest tracks by cosine of {what} ({search})"
    )
    return pos


@_registered("track2vec")
def _build_track2vec(catalog: Catalog, params: Track2VecParams) -> Positives:
    """Positive = one of the anchor's K nearest trainable tracks in skip-gram embeddings of playlists."""
    p = params
    playlists = sp.csr_matrix(catalog.playlists.multiply(catalog.trainable[None, :]), dtype=np.int32)
    playlists.eliminate_zeros()
    context = catalog.context if p.use_context and catalog.context.shape[1] else None
    tracks, vectors, info = train_track2vec(
        playlists,
        context,
        dim=p.dim,
        epochs=p.epochs,
        window=p.window,
        negative=p.negative,
        sample=p.sample,
        pair_budget=p.pair_budget,
        seed=p.seed,
        workers=p.workers,
    )
    pos = _vector_positives(
        catalog, "track2vec", tracks, vectors, p.k, p.workers, p.exact_limit, p.nprobe, p.seed, "skip-gram vectors"
    )
    pos.stats["training"] = info
    return pos


@_registered("pmi-svd")
def _build_pmi_svd(catalog: Catalog, params: PmiSvdParams) -> Positives:
    """Positive = one of the anchor's K nearest trainable tracks in a truncated SVD of co-occurrence PMI."""
    p = params
    tracks, vectors, info = train_pmi_svd(
        _training_incidence(catalog),
        dim=p.dim,
        candidates=p.candidates,
        shift=p.shift,
        min_count=p.min_count,
        seed=p.seed,
        workers=p.workers,
    )
    pos = _vector_positives(
        catalog, "pmi-svd", tracks, vectors, p.k, p.workers, p.exact_limit, p.nprobe, p.seed, "PMI-SVD vectors"
    )
    pos.stats["training"] = info
    return pos


@_registered("theme")
def _build_theme(catalog: Catalog, params: ThemeParams) -> Positives:
    """Positive = another trainable track with the anchor's latent genre and one of its moods.

    An oracle for the study of what the playlist strategies can reach: the simulated listeners draw
    playlists around exactly such themes, so this is the positive a perfect playlist miner would find.
    It exists only for generated worlds (their ``world.json`` holds the latent truth).
    """
    world = params.world
    if not world:
        raise MixtapeError(
            "theme: needs the world's latent attributes, give world=<folder>/world.json (`mixtape pairs --world`)"
        )
    n = len(catalog)
    try:
        truth = read_latent(world, [str(t) for t in catalog.track_ids], allow_missing=True)
    except LatentDataError as err:
        raise MixtapeError(f"theme: {err}") from None
    genre, mood, missing = truth.genre, truth.moods, truth.missing
    # One group per (genre, mood): the anchor hops to one of its groups, then to another track of it.
    usable = catalog.trainable & (genre >= 0)
    n_moods = mood.shape[1]
    rows, cols = np.nonzero(mood & usable[:, None])
    group = genre[rows] * n_moods + cols
    size = np.bincount(group, minlength=int(genre.max(initial=0) + 1) * max(n_moods, 1))
    keep = size[group] >= 2
    membership = sp.csr_matrix((np.ones(int(keep.sum()), np.int8), (group[keep], rows[keep])), shape=(len(size), n))
    hop0, hop1 = _walk_hops(membership, n)
    anchors = np.flatnonzero(np.diff(hop0.indptr) > 0)
    pos = Positives("theme", catalog.track_ids, anchors, (hop0, hop1))
    absent = np.zeros(n, dtype=bool)
    absent[genre < 0] = True
    reasons = _reasons(
        pos.covered,
        [
            (HELD_OUT, catalog.heldout_track_mask),
            ("not in world.json", absent),
            ("no other track of its genre and moods", np.ones(n, bool)),
        ],
    )
    if missing:
        log.warning("theme: %d catalogue track(s) are not in %s, e.g. %s", len(missing), world, ", ".join(missing[:3]))
    per_anchor = (hop0 @ (np.diff(hop1.indptr) - 1).astype(np.float64))[anchors]
    pos.stats = compute_stats(
        pos, catalog, reasons, per_anchor, "tracks sharing the anchor's genre and a mood, summed over its moods"
    )
    return pos


@_registered("mix")
def _build_mix(catalog: Catalog, params: MixParams, **part_params: Any) -> Positives:
    """Positive = from one of several strategies, chosen per anchor in proportion to the weights of
    the strategies that have a positive for it (an anchor covered by one part always uses it)."""
    weights = params.mix
    parts = tuple(build_positives(catalog, name, **part_params) for name in weights)
    anchors = np.unique(np.concatenate([p.anchors for p in parts]))
    used = {k: v for p in parts for k, v in p.params.items()}
    pos = Positives(
        "mix",
        catalog.track_ids,
        anchors,
        params={"mix": weights, **used},
        parts=parts,
        weights=np.array(list(weights.values())),
    )
    reasons = _reasons(
        pos.covered, [(HELD_OUT, catalog.heldout_track_mask), ("no positive in any part", np.ones(len(catalog), bool))]
    )
    per_anchor = np.stack([p.covered[anchors] for p in parts]).sum(axis=0)
    pos.stats = compute_stats(pos, catalog, reasons, per_anchor, "strategies with a positive for the anchor")
    return pos


def strategy_params(strategy: str) -> dict[str, Any]:
    """The parameters a strategy takes, with their defaults."""
    return params_model(strategy)().model_dump(mode="json")


def build_positives(catalog: Catalog, strategy: str, **params: Any) -> Positives:
    """Build one strategy's positives from the catalogue, with statistics in ``.stats`` (also logged).

    Parameters any strategy takes may be passed to all (so one set of options serves a ``mix``); a
    parameter no strategy takes, or a value its model refuses, is an error. The resolved parameters
    of this strategy are recorded in ``.params``.
    """
    entry = REGISTRY.get(strategy)
    if entry is None:
        raise MixtapeError(f"unknown pair strategy {strategy!r} (choose among {', '.join(REGISTRY)})")
    resolved = resolve_params(strategy, params)
    typed = entry.params.model_validate({k: v for k, v in resolved.items() if k in entry.params.model_fields})
    if strategy == "mix":
        pos = _build_mix(catalog, typed, **{k: v for k, v in params.items() if k != "mix"})
    else:
        pos = entry.build(catalog, typed)
        pos.params = typed.model_dump(mode="json")
        pos.stats["params"] = pos.params
    st = pos.stats
    share = st.get("same_artist_share")
    log.info(
        "pairs: %s: %d anchors with a positive (%.1f%% of trainable tracks), %s",
        strategy,
        st["anchors"],
        100 * st["anchor_share_of_trainable"],
        "same-artist share n/a" if share is None else f"{100 * share:.1f}% of positives by the anchor's artist",
    )
    return pos
