"""Metrics of the paper's evaluation, as pure functions over arrays, vectorised over tags and queries.

- Tagging: macro ROC-AUC and macro PR-AUC (average precision) over tags, with scikit-learn. A tag
  with no positive (or no negative) in the evaluated split has no defined AUC: it is reported with
  the reason and left out of the macro average instead of crashing the run or being scored 0.
- Similarity: triplet accuracy; top-k retrieval metrics (nDCG@k, mAP@k, P@k) against a sparse
  relevance matrix; hubness as the skewness of the k-occurrence distribution; and mutual proximity
  (Schnitzer et al., JMLR 2012), which rescales each similarity by how unusual it is for *both*
  tracks and so takes away the advantage of hubs (tracks near everything).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr
from scipy.stats import skew
from sklearn.metrics import average_precision_score, roc_auc_score

from mixtape.errors import MixtapeError

#: Rows of a score matrix computed at once, and the most cells (rows × candidates) one block may
#: hold, so a block's float64 scores and the temporaries of mutual proximity stay in a few 100 MB.
QUERY_BLOCK = 512
BLOCK_CELLS = 1 << 24
#: Largest collection for empirical mutual proximity: it keeps an N×N table of ranks (uint16).
EMPIRICAL_MP_MAX = 20_000

Scorer = Callable[[np.ndarray], np.ndarray]


class MetricError(MixtapeError, ValueError):
    """Inputs a metric cannot be computed from (shapes that disagree, nothing left to evaluate)."""


# --- tagging -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagRow:
    """One tag of the per-tag table (AUCs are NaN for an excluded tag)."""

    tag: str
    positives: int
    negatives: int
    roc_auc: float
    pr_auc: float
    excluded: str = ""  # why the tag is out of the macro average ("" when it is in)


@dataclass
class TagScores:
    """Macro ROC-AUC / PR-AUC over the evaluable tags, the per-tag table and the excluded tags."""

    roc_auc: float
    pr_auc: float
    per_tag: list[TagRow]

    @property
    def excluded(self) -> dict[str, str]:
        return {r.tag: r.excluded for r in self.per_tag if r.excluded}

    @property
    def n_evaluated(self) -> int:
        return sum(1 for r in self.per_tag if not r.excluded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "tags_evaluated": self.n_evaluated,
            "tags_excluded": len(self.excluded),
        }


def tag_scores(y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str], split: str = "test") -> TagScores:
    """Macro ROC-AUC and PR-AUC of tag activations ``y_score [N, T]`` against binary labels ``y_true [N, T]``.

    Tags without a positive (or without a negative) among the N tracks are excluded from both macro
    averages and listed with the reason; ``split`` only names the split in those reasons.
    """
    y_true = np.asarray(y_true).astype(bool)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise MetricError(
            f"labels {list(y_true.shape)} and scores {list(y_score.shape)} must be equal-shaped [tracks, tags]"
        )
    if y_true.shape[1] != len(tags):
        raise MetricError(f"{y_true.shape[1]} label columns but {len(tags)} tag names")
    if not np.all(np.isfinite(y_score)):
        raise MetricError("tag scores contain NaN or infinity (did the model diverge?)")
    pos = y_true.sum(axis=0)
    neg = len(y_true) - pos
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        raise MetricError(
            f"no tag has both a positive and a negative track in the {split} split ({len(y_true)} tracks, "
            f"{len(tags)} tags): nothing to evaluate"
        )
    roc = np.full(len(tags), np.nan)
    pr = np.full(len(tags), np.nan)
    roc[ok] = roc_auc_score(y_true[:, ok], y_score[:, ok], average=None)
    pr[ok] = average_precision_score(y_true[:, ok], y_score[:, ok], average=None)
    rows = []
    for t, tag in enumerate(tags):
        reason = (
            ""
            if ok[t]
            else (
                f"no positive track in the {split} split"
                if pos[t] == 0
                else f"every track positive in the {split} split"
            )
        )
        rows.append(TagRow(str(tag), int(pos[t]), int(neg[t]), float(roc[t]), float(pr[t]), reason))
    return TagScores(float(np.mean(roc[ok])), float(np.mean(pr[ok])), rows)


def macro_pr_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Macro PR-AUC over the tags with at least one positive and one negative (the early-stopping criterion)."""
    y_true = np.asarray(y_true).astype(bool)
    pos = y_true.sum(axis=0)
    ok = (pos > 0) & (pos < len(y_true))
    if not ok.any():
        return float("nan")
    return float(np.mean(average_precision_score(y_true[:, ok], np.asarray(y_score)[:, ok], average=None)))


# --- triplets ------------------------------------------------------------------------------------


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero), so dot products are cosines."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class TripletScores:
    accuracy: float
    evaluated: int
    ties_skipped: int  # human votes tied: no ground truth
    model_ties: int  # equal cosine to both candidates: half credit

    def as_dict(self) -> dict[str, Any]:
        return {
            "triplet_acc": self.accuracy,
            "triplets_evaluated": self.evaluated,
            "triplets_tied_votes": self.ties_skipped,
        }


def triplet_accuracy(
    embeddings: np.ndarray,
    anchor: np.ndarray,
    cand_a: np.ndarray,
    cand_b: np.ndarray,
    votes_a: np.ndarray,
    votes_b: np.ndarray,
) -> TripletScores:
    """Share of triplets where the candidate closer to the anchor (cosine) is the one more people voted for.

    Triplets with tied votes carry no judgement and are skipped (counted); a model that finds both
    candidates equally close gets half credit, as a coin flip would.
    """
    votes_a, votes_b = np.asarray(votes_a, dtype=np.float64), np.asarray(votes_b, dtype=np.float64)
    judged = votes_a != votes_b
    e = l2_normalize(embeddings)
    anchor, cand_a, cand_b = (np.asarray(v, dtype=np.int64)[judged] for v in (anchor, cand_a, cand_b))
    if len(anchor) == 0:
        raise MetricError(f"no triplet left to evaluate ({int((~judged).sum())} with tied votes skipped)")
    sim_a = np.einsum("ij,ij->i", e[anchor], e[cand_a])
    sim_b = np.einsum("ij,ij->i", e[anchor], e[cand_b])
    human_a = votes_a[judged] > votes_b[judged]
    model_tie = sim_a == sim_b
    credit = np.where(model_tie, 0.5, ((sim_a > sim_b) == human_a).astype(np.float64))
    return TripletScores(float(credit.mean()), int(len(anchor)), int((~judged).sum()), int(model_tie.sum()))


# --- nearest neighbours and mutual proximity --------------------------------------------------


def cosine_scorer(embeddings: np.ndarray) -> Scorer:
    """Cosine similarities of the given query rows to every track: ``rows → [len(rows), N]``."""
    e = l2_normalize(embeddings)
    return lambda rows: e[rows] @ e.T


def gaussian_mp_scorer(embeddings: np.ndarray) -> Scorer:
    """Mutual proximity with a Gaussian model of each track's similarity distribution.

    MP(x, y) = P(S_x < s_xy) · P(S_y < s_xy), with S_x the similarity of x to the other tracks
    modelled as a normal distribution (the independent-Gaussian variant of Schnitzer et al.). The
    mean and variance of every row come from the sum and second-moment matrix of the embeddings,
    so nothing N×N is ever held: O(N·D²) set-up, then one block of rows at a time.
    """
    e = l2_normalize(embeddings).astype(np.float64)
    n = len(e)
    if n < 3:
        raise MetricError(f"mutual proximity needs at least 3 tracks, got {n}")
    self_sim = np.einsum("ij,ij->i", e, e)
    mean = (e @ e.sum(axis=0) - self_sim) / (n - 1)
    second = (np.einsum("ij,jk,ik->i", e, e.T @ e, e) - self_sim**2) / (n - 1)
    std = np.sqrt(np.maximum(second - mean**2, 1e-12))
    e32 = e.astype(np.float32)

    def score(rows: np.ndarray) -> np.ndarray:
        s = (e32[rows] @ e32.T).astype(np.float64)
        return ndtr((s - mean[rows, None]) / std[rows, None]) * ndtr((s - mean[None, :]) / std[None, :])

    return score


def similarity_ranks(embeddings: np.ndarray, block: int = QUERY_BLOCK) -> np.ndarray:
    """``R[x, y]`` = how many tracks j (not x, not y) are less similar to x than y is (uint16 or uint32)."""
    e = l2_normalize(embeddings)
    n = len(e)
    ranks = np.empty((n, n), dtype=np.uint16 if n < 2**16 else np.uint32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        s = (e[rows] @ e.T).astype(np.float64)
        s[np.arange(len(rows)), rows] = -2.0  # self below every cosine, then discounted
        # One global searchsorted over all rows: shift row i by 8·i so rows never interleave.
        shift = 8.0 * np.arange(len(rows))[:, None]
        flat_sorted = (np.sort(s, axis=1) + shift).ravel()
        pos = np.searchsorted(flat_sorted, (s + shift).ravel(), side="left").reshape(s.shape)
        ranks[rows] = np.maximum(pos - n * np.arange(len(rows))[:, None] - 1, 0)
    return ranks


def empirical_mp_scorer(embeddings: np.ndarray) -> Scorer:
    """Mutual proximity with each track's empirical similarity distribution (exact ranks, no model).

    MP(x, y) = R[x, y] · R[y, x] / (N - 2)², the independence form of empirical MP; it keeps the
    N×N rank table, so it is limited to ``EMPIRICAL_MP_MAX`` tracks (use the Gaussian form above).
    """
    n = len(embeddings)
    if n < 3:
        raise MetricError(f"mutual proximity needs at least 3 tracks, got {n}")
    if n > EMPIRICAL_MP_MAX:
        raise MetricError(
            f"empirical mutual proximity keeps an N×N table; {n} tracks is more than {EMPIRICAL_MP_MAX}: use "
            "the gaussian method"
        )
    ranks = similarity_ranks(embeddings)
    denom = float(n - 2) ** 2

    def score(rows: np.ndarray) -> np.ndarray:
        return ranks[rows].astype(np.float64) * ranks[:, rows].T.astype(np.float64) / denom

    return score


MP_METHODS = ("gaussian", "empirical")


def mp_scorer(embeddings: np.ndarray, method: Literal["gaussian", "empirical"]) -> Scorer:
    if method == "gaussian":
        return gaussian_mp_scorer(embeddings)
    if method == "empirical":
        return empirical_mp_scorer(embeddings)
    raise MetricError(f"unknown mutual proximity method {method!r}; choose from {', '.join(MP_METHODS)}")


def top_k(
    scorer: Scorer,
    queries: np.ndarray,
    n: int,
    k: int,
    exclude_codes: np.ndarray | None = None,
    block: int = QUERY_BLOCK,
) -> np.ndarray:
    """The k best-scored tracks for each query row, best first: ``int64 [Q, k]``, -1 where fewer exist.

    The query itself is never a candidate; with ``exclude_codes`` (e.g. artist codes, -1 = unknown)
    neither is any track sharing the query's code.
    """
    queries = np.asarray(queries, dtype=np.int64)
    out = np.full((len(queries), k), -1, dtype=np.int64)
    kk = min(k, n)
    block = max(1, min(block, BLOCK_CELLS // max(n, 1)))
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        s = np.array(scorer(q), dtype=np.float64)
        s[np.arange(len(q)), q] = -np.inf
        if exclude_codes is not None:
            codes = exclude_codes[q]
            same = (exclude_codes[None, :] == codes[:, None]) & (codes[:, None] >= 0)
            s[same] = -np.inf
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(q), 1))
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)[:, :kk]
        valid = np.isfinite(np.take_along_axis(s, best, axis=1))
        out[start : start + len(q), :kk] = np.where(valid, best, -1)
    return out


# --- retrieval -----------------------------------------------------------------------------------


@dataclass
class RetrievalScores:
    """Mean nDCG@k, mAP@k and P@k over the queries that have at least one relevant track."""

    k: int
    ndcg: float
    map: float
    precision: float
    queries: int
    skipped_queries: int  # no relevant track left to find (e.g. all relevant tracks by the query's artist)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)

    def as_dict(self, suffix: str = "") -> dict[str, Any]:
        k = self.k
        return {f"ndcg@{k}{suffix}": self.ndcg, f"map@{k}{suffix}": self.map, f"p@{k}{suffix}": self.precision}


def _hits(ranked: np.ndarray, relevance: sp.csr_matrix) -> np.ndarray:
    """``hits[q, i]``: is the i-th retrieved track of query q relevant to it."""
    q = np.repeat(np.arange(ranked.shape[0]), ranked.shape[1])
    cols = ranked.ravel()
    valid = cols >= 0
    hits = np.zeros(len(cols), dtype=bool)
    if valid.any():
        hits[valid] = np.asarray(relevance[q[valid], cols[valid]]).ravel() != 0
    return hits.reshape(ranked.shape)


def retrieval_scores(ranked: np.ndarray, relevance: sp.spmatrix) -> RetrievalScores:
    """nDCG@k, AP@k and P@k with binary relevance, for ranked lists ``[Q, k]`` and relevance ``[Q, N]``.

    P@k = hits / k. AP@k = Σ_i P@i·rel_i / min(k, R). nDCG@k = Σ_i rel_i / log2(i + 1) divided by
    its ideal value for min(k, R) hits (R = the query's relevant tracks). Queries with R = 0 are
    skipped and counted.
    """
    relevance = sp.csr_matrix(relevance)
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.shape[0] != relevance.shape[0]:
        raise MetricError(f"{ranked.shape[0]} ranked lists but {relevance.shape[0]} relevance rows")
    k = ranked.shape[1]
    n_rel = np.diff(relevance.indptr)
    keep = n_rel > 0
    if not keep.any():
        raise MetricError(f"none of the {len(n_rel)} queries has a relevant track")
    hits = _hits(ranked[keep], relevance[keep]).astype(np.float64)
    n_rel = n_rel[keep]
    pos = np.arange(1, k + 1, dtype=np.float64)
    precision = hits.sum(axis=1) / k
    ap = (np.cumsum(hits, axis=1) / pos * hits).sum(axis=1) / np.minimum(n_rel, k)
    discount = 1.0 / np.log2(pos + 1.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n_rel, k)]
    ndcg = (hits * discount).sum(axis=1) / ideal
    return RetrievalScores(
        k,
        float(ndcg.mean()),
        float(ap.mean()),
        float(precision.mean()),
        int(keep.sum()),
        int((~keep).sum()),
        {"query": np.flatnonzero(keep), "relevant": n_rel, f"ndcg@{k}": ndcg, f"ap@{k}": ap, f"p@{k}": precision},
    )


def drop_same_code(relevance: sp.spmatrix, queries: np.ndarray, codes: np.ndarray) -> sp.csr_matrix:
    """Relevance ``[Q, N]`` without the tracks that share the query's code (the artist filter's ground truth)."""
    rel = sp.coo_matrix(relevance)
    qc = codes[np.asarray(queries)[rel.row]]
    keep = ~((codes[rel.col] == qc) & (qc >= 0))
    return sp.csr_matrix((rel.data[keep], (rel.row[keep], rel.col[keep])), shape=rel.shape)


def same_code_precision(ranked: np.ndarray, queries: np.ndarray, codes: np.ndarray) -> float:
    """Share of the top-k results by the query's own artist (known artists only): how artist-bound the space is."""
    ranked = np.asarray(ranked, dtype=np.int64)
    qc = codes[np.asarray(queries)]
    known = qc >= 0
    if not known.any():
        return float("nan")
    rc = np.where(ranked >= 0, codes[np.maximum(ranked, 0)], -2)
    same = (rc == qc[:, None]) & (ranked >= 0)
    return float(same[known].sum(axis=1).mean() / ranked.shape[1])


# --- hubness -------------------------------------------------------------------------------------


def k_occurrence(ranked: np.ndarray, n: int) -> np.ndarray:
    """N_k: how often each of the n tracks appears in the k-nearest-neighbour lists of the others."""
    ranked = np.asarray(ranked).ravel()
    return np.bincount(ranked[ranked >= 0], minlength=n)


def hubness(occurrence: np.ndarray) -> float:
    """Skewness of the k-occurrence distribution (Radovanović et al.).

    Large and positive when a few hubs crowd every list.
    """
    occ = np.asarray(occurrence, dtype=np.float64)
    if len(occ) < 3 or np.all(occ == occ[0]):
        return 0.0
    return float(skew(occ))


def hubness_stats(occurrence: np.ndarray, k: int) -> dict[str, Any]:
    occ = np.asarray(occurrence)
    return {
        "hubness": hubness(occ),
        f"k_occurrence_max@{k}": int(occ.max()) if len(occ) else 0,
        f"antihubs@{k}": float(np.mean(occ == 0)) if len(occ) else math.nan,
    }
