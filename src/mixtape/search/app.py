"""`mixtape serve`: a small web app to browse a collection by sound.

JSON API (FastAPI) and one page (plain HTML/JS/CSS shipped in ``static/``, no CDN):

- ``GET  /api/info``                      what is served (tracks, index kind, recall, encoder, tagger);
- ``GET  /api/tracks?query=&limit=``      name search (id, file name, artist, album);
- ``GET  /api/similar/{track_id}``        neighbours of a collection track (``k``, ``exclude_same_artist``,
  ``exclude_same_album``, ``min_score``, ``rerank``);
- ``POST /api/similar``                   neighbours of an uploaded audio file (multipart field ``file``,
  or the raw audio as the body), same query parameters;
- ``GET  /api/audio/{track_id}``          the track's audio, with HTTP range requests (seeking).

Safety: audio is looked up by track id in the index, so no path from a request ever reaches the
file system; uploads are capped (``max_upload_mb``, 413 beyond), must decode as audio (415) and be
long enough and not silent (422); an unknown track id is a 404; the server binds to 127.0.0.1
unless told otherwise (it has no authentication).
"""

from __future__ import annotations

import mimetypes
import shutil
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import Field
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from mixtape.audio.files import AUDIO_SUFFIXES
from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger

from .index import SearchIndexError
from .neighbours import Neighbour, SearchResult, SimilarIndex, TrackInfo, TrackNotIndexedError

log = get_logger(__name__)

STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
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


# --- what the routes share -----------------------------------------------------------------------


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

    def track_json(self, info: TrackInfo, tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        d = info.as_dict()
        d["audio_url"] = "/api/audio/" + quote(info.track_id, safe="")
        if tags is not None:
            d["tags"] = tags
        return d

    def tags_of(self, rows: list[int]) -> list[list[dict[str, Any]] | None]:
        if self.tagger is None or not rows:
            return [None] * len(rows)
        vecs = np.stack([self.idx.vector(r) for r in rows])
        probs = self.tagger.predict(vecs)
        out: list[list[dict[str, Any]] | None] = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: self.cfg.top_tags]
            out.append([{"tag": self.tagger.tags[i], "p": round(float(p[i]), 4)} for i in order.tolist()])
        return out

    def result_json(self, result: SearchResult) -> dict[str, Any]:
        tags = self.tags_of([n.track.row for n in result.neighbours])
        return {
            "query": result.query,
            "options": result.options,
            "neighbours": [
                _neighbour_json(n, self.track_json(n.track, t)) for n, t in zip(result.neighbours, tags, strict=True)
            ],
        }

    def search_upload(self, upload: Upload, k: int, options: dict[str, Any]) -> SearchResult:
        """Runs in a worker thread; the slots bound how many uploads are decoded and embedded at once."""
        from .query import similar_to_audio

        with self.upload_slots:
            return similar_to_audio(
                self.idx,
                self.encoder,
                upload.path,
                k,
                max_seconds=self.cfg.max_query_seconds,
                name=upload.name,
                tagger=self.tagger,
                **options,
            )


def _serve_state(
    index: SimilarIndex | str | Path, cfg: ServeConfig, encoder: Any | None, tagger: Any | None
) -> _ServeState:
    """Open the index and the models; a missing encoder only turns query by audio off, a tagger of
    another encoder is an error (its tags would be meaningless)."""
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
    return _ServeState(
        idx=idx,
        cfg=cfg,
        encoder=encoder,
        enc_problem=enc_problem,
        tagger=tagger,
        upload_slots=threading.BoundedSemaphore(cfg.upload_workers),
        page=static_file("index.html"),
        assets={name: static_file(name) for name in STATIC_FILES},
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
        "rerank": ["none", "mp"] if idx.moments is not None else ["none"],
        "max_upload_mb": cfg.max_upload_mb,
        "max_k": cfg.max_k,
        "upload_types": sorted(AUDIO_SUFFIXES),
    }


def _track_router(state: _ServeState) -> APIRouter:
    """What is served, name search, and neighbours of a collection track."""
    router = APIRouter()
    idx = state.idx

    @router.get("/api/info")
    def info() -> dict[str, Any]:
        return _info_json(state)

    @router.get("/api/tracks")
    def tracks(query: str = Query("", max_length=200), limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        total, rows = idx.find(query, limit)
        return {"query": query, "total": total, "tracks": [state.track_json(idx.info(r)) for r in rows]}

    @router.get("/api/similar/{track_id:path}")
    def similar(
        track_id: str,
        k: int = Query(10, ge=1, le=state.cfg.max_k),
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        min_score: float | None = Query(None, ge=-1.0, le=1.0),
        rerank: Literal["none", "mp"] = "none",
    ) -> dict[str, Any]:
        result = idx.similar_to_track(
            track_id,
            k,
            exclude_same_artist=exclude_same_artist,
            exclude_same_album=exclude_same_album,
            min_score=min_score,
            rerank=rerank,
        )
        row = idx.position(track_id)
        out = state.result_json(result)
        out["query"] = state.track_json(idx.info(row), state.tags_of([row])[0])
        return out

    return router


async def _search_upload(state: _ServeState, upload: Upload, k: int, options: dict[str, Any]) -> SearchResult:
    """Neighbours of an uploaded file, off the event loop; audio that cannot be used is an ``UploadRejected``."""
    from starlette.concurrency import run_in_threadpool

    from mixtape.audio import AudioDecodeError, UnusableAudio

    try:
        return await run_in_threadpool(state.search_upload, upload, k, options)
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

    @router.post("/api/similar")
    async def similar_upload(
        request: Request,
        k: int = Query(10, ge=1, le=state.cfg.max_k),
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        min_score: float | None = Query(None, ge=-1.0, le=1.0),
        rerank: Literal["none", "mp"] = "none",
    ) -> Response:
        if state.encoder is None:
            return JSONResponse({"detail": f"query by audio is unavailable: {state.enc_problem}"}, status_code=503)
        options = {
            "exclude_same_artist": exclude_same_artist,
            "exclude_same_album": exclude_same_album,
            "min_score": min_score,
            "rerank": rerank,
        }
        try:
            async with receive_upload(request, state.cfg) as upload:
                result = await _search_upload(state, upload, k, options)
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
    for router in (_page_router(state), _track_router(state), _upload_router(state), _audio_router(state)):
        app.include_router(router)
    app.state.index = state.idx
    app.state.config = state.cfg
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
