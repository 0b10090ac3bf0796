"""track2vec: skip-gram track embeddings learned over playlists, then each track's K nearest neighbours.

Playlists are the sentences and tracks the words (gensim's Word2Vec, skip-gram with negative
sampling). The window covers the whole playlist by default: a playlist is closer to a set than to a
sentence, so every track of it is context for every other. That costs Σ L² pairs per epoch, hours
at Million Playlist Dataset scale, so past a work budget the window narrows and playlists are
shuffled each epoch instead (see ``train_track2vec``). Entries without audio stay in the
sentences as context words — they tell which tracks go together — but only tracks with audio can
be neighbours.

Training runs in gensim's ``corpus_file`` mode: the playlists are written once per epoch as a text
file (one line per playlist, shuffled within the playlist when the window is narrower than it) that
gensim's C threads read without a Python iterator, so ``workers`` threads really run in parallel.
Its speed is that of skip-gram itself, about 1.2 million (centre, context) pairs per CPU-second at
dim 64 and 5 negatives, which is what ``pair_budget`` is sized by. Neighbours are found with FAISS
by inner product on L2-normalised vectors (cosine): exact up to ``exact_limit`` tracks, an
inverted-file index above (MPD scale).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
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


def corpus_lines(
    indptr: np.ndarray, tokens: np.ndarray, rows: tuple[int, int], rng: np.random.Generator | None = None
) -> bytes:
    """Playlists ``rows`` (those of two or more entries) as gensim ``LineSentence`` text: one line per
    playlist, its tokens (decimal indices) separated by spaces; with ``rng``, each playlist's entries
    in a random order. Vectorised: the digits of every token are written into one byte buffer."""
    a, b = rows
    lengths = np.diff(indptr[a : b + 1])
    keep = np.flatnonzero(lengths >= 2)
    if not len(keep):
        return b""
    starts, lens = indptr[a:b][keep].astype(np.int64), lengths[keep].astype(np.int64)
    offset = np.cumsum(lens) - lens
    entry = np.repeat(starts - offset, lens) + np.arange(int(lens.sum()), dtype=np.int64)
    if rng is not None:  # a random order within each playlist: sort by (playlist, random key)
        row = np.repeat(np.arange(len(keep), dtype=np.float64), lens)
        entry = entry[np.argsort(row + rng.random(len(row)), kind="stable")]
    value = tokens[entry].astype(np.int64)
    digits = np.ones(len(value), dtype=np.int64)
    power = 10
    while power <= value.max(initial=0):
        digits += value >= power
        power *= 10
    end = np.cumsum(digits + 1)
    buf = np.empty(int(end[-1]), dtype=np.uint8)
    last = np.zeros(len(value), dtype=bool)
    last[np.cumsum(lens) - 1] = True
    buf[end - 1] = np.where(last, ord("\n"), ord(" "))
    at = end - 2
    live = np.arange(len(value))
    for _ in range(int(digits.max())):
        buf[at[live]] = ord("0") + value[live] % 10
        value //= 10
        at -= 1
        live = live[value[live] > 0]
    return buf.tobytes()


def write_corpus(
    path: Path, indptr: np.ndarray, tokens: np.ndarray, rng: np.random.Generator | None, chunk: int = 4_000_000
) -> None:
    """Write the playlists to ``path`` in ``LineSentence`` format, in chunks of about ``chunk`` entries."""
    cuts = np.searchsorted(indptr, np.arange(0, int(indptr[-1]) + chunk, chunk), side="left")
    cuts = np.unique(np.clip(np.r_[0, cuts, len(indptr) - 1], 0, len(indptr) - 1))
    with open(path, "wb") as fh:
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            fh.write(corpus_lines(indptr, tokens, (int(a), int(b)), rng))


def _train(
    indptr: np.ndarray,
    tokens: np.ndarray,
    n_vocab: int,
    dim: int,
    window: int,
    negative: int,
    sample: float,
    seed: int,
    workers: int,
    epochs: int,
    shuffled: bool,
) -> Any:
    """gensim skip-gram in ``corpus_file`` mode: the playlists are written as text and read by gensim's
    C threads (no Python iterator, no GIL). A shuffled corpus is rewritten every epoch, each epoch one
    ``train`` call whose learning rate continues the linear decay over all epochs; a whole-playlist
    window reads one file for all epochs (the order within a playlist does not matter then)."""
    from gensim.models import Word2Vec

    lengths = np.diff(indptr)
    counts = np.bincount(tokens[np.repeat(lengths >= 2, lengths)], minlength=n_vocab)
    present = np.flatnonzero(counts)
    n_words = int(counts.sum())
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
    model.build_vocab_from_freq(
        dict(zip(present.astype(str).tolist(), counts[present].tolist(), strict=True)),
        corpus_count=int((lengths >= 2).sum()),
    )
    bar: Any = progress(range(epochs), desc="track2vec training", total=epochs, unit="epoch")
    tick = [_EpochTick(bar)]
    with tempfile.TemporaryDirectory(prefix="mixtape-track2vec-") as tmp:
        path = Path(tmp) / "playlists.txt"
        if not shuffled:
            write_corpus(path, indptr, tokens, None)
            model.train(corpus_file=str(path), total_words=n_words, epochs=epochs, callbacks=tick)
        else:
            alpha, min_alpha = model.alpha, model.min_alpha
            for epoch in range(epochs):
                write_corpus(path, indptr, tokens, np.random.default_rng([seed, epoch]))
                start = alpha - (alpha - min_alpha) * epoch / epochs
                model.alpha = model.min_alpha_yet_reached = start
                model.min_alpha = alpha - (alpha - min_alpha) * (epoch + 1) / epochs
                model.train(corpus_file=str(path), total_words=n_words, epochs=1, callbacks=tick)
    bar.close()
    return model


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
    pair_budget: float = 2e8,
    seed: int = 0,
    workers: int = 2,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Skip-gram over playlists: (track indices that got a vector, their vectors [n × dim] float32,
    what was done: window, shuffling, pairs per epoch).

    ``window=None`` covers the whole playlist, as long as the work (Σ L² pairs per epoch, so a few
    long playlists dominate) fits ``pair_budget`` pairs over all epochs; beyond that (Million
    Playlist Dataset scale) the window is the widest that fits, and playlists are shuffled every
    epoch, so over the epochs each track still meets random tracks from all over its playlists;
    when even a window of 1 does not fit, fewer epochs are trained (at least one; ``epochs_used``).
    An explicit ``window`` narrower than the longest playlist shuffles too. ``sample`` is gensim's
    down-sampling threshold for frequent tokens (tempering tracks that are in every playlist; 0
    disables it), floored at ``MIN_DOWNSAMPLED`` occurrences: on a small catalogue a relative
    threshold would otherwise throw away most of the corpus. Deterministic for a seed with
    ``workers=1`` (gensim's threads interleave updates otherwise).
    """
    n_tracks = playlists.shape[1]
    merged = sp.csr_matrix(playlists, dtype=np.int32)
    if context is not None and context.shape[1]:
        merged = sp.hstack([merged, sp.csr_matrix(context, dtype=np.int32)], format="csr")
    indptr, tokens = ordered_rows(merged)
    n_vocab = merged.shape[1]
    del merged
    lengths = np.diff(indptr)
    if (lengths >= 2).sum() == 0:
        raise MixtapeError("track2vec: no playlist with two or more entries to learn from")
    longest = int(lengths.max())
    asked_epochs = epochs
    if window is None:
        win, pairs = choose_window(lengths, epochs, pair_budget)
        if pairs * epochs > pair_budget:  # even a window of 1 does not fit: fewer epochs, at least one
            epochs = max(1, int(pair_budget // pairs))
            log.warning(
                "track2vec: a window of 1 over %d epochs exceeds the pair budget (%.3g); training %d epoch(s)",
                asked_epochs,
                pair_budget,
                epochs,
            )
    else:
        win = max(1, int(window))
        pairs = float((lengths[lengths >= 2] * np.minimum(lengths[lengths >= 2] - 1, 2 * win)).sum())
    shuffled = win < longest - 1
    n_tokens = int(lengths[lengths >= 2].sum())
    sample = max(sample, MIN_DOWNSAMPLED / n_tokens) if sample > 0 else 0.0
    log.info(
        "track2vec: %d playlists, %d entries, dim %d, window %d%s, %.3g pairs per epoch, %d epochs, %d workers",
        int((lengths >= 2).sum()),
        n_tokens,
        dim,
        win,
        " (shuffled each epoch)" if shuffled else " (whole playlist)",
        pairs,
        epochs,
        workers,
    )
    with _quiet("gensim"):
        model = _train(indptr, tokens, n_vocab, dim, win, negative, sample, seed, workers, epochs, shuffled)
    keys = np.array(model.wv.index_to_key, dtype=np.int64)
    rows = np.flatnonzero(keys < n_tracks)
    tracks = keys[rows]
    vectors = np.ascontiguousarray(model.wv.vectors[rows], dtype=np.float32)
    order = np.argsort(tracks)
    info = {
        "window_used": win,
        "whole_playlist": not shuffled,
        "shuffled": shuffled,
        "pairs_per_epoch": pairs,
        "epochs_used": epochs,
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
    desc: str = "track2vec neighbours",
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
    for start in progress(range(0, n, batch), desc=desc, total=(n + batch - 1) // batch, unit="batch"):
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
