"""Music similarity on frozen track embeddings (cosine): human-judged triplets, held-out playlists, hubness.

- Triplets (dim-sim style CSV ``anchor,candidate_a,candidate_b,votes_a,votes_b``): is the candidate
  closer to the anchor the one people voted for? Tied votes are skipped and counted; a triplet naming
  a track without an embedding is skipped and counted (never a crash, never silently dropped).
- Held-out playlists: every track of a held-out playlist is a query; its relevant tracks are those
  that share a held-out playlist with it; candidates are all tracks of the evaluation pool (the
  catalogue's tracks with features). nDCG@k, mAP@k and P@k, then again with the artist filter
  (candidates by the query's artist removed, and from the relevant set too, since they cannot be
  retrieved), and same-artist P@k, which shows how much the space is organised by artist.
- Hubness: skewness of the k-occurrence distribution over the pool, before and after re-ranking
  with mutual proximity; retrieval is scored after re-ranking too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from mixtape.catalog.tracks import split_csv_line
from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError
from mixtape.evaluation.metrics import (
    MetricError,
    Scorer,
    cosine_scorer,
    drop_same_code,
    hubness_stats,
    k_occurrence,
    mp_scorer,
    retrieval_scores,
    same_code_precision,
    top_k,
    triplet_accuracy,
)
from mixtape.fileio import get_logger, read_text_file

log = get_logger(__name__)

TRIPLET_COLUMNS = ("anchor", "candidate_a", "candidate_b", "votes_a", "votes_b")


class SimilarityDataError(MixtapeError, ValueError):
    """A triplet file or held-out playlist set that cannot be used at all."""


class SimilarityConfig(StrictConfig):
    k: int = Field(10, gt=0)
    mutual_proximity: Literal["none", "gaussian", "empirical"] = "gaussian"
    batch_size: int = Field(64, gt=0)  # patches per forward pass when embedding


@dataclass
class Triplets:
    """Triplets resolved to embedding rows; what could not be used is counted by reason, with examples."""

    anchor: np.ndarray
    cand_a: np.ndarray
    cand_b: np.ndarray
    votes_a: np.ndarray
    votes_b: np.ndarray
    source: str
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.anchor)

    def skip_counts(self) -> dict[str, int]:
        return {reason: len(rows) for reason, rows in self.skipped.items()}


def read_triplets(path: str | Path, track_index: Mapping[str, int]) -> Triplets:
    """Read a triplet CSV, mapping track ids to rows through ``track_index`` (the tracks with embeddings).

    Rows naming a track not in ``track_index`` are skipped under "unknown track"; rows with missing or
    non-numeric votes, or negative votes, under "bad row". Tied votes are kept here and skipped (and
    counted) by the metric.
    """
    path = Path(path)
    lines = read_text_file(path, "triplet file", SimilarityDataError).splitlines()
    if not lines:
        raise SimilarityDataError(f"{path}: empty file (expected a header {','.join(TRIPLET_COLUMNS)})")
    delimiter = "\t" if lines[0].count("\t") > lines[0].count(",") else ","
    header = [h.strip().lower() for h in split_csv_line(lines[0], delimiter) or []]
    missing = [c for c in TRIPLET_COLUMNS if c not in header]
    if missing:
        raise SimilarityDataError(
            f"{path}: header {header} lacks column(s) {missing} (expected {','.join(TRIPLET_COLUMNS)})"
        )
    col = [header.index(c) for c in TRIPLET_COLUMNS]
    out: list[tuple[int, int, int, float, float]] = []
    unknown: list[str] = []
    bad: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        row = split_csv_line(line, delimiter)  # line by line: one bad quote spoils one row, not the rest of the file
        if row is None:
            bad.append(f"{path}:{lineno}: malformed quoting or an over-long field")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(col):
            bad.append(f"{path}:{lineno}: {len(row)} fields")
            continue
        a, ca, cb, va, vb = (row[i].strip() for i in col)
        try:
            votes = (float(va), float(vb))
        except ValueError:
            bad.append(f"{path}:{lineno}: votes {va!r}, {vb!r} are not numbers")
            continue
        if min(votes) < 0 or not all(np.isfinite(votes)):
            bad.append(f"{path}:{lineno}: votes {va!r}, {vb!r} must be non-negative")
            continue
        ids = (a, ca, cb)
        rows_ = [track_index.get(t, -1) for t in ids]
        if min(rows_) < 0:
            names = [t for t, r in zip(ids, rows_, strict=True) if r < 0]
            unknown.append(f"{path}:{lineno}: {', '.join(map(repr, names))}")
            continue
        out.append((rows_[0], rows_[1], rows_[2], votes[0], votes[1]))
    arr = np.array(out, dtype=np.float64).reshape(-1, 5)
    skipped = {k: v for k, v in (("unknown track", unknown), ("bad row", bad)) if v}
    for reason, items in skipped.items():
        log.warning("%s: %d triplet(s) skipped (%s), e.g. %s", path, len(items), reason, items[0])
    return Triplets(
        arr[:, 0].astype(np.int64),
        arr[:, 1].astype(np.int64),
        arr[:, 2].astype(np.int64),
        arr[:, 3],
        arr[:, 4],
        str(path),
        skipped,
    )


def heldout_relevance(heldout: sp.spmatrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """Queries and their relevant tracks from held-out playlists ``[playlists, tracks]``.

    A track's relevant tracks are the others that share at least one held-out playlist with it;
    queries are the tracks with at least one. Returns (query rows, relevance ``[Q, tracks]``).
    """
    p = sp.csr_matrix(heldout, dtype=np.float32)
    p.data[:] = 1.0
    co = sp.csr_matrix(p.T @ p)
    co.setdiag(0)
    co.eliminate_zeros()
    co.data[:] = 1.0
    queries = np.flatnonzero(np.diff(co.indptr) > 0)
    return queries, sp.csr_matrix(co[queries])


@dataclass
class SimilarityResult:
    """Metric dict (names the experiment runner uses), per-query retrieval scores, and notes on skipped input."""

    metrics: dict[str, Any]
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        width = max((len(k) for k in self.metrics), default=0)
        lines = ["similarity:"] + [
            f"  {k.ljust(width)}  {v:.4f}" if isinstance(v, float) else f"  {k.ljust(width)}  {v}"
            for k, v in self.metrics.items()
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _retrieval(
    scorer: Scorer,
    queries: np.ndarray,
    relevance: sp.csr_matrix,
    n: int,
    k: int,
    artist: np.ndarray | None,
    suffix: str,
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    metrics: dict[str, Any] = {}
    notes: list[str] = []
    ranked = top_k(scorer, queries, n, k)
    plain = retrieval_scores(ranked, relevance)
    metrics.update(plain.as_dict(suffix))
    metrics[f"retrieval_queries{suffix}"] = plain.queries
    per_query = {
        f"{key}{suffix}": v for key, v in plain.per_query.items() if not (suffix and key in ("query", "relevant"))
    }
    if artist is not None and (artist >= 0).any():
        filtered_rel = drop_same_code(relevance, queries, artist)
        ranked_f = top_k(scorer, queries, n, k, exclude_codes=artist)
        try:
            filt = retrieval_scores(ranked_f, filtered_rel)
            metrics.update(filt.as_dict(f"_artist_filtered{suffix}"))
            metrics[f"retrieval_queries_artist_filtered{suffix}"] = filt.queries
            if filt.skipped_queries:
                notes.append(
                    f"artist filter{suffix}: {filt.skipped_queries} queries skipped (every relevant track is "
                    "by the query's artist)"
                )
        except MetricError:
            notes.append(
                f"artist filter{suffix}: no query keeps a relevant track by another artist; filtered metrics "
                "not computed"
            )
        metrics[f"artist_p@{k}{suffix}"] = same_code_precision(ranked, queries, artist)
    return metrics, per_query, notes


def evaluate_similarity(
    embeddings: np.ndarray,
    *,
    artist: np.ndarray | None = None,
    heldout: sp.spmatrix | None = None,
    triplets: Triplets | None = None,
    k: int = 10,
    mutual_proximity: Literal["none", "gaussian", "empirical"] = "gaussian",
) -> SimilarityResult:
    """All similarity metrics for embeddings ``[N, D]`` of an evaluation pool.

    ``artist``: int codes per pool track (-1 unknown); ``heldout``: held-out playlists as a sparse
    ``[playlists, N]`` matrix over the same pool; ``triplets``: rows into the pool. Hubness is always
    computed (over the whole pool); retrieval only with ``heldout``, triplet accuracy only with
    ``triplets``; ``mutual_proximity`` adds hubness and retrieval after re-ranking.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    n = len(emb)
    if n < 2:
        raise SimilarityDataError(f"similarity needs at least 2 tracks with embeddings, got {n}")
    if artist is not None and len(artist) != n:
        raise SimilarityDataError(f"{len(artist)} artist codes for {n} tracks")
    metrics: dict[str, Any] = {"pool_tracks": n}
    notes: list[str] = []
    per_query: dict[str, np.ndarray] = {}
    if triplets is not None:
        for reason, count in triplets.skip_counts().items():
            notes.append(
                f"{triplets.source}: {count} triplet(s) skipped ({reason}), e.g. {triplets.skipped[reason][0]}"
            )
        metrics["triplets_skipped_unknown_track"] = len(triplets.skipped.get("unknown track", []))
        metrics["triplets_skipped_bad_row"] = len(triplets.skipped.get("bad row", []))
        try:
            t = triplet_accuracy(
                emb, triplets.anchor, triplets.cand_a, triplets.cand_b, triplets.votes_a, triplets.votes_b
            )
            metrics.update(t.as_dict())
            if t.ties_skipped:
                notes.append(f"{triplets.source}: {t.ties_skipped} triplet(s) with tied votes skipped")
        except MetricError as err:
            notes.append(f"{triplets.source}: triplet accuracy not computed: {err}")
    scorers: list[tuple[str, Scorer]] = [("", cosine_scorer(emb))]
    if mutual_proximity != "none" and n >= 3:
        scorers.append(("_mp", mp_scorer(emb, mutual_proximity)))
    queries = relevance = None
    if heldout is not None:
        h = sp.csr_matrix(heldout)
        if h.shape[1] != n:
            raise SimilarityDataError(f"held-out playlists cover {h.shape[1]} tracks but the pool has {n}")
        queries, relevance = heldout_relevance(h)
        if len(queries) == 0:
            notes.append(
                "held-out playlists: no track shares a held-out playlist with another track of the pool; "
                "retrieval not computed"
            )
            queries = None
    everyone = np.arange(n)
    for suffix, scorer in scorers:
        ranked_all = top_k(scorer, everyone, n, k)
        for key, value in hubness_stats(k_occurrence(ranked_all, n), k).items():
            metrics[f"{key}{suffix}"] = value
        if queries is not None and relevance is not None:
            m, pq, nt = _retrieval(scorer, queries, relevance, n, k, artist, suffix)
            metrics.update(m)
            per_query.update(pq)
            notes.extend(nt)
    if "query" in per_query:
        per_query["query"] = queries[per_query["query"]]  # type: ignore[index]
    return SimilarityResult(metrics, per_query, notes)


@dataclass
class EvaluationPool:
    """The tracks similarity is measured on: catalogue tracks with features (or vectors), as rows of the
    store's (or the vectors') track ids."""

    track_ids: list[str]
    store_rows: np.ndarray
    artist: np.ndarray | None
    heldout: sp.csr_matrix | None
    notes: list[str]
    source: str = "the feature store"  # where the rows point, for messages


def build_pool(
    store_track_ids: Sequence[str],
    catalog: Any | None = None,
    source: str = "the feature store",
    what: str = "features",
) -> EvaluationPool:
    """Restrict the catalogue (artists, held-out playlists) to the tracks the store has features for
    (or, with ``source`` and ``what`` naming them, the tracks that have a precomputed vector).

    Without a catalogue the pool is the whole store, with no artists and no playlists.
    """
    store_pos = {t: i for i, t in enumerate(store_track_ids)}
    if catalog is None:
        return EvaluationPool(list(store_track_ids), np.arange(len(store_track_ids)), None, None, [], source)
    cat_ids = [str(t) for t in catalog.track_ids]
    rows = np.fromiter((store_pos.get(t, -1) for t in cat_ids), dtype=np.int64, count=len(cat_ids))
    have = rows >= 0
    notes = []
    if not have.any():
        raise SimilarityDataError(
            f"none of the catalogue's {len(cat_ids)} tracks is in {source} ({len(store_track_ids)} tracks; 0 "
            f"matched): catalogue ids look like {cat_ids[0] if cat_ids else '(none)'!r}, ids in {source} like "
            f"{store_track_ids[0] if len(store_track_ids) else '(empty)'!r}"
        )
    if not have.all():
        absent = [t for t, h in zip(cat_ids, have, strict=True) if not h]
        notes.append(
            f"{len(absent)} catalogue track(s) have no {what} in {source} and are left out of the pool (the other "
            f"{int(have.sum())} are scored), e.g. {', '.join(map(repr, absent[:5]))}"
        )
    keep = np.flatnonzero(have)
    heldout = sp.csr_matrix(catalog.heldout_playlists)
    if heldout.shape[0]:
        lost = int(heldout.nnz - heldout[:, keep].nnz)
        if lost:
            notes.append(f"{lost} held-out playlist entries name tracks without {what} and are left out")
        heldout = sp.csr_matrix(heldout[:, keep])
    else:
        heldout = None
    artist = np.asarray(catalog.artist, dtype=np.int64)[keep]
    return EvaluationPool([cat_ids[i] for i in keep], rows[keep], artist, heldout, notes, source)


def score_pool(
    embeddings: np.ndarray,
    pool: EvaluationPool,
    triplets: str | Path | None = None,
    config: SimilarityConfig | None = None,
) -> SimilarityResult:
    """Every similarity metric the data allows for the pool's track embeddings (row i = ``pool.track_ids[i]``),
    whatever made them: a mixtape encoder (:func:`run_similarity`) or any other model.

    A triplet file none of whose triplets names only pool tracks is refused: its ids are of another
    vocabulary than the pool's (a few unknown tracks are skipped and counted instead).
    """
    cfg = config or SimilarityConfig()
    if len(embeddings) != len(pool.track_ids):
        raise SimilarityDataError(f"{len(embeddings)} embeddings for a pool of {len(pool.track_ids)} tracks")
    trip = read_triplets(triplets, {t: i for i, t in enumerate(pool.track_ids)}) if triplets is not None else None
    if trip is not None and len(trip) == 0 and trip.skipped.get("unknown track"):
        unknown = trip.skipped["unknown track"]
        raise SimilarityDataError(
            f"{trip.source}: none of its triplets can be scored: {len(unknown)} name a track that is not among the "
            f"{len(pool.track_ids)} tracks of the pool from {pool.source} (0 matched), e.g. {unknown[0]}"
        )
    result = evaluate_similarity(
        embeddings,
        artist=pool.artist,
        heldout=pool.heldout,
        triplets=trip,
        k=cfg.k,
        mutual_proximity=cfg.mutual_proximity,
    )
    result.notes[:0] = pool.notes
    return result


def run_similarity(
    encoder: Any,
    reader: Any,
    store_track_ids: Sequence[str],
    catalog: Any | None = None,
    triplets: str | Path | None = None,
    config: SimilarityConfig | None = None,
    device: str = "cpu",
) -> tuple[SimilarityResult, EvaluationPool]:
    """Embed the pool with the frozen ``encoder`` and compute every similarity metric it has data for."""
    from mixtape.models.embedding import embed_tracks

    cfg = config or SimilarityConfig()
    pool = build_pool(store_track_ids, catalog)
    emb = embed_tracks(
        encoder, reader, pool.store_rows, batch_size=cfg.batch_size, device=device, desc="embedding pool"
    )
    return score_pool(emb, pool, triplets, cfg), pool
