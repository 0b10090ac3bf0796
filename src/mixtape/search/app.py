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
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import Field

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


def create_app(
    index: SimilarIndex | str | Path,
    config: ServeConfig | None = None,
    encoder: Any | None = None,
    tagger: Any | None = None,
) -> FastAPI:
    """The FastAPI app serving ``index``. ``encoder`` (an ``EncoderBundle``) enables queries by audio; by
    default the index's own encoder is loaded (uploads answer 503 with the reason when it cannot be)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    from mixtape.audio import AudioDecodeError, UnusableAudio

    from .query import load_query_encoder, similar_to_audio
    from .tagger import Tagger

    cfg = config or ServeConfig()
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
    upload_slots = threading.BoundedSemaphore(cfg.upload_workers)
    page = static_file("index.html")
    assets = {name: static_file(name) for name in STATIC_FILES}

    app = FastAPI(title="mixtape similar-track search", docs_url=None, redoc_url=None)  # the docs pages load from a CDN

    @app.exception_handler(TrackNotIndexedError)
    async def _unknown(request: Request, err: TrackNotIndexedError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(MixtapeError)
    async def _bad(request: Request, err: MixtapeError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    def track_json(info: TrackInfo, tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        d = info.as_dict()
        d["audio_url"] = "/api/audio/" + quote(info.track_id, safe="")
        if tags is not None:
            d["tags"] = tags
        return d

    def tags_of(rows: list[int]) -> list[list[dict[str, Any]] | None]:
        if tagger is None or not rows:
            return [None] * len(rows)
        vecs = np.stack([idx.vector(r) for r in rows])
        probs = tagger.predict(vecs)
        out: list[list[dict[str, Any]] | None] = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: cfg.top_tags]
            out.append([{"tag": tagger.tags[i], "p": round(float(p[i]), 4)} for i in order.tolist()])
        return out

    def result_json(result: SearchResult) -> dict[str, Any]:
        tags = tags_of([n.track.row for n in result.neighbours])
        return {
            "query": result.query,
            "options": result.options,
            "neighbours": [
                _neighbour_json(n, track_json(n.track, t)) for n, t in zip(result.neighbours, tags, strict=True)
            ],
        }

    @app.get("/", response_class=HTMLResponse)
    def home() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def asset(name: str) -> Response:
        if name not in assets:
            return JSONResponse({"detail": f"no static file {name!r}"}, status_code=404)
        return Response(assets[name], media_type=STATIC_FILES[name])

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        enc = idx.encoder_info
        return {
            "tracks": len(idx),
            "index": {
                "kind": idx.kind,
                "params": idx.meta.get("params", {}),
                "recall10": idx.meta.get("recall10"),
                "dim": idx.dim,
            },
            "encoder": {"source": enc.get("source"), "backbone": enc.get("backbone")},
            "query_by_audio": encoder is not None,
            "query_by_audio_problem": enc_problem,
            "tagger": None if tagger is None else {"tags": len(tagger.tags), "source": str(tagger.path)},
            "rerank": ["none", "mp"] if idx.moments is not None else ["none"],
            "max_upload_mb": cfg.max_upload_mb,
            "max_k": cfg.max_k,
            "upload_types": sorted(AUDIO_SUFFIXES),
        }

    @app.get("/api/tracks")
    def tracks(query: str = Query("", max_length=200), limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        total, rows = idx.find(query, limit)
        return {"query": query, "total": total, "tracks": [track_json(idx.info(r)) for r in rows]}

    @app.get("/api/similar/{track_id:path}")
    def similar(
        track_id: str,
        k: int = Query(10, ge=1, le=cfg.max_k),
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
        out = result_json(result)
        out["query"] = track_json(idx.info(row), tags_of([row])[0])
        return out

    def _search_upload(path: Path, name: str, k: int, options: dict[str, Any]) -> SearchResult:
        with upload_slots:
            return similar_to_audio(
                idx, encoder, path, k, max_seconds=cfg.max_query_seconds, name=name, tagger=tagger, **options
            )

    @app.post("/api/similar")
    async def similar_upload(
        request: Request,
        k: int = Query(10, ge=1, le=cfg.max_k),
        exclude_same_artist: bool = False,
        exclude_same_album: bool = False,
        min_score: float | None = Query(None, ge=-1.0, le=1.0),
        rerank: Literal["none", "mp"] = "none",
    ) -> Response:
        if encoder is None:
            return JSONResponse({"detail": f"query by audio is unavailable: {enc_problem}"}, status_code=503)
        limit = cfg.max_upload_bytes
        too_large = JSONResponse({"detail": f"upload larger than the {cfg.max_upload_mb:g} MB limit"}, status_code=413)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
            return too_large
        ctype = request.headers.get("content-type", "").lower()
        with tempfile.TemporaryDirectory(prefix="mixtape-upload-") as tmp:
            try:
                if ctype.startswith("multipart/form-data"):
                    parser = MultiPartParser(
                        request.headers, _limited(request.stream(), limit + MULTIPART_SLACK), max_files=1, max_fields=20
                    )
                    form = await parser.parse()
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        return JSONResponse(
                            {"detail": "send the audio file as the multipart form field 'file'"}, status_code=422
                        )
                    name = Path(upload.filename or "upload").name
                    suffix = Path(name).suffix.lower()
                    target = Path(tmp) / ("upload" + (suffix if suffix in AUDIO_SUFFIXES else ""))
                    with open(target, "wb") as f:
                        shutil.copyfileobj(upload.file, f)
                    await upload.close()
                    if target.stat().st_size > limit:
                        return too_large
                elif ctype.startswith(("audio/", "application/octet-stream")):
                    name = Path(request.headers.get("x-filename", "upload")).name
                    suffix = Path(name).suffix.lower()
                    target = Path(tmp) / ("upload" + (suffix if suffix in AUDIO_SUFFIXES else ""))
                    with open(target, "wb") as f:
                        async for chunk in _limited(request.stream(), limit):
                            f.write(chunk)
                else:
                    return JSONResponse(
                        {
                            "detail": f"unsupported content type {ctype or '(none)'!r}: send multipart/form-data with "
                            "an audio 'file' field, or the raw audio with an audio/* content type"
                        },
                        status_code=415,
                    )
            except _TooLarge:
                return too_large
            except MultiPartException as err:
                return JSONResponse({"detail": f"malformed multipart upload: {err.message}"}, status_code=400)
            if target.stat().st_size == 0:
                return JSONResponse({"detail": "the uploaded file is empty"}, status_code=422)
            options = {
                "exclude_same_artist": exclude_same_artist,
                "exclude_same_album": exclude_same_album,
                "min_score": min_score,
                "rerank": rerank,
            }
            try:
                result = await run_in_threadpool(_search_upload, target, name, k, options)
            except UnusableAudio as err:
                return JSONResponse({"detail": f"{name}: cannot be used as a query: {err.reason}"}, status_code=422)
            except AudioDecodeError as err:
                return JSONResponse(
                    {
                        "detail": f"{name}: not a readable audio file ({err.reason}); accepted: audio that libsndfile "
                        f"or ffmpeg decodes, e.g. {', '.join(sorted(AUDIO_SUFFIXES)[:8])}"
                    },
                    status_code=415,
                )
        return JSONResponse(result_json(result))

    @app.get("/api/audio/{track_id:path}")
    def audio(track_id: str) -> Response:
        path = idx.audio_path(track_id)  # an id lookup: unknown ids are a 404, request text never becomes a path
        if not path.is_file():
            return JSONResponse({"detail": f"the audio of track {track_id!r} is no longer on disk"}, status_code=404)
        media = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media)

    app.state.index = idx
    app.state.config = cfg
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
