"""Querying an index: the nearest tracks of a collection track or of a query vector, with the filters
users of similarity search ask for (not the query's own artist or album, nothing below a score) and
optional mutual-proximity re-ranking; plus a name search to find a track to start from.

One opened ``SimilarIndex`` is shared by every request of the web server: FAISS searches are
read-only and safe to run from several threads at once, and so are the positioned reads of an
``ivfpq`` index's stored vectors, which re-score each PQ shortlist exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mixtape.fileio import get_logger

from .embeddings import TRACKS_FILE, RowFile, read_track_meta
from .index import (
    INDEX_FILE,
    INDEX_META,
    RECALL_K,
    RERANK_FILE,
    SearchIndexError,
    best_of,
    changed_index_files,
    changed_sources,
    read_faiss,
    read_index_meta,
    rebuild_command,
    rescore,
    set_search_param,
    unit_rows,
)
from .layout import LAYOUT_FILE, LayoutError, read_layout
from .rerank import MP_FILE, Moments, load_moments, mp_scores

log = get_logger(__name__)

RERANK_CANDIDATES = 100  # at least this many FAISS candidates are re-ranked by mutual proximity
#: The FAISS class ``mixtape index`` writes for each kind (a header whose kind the file is not is refused).
FAISS_CLASSES = {"flat": "IndexFlatIP", "ivf": "IndexIVFFlat", "ivfpq": "IndexIVFPQFastScan", "hnsw": "IndexHNSWFlat"}


class TrackNotIndexedError(SearchIndexError, KeyError):
    """A track id that is not in the index."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class TrackInfo:
    """A collection track as the search results and the web page show it."""

    row: int
    track_id: str
    name: str  # the audio file's name without its extension
    artist_id: str | None
    album_id: str | None
    path: str
    duration: float | None
    title: str | None = None  # the track's title, as a person reads it (tracks table, world.json or tags)
    artist_name: str | None = None  # its artist's name (artist_id is the id the filters compare)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Neighbour:
    rank: int
    score: float  # cosine similarity to the query
    track: TrackInfo
    mp_score: float | None = None  # mutual proximity, when re-ranked by it

    def as_dict(self) -> dict[str, Any]:
        d = {"rank": self.rank, "score": round(self.score, 6), "track": self.track.as_dict()}
        if self.mp_score is not None:
            d["mp_score"] = round(self.mp_score, 6)
        return d


@dataclass
class SearchResult:
    query: dict[str, Any]  # the query track's info, or a description of the query file
    neighbours: list[Neighbour] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "options": self.options, "neighbours": [n.as_dict() for n in self.neighbours]}

    def table(self) -> str:
        """A plain-text table: rank, score, track, artist, path."""
        header = ["#", "score", "track_id", "artist", "path"]
        rows = [
            [
                str(n.rank),
                f"{n.score:.4f}" + (f" (mp {n.mp_score:.3f})" if n.mp_score is not None else ""),
                n.track.track_id,
                n.track.artist_id or "-",
                n.track.path,
            ]
            for n in self.neighbours
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

        def fmt(r: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

        q = self.query
        title = f"neighbours of {q.get('track_id') or q.get('name')}" + (
            f" (artist {q['artist_id']})" if q.get("artist_id") else ""
        )
        lines = [title, fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
        if not rows:
            lines.append("(no neighbour passed the filters)")
        return "\n".join(lines)


def _codes(values: list[str | None]) -> np.ndarray:
    """Integer code per value (-1 for unknown), so same-artist filtering is one vectorised comparison."""
    known = {v: i for i, v in enumerate(sorted({v for v in values if v}))}
    return np.fromiter((known.get(v, -1) if v else -1 for v in values), dtype=np.int64, count=len(values))


class SimilarIndex:
    """An opened index folder: the FAISS index, the tracks it holds, and the optional MP moments."""

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        index: Any,
        tracks: Any,
        moments: Moments | None,
        store: RowFile | None = None,
    ) -> None:
        self.path = path
        self.meta = meta
        self.index = index
        self.tracks = tracks
        self.moments = moments
        self.store = store  # ivfpq: the stored unit vectors that re-score a PQ shortlist
        self.rerank = int(meta.get("params", {}).get("rerank", 1))  # shortlist = rerank x the results fetched
        self.kind: str = meta["kind"]
        self._pos = {t: i for i, t in enumerate(tracks.track_ids)}
        self._artist = _codes(tracks.artists)
        self._album = _codes(tracks.albums)
        self._names = [Path(p).stem for p in tracks.paths]
        # utf-8 bytes (not numpy's 4-byte unicode): a million tracks' names stay tens of MB
        haystack = [
            f"{t} {n} {a or ''} {b or ''} {title or ''} {name or ''}".lower().encode("utf-8")
            for t, n, a, b, title, name in zip(
                tracks.track_ids,
                self._names,
                tracks.artists,
                tracks.albums,
                tracks.titles,
                tracks.artist_names,
                strict=True,
            )
        ]
        self._haystack = np.array(haystack, dtype=bytes)
        self._layout: np.ndarray | None = None
        self._layout_read = False

    @classmethod
    def open(cls, path: str | Path, *, verified: bool = False) -> SimilarIndex:
        """``verified``: the caller has just compared the files with their checksums (changed_index_files),
        so they are not hashed a second time."""
        path = Path(path)
        meta = read_index_meta(path)
        changed = (
            [] if verified else changed_index_files(path, meta)
        )  # before FAISS parses a damaged file (see read_faiss)
        if changed:
            file, what = changed[0]
            raise SearchIndexError(f"{file}: {what}; rebuild the index with `mixtape index`")
        index = read_faiss(path / INDEX_FILE)
        tracks = read_track_meta(path / TRACKS_FILE)
        if index.ntotal != len(tracks) or index.ntotal != meta["n"] or index.d != meta["dim"]:
            raise SearchIndexError(
                f"{path}: the FAISS index holds {index.ntotal} x {index.d}, {TRACKS_FILE} {len(tracks)} tracks, "
                f"{INDEX_FILE.replace('faiss', 'json')} says {meta['n']} x {meta['dim']}: rebuild the index"
            )
        for name, value in meta.get("params", {}).items():
            if name in ("nprobe", "efSearch"):
                try:
                    set_search_param(index, meta["kind"], value)
                except (
                    AttributeError,
                    TypeError,
                    ValueError,
                    OverflowError,
                    RuntimeError,
                ) as err:  # a kind FAISS's index is not
                    raise SearchIndexError(
                        f"{path / INDEX_META}: {name}={value!r} does not fit the {meta['kind']} index in "
                        f"{INDEX_FILE} ({err}); rebuild the index"
                    ) from None
        held = type(index).__name__
        if held != FAISS_CLASSES.get(meta["kind"], held):
            raise SearchIndexError(
                f"{path / INDEX_META}: a {meta['kind']} index, but {INDEX_FILE} holds a FAISS {held}; rebuild the index"
            )
        moments = load_moments(path / MP_FILE, index.ntotal) if meta.get("mutual_proximity") else None
        store = _open_store(path, meta, index) if meta["kind"] == "ivfpq" else None
        _warn_if_stale(path, meta)
        return cls(path, meta, index, tracks, moments, store)

    def close(self) -> None:
        """Close the stored vectors' file (an ``ivfpq`` index; otherwise nothing is held open)."""
        if self.store is not None:
            self.store.close()

    # --- tracks ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def encoder_info(self) -> dict[str, Any]:
        return dict(self.meta.get("encoder") or {})

    def position(self, track_id: str) -> int:
        try:
            return self._pos[track_id]
        except KeyError:
            hint = self.find(track_id, limit=3)[1]
            also = f"; did you mean {', '.join(self.tracks.track_ids[i] for i in hint)}?" if hint else ""
            raise TrackNotIndexedError(
                f"track {track_id!r} is not in the index {self.path} ({len(self)} tracks){also}"
            ) from None

    def info(self, row: int) -> TrackInfo:
        d = float(self.tracks.durations[row])
        t = self.tracks
        return TrackInfo(
            int(row),
            t.track_ids[row],
            self._names[row],
            t.artists[row],
            t.albums[row],
            t.paths[row],
            None if d != d else d,
            t.titles[row],
            t.artist_names[row],
        )

    @property
    def layout(self) -> np.ndarray | None:
        """The 2-D map of the collection (float32 ``[N, 2]`` in [0, 1], row i = ``info(i)``, see
        :mod:`mixtape.search.layout`), or None when the index was built without one (read once; its
        checksum was verified when the index was opened)."""
        if not self._layout_read:
            try:
                layout = read_layout(self.path)
            except LayoutError as err:
                raise SearchIndexError(str(err)) from None
            if layout is not None and len(layout) != len(self):
                raise SearchIndexError(
                    f"{self.path / LAYOUT_FILE}: {len(layout)} points for the index's {len(self)} tracks; rebuild "
                    "the index with `mixtape index`"
                )
            self._layout, self._layout_read = layout, True
        return self._layout

    def audio_path(self, track_id: str) -> Path:
        """Where a track's audio is: looked up by id in the index, never built from a request."""
        return Path(self.tracks.paths[self.position(track_id)])

    def vector(self, row: int) -> np.ndarray:
        """The track's unit vector as stored in the index."""
        if self.store is not None:
            return self.store.take([int(row)])[0].astype(np.float32)
        return np.asarray(self.index.reconstruct(int(row)), dtype=np.float32)

    def _search(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's ``search`` of one unit query; for ``ivfpq`` its shortlist of ``rerank * fetch`` PQ
        candidates (at least the ``rerank * 11`` the tuning measured) re-scored exactly with the stored
        vectors, the ``fetch`` best kept."""
        if self.store is None:
            return self.index.search(q, fetch)
        depth = self.rerank * max(fetch, RECALL_K + 1)
        _, rows = self.index.search(q, min(len(self), depth))
        s, r = best_of(rescore(self.store, q[0], rows[0]), rows[0], fetch)
        return s[None], r[None]

    def find(self, query: str, limit: int = 50) -> tuple[int, list[int]]:
        """Tracks whose id, file name, artist or album id, title or artist name contain every word of ``query``
        (case-insensitive):
        (number of matches, the first ``limit`` rows in collection order). An empty query lists the collection."""
        words = query.lower().split()
        if not words:
            return len(self), list(range(min(limit, len(self))))
        hit = np.ones(len(self), dtype=bool)
        for w in words:
            hit &= np.char.find(self._haystack, w.encode("utf-8")) >= 0
        rows = np.flatnonzero(hit)
        return int(len(rows)), rows[:limit].tolist()

    # --- neighbours ------------------------------------------------------------------------------

    def search_vector(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        query_row: int | None = None,
        artist: str | None = None,
        album: str | None = None,
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        min_score: float | None = None,
        rerank: Literal["none", "mp"] = "none",
    ) -> list[Neighbour]:
        """The ``k`` nearest tracks of a query vector after the filters, best first.

        ``query_row``: the query is this collection track (itself excluded; its artist/album used by
        the exclusions). ``min_score`` cuts on the cosine. ``rerank='mp'`` orders the candidates by
        mutual proximity (needs an index built with it).
        """
        if k < 1:
            raise SearchIndexError(f"k must be at least 1, got {k}")
        if rerank not in ("none", "mp"):
            raise SearchIndexError(f"unknown re-ranking {rerank!r} (none or mp)")
        if rerank == "mp" and self.moments is None:
            raise SearchIndexError(
                f"index {self.path} was built without mutual proximity; rebuild it with `mixtape index "
                "--mutual-proximity` to re-rank"
            )
        q = unit_rows(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if q.shape[1] != self.dim:
            raise SearchIndexError(f"query vector has {q.shape[1]} dims, the index {self.dim}")
        a_code = (
            self._artist[query_row] if query_row is not None else _codes_of(self.tracks.artists, self._artist, artist)
        )
        b_code = self._album[query_row] if query_row is not None else _codes_of(self.tracks.albums, self._album, album)
        excluding = (exclude_same_artist and a_code >= 0) or (exclude_same_album and b_code >= 0)
        n = len(self)
        fetch = k + (query_row is not None)
        if excluding:
            fetch = 4 * k + 1
        if rerank == "mp":
            fetch = max(fetch, 10 * k, RERANK_CANDIDATES)
        while True:
            fetch = min(fetch, n)
            scores, rows = self._search(q, fetch)
            s, r = scores[0], rows[0]
            valid = r >= 0
            s, r = s[valid], r[valid]
            keep = np.ones(len(r), dtype=bool)
            if query_row is not None:
                keep &= r != query_row
            if exclude_same_artist and a_code >= 0:
                keep &= self._artist[r] != a_code
            if exclude_same_album and b_code >= 0:
                keep &= self._album[r] != b_code
            if min_score is not None:
                keep &= s >= min_score
            s, r = s[keep], r[keep]
            # stop when: enough; FAISS has nothing more (whole collection seen, IVF's probed lists exhausted);
            # or the candidates already fall below the score cut (more would only be lower)
            exhausted = fetch >= n or int(valid.sum()) < fetch
            below_cut = min_score is not None and bool(valid.any()) and float(scores[0][valid][-1]) < min_score
            if len(s) >= k or exhausted or below_cut:
                break
            fetch *= 4
        mp: np.ndarray | None = None
        if rerank == "mp" and len(r):
            assert self.moments is not None
            if query_row is not None:
                qm, qs = float(self.moments.mean[query_row]), float(self.moments.std[query_row])
            else:
                qm, qs = self.moments.query(q[0])
            mp = mp_scores(s, r, qm, qs, self.moments)
            order = np.argsort(-mp, kind="stable")
            s, r, mp = s[order], r[order], mp[order]
        out = []
        for i in range(min(k, len(r))):
            out.append(Neighbour(i + 1, float(s[i]), self.info(int(r[i])), None if mp is None else float(mp[i])))
        return out

    def similar_to_track(self, track_id: str, k: int = 10, **options: Any) -> SearchResult:
        """Neighbours of a collection track (the track itself never among them)."""
        row = self.position(track_id)
        neighbours = self.search_vector(self.vector(row), k, query_row=row, **options)
        return SearchResult(self.info(row).as_dict(), neighbours, {"k": k, **options})


def _codes_of(values: list[str | None], codes: np.ndarray, value: str | None) -> int:
    if not value:
        return -1
    try:
        return int(codes[values.index(value)])
    except ValueError:
        return -1


def _open_store(path: Path, meta: dict[str, Any], index: Any) -> RowFile:
    """The stored unit vectors of an ``ivfpq`` index, checked against it (float16, one row per track)."""
    file = path / RERANK_FILE
    try:
        store = RowFile(file)
    except FileNotFoundError:
        raise SearchIndexError(f"{file}: missing (the index folder is incomplete); rebuild the index") from None
    except (OSError, ValueError) as err:
        raise SearchIndexError(f"{file}: unreadable ({err}); rebuild the index") from None
    if store.dtype != np.float16 or store.shape != (int(index.ntotal), int(index.d)):
        store.close()
        raise SearchIndexError(
            f"{file}: {store.dtype} {list(store.shape)}, the index holds {index.ntotal} x {index.d} (float16): "
            "rebuild the index"
        )
    if int(meta.get("params", {}).get("rerank", 0)) < 1:
        store.close()
        raise SearchIndexError(f"{path / INDEX_META}: an ivfpq index without its shortlist depth (rerank); rebuild it")
    return store


def _warn_if_stale(path: Path, meta: dict[str, Any]) -> None:
    """Warn when embeddings the index was built or added from have changed since (it is out of date)."""
    changed = changed_sources(meta)
    if changed:
        log.warning(
            "index %s is out of date: the embeddings in %s have changed since it was built; re-run `%s`",
            path,
            ", ".join(changed),
            rebuild_command(path, meta),
        )
