"""Mutual-proximity re-ranking at query time (Gaussian MP, Schnitzer et al. 2012), for a served index.

``mixtape.evaluation.metrics.gaussian_mp_scorer`` scores query rows against the whole collection
(an all-vs-all scorer for evaluation, set up from the full float64 matrix at every call). A search
server needs the same numbers for a query's few hundred FAISS candidates only, and for queries that
are not in the collection (an uploaded file). So the per-track moments of the cosine distribution
are computed once at index build time, in row blocks, and stored; at query time
MP(q, y) = Phi((s - mu_q) / sigma_q) * Phi((s - mu_y) / sigma_y) costs O(candidates + D^2).

For a collection track the moments exclude the track itself, exactly as in
``gaussian_mp_scorer`` (the tests check both give the same scores); for an outside query they come
from the column sum and second-moment matrix of the collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from mixtape.errors import MixtapeError
from mixtape.fileio import ARRAY_FILE_ERRORS, atomic_open, progress

MP_FILE = "mutual_proximity.npz"
BLOCK = 16384


@dataclass
class Moments:
    """Mean and standard deviation of each track's cosine to the other tracks, plus what an outside query needs."""

    mean: np.ndarray  # float64 [N]
    std: np.ndarray  # float64 [N]
    colsum: np.ndarray  # float64 [D]: sum of the unit vectors
    gram: np.ndarray  # float64 [D, D]: sum of outer products of the unit vectors
    n: int

    def query(self, unit_query: np.ndarray) -> tuple[float, float]:
        """Mean and std of an outside query's cosine to every collection track."""
        q = np.asarray(unit_query, dtype=np.float64)
        mean = float(q @ self.colsum) / self.n
        second = float(q @ self.gram @ q) / self.n
        return mean, float(np.sqrt(max(second - mean * mean, 1e-12)))


def compute_moments(blocks: Callable[[int], Iterable[np.ndarray]], n: int, dim: int, block: int = BLOCK) -> Moments:
    """Per-track moments (self excluded) in two streamed passes over the raw vectors; ``blocks(size)``
    yields them in row blocks (``Embeddings.blocks``)."""
    if n < 3:
        raise MixtapeError(f"mutual proximity needs at least 3 tracks, got {n}")

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float64)

    colsum = np.zeros(dim)
    gram = np.zeros((dim, dim))
    for x in progress(blocks(block), desc="mutual proximity (1/2)", total=-(-n // block), unit="block"):
        e = unit(x)
        colsum += e.sum(axis=0)
        gram += e.T @ e
    mean = np.empty(n)
    std = np.empty(n)
    start = 0
    for x in progress(blocks(block), desc="mutual proximity (2/2)", total=-(-n // block), unit="block"):
        e = unit(x)
        self_sim = np.einsum("ij,ij->i", e, e)
        m = (e @ colsum - self_sim) / (n - 1)
        second = (np.einsum("ij,ij->i", e @ gram, e) - self_sim**2) / (n - 1)
        mean[start : start + len(e)] = m
        std[start : start + len(e)] = np.sqrt(np.maximum(second - m**2, 1e-12))
        start += len(e)
    return Moments(mean, std, colsum, gram, n)


def save_moments(path: Path, m: Moments) -> Path:
    with atomic_open(path, "wb") as f:
        np.savez(f, mean=m.mean, std=m.std, colsum=m.colsum, gram=m.gram, n=np.int64(m.n))
    return path


def load_moments(path: Path, n: int | None = None) -> Moments:
    """The saved moments, checked for shape (``[n]`` per track when ``n`` is given, ``[D]`` and ``[D, D]``)."""
    try:
        with (
            open(path, "rb") as f,
            np.load(f, allow_pickle=False) as z,
        ):  # our own handle: numpy leaks its own when the file is damaged
            mean, std, colsum, gram = (np.asarray(z[k], dtype=np.float64) for k in ("mean", "std", "colsum", "gram"))
            m = Moments(mean, std, colsum, gram, int(z["n"]))
    except FileNotFoundError:
        raise MixtapeError(
            f"{path}: missing; rebuild the index with `mixtape index --mutual-proximity` to re-rank with it"
        ) from None
    except ARRAY_FILE_ERRORS as err:
        raise MixtapeError(f"{path}: unreadable ({type(err).__name__}: {err}); rebuild the index") from None
    tracks, dim = len(m.mean) if m.mean.ndim == 1 else -1, len(m.colsum) if m.colsum.ndim == 1 else -1
    if (
        tracks < 0
        or m.std.shape != m.mean.shape
        or dim < 0
        or m.gram.shape != (dim, dim)
        or m.n != tracks
        or (n is not None and tracks != n)
    ):
        shapes = ", ".join(f"{k} {list(np.shape(getattr(m, k)))}" for k in ("mean", "std", "colsum", "gram"))
        raise MixtapeError(
            f"{path}: inconsistent moments ({shapes}, "
            f"n={m.n}{'' if n is None else f'; the index holds {n} tracks'}); rebuild the index"
        )
    return m


def mp_scores(cosines: np.ndarray, rows: np.ndarray, q_mean: float, q_std: float, m: Moments) -> np.ndarray:
    """Mutual proximity of the query with candidate ``rows`` given their cosines to it."""
    s = np.asarray(cosines, dtype=np.float64)
    return ndtr((s - q_mean) / q_std) * ndtr((s - m.mean[rows]) / m.std[rows])
