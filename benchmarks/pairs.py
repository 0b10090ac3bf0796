"""Pair strategies at Million Playlist Dataset scale: build `playlist`, `cooc-topk`, `track2vec` and
`pmi-svd` on a generated MPD-shaped catalogue and report times (wall and process CPU) and peak memory.

    .venv/bin/python benchmarks/pairs.py --playlists 1000000 --tracks 2260000

The catalogue (not timed): distinct tracks per playlist log-normal (median 50, σ 0.77) clipped to
[5, 250] (mean about 66, as in the MPD), track popularity Zipf-like (weight 1/(rank + 150); the MPD's top track
is in 0.07% of its entries), and playlists themed: 70% of each playlist's entries come from
one of ``tracks/1000`` communities (each with its own popularity skew), the rest from everywhere.
Artists are runs of about 8 tracks within a community. The last line is machine-readable:

    RESULT playlists=... tracks=... cooc_topk_s=X peak_gib=Y playlist_s=Z track2vec_s=W pmi_svd_s=V ...

(``*_cpu_s``: the process's CPU seconds, user + system, over all threads; on a shared machine the
wall times are inflated by the other load, the CPU times much less.)
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mixtape.catalog import Catalog
from mixtape.pairs import build_positives


def peak_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """CPU time of this process so far, user + system, summed over its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def generate(n_playlists: int, n_tracks: int, seed: int = 0, chunk: int = 50_000) -> Catalog:
    """An MPD-shaped catalogue (see the module docstring), built in chunks of playlists to bound memory."""
    rng = np.random.default_rng(seed)
    weight = 1.0 / (np.arange(n_tracks) + 150.0)
    popularity_rank = rng.permutation(n_tracks)  # track i has weight[popularity_rank[i]]
    w = weight[popularity_rank]
    n_comm = max(1, n_tracks // 1000)
    community = rng.integers(0, n_comm, size=n_tracks)
    order = np.argsort(community, kind="stable")  # tracks grouped by community
    cum = np.cumsum(w[order])
    seg_end = np.searchsorted(community[order], np.arange(n_comm), side="right")
    seg_start = np.concatenate([[0], seg_end[:-1]])
    base = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    mass = np.where(seg_end > seg_start, cum[np.maximum(seg_end - 1, 0)] - base, 0.0)
    comm_mass = np.bincount(community, weights=w, minlength=n_comm)
    artist = np.empty(n_tracks, dtype=np.int32)
    artist[order] = np.arange(n_tracks) // 8
    blocks = []
    for start in range(0, n_playlists, chunk):
        n = min(chunk, n_playlists - start)
        target = np.clip(np.round(np.exp(rng.normal(np.log(50.5), 0.77, size=n))), 5, 250).astype(np.int64)
        theme = rng.choice(n_comm, size=n, p=comm_mass / comm_mass.sum())
        m = sp.csr_matrix((n, n_tracks), dtype=np.int32)
        for _ in range(6):  # draw, merge repeats, draw again what repeats took away
            deficit = target - np.diff(m.indptr)
            if not deficit.any():
                break
            rows = np.repeat(np.arange(n), deficit)
            in_theme = rng.random(len(rows)) < 0.7
            u = rng.random(len(rows))
            value = np.where(in_theme, base[theme[rows]] + u * mass[theme[rows]], u * cum[-1])
            cols = order[np.minimum(np.searchsorted(cum, value, side="right"), n_tracks - 1)]
            m = m + sp.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(n, n_tracks))
            m.data[:] = 1
        blocks.append(m)
    playlists = sp.vstack(blocks, format="csr")
    ids = np.array([f"t{i}" for i in range(n_tracks)], dtype=object)
    return Catalog.from_arrays(ids, playlists, artist=artist, album=np.arange(n_tracks, dtype=np.int32) // 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--playlists", type=int, default=100_000)
    ap.add_argument("--tracks", type=int, default=226_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--track2vec-epochs", type=int, default=5)
    ap.add_argument("--track2vec-pair-budget", type=float, default=None, help="default: the strategy's own")
    ap.add_argument("--skip-track2vec", action="store_true", help="report track2vec_s=nan")
    ap.add_argument("--skip-pmi-svd", action="store_true", help="report pmi_svd_s=nan")
    ap.add_argument("--skip-cooc", action="store_true", help="report cooc_topk_s=nan (and playlist_s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    t0 = time.perf_counter()
    catalog = generate(args.playlists, args.tracks, args.seed)
    x = catalog.playlists
    lengths = np.diff(x.indptr)
    print(
        f"generated in {time.perf_counter() - t0:.1f}s (not timed): {x.shape[0]:,} playlists, {x.nnz:,} entries, "
        f"mean length {lengths.mean():.1f}, max {lengths.max()}, Σ L² = "
        f"{float((lengths.astype(np.float64) ** 2).sum()):.3g}, "
        f"{int((np.bincount(x.indices, minlength=x.shape[1]) > 0).sum()):,} tracks in a playlist; peak "
        f"{peak_gib():.2f} GiB",
        flush=True,
    )
    t2v = {"k": args.k, "workers": args.workers, "epochs": args.track2vec_epochs}
    if args.track2vec_pair_budget is not None:
        t2v["pair_budget"] = args.track2vec_pair_budget
    skip = {"playlist": args.skip_cooc, "cooc_topk": args.skip_cooc, "track2vec": args.skip_track2vec}
    skip["pmi_svd"] = args.skip_pmi_svd
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, strategy, params in (
        ("playlist", "playlist", {}),
        ("cooc_topk", "cooc-topk", {"k": args.k, "workers": args.workers}),
        ("track2vec", "track2vec", t2v),
        ("pmi_svd", "pmi-svd", {"k": args.k, "workers": args.workers}),
    ):
        if skip[name]:
            times[name] = cpu[name] = float("nan")
            continue
        t, c = time.perf_counter(), cpu_seconds()
        pos = build_positives(catalog, strategy, **params)
        times[name], cpu[name] = time.perf_counter() - t, cpu_seconds() - c
        share = pos.stats.get("same_artist_share")
        print(
            f"{strategy}: {times[name]:.1f}s wall, {cpu[name]:.1f}s CPU, {len(pos.anchors):,} anchors, same-artist "
            f"share {share}, peak so far {peak_gib():.2f} GiB",
            flush=True,
        )
        del pos
    print(
        f"RESULT playlists={args.playlists} tracks={args.tracks} cooc_topk_s={times['cooc_topk']:.1f} "
        f"peak_gib={peak_gib():.2f} playlist_s={times['playlist']:.1f} track2vec_s={times['track2vec']:.1f} "
        f"pmi_svd_s={times['pmi_svd']:.1f} cooc_topk_cpu_s={cpu['cooc_topk']:.1f} "
        f"track2vec_cpu_s={cpu['track2vec']:.1f} pmi_svd_cpu_s={cpu['pmi_svd']:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
