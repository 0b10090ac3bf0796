"""Each track's K most co-occurring tracks, at Million Playlist Dataset scale, in bounded memory.

The full co-occurrence matrix C = XᵀX (X: playlist × track incidence) never exists: it is computed
in blocks of track rows, ``C[block] = Xᵀ[block] @ X``, and each block is reduced to its top K per
row at once. The cost of a row is Σ over its playlists of their lengths (a playlist of length L
costs L² overall, so a few very long playlists dominate): blocks are cut by that cost, not by a
fixed row count, which bounds the memory of every block whatever the popularity of its tracks.
Blocks run on a thread pool (scipy's sparse product releases the GIL). The product skips scipy's
counting pass: a block's cost already bounds its number of entries, so the arrays are allocated from
it and filled in one pass (``block_product``).

Under the ``count`` score, a row with K+1 entries counted twice or more cannot rank a single
co-occurrence in its top K+1, so those entries (most of a popular track's row) are dropped before
ranking. Top-K per row needs no sort of the block: scores become exact int64 keys (score bits, then the
column, so ties go to the lower track index); rows of similar length are stacked into a dense array
and partitioned along the row for their K-th key, so the work is linear in the block's entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools

from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger, progress

log = get_logger(__name__)

NORMS = ("count", "pmi", "jaccard")


def binary_incidence(matrix: sp.spmatrix, columns: np.ndarray | None = None) -> sp.csr_matrix:
    """A float32 0/1 copy of a playlist matrix (positions dropped), restricted to ``columns`` if given."""
    x = sp.csr_matrix(matrix, copy=True)
    x.sum_duplicates()
    if columns is not None and not np.all(columns):
        x = sp.csr_matrix(x.multiply(np.asarray(columns, dtype=bool)[None, :]))
    x.eliminate_zeros()
    x.sort_indices()
    x.data = np.ones(x.nnz, dtype=np.float32)
    return x


def _segments(starts: np.ndarray, lengths: np.ndarray, width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For rows given by (start, length): every entry's position, and (when ``width`` is given) its
    flat index in a dense [rows × width] array holding one row per line."""
    lengths = lengths.astype(np.int64)
    ramp = np.arange(int(lengths.sum()), dtype=np.int64)
    excl = np.cumsum(lengths) - lengths
    entry = np.repeat(starts.astype(np.int64) - excl, lengths) + ramp
    flat = np.repeat(np.arange(len(lengths), dtype=np.int64) * width - excl, lengths) + ramp if width else ramp
    return entry, flat


def pmi(counts: np.ndarray, anchor_n: np.ndarray, other_n: np.ndarray, n_playlists: int) -> np.ndarray:
    """Pointwise mutual information of co-occurrence, log(c_ab·P / (n_a·n_b)), in float64 (c_ab: playlists
    holding both tracks, n_a, n_b: playlists holding each, P: playlists)."""
    return np.log(np.asarray(counts, dtype=np.float64) * n_playlists / (anchor_n * other_n))


def score_keys(scores: np.ndarray, cols: np.ndarray, nonnegative: bool = False) -> np.ndarray:
    """Exact int64 sort keys: the float32 score's bits (ordered like the scores) above the inverted
    column, so keys are distinct within a row and ties go to the lower track index. ``nonnegative``:
    the caller knows no score is below zero (counts, Jaccard), which saves a pass."""
    key = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32).astype(np.int64)
    negative = np.zeros(0, dtype=np.int64) if nonnegative else np.flatnonzero(key < 0)
    if len(negative):  # sign-magnitude → two's complement order (PMI can be negative)
        key[negative] = -(key[negative] & 0x7FFFFFFF) - 1
    key <<= 32
    key |= np.invert(np.ascontiguousarray(cols, dtype=np.int32).view(np.uint32))
    return key


def topk_rows(indptr: np.ndarray, keys: np.ndarray, k: int, growth: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """(row, entry position) of each CSR row's K largest keys (all entries of shorter rows).

    Keys must be distinct within a row (``score_keys``). Rows longer than K are grouped by length
    (classes ``growth`` apart) into dense [rows × width] arrays padded with the smallest key;
    ``np.partition`` along the rows gives each row's K-th key, and one comparison keeps the entries
    at or above it: linear in the number of entries, no sort.
    """
    lengths = np.diff(indptr).astype(np.int64)
    row_of = []
    pos = []
    short = np.flatnonzero((lengths > 0) & (lengths <= k))
    if len(short):
        row_of.append(np.repeat(short, lengths[short]))
        pos.append(_segments(indptr[short], lengths[short])[0])
    long_rows = np.flatnonzero(lengths > k)
    if len(long_rows):
        width_class = np.floor(np.log(lengths[long_rows]) / np.log(growth)).astype(np.int64)
        for w in np.unique(width_class):
            rows = long_rows[width_class == w]
            lens = lengths[rows]
            width = int(lens.max())
            entry, flat = _segments(indptr[rows], lens, width)
            row_keys = keys[entry]
            dense = np.full((len(rows), width), np.iinfo(np.int64).min, dtype=np.int64)
            dense.ravel()[flat] = row_keys
            dense.partition(width - k, axis=1)
            threshold = dense[:, width - k]
            del dense
            hit = np.flatnonzero(row_keys >= np.repeat(threshold, lens))
            row_of.append(np.repeat(rows, lens)[hit] if len(rows) > 1 else np.full(len(hit), rows[0]))
            pos.append(entry[hit])
    if not pos:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(row_of), np.concatenate(pos)


def block_product(xt_block: sp.csr_matrix, x: sp.csr_matrix, bound: int) -> sp.csr_matrix:
    """``xt_block @ x`` for a product known to hold at most ``bound`` entries (the block's cost), in
    one pass: scipy's ``@`` first runs a whole counting pass to size its output (~20% of the time).
    Uses scipy's ``csr_matmat`` kernel, whose signature has been stable for over a decade; without
    it (another scipy), the plain product."""
    kernel = getattr(_sparsetools, "csr_matmat", None)
    if kernel is None:
        return sp.csr_matrix(xt_block @ x)
    n_rows, n_cols = xt_block.shape[0], x.shape[1]
    index = np.int64 if max(bound, x.nnz, n_cols) >= np.iinfo(np.int32).max else np.int32
    indptr = np.empty(n_rows + 1, dtype=index)
    indices = np.empty(max(bound, 1), dtype=index)
    data = np.empty(max(bound, 1), dtype=np.float32)
    kernel(
        n_rows,
        n_cols,
        xt_block.indptr.astype(index, copy=False),
        xt_block.indices.astype(index, copy=False),
        xt_block.data.astype(np.float32, copy=False),
        x.indptr.astype(index, copy=False),
        x.indices.astype(index, copy=False),
        x.data.astype(np.float32, copy=False),
        indptr,
        indices,
        data,
    )
    nnz = int(indptr[-1])
    return sp.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(n_rows, n_cols))


def _without_outranked_singles(c: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """``c`` without the entries counted once in rows that hold ``keep`` or more entries counted at least
    twice: by count, none of those can reach the row's top ``keep``. Most of a popular track's row is
    single co-occurrences, so the keys and the partition that follow work on far fewer entries.

    Per-row counts come from one ``reduceat`` over a byte mask and the kept entries from one index
    array, with no per-entry row number: 5x less time than the first version, the same result."""
    if not c.nnz:
        return c
    lengths = np.diff(c.indptr)
    strong = c.data >= 2
    # reduceat sums each start to the next; the empty rows at the end have no valid start and stay 0, and an
    # empty row inside gets the next entry instead of 0, zeroed after.
    until = int(np.searchsorted(c.indptr[:-1], c.nnz, side="left"))
    n_strong = np.zeros(c.shape[0], dtype=np.int32)
    n_strong[:until] = np.add.reduceat(strong.view(np.uint8), c.indptr[:until], dtype=np.int32)
    n_strong[lengths == 0] = 0
    full = n_strong >= keep
    if not full.any():
        return c
    kept = np.repeat(full, lengths)
    np.logical_not(kept, out=kept)
    kept |= strong
    pos = np.flatnonzero(kept)
    indptr = np.zeros(c.shape[0] + 1, dtype=c.indptr.dtype)
    np.cumsum(np.where(full, n_strong, lengths), out=indptr[1:])
    return sp.csr_matrix((c.data.take(pos), c.indices.take(pos), indptr), shape=c.shape)


def _block_topk(
    xt_block: sp.csr_matrix,
    x: sp.csr_matrix,
    first_row: int,
    k: int,
    norm: str,
    min_count: int,
    track_count: np.ndarray,
    n_playlists: int,
    bound: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-K of one block of rows of C = XᵀX: (global row, column, score), rows in order, best first.

    The diagonal (a track with itself) is a maximum of its row under every normalisation (a track
    co-occurs with itself in all its n playlists; its PMI log(P/n) and Jaccard 1 bound the row), so
    K+1 are kept per row and the diagonal is removed from those few, never from the whole block.
    """
    c = block_product(xt_block, x, bound)
    if norm == "count":
        c = _without_outranked_singles(c, k + 1)
    counts = c.data
    if norm == "count":
        scores = counts
    else:
        # float64 here, so that equal scores reached by different counts round to the same float32
        anchor_n = np.repeat(track_count[first_row : first_row + c.shape[0]], np.diff(c.indptr))
        other_n = track_count[c.indices]
        counts64 = counts.astype(np.float64)
        if norm == "pmi":
            scores = pmi(counts64, anchor_n, other_n, n_playlists).astype(np.float32)
        else:  # jaccard
            scores = (counts64 / (anchor_n + other_n - counts64)).astype(np.float32)
        del anchor_n, other_n, counts64
    if min_count > 1:
        scores = np.where(counts >= min_count, scores, np.float32(-np.inf))
    keys = score_keys(scores, c.indices, nonnegative=norm != "pmi" and min_count <= 1)  # -inf marks rare pairs
    rows, pos = topk_rows(c.indptr, keys, k + 1)
    cols, best, keys = c.indices[pos].astype(np.int64), scores[pos], keys[pos]
    rows = rows + first_row
    keep = (cols != rows) & np.isfinite(best)
    rows, cols, best, keys = rows[keep], cols[keep], best[keep], keys[keep]
    order = np.lexsort((-keys, rows))  # by row, then score descending (ties: lower track index)
    rows, cols, best = rows[order], cols[order], best[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, np.int64)
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    top = rank < k
    return rows[top], cols[top], best[top].astype(np.float32)


def row_blocks(cost: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Cut rows [0, n) into consecutive blocks whose summed cost stays near ``budget``
    (a row costlier than the budget gets a block of its own); rows of zero cost are skipped."""
    active = np.flatnonzero(cost > 0)
    if not len(active):
        return []
    cum = np.cumsum(cost[active], dtype=np.float64)
    cut = np.searchsorted(cum, np.arange(budget, cum[-1] + budget, budget), side="right")
    cut = np.unique(np.clip(cut, 1, len(active)))
    starts = np.concatenate([[0], cut[:-1]])
    return [(int(active[s]), int(active[e - 1]) + 1) for s, e in zip(starts, cut, strict=True) if e > s]


def cooc_topk(
    x: sp.spmatrix,
    k: int = 10,
    norm: str = "count",
    min_count: int = 1,
    workers: int = 1,
    block_cost: float = 2e7,
) -> sp.csr_matrix:
    """[n_tracks × n_tracks] CSR: each track's K best co-occurring tracks, scores as data (float32).

    ``x`` is a playlist × track incidence matrix (any non-zero counts once). Scores: ``count`` (the
    number of playlists holding both), ``pmi`` (log of count·P / (n_a·n_b), favours rarer tracks) or
    ``jaccard`` (count / (n_a + n_b − count)); both temper tracks that are everywhere. Pairs seen in
    fewer than ``min_count`` playlists are ignored. Rows come ordered by score, best first, ties
    going to the lower track index, so the result does not depend on blocks or threads.
    """
    if norm not in NORMS:
        raise MixtapeError(f"unknown co-occurrence normalisation {norm!r} (expected one of {', '.join(NORMS)})")
    if k < 1:
        raise MixtapeError(f"cooc-topk: k must be at least 1, got {k}")
    x = binary_incidence(x)
    n_playlists, n_tracks = x.shape
    xt = x.T.tocsr()
    track_count = np.diff(xt.indptr).astype(np.float64)
    lengths = np.diff(x.indptr).astype(np.float64)
    cost = xt @ lengths  # per track: Σ lengths of its playlists, an upper bound on its row of C
    blocks = row_blocks(cost, block_cost)
    log.info(
        "cooc-topk: %d playlists, %d tracks, %.3g multiply-adds in %d blocks, %d threads",
        n_playlists,
        n_tracks,
        cost.sum(),
        len(blocks),
        workers,
    )

    def run(block: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = block
        bound = int(cost[a:b].sum())  # multiply-adds of the block: at least its number of entries
        return _block_topk(xt[a:b], x, a, k, norm, min_count, track_count, n_playlists, bound)

    def results() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if workers <= 1:
            yield from map(run, blocks)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                yield from pool.map(run, blocks)

    parts = list(progress(results(), desc="cooc-topk", total=len(blocks), unit="block"))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    scores = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
    indptr = np.zeros(n_tracks + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_tracks), out=indptr[1:])
    return sp.csr_matrix((scores, cols.astype(np.int32), indptr), shape=(n_tracks, n_tracks))
