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
- ``kind="hnsw"`` on request: ``IndexHNSWFlat`` with M = 32, efConstruction = 80, ``efSearch`` tuned.

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
of every file of the folder under ``files``), and ``mutual_proximity.npz`` when built with
``mutual_proximity=True``. ``index.json`` is written last; opening the index verifies the files.

Vectors of an outside model (an ``.npz``, or a folder of ``vectors.npy`` and ``tracks.tsv`` without
``embeddings.json``) are checked and written as an embeddings folder into ``OUT/embeddings`` first; the
index records no encoder fingerprint then, so it is searched by track, not by audio file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_open, atomic_write_text, file_checksum, get_logger, progress
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder

from .embeddings import TRACKS_FILE, Embeddings, holds_outside_vectors, read_track_vectors
from .rerank import MP_FILE, compute_moments, save_moments

log = get_logger(__name__)
# faiss logs at INFO which SIMD library it tried and failed to load: noise for a user
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

INDEX_FILE = "index.faiss"
#: Where an index of an outside model's vectors keeps them as an embeddings folder (inside the index folder).
OUTSIDE_EMBEDDINGS = "embeddings"


class _EmbeddingsRef(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    path: str = ""


class IndexHeader(StageHeader):
    """What ``index.json``'s readers use, typed: a damaged header is refused before FAISS sees the folder."""

    kind: Literal["flat", "ivf", "hnsw"]
    n: int = Field(ge=0)
    dim: int = Field(ge=0)
    params: dict[str, Annotated[int, Field(ge=0)]] = {}
    encoder: dict[str, Any] | None = None
    embeddings: _EmbeddingsRef | None = None
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

    kind: Literal["auto", "flat", "ivf", "hnsw"] = "auto"
    exact_max: int = Field(100_000, ge=0)
    nlist: int | None = Field(None, gt=0)
    hnsw_m: int = Field(32, gt=1)
    ef_construction: int = Field(80, gt=0)
    target_recall: float = Field(0.95, gt=0.0, le=1.0)
    recall_queries: int = Field(200, gt=0)
    mutual_proximity: bool = False
    seed: int = 0


def choose_kind(n: int, settings: IndexSettings) -> str:
    if settings.kind != "auto":
        return settings.kind
    return "flat" if n <= settings.exact_max else "ivf"


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
    k = exact_scores.shape[1]
    kth = exact_scores[:, -1:]
    hits = ((approx_scores[:, :k] >= kth - eps) & (approx_rows[:, :k] >= 0)).sum(axis=1)
    return float(np.minimum(hits, k).mean() / k)


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
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = settings.ef_construction
        return hnsw
    raise SearchIndexError(f"index: unknown kind {kind!r} (auto, flat, ivf or hnsw)")


def search_param_name(kind: str) -> str | None:
    return {"ivf": "nprobe", "hnsw": "efSearch"}.get(kind)


def set_search_param(index: Any, kind: str, value: int) -> None:
    if kind == "ivf":
        index.nprobe = int(value)
    elif kind == "hnsw":
        index.hnsw.efSearch = int(value)


def _candidate_params(kind: str, index: Any) -> list[int]:
    if kind == "ivf":
        nlist = int(index.nlist)
        values = [v for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024) if v < nlist]
        return values + [nlist]
    if kind == "hnsw":
        return [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    return []


@dataclass
class IndexReport:
    """What `mixtape index` built; ``summary()`` is what the CLI prints."""

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

    def summary(self) -> str:
        if self.up_to_date:
            return (
                f"index {self.out}: up to date ({self.kind}, {self.n} tracks, recall@10 {self.recall10:.3f}); "
                "nothing to do"
            )
        params = ", ".join(f"{k}={v}" for k, v in self.params.items()) or "exact"
        exact = " (exact search)" if self.kind == "flat" else f" vs exact on {self.recall_queries} sample queries"
        lines = [
            f"index -> {self.out}: {self.kind} ({params}), {self.n} tracks x {self.dim} dims, built in "
            f"{self.build_seconds:.1f} s",
            f"  recall@10 {self.recall10:.3f}{exact}",
        ]
        if self.tuning:
            name = next(iter(self.params)) if self.params else "param"
            lines.append(
                "  tuning: "
                + ", ".join(f"{v}: {r:.3f}" for v, r in self.tuning)
                + f" ({search_param_name(self.kind) or name} -> recall@10)"
            )
        if self.mutual_proximity:
            lines.append(f"  mutual proximity moments saved ({MP_FILE}): re-rank with --rerank mp")
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


def _existing_report(out: Path, emb: Embeddings, cfg: IndexSettings) -> IndexReport | None:
    """The report of the index already in ``out`` when it indexes these very embeddings with these
    settings (rebuilding it would change nothing), else None."""
    if not (out / INDEX_META).exists():
        return None
    try:
        old = read_index_meta(out)
    except SearchIndexError:
        old = {}
    if old.get("embeddings", {}).get("checksum") != emb.checksum or old.get("settings") != cfg.model_dump(mode="json"):
        return None
    return IndexReport(
        out,
        old["kind"],
        old["n"],
        old["dim"],
        old["params"],
        old["recall10"],
        old["recall_queries"],
        old["build_seconds"],
        [],
        bool(old.get("mutual_proximity")),
        True,
    )


def _fill_index(emb: Embeddings, kind: str, cfg: IndexSettings) -> Any:
    """A FAISS index of ``kind`` holding every normalised vector, added block by block so memory stays
    one block beside the index."""
    n = len(emb)
    index = _new_index(kind, emb.dim, n, cfg)
    if kind == "ivf":
        rng = np.random.default_rng(cfg.seed)
        n_train = min(n, 64 * int(index.nlist))
        sample = np.sort(rng.choice(n, size=n_train, replace=False))
        log.info("index: training %d IVF lists on %d sampled vectors", index.nlist, n_train)
        index.train(unit_rows(emb.vectors[sample]))
    for block in progress(
        emb.blocks(ADD_BLOCK), desc=f"adding to {kind} index", total=-(-n // ADD_BLOCK), unit="block"
    ):
        index.add(unit_rows(block))
    if kind == "ivf":
        index.make_direct_map()  # so a track's own vector can be read back for "similar to this track"
    return index


@dataclass
class _Tuned:
    """The search parameter chosen for an index and the recall@10 it reaches."""

    params: dict[str, Any]
    recall: float
    recall_queries: int  # sample queries measured (0: exact search, nothing to measure)
    tuning: list[tuple[int, float]]  # (parameter value, recall@10) in the order tried


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


def _tune_search(index: Any, kind: str, emb: Embeddings, cfg: IndexSettings) -> _Tuned:
    """Recall@10 against exact search on sampled collection tracks, and the search parameter reaching
    the target (exact search needs none)."""
    n = len(emb)
    rng = np.random.default_rng(cfg.seed + 1)
    nq = min(cfg.recall_queries, n)
    q_rows = np.sort(rng.choice(n, size=nq, replace=False))
    queries = unit_rows(emb.vectors[q_rows])
    k = min(RECALL_K, n - 1)
    recall_queries = nq if kind != "flat" else 0
    if kind == "flat" or k < 1:
        return _Tuned({}, 1.0, recall_queries, [])
    exact_s, exact_i = exact_top_k(emb.blocks(ADD_BLOCK), queries, k + 1)
    exact_s, _ = drop_self(exact_s, exact_i, q_rows, k)
    name = search_param_name(kind)
    assert name is not None  # ivf or hnsw: both have one
    chosen, recall, tuning = _sweep(index, kind, queries, q_rows, exact_s, k, cfg)
    params: dict[str, Any] = {name: chosen}
    if kind == "ivf":
        params = {"nlist": int(index.nlist), **params}
    if kind == "hnsw":
        params = {"M": cfg.hnsw_m, "efConstruction": cfg.ef_construction, **params}
    return _Tuned(params, recall, recall_queries, tuning)


def _write_index_files(out: Path, index: Any, emb: Embeddings, cfg: IndexSettings) -> dict[str, str]:
    """Write every file of the folder but its header, which is removed first (the folder reads as
    incomplete until the new header lands); returns their checksums for the header."""
    import faiss

    if cfg.mutual_proximity:
        save_moments(out / MP_FILE, compute_moments(emb.blocks, len(emb), emb.dim))
    else:
        (out / MP_FILE).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX_META).unlink(missing_ok=True)  # incomplete until the new metadata lands
    index_hash = hashlib.blake2b(
        digest_size=16
    )  # the same digest as mixtape.fileio.file_checksum, without reading the file back
    with atomic_open(out / INDEX_FILE, "wb") as f:

        def write(chunk: bytes) -> int:
            index_hash.update(chunk)
            return f.write(chunk)

        faiss.write_index(index, faiss.PyCallbackIOWriter(write))  # type: ignore[attr-defined]  # not in faiss's stub
    tracks_file = atomic_write_text(out / TRACKS_FILE, emb.tracks.to_tsv())
    files = {INDEX_FILE: index_hash.hexdigest(), TRACKS_FILE: file_checksum(tracks_file)}
    if cfg.mutual_proximity:
        files[MP_FILE] = file_checksum(out / MP_FILE)
    return files


def _index_header(
    kind: str, emb: Embeddings, cfg: IndexSettings, tuned: _Tuned, build_seconds: float, files: dict[str, str]
) -> dict[str, Any]:
    """``index.json``: what was built from what, so a re-run can tell it is up to date and opening can
    verify the files."""
    import faiss

    return {
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


def build_index(
    embeddings: str | Path, out: str | Path, settings: IndexSettings | None = None, force: bool = False
) -> IndexReport:
    """Build the index of an embeddings folder into ``out`` (see the module docstring).

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
    kind = choose_kind(n, cfg)
    if not force:
        existing = _existing_report(out, emb, cfg)
        if existing is not None:
            return existing
    index = _fill_index(emb, kind, cfg)
    tuned = _tune_search(index, kind, emb, cfg)
    files = _write_index_files(out, index, emb, cfg)
    build_seconds = time.perf_counter() - started
    INDEX_FOLDER.write_header(out, _index_header(kind, emb, cfg, tuned, build_seconds, files))
    report = IndexReport(
        out,
        kind,
        n,
        dim,
        tuned.params,
        tuned.recall,
        tuned.recall_queries,
        build_seconds,
        tuned.tuning,
        cfg.mutual_proximity,
    )
    log.info("index: %s", report.summary().replace("\n", ";"))
    return report
