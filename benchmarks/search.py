"""Similar-track search at collection scale: build an index over N generated D-dim track embeddings
and measure build time, memory, recall@10 against exact search, and single-query latency.

    .venv/bin/python benchmarks/search.py --n 1000000 --dim 1280

    .venv/bin/python benchmarks/search.py --n 1000000 --dim 1280 --kind ivf      # IVF-Flat, for comparison

It runs the real code path: the vectors are written as a `mixtape embed` embeddings folder,
`build_index` builds (kind chosen from the size as `mixtape index` chooses it: IVF above 100,000 tracks,
IVF-PQ with exact re-ranking when the float32 vectors exceed 2 GiB, i.e. above 419,430 tracks of 1280
dims; nprobe (and the IVF-PQ shortlist) tuned to recall@10 >= 0.95 on a sample of collection tracks),
and queries go through `SimilarIndex.search_vector`, as `mixtape search` and the web server's do (one
query at a time, warm, after 50 warm-up queries).

Vectors (generation not timed): music embeddings have low intrinsic dimension and nested groups
(genre > style > artist), so points are drawn from a two-level Gaussian mixture in a 64-d latent space
(``n/5000`` groups, each with 50 sub-groups, sub-group offset 0.5, point noise ``--spread`` 0.6, so that
sub-groups overlap and a track's nearest neighbours are not all in one IVF list), mapped to D
dimensions by a fixed random linear map, plus isotropic noise of 5% of the signal scale. Recall is
measured on fresh queries from the same distribution (not in the collection) against exact
brute-force search: a result counts when its true cosine (recomputed from the float32 embeddings, so
an IVF-PQ index's float16 re-ranking is judged by what it returns, not by the score it reports) is at
least the exact 10th score (ties count as hits).

Memory (``peak_gib`` is the peak resident memory of the whole process, generation included): the
vectors are generated and written to the embeddings folder in blocks of 50,000 with plain writes
(pages of a written memory map would count as resident), and every later pass reads that file in
blocks or row by row. IVF-Flat then holds N x D x 4 bytes (5.1 GB at 1M x 1280); IVF-PQ holds its codes
(160 bytes per track at 1280 dims) and centroids, and re-scores each shortlist from the float16 vectors
in its folder with positioned reads, which the OS page cache serves. The last line is machine-readable:

    RESULT n=... dim=... kind=... build_s=... recall10=... p50_ms=... p99_ms=... peak_gib=... open_rss_gib=...
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mixtape.search import IndexSettings, SimilarIndex, TrackMeta, build_index
from mixtape.search.embeddings import write_embeddings
from mixtape.search.index import RERANK_FILE, exact_top_k, recall_at_k, unit_rows

LATENT = 64
SUBGROUPS = 50


def peak_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_gib() -> float:
    """Resident memory of this process now (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        return float("nan")


class Generator:
    """The two-level mixture of the module docstring; chunk ``c`` is the same whenever it is drawn."""

    def __init__(self, n: int, dim: int, seed: int, spread: float) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.dim, self.seed, self.spread = n, dim, seed, spread
        self.groups = max(1, n // 5000)
        self.centres = rng.standard_normal((self.groups, LATENT)).astype(np.float32)
        self.sub = 0.5 * rng.standard_normal((self.groups, SUBGROUPS, LATENT)).astype(np.float32)
        self.proj = (rng.standard_normal((LATENT, dim)) / np.sqrt(LATENT)).astype(np.float32)
        self.noise = 0.05 * float(np.sqrt(1.0 + 0.25 + spread**2))

    def draw(self, count: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.integers(0, self.groups, count)
        s = rng.integers(0, SUBGROUPS, count)
        z = self.centres[g] + self.sub[g, s] + self.spread * rng.standard_normal((count, LATENT)).astype(np.float32)
        return z @ self.proj + self.noise * rng.standard_normal((count, self.dim)).astype(np.float32)

    def chunks(self, chunk: int = 50_000) -> Iterator[np.ndarray]:
        for c, start in enumerate(range(0, self.n, chunk)):
            yield self.draw(min(chunk, self.n - start), np.random.default_rng((self.seed, 1, c)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="tracks in the collection")
    ap.add_argument("--dim", type=int, default=1280, help="embedding size (EfficientNet-B0: 1280)")
    ap.add_argument("--kind", default="auto", choices=["auto", "flat", "ivf", "ivfpq", "hnsw"])
    ap.add_argument("--exact-max", type=int, default=100_000, help="largest collection indexed exactly")
    ap.add_argument("--queries", type=int, default=1000, help="single queries timed for p50/p99")
    ap.add_argument("--recall-queries", type=int, default=500, help="fresh queries for recall@10")
    ap.add_argument("--threads", type=int, default=None, help="FAISS/OpenMP threads (default: all cores)")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the embeddings and index are written (default: a temp folder, removed)",
    )
    ap.add_argument(
        "--spread",
        type=float,
        default=0.6,
        help="point noise within a sub-group, in latent units (sub-groups are 0.5 apart, groups 1)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MIXTAPE_NO_PROGRESS", "1")
    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mixtape-search-bench-"))
    try:
        gen = Generator(args.n, args.dim, args.seed, args.spread)
        t = time.perf_counter()
        ids = [f"t{i:07d}" for i in range(args.n)]
        meta = TrackMeta(
            ids,
            [None] * args.n,
            [None] * args.n,
            [f"/music/{t}.mp3" for t in ids],
            np.full(args.n, np.nan),
            [""] * args.n,
        )
        emb = write_embeddings(
            work / "emb",
            gen.chunks(),
            args.n,
            args.dim,
            meta,
            [],
            {"encoder": {"source": "benchmark", "fingerprint": "benchmark"}},
        )
        print(
            f"generated {args.n:,} x {args.dim} vectors in {time.perf_counter() - t:.1f} s "
            f"({emb.vectors.nbytes / 2**30:.2f} GiB on disk)",
            flush=True,
        )
        del meta, ids

        settings = IndexSettings(kind=args.kind, exact_max=args.exact_max, recall_queries=200, seed=args.seed)
        t = time.perf_counter()
        report = build_index(emb.path, work / "index", settings, force=True)
        build_s = time.perf_counter() - t
        print(report.summary(), flush=True)
        files = [work / "index" / name for name in ("index.faiss", RERANK_FILE)]
        index_gib = sum(f.stat().st_size for f in files if f.exists()) / 2**30

        before_open = rss_gib()
        index = SimilarIndex.open(work / "index")
        open_gib = rss_gib() - before_open
        queries = unit_rows(gen.draw(args.recall_queries, np.random.default_rng((args.seed, 2))))
        t = time.perf_counter()
        exact_s, _ = exact_top_k(emb.blocks(), queries, 10)
        exact_ms = (time.perf_counter() - t) * 1000 / len(queries)
        approx = [index.search_vector(q, 10) for q in queries]
        rows = np.array([[n.track.row for n in a] + [-1] * (10 - len(a)) for a in approx], dtype=np.int64)
        found = rows >= 0
        true = np.full(rows.shape, -np.inf, dtype=np.float32)  # the true cosine of each result
        true[found] = np.einsum("ij,ij->i", unit_rows(emb.rows(rows[found])), queries[np.nonzero(found)[0]])
        recall = recall_at_k(true, rows, exact_s)

        lat_q = unit_rows(gen.draw(args.queries + 50, np.random.default_rng((args.seed, 3))))
        for q in lat_q[:50]:
            index.search_vector(q, 10)
        times = np.empty(args.queries)
        for i, q in enumerate(lat_q[50:]):
            t = time.perf_counter()
            index.search_vector(q, 10)
            times[i] = time.perf_counter() - t
        p50, p99 = (float(np.percentile(times, p) * 1000) for p in (50, 99))
        params = ",".join(f"{k}={v}" for k, v in report.params.items()) or "exact"
        print(
            f"index {report.kind} ({params}): {index_gib:.2f} GiB on disk; build {build_s:.1f} s; opening it "
            f"added {open_gib:.2f} GiB resident (codes, centroids, tracks); peak RSS {peak_gib():.2f} GiB"
        )
        print(
            f"recall@10 {recall:.4f} on {len(queries)} fresh queries (build-time estimate "
            f"{report.recall10:.4f}); exact search {exact_ms:.1f} ms/query (blocked numpy)"
        )
        print(
            f"single-query latency over {args.queries} warm queries: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max "
            f"{times.max() * 1000:.2f} ms"
        )
        print(
            f"RESULT n={args.n} dim={args.dim} kind={report.kind} build_s={build_s:.1f} recall10={recall:.4f} "
            f"p50_ms={p50:.2f} p99_ms={p99:.2f} peak_gib={peak_gib():.2f} open_rss_gib={open_gib:.2f}"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
