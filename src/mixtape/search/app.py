"""`mixtape serve`: a small web app to explore a collection by sound.

JSON API (FastAPI) and one page (plain HTML/JS/CSS shipped in ``static/``, no CDN):

- ``GET  /api/info``                      what is served (tracks, index kind, recall, encoder, tagger, tags, map);
- ``GET  /api/tracks?query=&offset=&limit=&tag=``  name search (id, file name, title, artist, album), one page
  of it: ``total`` matches, ``offset``, the tracks;
- ``GET  /api/similar/{track_id}``        neighbours of a collection track (``k``, ``exclude_same_artist``,
  ``exclude_same_album``, ``min_score``, ``rerank``, ``tag``);
- ``POST /api/similar``                   neighbours of an uploaded audio file (multipart field ``file``,
  or the raw audio as the body), same query parameters;
- ``GET  /api/audio/{track_id}``          the track's audio, with HTTP range requests (seeking);
- ``GET  /api/map``, ``/api/map/points``, ``/api/map/colors?by=``  the 2-D layout of the collection (float32
  x, y per track as raw bytes) and a colour group per track (artist, album or tag) with its legend;
- ``GET  /api/tags``                      the tags of the collection (tags table and/or tagging model), counted;
- ``GET  /api/playlist/{track_id}.m3u8``  the query and its neighbours as an M3U8 playlist (paths, or the
  audio URLs with ``urls=1``), ``.json`` as a JSON list of track ids; same query parameters, an attachment;
- ``GET  /api/spectrogram/{track_id}``    a PNG of the track's log-mel (from the feature store the index was
  embedded from, else computed from the audio's first minutes).

Safety: audio is looked up by track id in the index, so no path from a request ever reaches the
file system; uploads are capped (``max_upload_mb``, 413 beyond), must decode as audio (415) and be
long enough and not silent (422); an unknown track id is a 404; the server binds to 127.0.0.1
unless told otherwise (it has no authentication).
"""

from __future__ import annotations

import base64
import io
import json
import mimetypes
import re
import shutil
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from mixtape.audio.files import AUDIO_SUFFIXES
from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.text import one_line

from .embeddings import read_meta
from .index import SearchIndexError
from .neighbours import Neighbour, SearchResult, SimilarIndex, TrackInfo, TrackNotIndexedError

log = get_logger(__name__)

STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "map.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".webm": "audio/webm",
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Multipart framing around an uploaded file (boundaries, part headers) allowed beyond the file size limit.
MULTIPART_SLACK = 64 * 1024


class ServeConfig(StrictConfig):
    """Limits and optional parts of the served page."""

    max_upload_mb: float = Field(50.0, gt=0)  # MiB
    max_query_seconds: float = Field(600.0, gt=0)  # an uploaded file is embedded from its first 10 minutes
    max_k: int = Field(100, ge=1)
    upload_workers: int = Field(2, ge=1)  # uploads decoded and embedded at once; more wait their turn
    top_tags: int = Field(5, ge=1)
    encoder: str | None = None  # the collection's encoder, when it is no longer where the index says
    tagger: str | None = None  # a tagging model folder (`mixtape tagger`) for predicted tags
    tags_table: str | None = None  # a TSV of track_id and tag columns (read_tags_table)
    spectrogram_seconds: float = Field(120.0, gt=0)  # a spectrogram computed from audio covers its first 2 minutes
    spectrogram_width: int = Field(1200, ge=16)  # columns of a spectrogram image (frames are max-pooled into them)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class _TooLarge(Exception):
    pass


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refusing (``_TooLarge``) as soon as more than ``limit`` bytes arrive: an upload
    is never read whole before its size is known, whatever Content-Length claims."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def static_file(name: str) -> bytes:
    return resources.files("mixtape.search").joinpath("static", name).read_bytes()


# --- uploads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded file saved under a name of ours; ``name`` is the sender's, kept for messages only."""

    path: Path
    name: str


class UploadRejected(Exception):
    """An upload that gets no neighbours, carrying the answer to send instead: one way out for every refusal."""

    def __init__(self, detail: str, status_code: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status_code)


def _too_large(config: ServeConfig) -> UploadRejected:
    return UploadRejected(f"upload larger than the {config.max_upload_mb:g} MB limit", 413)


def _upload_target(folder: Path, name: str) -> Path:
    """A fixed file name in ``folder``, so the sender's name never becomes a path; a known audio suffix
    is kept because decoders go by it."""
    suffix = Path(name).suffix.lower()
    return folder / ("upload" + (suffix if suffix in AUDIO_SUFFIXES else ""))


async def _save_multipart(request: Request, folder: Path, limit: int) -> Upload:
    """The form field ``file`` saved in ``folder``; the framing around it may exceed ``limit`` a little."""
    parser = MultiPartParser(
        request.headers, _limited(request.stream(), limit + MULTIPART_SLACK), max_files=1, max_fields=20
    )
    form = await parser.parse()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise UploadRejected("send the audio file as the multipart form field 'file'", 422)
    name = Path(upload.filename or "upload").name
    target = _upload_target(folder, name)
    with open(target, "wb") as f:
        shutil.copyfileobj(upload.file, f)
    await upload.close()
    if target.stat().st_size > limit:
        raise _TooLarge
    return Upload(target, name)


async def _save_body(request: Request, folder: Path, limit: int) -> Upload:
    """The raw request body saved in ``folder``, named by the optional ``X-Filename`` header."""
    name = Path(request.headers.get("x-filename", "upload")).name
    target = _upload_target(folder, name)
    with open(target, "wb") as f:
        async for chunk in _limited(request.stream(), limit):
            f.write(chunk)
    return Upload(target, name)


async def _save_upload(request: Request, folder: Path, limit: int) -> Upload:
    """The uploaded file in ``folder``, whichever way it was sent; raises ``UploadRejected`` or ``_TooLarge``."""
    ctype = request.headers.get("content-type", "").lower()
    try:
        if ctype.startswith("multipart/form-data"):
            upload = await _save_multipart(request, folder, limit)
        elif ctype.startswith(("audio/", "application/octet-stream")):
            upload = await _save_body(request, folder, limit)
        else:
            raise UploadRejected(
                f"unsupported content type {ctype or '(none)'!r}: send multipart/form-data with "
                "an audio 'file' field, or the raw audio with an audio/* content type",
                415,
            )
    except MultiPartException as err:
        raise UploadRejected(f"malformed multipart upload: {err.message}", 400) from None
    if upload.path.stat().st_size == 0:
        raise UploadRejected("the uploaded file is empty", 422)
    return upload


@asynccontextmanager
async def receive_upload(request: Request, config: ServeConfig) -> AsyncIterator[Upload]:
    """The request's audio in a temporary file that lives as long as the ``async with``.

    Raises ``UploadRejected`` (413 too large, 415 not audio, 422 no file or empty, 400 malformed multipart);
    a declared size over the limit is refused before anything is read.
    """
    limit = config.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise _too_large(config)
    with tempfile.TemporaryDirectory(prefix="mixtape-upload-") as tmp:
        try:
            upload = await _save_upload(request, Path(tmp), limit)
        except _TooLarge:
            raise _too_large(config) from None
        yield upload


# --- tags: a tags table, a tagging model, or both ------------------------------------------------

TAGS_TABLE_FORMAT = (
    "a tab-separated UTF-8 file whose header's first column is track_id; every other cell of a row is a tag "
    "of that track (several in one cell separated by commas; empty cells are none), and a track may have several "
    "rows: both `track_id<TAB>genre<TAB>mood` (tag columns) and `track_id<TAB>tag` (one tag a row) read alike; "
    "an MTG-Jamendo autotagging TSV (TRACK_ID ... TAGS, then one `family---tag` a cell) is read too"
)
MAX_TAG_CHARS = 100


class TagsTableError(MixtapeError):
    """A tags table that cannot be read; the message names the file and the line."""


def read_tags_table(path: str | Path, positions: dict[str, int]) -> dict[int, list[str]]:
    """The tags of each indexed track (by row) from a tags table (``TAGS_TABLE_FORMAT``).

    ``positions`` maps a track id to its row in the index. Rows of tracks the index does not hold are
    skipped with one warning; a table none of whose tracks is indexed, a header without ``track_id`` first,
    a row with more cells than the header, an empty track id or an over-long tag is a ``TagsTableError``
    naming the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TagsTableError(f"tags table {path}: not found") from None
    except UnicodeDecodeError as err:
        where = path.read_bytes()[: err.start].count(b"\n") + 1
        raise TagsTableError(f"tags table {path} line {where}: not UTF-8 text") from None
    except OSError as err:
        raise TagsTableError(f"tags table {path}: unreadable ({err.strerror})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise TagsTableError(f"tags table {path}: empty; expected {TAGS_TABLE_FORMAT}")
    header = lines[0].split("\t")
    if header[0].strip().lower() != "track_id" or len(header) < 2:
        raise TagsTableError(
            f"tags table {path} line 1: the header must start with a track_id column followed by tag columns, "
            f"got {lines[0][:80]!r}; expected {TAGS_TABLE_FORMAT}"
        )
    names = [h.strip().lower() for h in header]
    first_tag = names.index("tags") if "tags" in names else 1  # MTG-Jamendo: the tags from its TAGS column on
    tags: dict[int, list[str]] = {}
    unknown: list[tuple[int, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if first_tag == 1 and len(cells) > len(header):
            raise TagsTableError(
                f"tags table {path} line {number}: {len(cells)} cells, the header has {len(header)} columns"
            )
        track_id = cells[0].strip()
        if not track_id:
            raise TagsTableError(f"tags table {path} line {number}: the track_id cell is empty")
        row = positions.get(track_id)
        if row is None:
            unknown.append((number, track_id))
            continue
        have = tags.setdefault(row, [])
        for cell in cells[first_tag:]:
            for tag in cell.split(","):
                tag = " ".join(tag.split("---")[-1].split())  # no family prefix, control characters, runs of spaces
                if len(tag) > MAX_TAG_CHARS:
                    raise TagsTableError(
                        f"tags table {path} line {number}: a tag of {len(tag)} characters (at most {MAX_TAG_CHARS})"
                    )
                if tag and tag not in have:
                    have.append(tag)
    if not tags:
        seen = f"; its first track id {unknown[0][1]!r} (line {unknown[0][0]}) is not one of them" if unknown else ""
        raise TagsTableError(f"tags table {path}: no row names a track of the index ({len(positions)} tracks){seen}")
    if unknown:
        log.warning(
            "tags table %s: %d rows name tracks that are not in the index, skipped (first: line %d, %r)",
            path,
            len(unknown),
            unknown[0][0],
            unknown[0][1],
        )
    return tags


class TrackTags:
    """What the page shows and filters by: a tags table's tags (``p`` None) and a tagging model's most
    probable ones. The tags of the whole collection (for the tag list, filters and the map) are computed
    once, on first use."""

    BATCH = 4096

    def __init__(self, idx: SimilarIndex, tagger: Any | None, top: int, table: dict[int, list[str]] | None) -> None:
        self.idx = idx
        self.tagger = tagger
        self.top = top
        self.table = table or {}
        self._lock = threading.Lock()
        self._all: list[tuple[str, ...]] | None = None
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def available(self) -> bool:
        return self.tagger is not None or bool(self.table)

    @property
    def source(self) -> str | None:
        parts = (["table"] if self.table else []) + (["tagger"] if self.tagger is not None else [])
        return "+".join(parts) or None

    def _predicted(self, vecs: np.ndarray) -> list[list[dict[str, Any]]]:
        assert self.tagger is not None
        probs = self.tagger.predict(vecs)
        out = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: self.top]
            out.append([{"tag": self.tagger.tags[i], "p": round(float(p[i]), 4)} for i in order.tolist()])
        return out

    def shown(self, rows: list[int]) -> list[list[dict[str, Any]] | None]:
        """Each row's tags as the page lists them: ``[{"tag", "p"}]`` (``p`` None for a table's tag)."""
        if not self.available or not rows:
            return [None] * len(rows)
        predicted: list[list[dict[str, Any]]] = [[] for _ in rows]
        if self.tagger is not None:
            predicted = self._predicted(np.stack([self.idx.vector(r) for r in rows]))
        return [
            [{"tag": t, "p": None} for t in self.table.get(r, [])] + pred
            for r, pred in zip(rows, predicted, strict=True)
        ]

    def all(self) -> list[tuple[str, ...]]:
        """Every row's tag names: the table's, then the model's top ones."""
        with self._lock:
            if self._all is None:
                n = len(self.idx)
                names: list[tuple[str, ...]] = [tuple(self.table.get(r, [])) for r in range(n)]
                if self.tagger is not None:
                    for start in range(0, n, self.BATCH):
                        rows = range(start, min(n, start + self.BATCH))
                        preds = self._predicted(np.stack([self.idx.vector(r) for r in rows]))
                        for r, pred in zip(rows, preds, strict=True):
                            names[r] = names[r] + tuple(t["tag"] for t in pred if t["tag"] not in names[r])
                self._all = names
            return self._all

    def vocabulary(self) -> list[dict[str, Any]]:
        """The collection's tags with how many tracks have each, most common first."""
        counts = Counter(t for names in self.all() for t in names)
        return [{"tag": t, "count": c} for t, c in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))]

    def mask(self, tag: str) -> np.ndarray:
        """Which rows have ``tag``."""
        with self._lock:
            if tag in self._masks:
                self._masks.move_to_end(tag)
                return self._masks[tag]
        names = self.all()
        mask = np.fromiter((tag in t for t in names), dtype=bool, count=len(names))
        with self._lock:
            self._masks[tag] = mask
            while len(self._masks) > 32:
                self._masks.popitem(last=False)
        return mask

    def primary(self) -> list[str | None]:
        """Each row's first tag (the map's colour by tag)."""
        return [t[0] if t else None for t in self.all()]


# --- the map -------------------------------------------------------------------------------------


def _layout(idx: SimilarIndex) -> tuple[np.ndarray | None, str | None]:
    """The index's 2-D layout ``[N, 2]`` float32 in [0, 1], or None and why there is none."""
    try:
        layout = idx.layout
    except (MixtapeError, OSError, ValueError) as err:
        return None, f"the index's layout cannot be read ({err})"
    if layout is None:
        return None, "this index has no map: rebuild it with `mixtape index` to compute one"
    arr = np.asarray(layout, dtype=np.float32)
    if arr.shape != (len(idx), 2) or not np.isfinite(arr).all():
        return None, f"the index's layout is {list(arr.shape)}, not {len(idx)} x 2 finite values: rebuild the index"
    return np.clip(arr, 0.0, 1.0).astype("<f4"), None


def _groups(labels: list[str | None]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A code per row (-1 unknown), codes numbered by group size (0 the largest), and the legend."""
    counts = Counter(v for v in labels if v)
    order = sorted(counts, key=lambda v: (-counts[v], v))
    code = {v: i for i, v in enumerate(order)}
    codes = np.fromiter((code.get(v, -1) if v else -1 for v in labels), dtype="<i4", count=len(labels))
    return codes, [{"label": v, "count": counts[v]} for v in order]


# --- spectrograms --------------------------------------------------------------------------------


def _feature_store_path(idx: SimilarIndex) -> Path | None:
    """The feature store the index's embeddings were made from, as their header records it."""
    emb = idx.meta.get("embeddings")
    folder = emb.get("path") if isinstance(emb, dict) else None
    if not folder:
        return None
    try:
        header = read_meta(Path(folder))
    except MixtapeError:  # moved or damaged: the spectrogram is computed from the audio instead
        return None
    store = header.get("store")
    path = store.get("path") if isinstance(store, dict) else None
    return Path(path) if path and Path(path).is_dir() else None


class Spectrograms:
    """PNG strips of tracks' log-mel: from the feature store when it is reachable and holds the track
    (what the model was trained on), else computed from the audio's first ``max_seconds``. The last
    ``cache`` images are kept."""

    def __init__(self, idx: SimilarIndex, mel: Any | None, max_seconds: float, width: int, cache: int = 64) -> None:
        self.idx = idx
        self.mel = mel  # a MelConfig for audio (the encoder's), or None for the default
        self.max_seconds = max_seconds
        self.width = width
        self.size = cache
        self._cache: OrderedDict[int, tuple[bytes, float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._store: Any | None = None
        self._store_opened = False

    def store(self) -> Any | None:
        from mixtape.audio import FeatureStore

        with self._lock:
            if not self._store_opened:
                self._store_opened = True
                path = _feature_store_path(self.idx)
                if path is not None:
                    try:
                        self._store = FeatureStore.open(path)
                    except (MixtapeError, OSError, ValueError) as err:
                        log.warning("spectrograms are computed from audio: feature store %s unusable (%s)", path, err)
            return self._store

    def _frames(self, row: int) -> tuple[np.ndarray, float, str]:
        """Log-mel frames ``[T, n_mels]``, the seconds they cover, and where they came from."""
        from mixtape.audio import MelConfig, load_audio, log_mel

        store = self.store()
        track_id = self.idx.tracks.track_ids[row]
        if store is not None and track_id in store:
            frames = np.asarray(store.frames(store.index(track_id)), dtype=np.float32)
            mel = store.mel_config
            return frames, len(frames) * mel.hop_size / mel.sample_rate, "store"
        mel = self.mel or MelConfig()
        wave = load_audio(self.idx.tracks.paths[row], sample_rate=mel.sample_rate)
        wave = wave[: int(self.max_seconds * mel.sample_rate)]
        frames = log_mel(wave, mel)
        return frames, len(wave) / mel.sample_rate, "audio"

    def png(self, row: int) -> tuple[bytes, float, str]:
        """The image, the seconds of audio it spans, and its source (``store`` or ``audio``)."""
        with self._lock:
            if row in self._cache:
                self._cache.move_to_end(row)
                return self._cache[row]
        frames, seconds, source = self._frames(row)
        image = _spectrogram_png(frames, self.width)
        with self._lock:
            self._cache[row] = (image, seconds, source)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return image, seconds, source


def _spectrogram_png(frames: np.ndarray, width: int) -> bytes:
    """Frames ``[T, n_mels]`` as a PNG, time left to right, low frequencies at the bottom, magma colours;
    more than ``width`` frames are max-pooled into ``width`` columns."""
    from matplotlib.image import imsave

    frames = np.nan_to_num(np.asarray(frames, dtype=np.float32))
    if frames.shape[0] == 0:
        frames = np.zeros((1, max(frames.shape[1], 1)), dtype=np.float32)
    if frames.shape[0] > width:
        starts = np.linspace(0, frames.shape[0], width + 1).astype(np.int64)[:-1]
        frames = np.maximum.reduceat(frames, starts, axis=0)
    lo, hi = np.percentile(frames, [2.0, 99.8])
    buf = io.BytesIO()
    imsave(buf, frames.T[::-1], cmap="magma", vmin=float(lo), vmax=float(max(hi, lo + 1e-6)), format="png")
    return buf.getvalue()


# --- playlists -----------------------------------------------------------------------------------

PLAYLIST_FORMATS = {"m3u8": "audio/x-mpegurl; charset=utf-8", "json": "application/json"}


def track_label(track: dict[str, Any]) -> str:
    """``artist - title`` as a person reads it, from the names when known, else the ids."""
    title = track.get("title") or track.get("name") or track["track_id"]
    artist = track.get("artist_name") or track.get("artist_id")
    return one_line(f"{artist} - {title}" if artist else title)


def m3u8_text(title: str, tracks: list[dict[str, Any]], locations: list[str]) -> str:
    """An extended M3U playlist (UTF-8): ``#EXTINF:seconds,artist - title`` then the path or URL per track."""
    lines = ["#EXTM3U", f"#PLAYLIST:{one_line(title)}"]
    for track, where in zip(tracks, locations, strict=True):
        d = track.get("duration")
        seconds = -1 if d is None else int(round(float(d)))
        lines += [f"#EXTINF:{seconds},{track_label(track)}", one_line(where)]
    return "\n".join(lines) + "\n"


def _attachment(stem: str, suffix: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "playlist"
    return f"attachment; filename=\"mixtape-{safe}.{suffix}\"; filename*=UTF-8''{quote(f'mixtape-{stem}.{suffix}')}"


# --- what the routes share -----------------------------------------------------------------------


@dataclass
class Filters:
    """The query parameters every neighbour search takes."""

    k: int = 10
    exclude_same_artist: bool = False
    exclude_same_album: bool = False
    min_score: float | None = None
    rerank: Literal["none", "mp"] = "none"
    tag: str | None = None

    def options(self) -> dict[str, Any]:
        return {
            "exclude_same_artist": self.exclude_same_artist,
            "exclude_same_album": self.exclude_same_album,
            "min_score": self.min_score,
            "rerank": self.rerank,
        }


def _filters_dependency(max_k: int) -> Callable[..., Filters]:
    """The ``Filters`` of a request, as a FastAPI dependency built per app (its ``k`` limit is the config's)."""

    def filters(
        k: int = Query(10, ge=1, le=max_k),
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        min_score: float | None = Query(None, ge=-1.0, le=1.0),
        rerank: Literal["none", "mp"] = "none",
        tag: str | None = Query(None, max_length=MAX_TAG_CHARS),
    ) -> Filters:
        return Filters(k, exclude_same_artist, exclude_same_album, min_score, rerank, tag or None)

    return filters


def _keep_tagged(result: SearchResult, mask: np.ndarray, k: int, tag: str) -> SearchResult:
    kept = [n for n in result.neighbours if mask[n.track.row]][:k]
    for rank, n in enumerate(kept, start=1):
        n.rank = rank
    return SearchResult(result.query, kept, {**result.options, "k": k, "tag": tag})


@dataclass
class _ServeState:
    """The index, models and limits every route reads, built once per app."""

    idx: SimilarIndex
    cfg: ServeConfig
    encoder: Any | None
    enc_problem: str | None  # why query by audio is off, when ``encoder`` is None
    tagger: Any | None
    upload_slots: threading.BoundedSemaphore
    page: bytes
    assets: dict[str, bytes]
    tags: TrackTags
    spectrograms: Spectrograms
    layout: np.ndarray | None
    layout_problem: str | None
    _colors: dict[str, bytes] = field(default_factory=dict)
    _colors_lock: threading.Lock = field(default_factory=threading.Lock)

    def track_json(self, info: TrackInfo, tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        d = info.as_dict()
        d.setdefault("title", None)
        d.setdefault("artist_name", None)
        d["audio_url"] = "/api/audio/" + quote(info.track_id, safe="")
        if tags is not None:
            d["tags"] = tags
        return d

    def tags_of(self, rows: list[int]) -> list[list[dict[str, Any]] | None]:
        return self.tags.shown(rows)

    def result_json(self, result: SearchResult) -> dict[str, Any]:
        tags = self.tags_of([n.track.row for n in result.neighbours])
        return {
            "query": result.query,
            "options": result.options,
            "neighbours": [
                _neighbour_json(n, self.track_json(n.track, t)) for n, t in zip(result.neighbours, tags, strict=True)
            ],
        }

    def tag_mask(self, tag: str) -> np.ndarray:
        if not self.tags.available:
            raise MixtapeError(
                f"cannot filter by tag {tag!r}: the server has no tags (start it with --tags or --tagger)"
            )
        return self.tags.mask(tag)

    def similar(self, track_id: str, f: Filters) -> SearchResult:
        """Neighbours of a collection track after the filters; a tag filter searches deeper until ``k``
        tracks with the tag are found or the collection is exhausted."""
        if f.tag is None:
            return self.idx.similar_to_track(track_id, f.k, **f.options())
        mask = self.tag_mask(f.tag)
        n = len(self.idx)
        fetch = min(n, 4 * f.k)
        while True:
            result = self.idx.similar_to_track(track_id, fetch, **f.options())
            found = int(sum(bool(mask[nb.track.row]) for nb in result.neighbours))
            if found >= f.k or fetch >= n or len(result.neighbours) < fetch:
                return _keep_tagged(result, mask, f.k, f.tag)
            fetch = min(n, fetch * 4)

    def search_upload(self, upload: Upload, f: Filters) -> SearchResult:
        """Runs in a worker thread; the slots bound how many uploads are decoded and embedded at once."""
        from .query import similar_to_audio

        mask = None if f.tag is None else self.tag_mask(f.tag)
        fetch = f.k if mask is None else min(len(self.idx), max(20 * f.k, 200))
        with self.upload_slots:
            result = similar_to_audio(
                self.idx,
                self.encoder,
                upload.path,
                fetch,
                max_seconds=self.cfg.max_query_seconds,
                name=upload.name,
                tagger=self.tagger,
                **f.options(),
            )
        return result if mask is None or f.tag is None else _keep_tagged(result, mask, f.k, f.tag)

    def colors(self, by: str) -> bytes:
        """The map's colour groups by ``by`` as a JSON body (cached): legend and base64 int32 codes."""
        with self._colors_lock:
            if by in self._colors:
                return self._colors[by]
        t = self.idx.tracks
        if by == "artist":
            labels = [a or b for a, b in zip(t.artist_names, t.artists, strict=True)]
        elif by == "album":
            labels = list(t.albums)
        else:
            labels = self.tags.primary()
        codes, legend = _groups(labels)
        body = json.dumps(
            {"by": by, "legend": legend, "codes": base64.b64encode(codes.tobytes()).decode("ascii")},
            separators=(",", ":"),
        ).encode("utf-8")
        with self._colors_lock:
            self._colors[by] = body
        return body


def _serve_state(
    index: SimilarIndex | str | Path, cfg: ServeConfig, encoder: Any | None, tagger: Any | None
) -> _ServeState:
    """Open the index and the models; a missing encoder only turns query by audio off, a tagger of
    another encoder is an error (its tags would be meaningless), so is a tags table that cannot be read."""
    from mixtape.audio import MelConfig

    from .query import load_query_encoder
    from .tagger import Tagger

    idx = index if isinstance(index, SimilarIndex) else SimilarIndex.open(index)
    enc_problem: str | None = None
    if encoder is None:
        try:
            encoder = load_query_encoder(idx, cfg.encoder)
        except MixtapeError as err:
            enc_problem = str(err)
            log.warning("query by audio is off: %s", err)
    if tagger is None and cfg.tagger:
        tagger = Tagger.load(cfg.tagger)
    if (
        tagger is not None
        and tagger.encoder_fingerprint
        and tagger.encoder_fingerprint != idx.encoder_info.get("fingerprint")
    ):
        raise SearchIndexError(
            f"tagging model {tagger.path} was trained on embeddings of another encoder than the index {idx.path}'s"
        )
    positions = {t: i for i, t in enumerate(idx.tracks.track_ids)}
    table = read_tags_table(cfg.tags_table, positions) if cfg.tags_table else None
    mel_dict = getattr(encoder, "mel", None)
    mel = MelConfig.model_validate(mel_dict) if isinstance(mel_dict, dict) and mel_dict else None
    layout, layout_problem = _layout(idx)
    return _ServeState(
        idx=idx,
        cfg=cfg,
        encoder=encoder,
        enc_problem=enc_problem,
        tagger=tagger,
        upload_slots=threading.BoundedSemaphore(cfg.upload_workers),
        page=static_file("index.html"),
        assets={name: static_file(name) for name in STATIC_FILES},
        tags=TrackTags(idx, tagger, cfg.top_tags, table),
        spectrograms=Spectrograms(idx, mel, cfg.spectrogram_seconds, cfg.spectrogram_width),
        layout=layout,
        layout_problem=layout_problem,
    )


# --- routes --------------------------------------------------------------------------------------


def _page_router(state: _ServeState) -> APIRouter:
    """The page and its static files."""
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse)
    def home() -> Response:
        return Response(state.page, media_type="text/html; charset=utf-8")

    @router.get("/static/{name}")
    def asset(name: str) -> Response:
        if name not in state.assets:
            return JSONResponse({"detail": f"no static file {name!r}"}, status_code=404)
        return Response(state.assets[name], media_type=STATIC_FILES[name])

    return router


def _info_json(state: _ServeState) -> dict[str, Any]:
    idx, enc, tagger, cfg = state.idx, state.idx.encoder_info, state.tagger, state.cfg
    t = idx.tracks
    return {
        "tracks": len(idx),
        "index": {
            "kind": idx.kind,
            "params": idx.meta.get("params", {}),
            "recall10": idx.meta.get("recall10"),
            "dim": idx.dim,
        },
        "encoder": {"source": enc.get("source"), "backbone": enc.get("backbone")},
        "query_by_audio": state.encoder is not None,
        "query_by_audio_problem": state.enc_problem,
        "tagger": None if tagger is None else {"tags": len(tagger.tags), "source": str(tagger.path)},
        "tags": state.tags.source,
        "names": any(t.titles) or any(t.artist_names),
        "map": state.layout is not None,
        "map_problem": state.layout_problem,
        "rerank": ["none", "mp"] if idx.moments is not None else ["none"],
        "max_upload_mb": cfg.max_upload_mb,
        "max_k": cfg.max_k,
        "upload_types": sorted(AUDIO_SUFFIXES),
    }


def _track_router(state: _ServeState) -> APIRouter:
    """What is served, name search, and neighbours of a collection track."""
    router = APIRouter()
    idx = state.idx
    filters = _filters_dependency(state.cfg.max_k)

    @router.get("/api/info")
    def info() -> dict[str, Any]:
        return _info_json(state)

    @router.get("/api/tracks")
    def tracks(
        query: str = Query("", max_length=200),
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=500),
        tag: str | None = Query(None, max_length=MAX_TAG_CHARS),
    ) -> dict[str, Any]:
        if tag:
            _, every = idx.find(query, len(idx))
            mask = state.tag_mask(tag)
            hits = [r for r in every if mask[r]]
            total, rows = len(hits), hits[offset : offset + limit]
        else:
            total, rows = idx.find(query, offset + limit)
            rows = rows[offset:]
        infos = [idx.info(r) for r in rows]
        shown = state.tags_of(rows)
        return {
            "query": query,
            "tag": tag or None,
            "offset": offset,
            "limit": limit,
            "total": total,
            "tracks": [state.track_json(i, t) for i, t in zip(infos, shown, strict=True)],
        }

    @router.get("/api/similar/{track_id:path}")
    def similar(track_id: str, f: Filters = Depends(filters)) -> dict[str, Any]:  # noqa: B008
        result = state.similar(track_id, f)
        row = idx.position(track_id)
        out = state.result_json(result)
        out["query"] = state.track_json(idx.info(row), state.tags_of([row])[0])
        return out

    @router.get("/api/tags")
    def tags() -> dict[str, Any]:
        return {"source": state.tags.source, "tags": state.tags.vocabulary() if state.tags.available else []}

    return router


def _explore_router(state: _ServeState) -> APIRouter:
    """The map, playlists out and spectrograms."""
    router = APIRouter()
    idx = state.idx
    filters = _filters_dependency(state.cfg.max_k)

    @router.get("/api/map")
    def map_info() -> dict[str, Any]:
        by = ["artist", "album"] + (["tag"] if state.tags.available else [])
        return {
            "available": state.layout is not None,
            "problem": state.layout_problem,
            "tracks": len(idx),
            "points": "/api/map/points",
            "color_by": by,
        }

    @router.get("/api/map/points")
    def map_points() -> Response:
        if state.layout is None:
            return JSONResponse({"detail": state.layout_problem}, status_code=404)
        return Response(
            state.layout.tobytes(),
            media_type="application/octet-stream",
            headers={"X-Points": str(len(state.layout)), "Cache-Control": "no-cache"},
        )

    @router.get("/api/map/colors")
    def map_colors(by: Literal["artist", "album", "tag"] = "artist") -> Response:
        if by == "tag" and not state.tags.available:
            return JSONResponse({"detail": "no tags: start the server with --tags or --tagger"}, status_code=404)
        return Response(state.colors(by), media_type="application/json")

    @router.get("/api/playlist/{name:path}")
    def playlist(request: Request, name: str, f: Filters = Depends(filters), urls: bool = False) -> Response:  # noqa: B008
        track_id, _, suffix = name.rpartition(".")
        if suffix not in PLAYLIST_FORMATS or not track_id:
            return JSONResponse(
                {"detail": f"a playlist is /api/playlist/TRACK_ID.m3u8 or .json, got {name!r}"}, status_code=404
            )
        result = state.similar(track_id, f)
        row = idx.position(track_id)
        infos = [idx.info(row)] + [n.track for n in result.neighbours]
        headers = {"Content-Disposition": _attachment(track_id, suffix)}
        if suffix == "json":
            body = json.dumps([i.track_id for i in infos], ensure_ascii=False)
            return Response(body, media_type=PLAYLIST_FORMATS[suffix], headers=headers)
        tracks = [state.track_json(i) for i in infos]
        if urls:
            base = str(request.base_url).rstrip("/")
            where = [base + t["audio_url"] for t in tracks]
        else:
            where = [str(Path(i.path).resolve()) for i in infos]
        title = f"mixtape: {track_label(tracks[0])} and {len(infos) - 1} similar tracks"
        return Response(m3u8_text(title, tracks, where), media_type=PLAYLIST_FORMATS[suffix], headers=headers)

    @router.get("/api/spectrogram/{track_id:path}")
    def spectrogram(track_id: str) -> Response:
        from mixtape.audio import AudioDecodeError

        row = idx.position(track_id)
        try:
            image, seconds, source = state.spectrograms.png(row)
        except AudioDecodeError as err:
            return JSONResponse({"detail": f"no spectrogram of {track_id!r}: {err.reason}"}, status_code=404)
        return Response(
            image,
            media_type="image/png",
            headers={
                "X-Spectrogram-Seconds": f"{seconds:.3f}",
                "X-Spectrogram-Source": source,
                "Cache-Control": "max-age=3600",
            },
        )

    return router


async def _search_upload(state: _ServeState, upload: Upload, f: Filters) -> SearchResult:
    """Neighbours of an uploaded file, off the event loop; audio that cannot be used is an ``UploadRejected``."""
    from starlette.concurrency import run_in_threadpool

    from mixtape.audio import AudioDecodeError, UnusableAudio

    try:
        return await run_in_threadpool(state.search_upload, upload, f)
    except UnusableAudio as err:
        raise UploadRejected(f"{upload.name}: cannot be used as a query: {err.reason}", 422) from None
    except AudioDecodeError as err:
        raise UploadRejected(
            f"{upload.name}: not a readable audio file ({err.reason}); accepted: audio that libsndfile "
            f"or ffmpeg decodes, e.g. {', '.join(sorted(AUDIO_SUFFIXES)[:8])}",
            415,
        ) from None


def _upload_router(state: _ServeState) -> APIRouter:
    """Neighbours of an uploaded audio file."""
    router = APIRouter()
    filters = _filters_dependency(state.cfg.max_k)

    @router.post("/api/similar")
    async def similar_upload(request: Request, f: Filters = Depends(filters)) -> Response:  # noqa: B008
        if state.encoder is None:
            return JSONResponse({"detail": f"query by audio is unavailable: {state.enc_problem}"}, status_code=503)
        if f.tag is not None and not state.tags.available:
            return JSONResponse({"detail": "cannot filter by tag: the server has no tags"}, status_code=400)
        try:
            async with receive_upload(request, state.cfg) as upload:
                result = await _search_upload(state, upload, f)
        except UploadRejected as rejected:
            return rejected.response()
        return JSONResponse(state.result_json(result))

    return router


def _audio_router(state: _ServeState) -> APIRouter:
    """A track's audio, with range requests."""
    router = APIRouter()

    @router.get("/api/audio/{track_id:path}")
    def audio(track_id: str) -> Response:
        path = state.idx.audio_path(track_id)  # an id lookup: unknown ids are a 404, request text never becomes a path
        if not path.is_file():
            return JSONResponse({"detail": f"the audio of track {track_id!r} is no longer on disk"}, status_code=404)
        media = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media)

    return router


def _add_error_handlers(app: FastAPI) -> None:
    """Errors of ours become JSON answers with the message, never a 500."""

    @app.exception_handler(TrackNotIndexedError)
    async def _unknown(request: Request, err: TrackNotIndexedError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(MixtapeError)
    async def _bad(request: Request, err: MixtapeError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)


def create_app(
    index: SimilarIndex | str | Path,
    config: ServeConfig | None = None,
    encoder: Any | None = None,
    tagger: Any | None = None,
) -> FastAPI:
    """The FastAPI app serving ``index``. ``encoder`` (an ``EncoderBundle``) enables queries by audio; by
    default the index's own encoder is loaded (uploads answer 503 with the reason when it cannot be)."""
    state = _serve_state(index, config or ServeConfig(), encoder, tagger)
    app = FastAPI(title="mixtape similar-track search", docs_url=None, redoc_url=None)  # the docs pages load from a CDN
    _add_error_handlers(app)
    routers = (_page_router, _track_router, _explore_router, _upload_router, _audio_router)
    for router in routers:
        app.include_router(router(state))
    app.state.index = state.idx
    app.state.config = state.cfg
    app.state.serve = state
    return app


def _neighbour_json(n: Neighbour, track: dict[str, Any]) -> dict[str, Any]:
    d = n.as_dict()
    d["track"] = track
    return d


def serve(
    index: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
    log_level: str = "info",
) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    app = create_app(index, config)
    if host not in LOOPBACK:
        log.warning(
            "serving on %s: anyone who can reach this address can browse and play the collection (there is no login)",
            host,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"mixtape search: {len(app.state.index)} tracks at http://{shown}:{port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
