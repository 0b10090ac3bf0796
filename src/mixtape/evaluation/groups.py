"""Retrieval by group on real recordings: does a track's nearest neighbours share its artist,
album or composer? Pure functions over arrays, so any representation can be scored the same way.

Protocol (leave-one-out): every track whose group holds at least one other track is a query; all
*other* tracks are candidates, ranked by cosine similarity (tracks without a group value and the
only track of a group stay in as candidates: they are distractors). Relevant = same group.
P@5 is the share of the top 5 in the query's group; nDCG@10 uses binary relevance and the ideal
ranking for min(10, group size - 1) relevant tracks (``metrics.retrieval_scores``). Chance is the
expectation of both under a uniformly random ranking, computed exactly per query.

The mel-statistics baseline (:func:`mel_statistics`) is the trivial feature an encoder has to beat:
per track, the mean and standard deviation over frames of each log-mel band of the feature store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.evaluation.metrics import MetricError, cosine_scorer, retrieval_scores, top_k
from mixtape.fileio import progress


@dataclass
class GroupLayout:
    """Which tracks are queries, the relevance of each query, and what was left out of the queries."""

    groups: list[str | None]  # per track: its group, None when the tag is empty
    queries: np.ndarray  # int64 rows of the query tracks
    relevance: sp.csr_matrix  # [queries, tracks]: 1 where a candidate shares the query's group
    n_groups: int  # groups with at least 2 tracks (those that make queries)
    no_value: int  # tracks without a value for the group tag (candidates only)
    singleton_groups: int  # groups of one track (their track is a candidate only)

    @property
    def n_tracks(self) -> int:
        return len(self.groups)


def group_layout(groups: Sequence[str | None]) -> GroupLayout:
    """Queries and relevance for ``groups`` (one value per track; None or "" = no value)."""
    values: list[str | None] = [g if g else None for g in groups]
    sizes = Counter(g for g in values if g is not None)
    members: dict[str, list[int]] = {}
    for i, g in enumerate(values):
        if g is not None and sizes[g] >= 2:
            members.setdefault(g, []).append(i)
    queries = np.array([i for i, g in enumerate(values) if g is not None and sizes[g] >= 2], dtype=np.int64)
    rows: list[int] = []
    cols: list[int] = []
    for q, i in enumerate(queries.tolist()):
        others = [j for j in members[values[i]] if j != i]
        rows += [q] * len(others)
        cols += others
    relevance = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(queries), len(values)))
    return GroupLayout(
        values,
        queries,
        relevance,
        len(members),
        sum(1 for g in values if g is None),
        sum(1 for n in sizes.values() if n == 1),
    )


def chance_levels(layout: GroupLayout, k: int = 10, p_at: int = 5) -> dict[str, float]:
    """Expected P@p_at and nDCG@k of a uniformly random ranking, averaged over the queries.

    A query with R relevant tracks among C = N - 1 candidates finds R/C of a relevant track at each
    rank in expectation, so E[P@p] = min(p, C)·R/C / p and E[DCG@k] = R/C · Σ_{i ≤ min(k, C)} 1/log2(i+1).
    """
    if len(layout.queries) == 0:
        return {f"p@{p_at}": float("nan"), f"ndcg@{k}": float("nan")}
    c = layout.n_tracks - 1
    r = np.diff(layout.relevance.indptr).astype(np.float64)
    share = r / c
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    cum = np.concatenate([[0.0], np.cumsum(discount)])
    ideal = cum[np.minimum(r, k).astype(np.int64)]
    return {
        f"p@{p_at}": float(np.mean(share * min(p_at, c) / p_at)),
        f"ndcg@{k}": float(np.mean(share * cum[min(k, c)] / ideal)),
    }


@dataclass
class GroupRetrieval:
    """P@p_at and nDCG@k of one representation, averaged over the queries, with per-query values."""

    k: int
    p_at: int
    precision: float
    ndcg: float
    queries: int
    per_query: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # "query" (track rows), "relevant", f"p@{p_at}", f"ndcg@{k}"

    def as_dict(self) -> dict[str, Any]:
        return {f"p@{self.p_at}": self.precision, f"ndcg@{self.k}": self.ndcg, "queries": self.queries}


def group_retrieval(
    embeddings: np.ndarray, groups: Sequence[str | None] | GroupLayout, k: int = 10, p_at: int = 5
) -> GroupRetrieval:
    """Leave-one-out retrieval of same-group tracks by cosine similarity (see the module docstring).

    ``embeddings`` ``[N, D]``, one row per track; ``groups`` one value per track (None/"" = none) or
    the :func:`group_layout` made from them. Rows that are not finite are refused.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    layout = groups if isinstance(groups, GroupLayout) else group_layout(groups)
    if emb.ndim != 2 or len(emb) != layout.n_tracks:
        raise MetricError(f"embeddings of shape {list(emb.shape)} do not match the {layout.n_tracks} tracks' groups")
    if not np.isfinite(emb).all():
        raise MetricError(f"{int((~np.isfinite(emb).all(axis=1)).sum())} embedding row(s) contain NaN or infinity")
    if not 1 <= p_at <= k:
        raise MetricError(f"need 1 <= p_at <= k, got p_at={p_at}, k={k}")
    if len(layout.queries) == 0:
        raise MetricError(
            f"no group has two tracks among the {layout.n_tracks} tracks ({layout.no_value} without a value, "
            f"{layout.singleton_groups} groups of one): nothing to retrieve"
        )
    ranked = top_k(cosine_scorer(emb), layout.queries, layout.n_tracks, k)
    at_k = retrieval_scores(ranked, layout.relevance)
    at_p = retrieval_scores(ranked[:, :p_at], layout.relevance)
    per_query = {
        "query": layout.queries,
        "relevant": at_k.per_query["relevant"],
        f"p@{p_at}": at_p.per_query[f"p@{p_at}"],
        f"ndcg@{k}": at_k.per_query[f"ndcg@{k}"],
    }
    return GroupRetrieval(k, p_at, at_p.precision, at_k.ndcg, at_k.queries, per_query)


def mel_statistics(store: Any, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """The baseline feature: per store track, the mean then the std over frames of each log-mel band,
    ``float32 [len(rows), 2·n_mels]`` (192-d for 96 bands). Computed in float64 from the float16 frames."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    out = np.zeros((len(rows), 2 * int(store.n_mels)), dtype=np.float32)
    for j, i in enumerate(progress(rows.tolist(), desc="mel statistics", total=len(rows), unit="track")):
        frames = np.asarray(store.frames(int(i)), dtype=np.float64)
        out[j] = np.concatenate([frames.mean(axis=0), frames.std(axis=0)])
    return out


def standardize(x: np.ndarray) -> np.ndarray:
    """Each column to zero mean and unit variance over the rows (constant columns become 0), so no
    band's scale dominates a cosine; only the collection's own statistics are used, never labels."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)
