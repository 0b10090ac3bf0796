"""`mixtape index`: a FAISS nearest-neighbour index over a collection's track embeddings.

Similarity is the cosine: vectors are L2-normalised and compared by inner product. The kind of
index follows the collection size (``kind="auto"``):

- up to ``exact_max`` tracks (100,000): ``IndexFlatIP``, exact. One query scans every vector
  (100k x 1280 floats: about 15-30 ms on one core), which is fast enough and never wrong;
- above: ``IndexIVFFlat`` (inverted lists over a spherical k-means coarse quantiser) with
  ``nlist`` = the power of two nearest to sqrt(n) (1,024 lists at 1M tracks), capped so every list
  has >= 39 training points; trained on ``64 * nlist`` sampled vectors. It is cheap to build on a CPU
  (HNSW on 1M x 1280 takes tens of minutes on 2 cores, IVF a few minutes) and one parameter,
  ``nprobe``, trades speed for recall;
- above ``ivf_max_gib`` (2 GiB) of float32 vectors (420,000 tracks of 1280 dims): ``ivfpq``, a compressed
  index (below). IVF-Flat holds every vector in memory (5 GiB at 1M x 1280, twice that while it is
  opened after a build); IVF-PQ holds 160 bytes per track and reaches the same recall by re-ranking;
- ``kind="hnsw"`` on request: ``IndexHNSWFlat`` with M = 32, efConstruction = 80, ``efSearch`` tuned.

``ivfpq``: the same inverted lists, holding product-quantisation codes instead of vectors
(``IndexIVFPQFastScan``: ``m`` sub-quantizers of 4 bits, by default one per 4 dimensions, so 1280
dims are 320 codes = 160 bytes per track, scanned with SIMD), trained on the same ``64 * nlist``
sampled vectors and filled block by block. A search takes a shortlist of ``rerank * fetch``
candidates (``fetch``: the results it needs, at least 11) by their PQ scores and re-scores them
exactly against ``vectors_f16.npy``, the unit vectors in float16 kept in the index folder and read
row by row with positioned reads (never loaded, never memory-mapped: the operating system's page
cache holds what is hot). The process holds the codes
and the centroids; the scores it returns are the cosines of the stored vectors (float16: within 1e-5
of the float32 cosine). Both ``nprobe`` and ``rerank`` are tuned: the smallest ``nprobe`` whose recall
with the deepest shortlist misses at most half of what the target allows, then the smallest shortlist
reaching the target at that ``nprobe`` by two standard errors of the sample's estimate. The two
approximations multiply: giving the lists half of the misses keeps the shortlist short; and a deeper
shortlist costs microseconds, so it carries the margin for queries other than the sample's. How the
defaults were measured: docs/search.md.

The search parameter (``nprobe`` / ``efSearch``) is not guessed: at build time a sample of
``recall_queries`` collection tracks is searched exactly and approximately, and the smallest
setting whose recall@10 reaches ``target_recall`` (0.95) is kept; the recall reached is printed and
recorded in ``index.json``. Recall is over each query's 10 nearest *other* tracks (the query itself,
which search by track never returns and which would be a free hit, is left out), and counts an
approximate result as correct when its score is at least the exact 10th score, so ties between
equally distant tracks never count as misses.

Index folder: ``index.faiss`` (the FAISS index, holding the normalised vectors), ``tracks.tsv``
(row i = FAISS id i: track id, artist, album, audio path), ``index.json`` (kind, parameters, recall,
build time, the checksum of the embeddings it indexes, the encoder's fingerprint, and the checksum
of every file of the folder under ``files``), ``layout.npy`` (the 2-D map of the collection the page
draws, see :mod:`mixtape.search.layout`; none with ``layout="none"``), and ``mutual_proximity.npz`` when
built with ``mutual_proximity=True``. ``index.json`` is written last; opening the index verifies the files.

Vectors of an outside model (an ``.npz``, or a folder of ``vectors.npy`` and ``tracks.tsv`` without
``embeddings.json``) are checked and written as an embeddings folder into ``OUT/embeddings`` first; the
index records no encoder fingerprint then, so it is searched by track, not by audio file.

Adding (``build_index(..., add=[NEW])``, ``mixtape index EMB --add NEW``): the tracks of another
embeddings folder (or outside vectors of the same model) join the index without retraining: their
vectors are added to the FAISS index (and to ``vectors_f16.npy``), their rows to ``tracks.tsv``, the
mutual-proximity moments and the map are recomputed, the search parameter is tuned again on the grown index, and
``index.json`` lists the source under ``added`` (path, checksum, tracks). A source already listed is
not added twice, so the command is idempotent; ``index.json`` is removed first, so an interrupted add
leaves an incomplete index that the same command rebuilds. A rebuild (``--force``, or changed
embeddings) indexes ``EMB`` and the sources given again with ``add``, no others.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_open, atomic_write_text, file_checksum, get_logger, progress
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder
from mixtape.text import and_more, quoted

from .embeddings import (
    META_FILE,
    TRACKS_FILE,
    Embeddings,
    EmbeddingsError,
    RowFile,
    TrackMeta,
    TrackVectors,
    holds_outside_vectors,
    npy_header,
    outside_model,
    read_meta,
    read_track_meta,
    read_track_vectors,
    vectors_checksum,
)
from .layout import LAYOUT_FILE, LayoutError, LayoutMethod, layout_of, resolve_method
from .rerank import MP_FILE, compute_moments, save_moments

log = get_logger(__name__)
# faiss logs at INFO which SIMD library it tried and failed to load: noise for a user
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

INDEX_FILE = "index.faiss"
#: ``ivfpq``: the unit vectors in float16 ``[N, D]``, row i = FAISS id i, re-scoring the PQ shortlist.
RERANK_FILE = "vectors_f16.npy"
#: Bits per PQ code of ``ivfpq`` (FAISS's fast-scan layout takes 4).
PQ_NBITS = 4
#: Shortlist depths tried by the tuning, as multiples of the results fetched.
RERANK_FACTORS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: Where an index of an outside model's vectors keeps them as an embeddings folder (inside the index folder).
OUTSIDE_EMBEDDINGS = "embeddings"


class _EmbeddingsRef(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    path: str = ""


class _AddedRef(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    path: str
    checksum: str
    n: int = Field(ge=0)


class IndexHeader(StageHeader):
    """What ``index.json``'s readers use, typed: a damaged header is refused before FAISS sees the folder."""

    kind: Literal["flat", "ivf", "ivfpq", "hnsw"]
    n: int = Field(ge=0)
    dim: int = Field(ge=0)
    params: dict[str, Annotated[int, Field(ge=0)]] = {}
    encoder: dict[str, Any] | None = None
    embeddings: _EmbeddingsRef | None = None
    added: list[_AddedRef] = []
    files: dict[str, Any] | None = None


INDEX_FOLDER = register_stage_folder(
    StageFolder(
        "index",
        "index.json",
        "mixtape-index",
        1,
        "build it with `mixtape index EMBEDDINGS --out FOLDER`",
        model=IndexHeader,
    )
)
INDEX_META = INDEX_FOLDER.header_file
RECALL_K = 10
#: Rows normalised and added to FAISS at once: bounds memory to a block beside the index.
ADD_BLOCK = 65536


class SearchIndexError(MixtapeError):
    """An index that cannot be built, opened or used as asked."""


class IndexSettings(StrictConfig):
    """How `mixtape index` builds; defaults are chosen from the collection size (see the module docstring)."""

    kind: Literal["auto", "flat", "ivf", "ivfpq", "hnsw"] = "auto"
    exact_max: int = Field(100_000, ge=0)
    ivf_max_gib: float = Field(2.0, ge=0.0)
    nlist: int | None = Field(None, gt=0)
    pq_m: int | None = Field(None, gt=0)
    hnsw_m: int = Field(32, gt=1)
    ef_construction: int = Field(80, gt=0)
    target_recall: float = Field(0.95, gt=0.0, le=1.0)
    recall_queries: int = Field(200, gt=0)
    mutual_proximity: bool = False
    #: the 2-D map of the collection (``layout.npy``; see mixtape.search.layout): auto = UMAP where
    #: umap-learn is installed, else PCA; none = no map
    layout: LayoutMethod = "auto"
    seed: int = 0


def choose_kind(n: int, dim: int, settings: IndexSettings) -> str:
    """``auto``: exact up to ``exact_max`` tracks, IVF-Flat while its vectors (float32) take at most
    ``ivf_max_gib``, IVF-PQ above."""
    if settings.kind != "auto":
        return settings.kind
    if n <= settings.exact_max:
        return "flat"
    return "ivf" if n * dim * 4 <= settings.ivf_max_gib * 2**30 else "ivfpq"


def pq_subquantizers(dim: int) -> int:
    """Default sub-quantizers of ``ivfpq``: one per 4 dimensions (320 for 1280), or per the smallest
    divisor of ``dim`` above 4 when 4 does not divide it (one for the whole vector when none does)."""
    for sub in range(4, dim + 1):
        if dim % sub == 0:
            return dim // sub
    return 1


def ivf_nlist(n: int) -> int:
    """Power of two nearest sqrt(n), at least 1, and at most n / 39 (FAISS wants >= 39 points per list)."""
    target = 2 ** round(math.log2(max(math.sqrt(n), 1.0)))
    return int(max(1, min(target, n // 39 if n >= 39 else 1)))


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float32 (zero rows stay zero), so inner products are cosines."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def as_blocks(vectors: np.ndarray | Iterable[np.ndarray], block: int = ADD_BLOCK) -> Iterator[np.ndarray]:
    """Row blocks of an array, or the blocks of an iterable as they come."""
    if isinstance(vectors, np.ndarray):
        for start in range(0, len(vectors), block):
            yield np.asarray(vectors[start : start + block], dtype=np.float32)
    else:
        yield from vectors


def exact_top_k(
    vectors: np.ndarray | Iterable[np.ndarray], queries: np.ndarray, k: int, sub_block: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k cosine of unit ``queries`` against every (raw) vector, streamed in row blocks
    (an array, or an iterable of blocks): scores ``[Q, k]`` descending and rows ``[Q, k]``.
    Each block keeps only its own top k before merging, so memory is one [Q, sub_block] score matrix."""
    q = np.asarray(queries, dtype=np.float32)
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    start = 0
    for block in as_blocks(vectors):
        for lo in range(0, len(block), sub_block):
            s = q @ unit_rows(block[lo : lo + sub_block]).T
            kk = min(k, s.shape[1])
            part = (
                np.argpartition(-s, kk - 1, axis=1)[:, :kk]
                if s.shape[1] > kk
                else np.tile(np.arange(s.shape[1]), (len(q), 1))
            )
            cand_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
            cand_i = np.concatenate([best_i, part + start], axis=1)
            keep = (
                np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
                if cand_s.shape[1] > k
                else np.tile(np.arange(cand_s.shape[1]), (len(q), 1))
            )
            best_s, best_i = np.take_along_axis(cand_s, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)
            start += s.shape[1]
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, axis=1), np.take_along_axis(best_i, order, axis=1)


def recall_at_k(
    approx_scores: np.ndarray, approx_rows: np.ndarray, exact_scores: np.ndarray, eps: float = 1e-5
) -> float:
    """Mean share of the exact top-k reached: an approximate hit counts when its score is at least the
    exact k-th score (ties are not misses); missing results (-1) never count."""
    return float(recall_per_query(approx_scores, approx_rows, exact_scores, eps).mean())


def recall_per_query(
    approx_scores: np.ndarray, approx_rows: np.ndarray, exact_scores: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    """Each query's share of its exact top-k reached (see :func:`recall_at_k`)."""
    k = exact_scores.shape[1]
    kth = exact_scores[:, -1:]
    hits = ((approx_scores[:, :k] >= kth - eps) & (approx_rows[:, :k] >= 0)).sum(axis=1)
    return np.asarray(np.minimum(hits, k) / k, dtype=np.float64)


def drop_self(scores: np.ndarray, rows: np.ndarray, self_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` results of each query other than the query track itself (search by track never
    returns it, so recall is measured on the neighbours a user actually gets)."""
    keep = rows != np.asarray(self_rows)[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def _new_index(kind: str, dim: int, n: int, settings: IndexSettings) -> Any:
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "ivf":
        nlist = settings.nlist or ivf_nlist(n)
        if nlist > n:
            raise SearchIndexError(f"index: nlist={nlist} is more than the {n} tracks to index")
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.spherical = True  # centroids on the unit sphere, as the vectors are
        ivf.cp.seed = settings.seed
        return ivf
    if kind == "ivfpq":
        nlist = settings.nlist or ivf_nlist(n)
        if nlist > n:
            raise SearchIndexError(f"index: nlist={nlist} is more than the {n} tracks to index")
        m = settings.pq_m or pq_subquantizers(dim)
        if dim % m:
            raise SearchIndexError(f"index: pq_m={m} sub-quantizers do not divide the {dim} dimensions")
        pq = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, nlist, m, PQ_NBITS, faiss.METRIC_INNER_PRODUCT)
        pq.cp.spherical = True
        pq.cp.seed = settings.seed
        return pq
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = settings.ef_construction
        return hnsw
    raise SearchIndexError(f"index: unknown kind {kind!r} (auto, flat, ivf, ivfpq or hnsw)")


def search_param_name(kind: str) -> str | None:
    return {"ivf": "nprobe", "ivfpq": "nprobe", "hnsw": "efSearch"}.get(kind)


def set_search_param(index: Any, kind: str, value: int) -> None:
    if kind in ("ivf", "ivfpq"):
        index.nprobe = int(value)
    elif kind == "hnsw":
        index.hnsw.efSearch = int(value)


def rescore(store: RowFile, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosines of one unit ``query`` with the stored unit vectors of ``rows`` (-inf where a row is -1,
    FAISS's "no result")."""
    out = np.full(len(rows), -np.inf, dtype=np.float32)
    found = rows >= 0
    if found.any():
        out[found] = store.take(rows[found]).astype(np.float32) @ np.asarray(query, dtype=np.float32)
    return out


def best_of(scores: np.ndarray, rows: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``fetch`` best of re-scored shortlists (one per row of 2-D ``scores``/``rows``, or one 1-D),
    best first (ties keep the shortlist's order), padded with -inf / -1 as FAISS pads a short result."""
    s2, r2 = np.atleast_2d(scores), np.atleast_2d(rows)
    order = np.argsort(-s2, axis=1, kind="stable")[:, :fetch]
    s = np.full((len(s2), fetch), -np.inf, dtype=np.float32)
    r = np.full((len(s2), fetch), -1, dtype=np.int64)
    s[:, : order.shape[1]] = np.take_along_axis(s2, order, axis=1)
    r[:, : order.shape[1]] = np.take_along_axis(r2, order, axis=1)
    r[~np.isfinite(s)] = -1
    return (s, r) if np.ndim(scores) == 2 else (s[0], r[0])


def _candidate_params(kind: str, index: Any) -> list[int]:
    if kind in ("ivf", "ivfpq"):
        nlist = int(index.nlist)
        values = [v for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024) if v < nlist]
        return values + [nlist]
    if kind == "hnsw":
        return [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    return []


@dataclass
class IndexReport:
    """What `mixtape index` built or added; ``summary()`` is what the CLI prints."""

    out: Path
    kind: str
    n: int
    dim: int
    params: dict[str, Any]
    recall10: float
    recall_queries: int
    build_seconds: float
    tuning: list[tuple[int, float]]
    mutual_proximity: bool
    up_to_date: bool = False
    rerank_tuning: list[tuple[int, float]] = field(default_factory=list)  # ivfpq: (shortlist factor, recall@10)
    added: list[tuple[str, int]] = field(default_factory=list)  # (source, tracks) added by this run
    added_before: list[tuple[str, int]] = field(default_factory=list)  # (source, tracks) the index already held
    rebuilt: bool = False  # the index was built (not only added to) by this run
    layout: dict[str, Any] | None = None  # the map written: {"method": "umap" | "pca", "seconds": ...}

    def summary(self) -> str:
        held = ""
        if self.added_before or self.added:
            sources = [*self.added_before, *self.added]
            held = f"; {sum(t for _, t in sources)} of its tracks added from " + and_more(
                [s for s, _ in sources], show=quoted
            )
        if self.up_to_date:
            return (
                f"index {self.out}: up to date ({self.kind}, {self.n} tracks, recall@10 {self.recall10:.3f}{held}); "
                "nothing to do"
            )
        params = ", ".join(f"{k}={v}" for k, v in self.params.items()) or "exact"
        exact = " (exact search)" if self.kind == "flat" else f" vs exact on {self.recall_queries} sample queries"
        lines = []
        if self.rebuilt:
            lines.append(
                f"index -> {self.out}: {self.kind} ({params}), {self.n - sum(t for _, t in self.added)} tracks x "
                f"{self.dim} dims, built in {self.build_seconds:.1f} s"
            )
        for source, tracks in self.added:
            lines.append(f"index -> {self.out}: added {tracks} tracks from {source}")
        if self.added:
            lines.append(f"  now {self.n} tracks ({self.kind}, {params}){held}")
        lines.append(f"  recall@10 {self.recall10:.3f}{exact}")
        if self.tuning:
            lines.append(
                "  tuning: "
                + ", ".join(f"{v}: {r:.3f}" for v, r in self.tuning)
                + f" ({search_param_name(self.kind)} -> recall@10"
                + (f", shortlist of {RERANK_FACTORS[-1]} x k)" if self.kind == "ivfpq" else ")")
            )
        if self.rerank_tuning:
            lines.append(
                "  shortlist: "
                + ", ".join(f"{v}: {r:.3f}" for v, r in self.rerank_tuning)
                + f" (rerank, x k candidates re-scored exactly -> recall@10 at nprobe={self.params.get('nprobe')})"
            )
        if self.mutual_proximity:
            lines.append(f"  mutual proximity moments saved ({MP_FILE}): re-rank with --rerank mp")
        if self.layout:
            lines.append(
                f"  map of the collection ({LAYOUT_FILE}): {self.layout.get('method')}, "
                f"{float(self.layout.get('seconds', 0.0)):.1f} s"
            )
        return "\n".join(lines)


def read_index_meta(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise SearchIndexError(
            f"index folder not found: {path} (build it with `mixtape index EMBEDDINGS --out {path}`)"
        )
    return INDEX_FOLDER.read_header(
        path, error=SearchIndexError, hint="rebuild the index with `mixtape index` (or it is not an index folder)"
    )


def read_faiss(file: Path) -> Any:
    """A FAISS index read from ``file``. Callers that know the file's checksum verify it first
    (:func:`changed_index_files`): FAISS trusts the sizes written in the file, so damaged bytes can
    make it try to allocate terabytes before it notices anything."""
    import faiss

    try:
        with open(file, "rb") as f:
            return faiss.read_index(faiss.PyCallbackIOReader(f.read))  # type: ignore[attr-defined]  # not in faiss's stub
    except FileNotFoundError:
        raise SearchIndexError(
            f"{file}: missing (the index folder is incomplete); rebuild it with `mixtape index`"
        ) from None
    except (RuntimeError, MemoryError) as err:  # MemoryError: std::bad_alloc for a damaged size field
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SearchIndexError(
            f"{file}: not a readable FAISS index ({first}); rebuild it with `mixtape index`"
        ) from None


def changed_index_files(path: Path, meta: dict[str, Any]) -> list[tuple[Path, str]]:
    """Files of an index folder that are missing or differ from the checksums ``index.json`` records,
    each with what is wrong in words.
    Empty for an index built before checksums were recorded."""
    recorded = meta.get("files")
    out: list[tuple[Path, str]] = []
    for name, want in recorded.items() if isinstance(recorded, dict) else []:
        file = path / str(name)
        try:
            got = file_checksum(file)
        except FileNotFoundError:
            out.append((file, f"missing (it was written with the index; {INDEX_META} refers to it)"))
            continue
        except OSError as err:
            out.append((file, f"unreadable ({err.strerror or err})"))
            continue
        if got != want:
            out.append((file, f"changed since the index was built (its checksum differs from the one in {INDEX_META})"))
    return out


def _sources(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """What an index header says its tracks came from: the embeddings, then each added source."""
    base, added = meta.get("embeddings"), meta.get("added")
    return ([base] if isinstance(base, dict) else []) + [
        a for a in (added if isinstance(added, list) else []) if isinstance(a, dict)
    ]


def changed_sources(meta: dict[str, Any]) -> list[str]:
    """The embeddings folders an index was built or added from whose vectors changed since (by the
    checksum their ``embeddings.json`` records; an outside model's vectors are not hashed again)."""
    out = []
    for source in _sources(meta):
        folder = Path(str(source.get("path", "")))
        if not (folder / META_FILE).is_file():
            continue
        try:
            current = read_meta(folder).get("vectors_checksum")
        except MixtapeError:  # an unreadable embeddings folder is the embeddings' problem, not the index's
            continue
        if current != source.get("checksum"):
            out.append(str(folder))
    return out


def rebuild_command(path: Path, meta: dict[str, Any]) -> str:
    """The command that builds this index again with the tracks it holds (its embeddings and every
    added source)."""
    base = (meta.get("embeddings") or {}).get("path") if isinstance(meta.get("embeddings"), dict) else None
    adds = "".join(f" --add {a.get('path')}" for a in _sources(meta)[1 if base else 0 :])
    return f"mixtape index {base or 'EMBEDDINGS'} --out {path}{adds} --force"


def _existing_report(out: Path, emb: Embeddings, cfg: IndexSettings) -> IndexReport | None:
    """The report of the index already in ``out`` when it indexes these very embeddings with these
    settings (rebuilding it would change nothing), else None."""
    if not (out / INDEX_META).exists():
        return None
    try:
        old = read_index_meta(out)
        recorded = IndexSettings.model_validate(old.get("settings")).model_dump(mode="json")
    except (SearchIndexError, ValueError):  # pydantic's ValidationError is a ValueError
        return None
    if (
        old.get("embeddings", {}).get("checksum") != emb.checksum
        or recorded != cfg.model_dump(mode="json")
        or old.get("kind") != choose_kind(len(emb), emb.dim, cfg)
        or (cfg.layout != "none" and LAYOUT_FILE not in (old.get("files") or {}))
    ):
        return None
    return _report_of(out, old, up_to_date=True)


def _report_of(out: Path, meta: dict[str, Any], up_to_date: bool = False) -> IndexReport:
    return IndexReport(
        out,
        meta["kind"],
        meta["n"],
        meta["dim"],
        meta["params"],
        meta["recall10"],
        meta["recall_queries"],
        meta["build_seconds"],
        [],
        bool(meta.get("mutual_proximity")),
        up_to_date,
        added_before=[(str(a["path"]), int(a["n"])) for a in meta.get("added", [])],
        layout=meta.get("layout") if isinstance(meta.get("layout"), dict) else None,
    )


@dataclass
class _Vectors:
    """The vectors an index holds, as its tuning and mutual proximity read them: ``rows(idx)`` and
    ``blocks(size)`` (raw or unit rows; both are normalised where used)."""

    n: int
    dim: int
    rows: Callable[[np.ndarray], np.ndarray]
    blocks: Callable[[int], Iterable[np.ndarray]]


def _embeddings_vectors(emb: Embeddings) -> _Vectors:
    return _Vectors(len(emb), emb.dim, emb.rows, emb.blocks)


def _held_vectors(index: Any, store: RowFile | None) -> _Vectors:
    """The vectors an index already holds: the float16 store of ``ivfpq``, or FAISS's own copy."""
    if store is not None:
        return _Vectors(len(store), store.shape[1], store.take, store.blocks)
    n = int(index.ntotal)

    def rows(idx: np.ndarray) -> np.ndarray:
        return np.stack([index.reconstruct(int(r)) for r in np.asarray(idx).tolist()]) if len(idx) else np.zeros(0)

    def blocks(size: int) -> Iterator[np.ndarray]:
        for start in range(0, n, size):
            yield index.reconstruct_n(start, min(size, n - start))

    return _Vectors(n, int(index.d), rows, blocks)


def _train(index: Any, kind: str, vectors: _Vectors, cfg: IndexSettings) -> None:
    """Train the coarse quantizer (and the PQ codebooks) on ``64 * nlist`` sampled vectors, read row by row."""
    if kind not in ("ivf", "ivfpq"):
        return
    n = vectors.n
    rng = np.random.default_rng(cfg.seed)
    n_train = min(n, 64 * int(index.nlist))
    sample = np.sort(rng.choice(n, size=n_train, replace=False))
    log.info("index: training %d %s lists on %d sampled vectors", index.nlist, kind.upper(), n_train)
    index.train(unit_rows(vectors.rows(sample)))


def _fill_index(emb: Embeddings, kind: str, cfg: IndexSettings, out: Path) -> tuple[Any, dict[str, str]]:
    """A FAISS index of ``kind`` holding every normalised vector, added block by block so memory stays
    one block beside the index; for ``ivfpq`` also ``vectors_f16.npy`` (written in the same pass; the
    folder's old header is removed before it replaces the old one). Returns the index and the checksums
    of the files written."""
    n = len(emb)
    index = _new_index(kind, emb.dim, n, cfg)
    _train(index, kind, _embeddings_vectors(emb), cfg)
    blocks = progress(emb.blocks(ADD_BLOCK), desc=f"adding to {kind} index", total=-(-n // ADD_BLOCK), unit="block")
    files: dict[str, str] = {}
    if kind == "ivfpq":
        out.mkdir(parents=True, exist_ok=True)
        files[RERANK_FILE] = _write_store(out, n, emb.dim, (unit_rows(b) for b in blocks), index.add)
    else:
        for block in blocks:
            index.add(unit_rows(block))
    if kind == "ivf":
        index.make_direct_map()  # so a track's own vector can be read back for "similar to this track"
    return index, files


def _write_store(
    out: Path,
    n: int,
    dim: int,
    new_blocks: Iterable[np.ndarray],
    each: Callable[[np.ndarray], Any],
    kept: Iterable[np.ndarray] = (),
) -> str:
    """Write ``vectors_f16.npy``: the rows ``kept`` from the old file, then the unit row blocks
    ``new_blocks``, calling ``each(block)`` on each of these on the way (adding it to FAISS). Returns
    its checksum. ``index.json`` is removed before the file lands: from then on the folder reads as
    incomplete until its new header is written."""
    digest = hashlib.blake2b(digest_size=16)  # mixtape.fileio.file_checksum's, without reading the file back
    rows = 0
    with atomic_open(out / RERANK_FILE, "wb") as f:
        header = npy_header(np.float16, (n, dim))
        f.write(header)
        digest.update(header)
        for block, is_new in itertools.chain(((b, False) for b in kept), ((b, True) for b in new_blocks)):
            if is_new:
                each(block)
            data = np.ascontiguousarray(block, dtype=np.float16).tobytes()
            f.write(data)
            digest.update(data)
            rows += len(block)
        if rows != n:
            raise SearchIndexError(f"internal: {rows} vectors written to {RERANK_FILE}, {n} expected")
        (out / INDEX_META).unlink(missing_ok=True)
    return digest.hexdigest()


@dataclass
class _Tuned:
    """The search parameters chosen for an index and the recall@10 they reach."""

    params: dict[str, Any]
    recall: float
    recall_queries: int  # sample queries measured (0: exact search, nothing to measure)
    tuning: list[tuple[int, float]]  # (parameter value, recall@10) in the order tried
    rerank_tuning: list[tuple[int, float]] = field(default_factory=list)  # ivfpq: (shortlist factor, recall@10)


def _sweep(
    index: Any, kind: str, queries: np.ndarray, q_rows: np.ndarray, exact_s: np.ndarray, k: int, cfg: IndexSettings
) -> tuple[int | None, float, list[tuple[int, float]]]:
    """Try the search parameter from cheap to costly and stop at the first reaching the target recall
    (or the last one, with a warning): the value, its recall and every value tried."""
    chosen, recall = None, 0.0
    tuning: list[tuple[int, float]] = []
    for value in _candidate_params(kind, index):
        set_search_param(index, kind, value)
        found_s, found_i = index.search(queries, k + 1)
        s, i = drop_self(found_s, found_i, q_rows, k)
        r = recall_at_k(s, i, exact_s)
        tuning.append((value, r))
        chosen, recall = value, r
        if r >= cfg.target_recall:
            break
    if recall < cfg.target_recall:
        log.warning(
            "index: recall@10 %.3f at the largest %s=%s is below the target %.2f",
            recall,
            search_param_name(kind),
            chosen,
            cfg.target_recall,
        )
    return chosen, recall, tuning


def _sweep_ivfpq(
    index: Any, store: RowFile, queries: np.ndarray, q_rows: np.ndarray, exact_s: np.ndarray, k: int, cfg: IndexSettings
) -> _Tuned:
    """``nprobe`` and the shortlist depth of an ``ivfpq`` index (see the module docstring). For each
    ``nprobe`` from cheap to costly: one search at the deepest shortlist of ``RERANK_FACTORS``, whose
    prefixes are the shallower ones, and the recall of each. The sweep stops at the first ``nprobe``
    whose deepest shortlist misses at most half of what the target allows, or once that recall no
    longer grows (the shortlist, not the lists, limits it). The chosen ``nprobe`` is the first that
    reached the stricter target (else the first that reached the target); the shortlist is the
    shallowest whose recall reaches the target by two standard errors of the sample's estimate (a
    deeper shortlist costs microseconds, a recall below the target on other queries does not)."""
    fetch, n = k + 1, int(index.ntotal)
    lists_target = 1.0 - (1.0 - cfg.target_recall) / 2
    tried: list[tuple[int, list[tuple[int, float, float]]]] = []  # nprobe, [(factor, recall, its standard error)]
    for nprobe in _candidate_params("ivfpq", index):
        index.nprobe = nprobe
        _, cand = index.search(queries, min(n, RERANK_FACTORS[-1] * fetch))
        exact = np.stack([rescore(store, q, c) for q, c in zip(queries, cand, strict=True)])
        per_factor = []
        for factor in RERANK_FACTORS:
            depth = min(n, factor * fetch)
            s, r = best_of(exact[:, :depth], cand[:, :depth], fetch)
            s, r = drop_self(s, r, q_rows, k)
            each = recall_per_query(s, r, exact_s)
            error = float(each.std(ddof=1) / math.sqrt(len(each))) if len(each) > 1 else 0.0
            per_factor.append((factor, float(each.mean()), error))
        deepest = per_factor[-1][1]
        stalled = bool(tried) and cfg.target_recall <= deepest <= tried[-1][1][-1][1] + 0.002
        tried.append((nprobe, per_factor))
        if deepest >= lists_target or stalled:
            break
    nprobe, per_factor = next(
        (t for t in tried if t[1][-1][1] >= lists_target),
        next((t for t in tried if t[1][-1][1] >= cfg.target_recall), tried[-1]),
    )
    factor, recall, _ = next(
        (c for c in per_factor if c[1] - 2 * c[2] >= cfg.target_recall),
        next((c for c in per_factor if c[1] >= cfg.target_recall), per_factor[-1]),
    )
    if recall < cfg.target_recall:
        log.warning(
            "index: recall@10 %.3f at the largest nprobe=%s and shortlist %s x k is below the target %.2f",
            recall,
            nprobe,
            factor,
            cfg.target_recall,
        )
    index.nprobe = nprobe
    return _Tuned(
        {"nprobe": nprobe, "rerank": factor},
        recall,
        len(queries),
        [(p, f[-1][1]) for p, f in tried],
        [(f, r) for f, r, _ in per_factor if f <= factor],
    )


def _tune_search(index: Any, kind: str, vectors: _Vectors, cfg: IndexSettings, store: RowFile | None = None) -> _Tuned:
    """Recall@10 against exact search on sampled collection tracks, and the search parameter(s)
    reaching the target (exact search needs none)."""
    n = vectors.n
    rng = np.random.default_rng(cfg.seed + 1)
    nq = min(cfg.recall_queries, n)
    q_rows = np.sort(rng.choice(n, size=nq, replace=False))
    k = min(RECALL_K, n - 1)
    recall_queries = nq if kind != "flat" else 0
    structure: dict[str, Any] = {}
    if kind in ("ivf", "ivfpq"):
        structure["nlist"] = int(index.nlist)
    if kind == "ivfpq":
        structure.update(m=int(index.pq.M), nbits=int(index.pq.nbits))
    if kind == "hnsw":
        structure = {"M": cfg.hnsw_m, "efConstruction": cfg.ef_construction}
    if kind == "flat" or k < 1:
        if kind == "ivfpq":  # one track: nothing to tune
            index.nprobe = int(index.nlist)
            structure.update(nprobe=int(index.nlist), rerank=1)
        return _Tuned(structure if kind == "ivfpq" else {}, 1.0, recall_queries, [])
    queries = unit_rows(vectors.rows(q_rows))
    exact_s, exact_i = exact_top_k(vectors.blocks(ADD_BLOCK), queries, k + 1)
    exact_s, _ = drop_self(exact_s, exact_i, q_rows, k)
    if kind == "ivfpq":
        assert store is not None
        tuned = _sweep_ivfpq(index, store, queries, q_rows, exact_s, k, cfg)
        tuned.params = {**structure, **tuned.params}
        return tuned
    name = search_param_name(kind)
    assert name is not None  # ivf or hnsw: both have one
    chosen, recall, tuning = _sweep(index, kind, queries, q_rows, exact_s, k, cfg)
    return _Tuned({**structure, name: chosen}, recall, recall_queries, tuning)


def _check_layout(cfg: IndexSettings) -> None:
    """Refuse a map method this machine cannot compute (``umap`` without umap-learn) before anything is
    written."""
    try:
        resolve_method(cfg.layout)
    except LayoutError as err:
        raise SearchIndexError(str(err)) from None


def _write_layout(out: Path, vectors: _Vectors, cfg: IndexSettings) -> tuple[str, dict[str, Any]] | None:
    """Compute and write ``layout.npy`` (the 2-D map) unless ``cfg.layout`` is ``none`` (then remove it):
    its checksum and what the header records of it (method, seconds)."""
    if cfg.layout == "none":
        (out / LAYOUT_FILE).unlink(missing_ok=True)
        return None
    started = time.perf_counter()
    try:
        layout, method = layout_of(vectors.n, vectors.dim, vectors.rows, vectors.blocks, cfg.layout, cfg.seed)
    except LayoutError as err:
        raise SearchIndexError(str(err)) from None
    digest = hashlib.blake2b(digest_size=16)  # mixtape.fileio.file_checksum's, without reading the file back
    with atomic_open(out / LAYOUT_FILE, "wb") as f:
        buf = io.BytesIO()
        np.save(buf, layout, allow_pickle=False)
        data = buf.getvalue()
        f.write(data)
        digest.update(data)
    seconds = time.perf_counter() - started
    log.info("index: map of %d tracks by %s in %.1f s (%s)", vectors.n, method, seconds, LAYOUT_FILE)
    return digest.hexdigest(), {"method": method, "seconds": round(seconds, 3)}


def _write_index_files(
    out: Path, index: Any, tracks: TrackMeta, vectors: _Vectors, cfg: IndexSettings, files: dict[str, str]
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Write every file of the folder but its header (and the ``ivfpq`` store, already written, whose
    checksum is in ``files``); the header is removed first (the folder reads as incomplete until the new
    header lands). Returns the checksums of every file for the header, and what the header records of
    the map (None without one)."""
    import faiss

    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_META).unlink(missing_ok=True)  # incomplete until the new metadata lands
    layout = _write_layout(out, vectors, cfg)
    if cfg.mutual_proximity:
        save_moments(out / MP_FILE, compute_moments(vectors.blocks, vectors.n, vectors.dim))
    else:
        (out / MP_FILE).unlink(missing_ok=True)
    if RERANK_FILE not in files:
        (out / RERANK_FILE).unlink(missing_ok=True)
    index_hash = hashlib.blake2b(
        digest_size=16
    )  # the same digest as mixtape.fileio.file_checksum, without reading the file back
    with atomic_open(out / INDEX_FILE, "wb") as f:

        def write(chunk: bytes) -> int:
            index_hash.update(chunk)
            return f.write(chunk)

        faiss.write_index(index, faiss.PyCallbackIOWriter(write))  # type: ignore[attr-defined]  # not in faiss's stub
    tracks_file = atomic_write_text(out / TRACKS_FILE, tracks.to_tsv())
    files = {INDEX_FILE: index_hash.hexdigest(), TRACKS_FILE: file_checksum(tracks_file), **files}
    if cfg.mutual_proximity:
        files[MP_FILE] = file_checksum(out / MP_FILE)
    if layout is not None:
        files[LAYOUT_FILE] = layout[0]
    return files, layout[1] if layout is not None else None


def _index_header(
    kind: str,
    emb: Embeddings,
    cfg: IndexSettings,
    tuned: _Tuned,
    build_seconds: float,
    files: dict[str, str],
    layout: dict[str, Any] | None,
) -> dict[str, Any]:
    """``index.json``: what was built from what, so a re-run can tell it is up to date and opening can
    verify the files."""
    import faiss

    header: dict[str, Any] = {
        "kind": kind,
        "metric": "inner product of L2-normalised vectors (cosine)",
        "n": len(emb),
        "dim": emb.dim,
        "params": tuned.params,
        "recall10": tuned.recall,
        "recall_queries": tuned.recall_queries,
        "tuning": tuned.tuning,
        "build_seconds": build_seconds,
        "mutual_proximity": cfg.mutual_proximity,
        "settings": cfg.model_dump(mode="json"),
        "embeddings": {"path": str(emb.path.resolve()), "checksum": emb.checksum, "failed": len(emb.failures)},
        "encoder": emb.encoder_info,
        "faiss": faiss.__version__,
        "files": files,
    }
    if layout is not None:
        header["layout"] = layout
    if kind == "ivfpq":
        header["rerank_tuning"] = tuned.rerank_tuning
    return header


def _embeddings_to_index(path: Path, out: Path) -> Embeddings:
    """The embeddings folder an index of ``path`` is built from: ``path`` itself, or, for vectors of an
    outside model, their copy in ``out/embeddings`` (see :meth:`TrackVectors.as_embeddings`)."""
    if not holds_outside_vectors(path):
        return Embeddings.open(path)
    if path.resolve() in (out.resolve(), (out / OUTSIDE_EMBEDDINGS).resolve()):
        raise SearchIndexError(
            f"index: {path} holds the vectors to index; write the index into another folder "
            f"(e.g. --out {path / 'index'})"
        )
    vectors = read_track_vectors(path)
    emb = vectors.as_embeddings(out / OUTSIDE_EMBEDDINGS)
    log.info("index: %s, as an embeddings folder in %s", vectors.describe(), emb.path)
    return emb


def _build(emb: Embeddings, out: Path, kind: str, cfg: IndexSettings, started: float) -> IndexReport:
    index, files = _fill_index(emb, kind, cfg, out)
    store = RowFile(out / RERANK_FILE) if kind == "ivfpq" else None
    try:
        tuned = _tune_search(index, kind, _embeddings_vectors(emb), cfg, store)
    finally:
        if store is not None:
            store.close()
    files, layout = _write_index_files(out, index, emb.tracks, _embeddings_vectors(emb), cfg, files)
    build_seconds = time.perf_counter() - started
    INDEX_FOLDER.write_header(out, _index_header(kind, emb, cfg, tuned, build_seconds, files, layout))
    return IndexReport(
        out,
        kind,
        len(emb),
        emb.dim,
        tuned.params,
        tuned.recall,
        tuned.recall_queries,
        build_seconds,
        tuned.tuning,
        cfg.mutual_proximity,
        rerank_tuning=tuned.rerank_tuning,
        rebuilt=True,
        layout=layout,
    )


def build_index(
    embeddings: str | Path,
    out: str | Path,
    settings: IndexSettings | None = None,
    force: bool = False,
    add: Sequence[str | Path] = (),
) -> IndexReport:
    """Build the index of an embeddings folder into ``out`` (see the module docstring), then add the
    tracks of each source in ``add`` that the index does not hold yet (:func:`add_to_index`).

    ``embeddings`` may also be vectors of an outside model (an ``.npz`` of ``ids`` and ``embeddings``, or a
    folder of ``vectors.npy`` and ``tracks.tsv`` without ``embeddings.json``): they are checked and written
    as an embeddings folder into ``out/embeddings``, which the index is then built from.
    """
    cfg = settings or IndexSettings()
    started = time.perf_counter()
    out = Path(out)
    emb = _embeddings_to_index(Path(embeddings), out)
    n, dim = len(emb), emb.dim
    if n == 0:
        raise SearchIndexError(
            f"index: {emb.path} holds no track embeddings (all failed? see {emb.path / 'failures.tsv'})"
        )
    kind = choose_kind(n, dim, cfg)
    report = None if force else _existing_report(out, emb, cfg)
    if report is None:
        _check_layout(cfg)
        dropped = _added_sources(out)
        report = _build(emb, out, kind, cfg, started)
        log.info("index: %s", report.summary().replace("\n", ";"))
        wanted = {str(Path(a).resolve()) for a in add}
        left_out = [path for path in dropped if path not in wanted]
        if left_out:
            log.warning(
                "index: the rebuilt index no longer holds the tracks added before from %s; add them again with --add",
                and_more(left_out, show=quoted),
            )
    steps = [step for step in (add_to_index(out, source) for source in add) if not step.up_to_date]
    if not steps:
        return report
    final = steps[-1]
    added = [a for step in steps for a in step.added]
    final.added_before = [a for a in final.added_before if a not in added]
    final.added, final.rebuilt, final.build_seconds = added, report.rebuilt, report.build_seconds
    return final


def _added_sources(out: Path) -> list[str]:
    """The sources the index in ``out`` lists as added (none when there is no readable index)."""
    try:
        meta = read_index_meta(out)
    except MixtapeError:
        return []
    return [str(a.get("path")) for a in meta.get("added", []) if isinstance(a, dict)]


def _new_tracks(source: Path) -> tuple[TrackVectors, str]:
    """The vectors of ``source`` (checked as ``--embeddings`` checks them) and their checksum (the one
    ``embeddings.json`` records; hashed for vectors of an outside model)."""
    vectors = read_track_vectors(source)
    if vectors.embeddings is not None:
        return vectors, vectors.embeddings.checksum
    return vectors, vectors_checksum(vectors.vectors)


def _check_addable(out: Path, meta: dict[str, Any], held: TrackMeta, source: Path, new: TrackVectors) -> None:
    """Refuse vectors that cannot join this index: other dimensions, another encoder, or tracks it holds."""
    if new.dim != meta["dim"]:
        raise SearchIndexError(
            f"index: {source} holds {new.dim}-dim vectors, the index {out} {meta['dim']}-dim ones: add vectors of "
            "the model the index was built from"
        )
    have = dict(meta.get("encoder") or {})
    theirs = new.encoder
    if (have.get("fingerprint") or None) != (theirs.get("fingerprint") or None):

        def made_by(enc: dict[str, Any]) -> str:
            return (
                outside_model(enc) or f"vectors of the encoder {enc.get('source')} (weights {enc.get('fingerprint')})"
            )

        made, mine = made_by(theirs), made_by(have)
        raise SearchIndexError(
            f"index: {source} holds {made}, the index {out} {mine}: their vectors are not comparable; embed the new "
            "tracks with the index's encoder"
        )
    known = set(held.track_ids)
    repeated = [t for t in new.track_ids if t in known]
    if repeated:
        raise SearchIndexError(
            f"index: {len(repeated)} track(s) of {source} are already in the index {out}: "
            f"{and_more(repeated, show=quoted)}; add only new tracks, or rebuild with "
            f"`{rebuild_command(out, meta)}` after changing them"
        )


def add_to_index(index_folder: str | Path, source: str | Path) -> IndexReport:
    """Add the tracks of ``source`` (an embeddings folder, or vectors of an outside model as
    ``read_track_vectors`` takes them) to the index in ``index_folder`` without rebuilding it (see the
    module docstring). A source the index already lists with the same vectors is skipped
    (``up_to_date``)."""
    started = time.perf_counter()
    out, source = Path(index_folder), Path(source)
    meta = read_index_meta(out)
    changed = changed_index_files(out, meta)
    if changed:
        file, what = changed[0]
        raise SearchIndexError(f"{file}: {what}; rebuild the index with `{rebuild_command(out, meta)}`")
    try:
        new, checksum = _new_tracks(source)
    except EmbeddingsError as err:
        raise SearchIndexError(f"index: cannot add tracks from {err}") from None
    if any(a.get("checksum") == checksum for a in _sources(meta)):
        return _report_of(out, meta, up_to_date=True)
    try:
        cfg = IndexSettings.model_validate(meta.get("settings"))
    except ValueError:  # pydantic's ValidationError: an index of another mixtape, or a damaged header
        raise SearchIndexError(
            f"{out / INDEX_META}: its settings are not this mixtape's; rebuild the index with "
            f"`{rebuild_command(out, meta)}`"
        ) from None
    kind = str(meta["kind"])
    held = read_track_meta(out / TRACKS_FILE)
    _check_addable(out, meta, held, source, new)
    _check_layout(cfg)
    index = read_faiss(out / INDEX_FILE)
    files: dict[str, str] = {}
    m = len(new)
    blocks: Iterable[np.ndarray] = (
        new.embeddings.blocks(ADD_BLOCK)
        if new.embeddings is not None
        else (new.vectors[i : i + ADD_BLOCK] for i in range(0, m, ADD_BLOCK))
    )
    units = progress(
        (unit_rows(b) for b in blocks), desc=f"adding to {kind} index", total=-(-m // ADD_BLOCK), unit="block"
    )
    (out / INDEX_META).unlink()  # incomplete from here: an interrupted add is rebuilt by the same command
    if kind == "ivfpq":
        with RowFile(out / RERANK_FILE) as old:
            files[RERANK_FILE] = _write_store(
                out, len(old) + m, int(meta["dim"]), units, index.add, kept=old.blocks(ADD_BLOCK)
            )
    else:
        for block in units:
            index.add(block)
    tracks = held.concat(new.tracks)
    store = RowFile(out / RERANK_FILE) if kind == "ivfpq" else None
    try:
        vectors = _held_vectors(index, store)
        tuned = _tune_search(index, kind, vectors, cfg, store)
        files, layout = _write_index_files(out, index, tracks, vectors, cfg, files)
    finally:
        if store is not None:
            store.close()
    seconds = time.perf_counter() - started
    entry: dict[str, Any] = {"path": str(source.resolve()), "checksum": checksum, "n": m, "seconds": seconds}
    if new.embeddings is not None:
        entry["failed"] = len(new.embeddings.failures)
    header = {
        **meta,
        "n": len(tracks),
        "params": tuned.params,
        "recall10": tuned.recall,
        "recall_queries": tuned.recall_queries,
        "tuning": tuned.tuning,
        "added": [*meta.get("added", []), entry],
        "files": files,
    }
    header.pop("layout", None)
    if layout is not None:
        header["layout"] = layout
    if kind == "ivfpq":
        header["rerank_tuning"] = tuned.rerank_tuning
    INDEX_FOLDER.write_header(out, header)
    grown = choose_kind(len(tracks), int(meta["dim"]), cfg)
    if grown != kind:
        log.info(
            "index: %s now holds %d tracks, for which `--kind %s` would build %s; an add keeps the kind (rebuild "
            "with `%s` to change it)",
            out,
            len(tracks),
            cfg.kind,
            grown,
            rebuild_command(out, header),
        )
    report = _report_of(out, header)
    report.added_before, report.added = report.added_before[:-1], [(entry["path"], m)]
    report.tuning, report.rerank_tuning = tuned.tuning, tuned.rerank_tuning
    log.info("index: %s", report.summary().replace("\n", ";"))
    return report
