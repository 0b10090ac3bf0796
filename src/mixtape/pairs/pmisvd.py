"""pmi-svd: track vectors from a truncated SVD of the positive PMI matrix of playlist co-occurrence.

Skip-gram with negative sampling implicitly factorises a word-context PMI matrix shifted by log k
(Levy & Goldberg, "Neural Word Embedding as Implicit Matrix Factorization", 2014); factorising the
matrix explicitly is the cheap alternative to track2vec. Here the "context" of a track is every track
sharing a playlist with it, so the matrix is PMI(a, b) = log(c_ab·P / (n_a·n_b)) (c_ab: playlists
holding both, n_a: playlists holding a, P: playlists). The full matrix is far too large at Million
Playlist Dataset scale, so each track keeps only its ``candidates`` most co-occurring partners,
computed in bounded memory by :func:`mixtape.pairs.cooc.cooc_topk`, weighted by PMI; the shifted positive part
max(PMI − log shift, 0) of those, made symmetric, is factorised by a seeded randomised SVD
(Halko, Martinsson & Tropp 2011), and a track's vector is U·√Σ (Levy, Goldberg & Dagan 2015).
Neighbours are then found exactly as track2vec's (:func:`mixtape.pairs.track2vec.nearest_neighbours`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger, progress
from mixtape.pairs.cooc import binary_incidence, cooc_topk, pmi

log = get_logger(__name__)

OVERSAMPLE = 10  # extra random directions of the randomised SVD beyond ``dim``
POWER_ITERATIONS = 2  # subspace iterations (4 were no better on held-out playlists, and twice the time)


def sppmi_matrix(
    x: sp.spmatrix, candidates: int = 20, shift: float = 1.0, min_count: int = 1, workers: int = 2
) -> sp.csr_matrix:
    """The symmetric [tracks × tracks] shifted positive PMI matrix, max(PMI − log shift, 0), restricted
    to each track's ``candidates`` most co-occurring partners (an entry kept by either track is kept).

    Partners are chosen by count, with cooc-topk's fast path (single co-occurrences that cannot rank
    are dropped before ranking), then weighted by PMI. Choosing them by PMI instead ranks every entry
    of XᵀX (rare partners seen once score highest, so nothing can be dropped early): many times slower
    at Million Playlist Dataset scale (docs/pairs.md).
    """
    if shift < 1:
        raise MixtapeError(f"pmi-svd: shift must be at least 1 (log shift is subtracted from PMI), got {shift}")
    x = binary_incidence(x)
    top = cooc_topk(x, k=candidates, norm="count", min_count=min_count, workers=workers)
    track_count = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    rows = np.repeat(np.arange(top.shape[0]), np.diff(top.indptr))
    weights = pmi(top.data, track_count[rows], track_count[top.indices], x.shape[0])
    top.data = np.maximum(weights - np.log(shift), 0).astype(np.float32)
    del rows, weights
    top.eliminate_zeros()
    sym = top.maximum(top.T).tocsr()
    sym.sort_indices()
    return sym


def _row_block(a: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows [start, stop) of ``a`` as views of its arrays (slicing would copy them on every product)."""
    lo, hi = int(a.indptr[start]), int(a.indptr[stop])
    indptr = a.indptr[start : stop + 1] - lo
    return sp.csr_matrix((a.data[lo:hi], a.indices[lo:hi], indptr), shape=(stop - start, a.shape[1]), copy=False)


def _product(a: sp.csr_matrix, blocks: list[tuple[int, int]], q: np.ndarray, pool: ThreadPoolExecutor | None) -> Any:
    """``a @ q`` by row blocks on the pool (scipy's sparse kernels release the GIL)."""
    if pool is None:
        return np.asarray(a @ q, dtype=np.float32)
    out = np.empty((a.shape[0], q.shape[1]), dtype=np.float32)

    def run(block: tuple[int, int]) -> None:
        out[block[0] : block[1]] = _row_block(a, *block) @ q

    list(pool.map(run, blocks))
    return out


def randomized_svd_symmetric(
    a: sp.csr_matrix, dim: int, seed: int = 0, workers: int = 2, power: int = POWER_ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``dim`` leading singular triplets of a symmetric sparse matrix: (U [n × dim], σ [dim]).

    Randomised range finder with ``power`` subspace iterations (each re-orthonormalised), seeded, in
    float32; deterministic for a seed whatever ``workers`` (row blocks are summed in a fixed order).
    """
    n = a.shape[0]
    width = min(n, dim + OVERSAMPLE)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, width), dtype=np.float32)
    cuts = np.linspace(0, n, max(1, workers) + 1).astype(np.int64)
    blocks = [(int(s), int(e)) for s, e in zip(cuts[:-1], cuts[1:], strict=True) if e > s]
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 and len(blocks) > 1 else None
    try:
        steps = progress(range(power + 1), desc="pmi-svd factorisation", total=power + 1, unit="pass")
        for _ in steps:
            q, _r = np.linalg.qr(_product(a, blocks, q, pool))
            q = np.ascontiguousarray(q, dtype=np.float32)
        b = _product(a, blocks, q, pool).T  # Qᵀ A (A symmetric) [width × n]
    finally:
        if pool is not None:
            pool.shutdown()
    u_small, sigma, _vt = np.linalg.svd((b @ b.T).astype(np.float64))  # B Bᵀ = U_B Σ² U_Bᵀ, with B = QᵀA
    sigma = np.sqrt(np.maximum(sigma, 0))
    u = q @ u_small[:, :dim].astype(np.float32)
    # A sign convention, so that a seed gives the same vectors on every machine: the largest entry positive.
    flip = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])
    return u * np.where(flip == 0, 1, flip).astype(np.float32), sigma[:dim].astype(np.float32)


def train_pmi_svd(
    playlists: sp.spmatrix,
    dim: int = 64,
    candidates: int = 20,
    shift: float = 1.0,
    min_count: int = 1,
    seed: int = 0,
    workers: int = 2,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(track indices that got a vector, their vectors [n × dim] float32 = U·√σ, what was done)."""
    x = binary_incidence(playlists)
    if not (np.diff(x.indptr) >= 2).any():
        raise MixtapeError("pmi-svd: no playlist with two or more entries to learn from")
    log.info(
        "pmi-svd: %d playlists, %d entries, %d PMI partners per track, shift %g, dim %d, %d workers",
        x.shape[0],
        x.nnz,
        candidates,
        shift,
        dim,
        workers,
    )
    m = sppmi_matrix(x, candidates=candidates, shift=shift, min_count=min_count, workers=workers)
    tracks = np.flatnonzero(np.diff(m.indptr) > 0)
    if len(tracks) < 2:
        raise MixtapeError(
            "pmi-svd: fewer than two tracks have a positive PMI partner "
            f"(shift {shift:g}, min_count {min_count}); lower them or give more playlists"
        )
    nnz = m.nnz
    u, sigma = randomized_svd_symmetric(m, min(dim, len(tracks)), seed=seed, workers=workers)  # empty rows: zero
    del m
    vectors = np.ascontiguousarray(u[tracks] * np.sqrt(sigma)[None, :], dtype=np.float32)
    del u
    if vectors.shape[1] < dim:
        vectors = np.pad(vectors, ((0, 0), (0, dim - vectors.shape[1])))
    info = {
        "pmi_entries": int(nnz),
        "tracks_with_vector": len(tracks),
        "singular_values": [float(s) for s in sigma[: min(8, len(sigma))]],
    }
    return tracks.astype(np.int64), vectors, info
