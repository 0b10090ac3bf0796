"""A 2-D map of a collection: one point per indexed track, computed once when the index is built.

``layout.npy`` in the index folder holds float32 ``[N, 2]`` coordinates, row i = the index's track i
(``TrackInfo.row``), each axis scaled to [0, 1]; ``index.json`` lists it with its checksum under
``files`` like every other file of the folder, so a damaged map is reported by the same check.

Methods (``method``):

- ``umap``: UMAP (``umap-learn``, cosine metric) of the vectors, the map people expect: tracks of one
  style gather into islands. The vectors are first reduced to ``UMAP_PCA_DIMS`` dimensions by PCA (of
  the unit vectors), so UMAP's neighbour search does not pay for 1280 dimensions. A fixed seed makes
  it deterministic (and single-threaded), and its cost grows with N, so above ``UMAP_FIT_MAX`` tracks
  it is fitted on a random sample of that many and every other track is placed at the
  similarity-weighted mean of its ``PLACE_NEIGHBOURS`` nearest fitted tracks (where UMAP's own
  ``transform`` starts from; ``transform`` itself measured a few milliseconds a track: an hour per million).
- ``pca``: the first two principal components of the unit vectors (from a sample of at most
  ``PCA_FIT_MAX`` rows, then every row projected block by block): about a minute for a million
  1280-d tracks, but styles overlap more than under UMAP.
- ``auto``: ``umap`` when ``umap-learn`` is importable, else ``pca``.

Both read the vectors as row blocks (an array, memory-mapped or not), so memory stays bounded by the
fitted sample and one block. How long each takes on the development machine: docs/search.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from mixtape.errors import MixtapeError
from mixtape.fileio import ARRAY_FILE_ERRORS, get_logger

log = get_logger(__name__)

LAYOUT_FILE = "layout.npy"
LayoutMethod = Literal["auto", "umap", "pca", "none"]
#: UMAP is fitted on at most this many tracks; the others are placed beside their nearest fitted tracks.
UMAP_FIT_MAX = 20_000
#: The PCA that reduces the vectors before UMAP is computed from at most this many of its sample.
UMAP_AXES_FIT_MAX = 5_000
#: UMAP's optimisation epochs (its own default above 10,000 points; 500 below, 2.5x slower for the same map).
UMAP_EPOCHS = 200
#: A track outside UMAP's sample is placed at the weighted mean of this many nearest fitted tracks.
PLACE_NEIGHBOURS = 5
#: Tracks placed at once (one exact FAISS search of the fitted sample).
PLACE_BLOCK = 16_384
#: Dimensions the vectors are reduced to by PCA before UMAP.
UMAP_PCA_DIMS = 50
#: The principal components are computed from at most this many rows.
PCA_FIT_MAX = 20_000
#: Power iterations of the randomized SVD that finds the principal axes (with 30 extra columns, 4 gave
#: axes within cosine 0.99 of the exact ones on 20,000 clustered 1280-d vectors whose leading
#: components are nearly equal, the hard case).
SUBSPACE_ITERATIONS = 4
#: Rows read at once to be projected (PCA) or placed (beside UMAP's sample).
TRANSFORM_BLOCK = 65_536
#: UMAP's neighbourhood size (its default); smaller collections use n - 1.
UMAP_NEIGHBOURS = 15


class LayoutError(MixtapeError):
    """A layout that cannot be computed or read."""


def umap_available() -> bool:
    """Whether ``umap-learn`` can be imported (the ``map`` extra)."""
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_method(method: str) -> str:
    """The method ``method`` means here: ``auto`` becomes ``umap`` or ``pca``; ``umap`` without ``umap-learn``
    is an error naming the fix."""
    if method not in ("auto", "umap", "pca", "none"):
        raise LayoutError(f"layout: unknown method {method!r} (auto, umap, pca or none)")
    if method == "auto":
        return "umap" if umap_available() else "pca"
    if method == "umap" and not umap_available():
        raise LayoutError(
            "layout: umap needs umap-learn, which is not installed: `pip install 'mixtape[map]'` (or umap-learn), "
            "or use --layout pca"
        )
    return method


def compute_layout(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> np.ndarray:
    """The 2-D map of ``vectors`` (``[N, D]``, any float; a memory map is read in blocks): float32
    ``[N, 2]`` scaled to [0, 1] per axis, the same for the same vectors, method and seed."""
    if vectors.ndim != 2:
        raise LayoutError(f"layout: vectors of shape {list(vectors.shape)}; expected [tracks, dims]")
    n, dim = int(vectors.shape[0]), int(vectors.shape[1])

    def rows(idx: np.ndarray) -> np.ndarray:
        return np.asarray(vectors[np.asarray(idx, dtype=np.int64)], dtype=np.float32)

    def blocks(size: int) -> Iterator[np.ndarray]:
        for start in range(0, n, size):
            yield np.asarray(vectors[start : start + size], dtype=np.float32)

    layout, _ = layout_of(n, dim, rows, blocks, method, seed)
    return layout


def layout_of(
    n: int,
    dim: int,
    rows: Callable[[np.ndarray], np.ndarray],
    blocks: Callable[[int], Iterable[np.ndarray]],
    method: str = "auto",
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """The 2-D map of ``n`` vectors read through ``rows(idx)`` (a sample, rows in any order) and
    ``blocks(size)`` (every row, in order): the layout and the method used (``umap`` or ``pca``)."""
    used = resolve_method(method)
    if used == "none":
        raise LayoutError("layout: method 'none' computes no layout")
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32), used
    started = time.perf_counter()
    if used == "umap" and n <= UMAP_NEIGHBOURS + 1:
        used = "pca"  # UMAP needs more points than neighbours; a handful of tracks is drawn by PCA
    if used == "umap":
        raw = _umap(n, dim, rows, blocks, seed)
    else:
        raw = _pca(n, dim, rows, blocks, seed)
    layout = _unit_square(raw)
    log.debug("layout: %s of %d tracks in %.1f s", used, n, time.perf_counter() - started)
    return layout, used


def read_layout(index_folder: str | Path) -> np.ndarray | None:
    """``layout.npy`` of an index folder (float32 ``[N, 2]``), or None when the index has no layout.
    A file that is not such an array is a ``LayoutError``; its row count is checked by the caller
    (``SimilarIndex.layout`` checks it against the tracks)."""
    file = Path(index_folder) / LAYOUT_FILE
    try:
        array = np.load(file, allow_pickle=False)
    except FileNotFoundError:
        return None
    except ARRAY_FILE_ERRORS as err:
        raise LayoutError(
            f"{file}: not a readable .npy array ({type(err).__name__}: {err}); rebuild the index with `mixtape index`"
        ) from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[1] != 2 or array.dtype.kind != "f":
        what = f"{array.dtype} {list(array.shape)}" if isinstance(array, np.ndarray) else "an .npz archive"
        raise LayoutError(f"{file}: {what}, expected float32 [tracks, 2]; rebuild the index with `mixtape index`")
    return np.asarray(array, dtype=np.float32)


# --- methods -------------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted rows of a random sample of ``size`` of ``n`` (every row when ``size >= n``)."""
    if size >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _components(sample: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the first ``k`` principal axes (``[k, D]``) of unit rows, each axis's sign fixed so the
    result does not depend on the solver's sign choice.

    A randomized SVD (a seeded subspace iteration, Halko et al. 2011) when the sample is large: an exact
    SVD or eigendecomposition of 1280 dimensions costs seconds to tens of seconds on a busy 2-core
    machine, while ``k`` of them, all a map needs, cost a few products of the sample."""
    mean = sample.mean(axis=0)
    centred = np.asarray(sample - mean, dtype=np.float32)  # float32 products: twice as fast, precise enough
    n, dim = centred.shape
    width = k + 30  # oversampling: embeddings have many near-equal leading components
    if min(n, dim) <= 2 * width:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:k]
        if len(axes) < k:  # fewer rows or dimensions than components: zero axes
            axes = np.vstack([axes, np.zeros((k - len(axes), dim))])
    else:
        y = centred @ np.random.default_rng(seed).standard_normal((dim, width)).astype(np.float32)
        for _ in range(SUBSPACE_ITERATIONS):
            q, _ = np.linalg.qr(y)
            z, _ = np.linalg.qr(centred.T @ q)
            y = centred @ z
        q, _ = np.linalg.qr(y)
        _, _, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
        axes = vt[:k]
    signs = np.sign(axes[np.arange(k), np.argmax(np.abs(axes), axis=1)])
    axes = np.asarray(axes, dtype=np.float64)
    return mean, axes * np.where(signs == 0, 1.0, signs)[:, None]


def _project(blocks: Iterable[np.ndarray], mean: np.ndarray, axes: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((n, axes.shape[0]), dtype=np.float64)
    start = 0
    for block in blocks:
        out[start : start + len(block)] = (_unit(block) - mean) @ axes.T
        start += len(block)
    if start != n:
        raise LayoutError(f"internal: {start} rows projected, {n} expected")
    return out


def _pca(
    n: int, dim: int, rows: Callable[[np.ndarray], np.ndarray], blocks: Callable[[int], Iterable[np.ndarray]], seed: int
) -> np.ndarray:
    sample = _unit(rows(_sample(n, PCA_FIT_MAX, seed)))
    mean, axes = _components(sample, 2, seed)
    return _project(blocks(TRANSFORM_BLOCK), mean, axes, n)


def _umap(
    n: int, dim: int, rows: Callable[[np.ndarray], np.ndarray], blocks: Callable[[int], Iterable[np.ndarray]], seed: int
) -> np.ndarray:
    import warnings

    import umap

    fit_rows = _sample(n, UMAP_FIT_MAX, seed)
    fitted = _unit(rows(fit_rows))
    k = min(UMAP_PCA_DIMS, dim, len(fitted))
    step = max(1, -(-len(fitted) // UMAP_AXES_FIT_MAX))  # a spread subset of the (sorted) sample
    mean, axes = _components(fitted[::step], k, seed)
    reduced = ((fitted - mean) @ axes.T).astype(np.float32)
    model = umap.UMAP(
        n_components=2,
        n_neighbors=min(UMAP_NEIGHBOURS, len(fitted) - 1),
        metric="cosine",
        n_epochs=UMAP_EPOCHS,
        random_state=seed,  # deterministic (and single-threaded)
        init="spectral" if len(fitted) > 2 * UMAP_NEIGHBOURS else "random",
        low_memory=True,
    )
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": the determinism asked for
        warnings.simplefilter("ignore", UserWarning)
        fit = np.asarray(model.fit_transform(reduced), dtype=np.float64)
    if len(fit_rows) == n:
        return fit
    return _place(n, blocks, fit_rows, fit, reduced, mean, axes)


def _place(
    n: int,
    blocks: Callable[[int], Iterable[np.ndarray]],
    fit_rows: np.ndarray,
    fit: np.ndarray,
    reduced: np.ndarray,
    mean: np.ndarray,
    axes: np.ndarray,
) -> np.ndarray:
    """Every track's point: the fitted ones as UMAP placed them; each other one at the mean of its
    ``PLACE_NEIGHBOURS`` nearest fitted tracks' points (cosine in the reduced space, weighted by
    similarity), which is where UMAP's own ``transform`` starts from, at a fraction of its cost."""
    out = np.empty((n, 2), dtype=np.float64)
    out[fit_rows] = fit
    rest = np.ones(n, dtype=bool)
    rest[fit_rows] = False
    import faiss

    ref = faiss.IndexFlatIP(reduced.shape[1])  # exact inner products, top-k kept in C++ (no [B, sample] sort)
    ref.add(np.ascontiguousarray(_unit(reduced), dtype=np.float32))
    kk = min(PLACE_NEIGHBOURS, int(ref.ntotal))
    start = 0
    for block in blocks(TRANSFORM_BLOCK):
        stop = start + len(block)
        todo = np.flatnonzero(rest[start:stop])
        for lo in range(0, len(todo), PLACE_BLOCK):
            part = todo[lo : lo + PLACE_BLOCK]
            q = np.ascontiguousarray(_unit((_unit(block[part]) - mean) @ axes.T), dtype=np.float32)
            sims, near = ref.search(q, kk)
            w = np.maximum(sims, 0.0).astype(np.float64) + 1e-6
            out[start + part] = (w[:, :, None] * fit[near]).sum(axis=1) / w.sum(axis=1, keepdims=True)
        start = stop
    if start != n:
        raise LayoutError(f"internal: {start} rows placed, {n} expected")
    return out


def _unit_square(raw: np.ndarray) -> np.ndarray:
    """Each axis scaled to [0, 1] (a constant axis becomes 0.5); non-finite values (never expected) to 0.5."""
    raw = np.where(np.isfinite(raw), raw, np.nan)
    lo, hi = np.nanmin(raw, axis=0), np.nanmax(raw, axis=0)
    span = hi - lo
    scaled = np.where(span > 0, (raw - lo) / np.where(span > 0, span, 1.0), 0.5)
    return np.clip(np.nan_to_num(scaled, nan=0.5), 0.0, 1.0).astype(np.float32)
