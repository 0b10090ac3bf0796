"""track2vec: skip-gram track embeddings learned over playlists, then each track's K nearest neighbours.

Playlists are the sentences and tracks the words (gensim's Word2Vec, skip-gram with negative
sampling). The window covers the whole playlist by default: a playlist is closer to a set than to a
sentence, so every track of it is context for every other. That costs Σ L² pairs per epoch, hours
at Million Playlist Dataset scale, so past a work budget the window narrows and playlists are
shuffled each epoch instead (see ``train_track2vec``). Entries without audio stay in the
sentences as context words — they tell which tracks go together — but only tracks with audio can
be neighbours. Neighbours are found with FAISS by inner product on L2-normalised vectors (cosine):
exact up to ``exact_limit`` tracks, an inverted-file index above (MPD scale).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.catalog.catalog import ordered_rows
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger, progress

log = get_logger(__name__)


MIN_DOWNSAMPLED = 50  # tokens seen fewer times than this are never down-sampled


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Keep a chatty library's INFO lines (one per epoch and lifecycle event) out of our logs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class _EpochTick:
    """gensim callback moving a progress bar one step per epoch (duck-typed CallbackAny2Vec)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_train_begin(self, model: Any) -> None: ...
    def on_epoch_begin(self, model: Any) -> None: ...
    def on_batch_begin(self, model: Any) -> None: ...
    def on_batch_end(self, model: Any) -> None: ...
    def on_train_end(self, model: Any) -> None: ...

    def on_epoch_end(self, model: Any) -> None:
        self.bar.update(1)


def _train(
    sentences: PlaylistSentences,
    dim: int,
    window: int,
    negative: int,
    sample: float,
    seed: int,
    workers: int,
    epochs: int,
) -> Any:
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=dim,
        window=window,
        min_count=1,
        sg=1,
        negative=negative,
        sample=sample,
        seed=seed,
        workers=max(1, workers),
        epochs=epochs,
        shrink_windows=False,
    )
    model.build_vocab(progress(sentences, desc="track2vec vocabulary", total=len(sentences), unit="playlist"))
    bar: Any = progress(range(epochs), desc="track2vec training", total=epochs, unit="epoch")
    model.train(sentences, total_examples=model.corpus_count, epochs=epochs, callbacks=[_EpochTick(bar)])
    bar.close()
    return model


class PlaylistSentences:
    """Re-iterable corpus for gensim: one list of tokens per playlist, in playlist order.

    Tokens are ``t<index>`` for tracks with audio and ``c<index>`` for context-only entries; the
    token strings are built once and shared, so the corpus costs one pointer per entry.
    """

    def __init__(
        self, playlists: sp.csr_matrix, context: sp.csr_matrix | None = None, shuffle_seed: int | None = None
    ) -> None:
        n_tracks = playlists.shape[1]
        n_context = context.shape[1] if context is not None else 0
        merged = playlists.astype(np.int32)
        if context is not None and n_context:
            merged = sp.hstack([merged, context.astype(np.int32)], format="csr")
        self.indptr, self.tokens = ordered_rows(merged)
        self.vocab = np.array([f"t{i}" for i in range(n_tracks)] + [f"c{i}" for i in range(n_context)], dtype=object)
        self.shuffle_seed = shuffle_seed
        self.passes = 0

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __iter__(self) -> Iterator[list[str]]:
        """One pass; with ``shuffle_seed`` each pass re-orders every playlist (seeded by the pass
        number), so a window narrower than a playlist sees different parts of it every epoch."""
        rng = np.random.default_rng([self.shuffle_seed, self.passes]) if self.shuffle_seed is not None else None
        self.passes += 1
        for a, b in zip(self.indptr[:-1], self.indptr[1:], strict=True):
            if b - a >= 2:
                seg = self.tokens[a:b] if rng is None else rng.permutation(self.tokens[a:b])
                yield self.vocab[seg].tolist()


def choose_window(lengths: np.ndarray, epochs: int, pair_budget: float) -> tuple[int, float]:
    """The widest window whose skip-gram work (centre, context pairs over all epochs) fits the budget:
    the whole playlist when it fits, else the largest w with Σ L·min(L−1, 2w)·epochs <= budget.
    Returns (window, pairs per epoch)."""
    lengths = lengths[lengths >= 2].astype(np.float64)
    if not len(lengths):
        return 1, 0.0
    longest = int(lengths.max())

    def pairs(w: int) -> float:
        return float((lengths * np.minimum(lengths - 1, 2 * w)).sum())

    if pairs(longest) * epochs <= pair_budget:
        return longest, pairs(longest)
    lo, hi = 1, longest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if pairs(mid) * epochs <= pair_budget else (lo, mid - 1)
    return lo, pairs(lo)


def train_track2vec(
    playlists: sp.csr_matrix,
    context: sp.csr_matrix | None = None,
    dim: int = 64,
    epochs: int = 5,
    window: int | None = None,
    negative: int = 5,
    sample: float = 1e-3,
    pair_budget: float = 2e9,
    seed: int = 0,
    workers: int = 2,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Skip-gram over playlists: (track indices that got a vector, their vectors [n × dim] float32,
    what was done: window, shuffling, pairs per epoch).

    ``window=None`` covers the whole playlist, as long as the work (Σ L² pairs per epoch, so a few
    long playlists dominate) fits ``pair_budget`` pairs over all epochs; beyond that (Million
    Playlist Dataset scale) the window is the widest that fits, and playlists are shuffled every
    epoch, so over the epochs each track still meets random tracks from all over its playlists.
    An explicit ``window`` narrower than the longest playlist shuffles too. ``sample`` is gensim's
    down-sampling threshold for frequent tokens (tempering tracks that are in every playlist; 0
    disables it), floored at ``MIN_DOWNSAMPLED`` occurrences: on a small catalogue a relative
    threshold would otherwise throw away most of the corpus. Deterministic for a seed with
    ``workers=1`` (gensim's threads interleave updates otherwise).
    """
    sentences = PlaylistSentences(playlists, context)
    lengths = np.diff(sentences.indptr)
    if (lengths >= 2).sum() == 0:
        raise MixtapeError("track2vec: no playlist with two or more entries to learn from")
    longest = int(lengths.max())
    if window is None:
        win, pairs = choose_window(lengths, epochs, pair_budget)
    else:
        win = max(1, int(window))
        pairs = float((lengths[lengths >= 2] * np.minimum(lengths[lengths >= 2] - 1, 2 * win)).sum())
    shuffled = win < longest - 1
    sentences.shuffle_seed = seed if shuffled else None
    n_tokens = int(lengths[lengths >= 2].sum())
    sample = max(sample, MIN_DOWNSAMPLED / n_tokens) if sample > 0 else 0.0
    log.info(
        "track2vec: %d playlists, %d entries, dim %d, window %d%s, %.3g pairs per epoch, %d epochs, %d workers",
        len(sentences),
        n_tokens,
        dim,
        win,
        " (shuffled each epoch)" if shuffled else " (whole playlist)",
        pairs,
        epochs,
        workers,
    )
    with _quiet("gensim"):
        model = _train(sentences, dim, win, negative, sample, seed, workers, epochs)
    keys = model.wv.index_to_key
    is_track = np.fromiter((k[0] == "t" for k in keys), dtype=bool, count=len(keys))
    rows = np.flatnonzero(is_track)
    tracks = np.fromiter((int(keys[i][1:]) for i in rows), dtype=np.int64, count=len(rows))
    vectors = np.ascontiguousarray(model.wv.vectors[rows], dtype=np.float32)
    order = np.argsort(tracks)
    info = {
        "window_used": win,
        "whole_playlist": not shuffled,
        "shuffled": shuffled,
        "pairs_per_epoch": pairs,
        "tokens": n_tokens,
        "vocabulary": len(keys),
    }
    return tracks[order], vectors[order], info


def nearest_neighbours(
    vectors: np.ndarray,
    k: int,
    workers: int = 2,
    exact_limit: int = 50_000,
    nlist: int | None = None,
    nprobe: int = 16,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's K nearest others by cosine: (neighbour rows [n × K], similarities [n × K]).

    Rows with fewer than K others get -1 in the missing places. Brute force (``IndexFlatIP``) up to
    ``exact_limit`` vectors; above, ``IndexIVFFlat`` with ``nlist`` cells (default ≈ 4·√n) and
    ``nprobe`` cells searched per query, trading a little recall for O(n·√n) time.
    """
    with _quiet("faiss"):
        import faiss

    n, dim = vectors.shape
    x = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    faiss.normalize_L2(x)
    faiss.omp_set_num_threads(max(1, workers))
    kk = min(k + 1, n)
    index: faiss.Index
    if n <= exact_limit:
        index = faiss.IndexFlatIP(dim)
    else:
        cells = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))  # FAISS wants ≥ 39 training points per cell
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = seed
        train = x[np.random.default_rng(seed).choice(n, size=min(n, 40 * cells), replace=False)]
        ivf.train(train)
        ivf.nprobe = nprobe
        index = ivf
    index.add(x)
    batch = 65_536
    sims = np.empty((n, kk), dtype=np.float32)
    ids = np.empty((n, kk), dtype=np.int64)
    for start in progress(
        range(0, n, batch), desc="track2vec neighbours", total=(n + batch - 1) // batch, unit="batch"
    ):
        s, i = index.search(x[start : start + batch], kk)
        sims[start : start + batch], ids[start : start + batch] = s, i
    # Drop each row's own entry (or, if the index missed it, the last one), keeping the order.
    own = ids == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    ids = ids[keep].reshape(n, kk - 1)
    sims = sims[keep].reshape(n, kk - 1)
    if kk - 1 < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk + 1)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, k - kk + 1)), constant_values=np.nan)
    return ids, sims
