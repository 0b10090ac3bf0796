"""The app behind a real uvicorn on 127.0.0.1: a bounded concurrent load, and the page driven in a
real headless Chromium (Debian's /usr/bin/chromium through Playwright; skipped where it is absent)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from mixtape.search import SimilarIndex, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread; yields the base URL, stops the server after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", backlog=512))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def server_url(tiny_index: SimilarIndex) -> Iterator[str]:
    with running(create_app(tiny_index)) as url:
        yield url


def test_200_concurrent_similar_requests(server_url: str, tiny_index: SimilarIndex) -> None:
    ids = tiny_index.tracks.track_ids
    upload = Path(tiny_index.tracks.paths[3]).read_bytes()

    async def load() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server_url, timeout=120, limits=limits) as client:
            gets = [
                client.get(f"/api/similar/{ids[i % len(ids)]}", params={"k": 10, "exclude_same_artist": i % 2 == 0})
                for i in range(190)
            ]
            posts = [
                client.post("/api/similar", params={"k": 5}, files={"file": ("q.wav", upload, "audio/wav")})
                for _ in range(10)
            ]
            return await asyncio.gather(*gets, *posts)

    responses = asyncio.run(load())
    assert len(responses) == 200
    assert [r.status_code for r in responses] == [200] * 200
    assert all(len(r.json()["neighbours"]) == 10 for r in responses[:190])
    assert all(r.json()["neighbours"][0]["track"]["track_id"] == ids[3] for r in responses[190:])


def test_binds_to_loopback_by_default() -> None:
    import inspect

    from mixtape.cli import build_parser
    from mixtape.search import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    args = build_parser().parse_args(["serve", "--index", "x"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_the_page_in_headless_chromium(server_url: str, tiny_index: SimilarIndex) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    # a query whose unfiltered neighbours include its own artist, so the artist filter visibly changes the list
    row = next(
        r
        for r in range(len(tiny_index))
        if any(
            n.track.artist_id == tiny_index.tracks.artists[r]
            for n in tiny_index.similar_to_track(tiny_index.tracks.track_ids[r]).neighbours
        )
    )
    artist, track_id = tiny_index.tracks.artists[row], tiny_index.tracks.track_ids[row]
    audio_statuses: list[int] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("response", lambda r: audio_statuses.append(r.status) if "/api/audio/" in r.url else None)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server_url + "/")
            page.wait_for_selector("#tracks li button")
            assert "tracks" in page.inner_text("#info")
            # search the collection by name
            page.fill("#query", artist)
            page.click("#search-form button")
            page.wait_for_function(
                "document.querySelector('#track-count').textContent.includes('match') && "
                f"document.querySelectorAll('#tracks li').length < {min(len(tiny_index), 200)}"
            )
            names = page.locator("#tracks li button").all_inner_texts()
            assert names and all(artist in n for n in names)
            # click a track: its neighbours appear with scores
            page.click(f"#tracks li button[data-track-id='{track_id}']")
            page.wait_for_selector("#neighbours li.neighbour")
            page.wait_for_function("document.querySelectorAll('#neighbours li.neighbour').length === 10")
            assert page.get_attribute("#query-track .card", "data-track-id") == track_id
            scores = page.locator("#neighbours .score").all_inner_texts()
            assert len(scores) == 10 and all(float(s.split()[0]) <= 1.0 for s in scores)
            # an option re-runs the search: no neighbour by the query's artist any more
            page.check("#opt-artist")
            page.wait_for_function(
                "(a => { const subs = [...document.querySelectorAll('#neighbours li.neighbour .sub')]; return "
                "subs.length === 10 && subs.every(s => !s.textContent.includes(a)); })",
                arg=artist,
            )
            # an audio element can load (metadata: duration known) over range requests
            page.eval_on_selector("#neighbours li.neighbour audio", "a => a.load()")
            page.wait_for_function(
                "(() => { const a = document.querySelector('#neighbours li.neighbour audio'); return "
                "a.readyState >= 1 && a.duration > 0; })()",
                timeout=20000,
            )
            duration = page.eval_on_selector("#neighbours li.neighbour audio", "a => a.duration")
            first = page.get_attribute("#neighbours li.neighbour .card", "data-track-id")
            assert duration == pytest.approx(tiny_index.tracks.durations[tiny_index.position(first)], abs=0.1)
            assert audio_statuses and set(audio_statuses) <= {200, 206}
            # upload a file: its neighbours replace the list
            page.set_input_files("#upload", tiny_index.tracks.paths[row])
            page.click("#upload-form button")
            page.wait_for_function("document.querySelector('#query-track').textContent.includes('uploaded file')")
            page.wait_for_function("document.querySelectorAll('#neighbours li.neighbour').length === 10")
            assert page.get_attribute("#neighbours li.neighbour .card", "data-track-id") == track_id
            assert not errors, errors
        finally:
            browser.close()
