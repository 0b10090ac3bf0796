"""The app behind a real uvicorn on 127.0.0.1: a bounded concurrent load, and the page driven in a
real headless Chromium (Debian's /usr/bin/chromium through Playwright; skipped where it is absent)."""

from __future__ import annotations

import asyncio
import json
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

from mixtape.search import ServeConfig, SimilarIndex, create_app

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
    "--autoplay-policy=no-user-gesture-required",
]
#: Where the browser test saves a screenshot of the page, when set (docs/figures/serve.png is one).
SCREENSHOT_ENV = "MIXTAPE_SCREENSHOT"


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
def server_url(tiny_world, tiny_index: SimilarIndex) -> Iterator[str]:
    """The tiny world's index served with the world's own tags table."""
    with running(create_app(tiny_index, ServeConfig(tags_table=str(tiny_world.tags)))) as url:
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


def test_uploads_stay_refused_under_load(tiny_index: SimilarIndex) -> None:
    """200 concurrent searches with oversize and non-audio uploads among them: every search answers 200,
    every bad upload its 413 or 415, and the server answers at once afterwards."""
    ids = tiny_index.tracks.track_ids
    big = b"RIFF" + bytes(120 * 1024)  # over the 0.1 MB limit below
    with running(create_app(tiny_index, ServeConfig(max_upload_mb=0.1))) as url:

        async def load() -> tuple[list[httpx.Response], list[httpx.Response], list[httpx.Response]]:
            limits = httpx.Limits(max_connections=240, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
                gets = [client.get(f"/api/similar/{ids[i % len(ids)]}", params={"k": 10}) for i in range(200)]
                large = [client.post("/api/similar", files={"file": ("big.wav", big, "audio/wav")}) for _ in range(20)]
                text = [
                    client.post("/api/similar", files={"file": ("notes.txt", b"not audio at all " * 40, "text/plain")})
                    for _ in range(20)
                ]
                out = await asyncio.gather(*gets, *large, *text)
                return out[:200], out[200:220], out[220:]

        searches, large, text = asyncio.run(load())
        assert [r.status_code for r in searches] == [200] * 200
        assert [r.status_code for r in large] == [413] * 20 and all("limit" in r.json()["detail"] for r in large)
        assert [r.status_code for r in text] == [415] * 20
        assert all("not a readable audio file" in r.json()["detail"] for r in text)
        start = time.monotonic()
        assert httpx.get(url + "/api/info", timeout=30).status_code == 200
        assert time.monotonic() - start < 10


def _isolated_row(layout) -> int:
    """The track whose point on the map is farthest from any other: a click on it can hit no other."""
    import numpy as np

    d = np.sqrt(((layout[:, None, :] - layout[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return int(d.min(1).argmax())


NEIGHBOUR_IDS = "[...document.querySelectorAll('#neighbours li.neighbour .card')].map(c => c.dataset.trackId)"
CANVAS_INK = """(() => { const c = document.getElementById('map'); const d = c.getContext('2d')
  .getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
  return n; })()"""
POINT_ON_PAGE = """(row) => { const [x, y] = pointMap.toScreen(pointMap.xy[2 * row], pointMap.xy[2 * row + 1]);
  const b = pointMap.canvas.getBoundingClientRect(); const d = window.devicePixelRatio || 1;
  return [b.left + x / d, b.top + y / d]; }"""


def test_the_page_in_headless_chromium(server_url: str, tiny_world, tiny_index: SimilarIndex) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from mixtape.search.app import read_tags_table

    tags = read_tags_table(tiny_world.tags, {t: i for i, t in enumerate(tiny_index.tracks.track_ids)})
    layout = tiny_index.layout
    assert layout is not None, "the tiny index has no map"
    row = _isolated_row(layout)
    track_id, artist = tiny_index.tracks.track_ids[row], tiny_index.tracks.artists[row]
    n = len(tiny_index)
    audio_statuses: list[int] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
            page.on("response", lambda r: audio_statuses.append(r.status) if "/api/audio/" in r.url else None)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server_url + "/")
            page.wait_for_selector("body[data-ready='1']")
            assert "tracks" in page.inner_text("#info") and "tags: table" in page.inner_text("#info")

            # the collection, paged
            assert page.inner_text("#page-range") == f"1–50 of {n}"
            page.click("#page-next")
            page.wait_for_function("document.querySelector('#page-range').textContent.startsWith('51–')")
            assert page.get_attribute("#tracks li button", "data-track-id") == tiny_index.tracks.track_ids[50]
            page.go_back()
            page.wait_for_function("document.querySelector('#page-range').textContent.startsWith('1–')")

            # search the collection by name
            page.fill("#query", artist)
            page.click("#search-form button")
            page.wait_for_function(f"document.querySelectorAll('#tracks li').length < {min(n, 50)}")
            listed = [b.get_attribute("data-track-id") for b in page.locator("#tracks li button").all()]
            assert listed and all(tiny_index.tracks.artists[tiny_index.position(t)] == artist for t in listed)

            # the map renders: every point painted, the canvas has ink
            page.wait_for_function(f"document.getElementById('map').dataset.painted === '{n}'")
            assert page.evaluate(CANVAS_INK) > n
            assert page.locator("#legend li").count() >= 2

            # hover shows the track, a click plays it and shows its neighbours, highlighted on the map
            x, y = page.evaluate(POINT_ON_PAGE, row)
            page.mouse.move(x, y)
            page.wait_for_selector("#map-tip:not([hidden])")
            page.mouse.click(x, y)
            page.wait_for_function("document.querySelectorAll('#neighbours li.neighbour').length === 10")
            assert page.get_attribute("#query-track .card", "data-track-id") == track_id
            assert page.evaluate("pointMap.highlight.query") == row
            neighbours = page.evaluate(NEIGHBOUR_IDS)
            assert sorted(page.evaluate("pointMap.highlight.rows")) == sorted(
                tiny_index.position(t) for t in neighbours
            )
            page.wait_for_function(
                "(() => { const a = document.getElementById('player'); return a.dataset.trackId === "
                f"'{track_id}' && a.src.endsWith('/api/audio/{track_id}') && !a.paused && a.currentTime > 0; }})()",
                timeout=20000,
            )
            duration = page.evaluate("document.getElementById('player').duration")
            assert duration == pytest.approx(tiny_index.tracks.durations[row], abs=0.1)
            assert audio_statuses and set(audio_statuses) <= {200, 206}
            # the spectrogram strip of the playing track, its playhead moving
            page.wait_for_function("document.getElementById('spectro-img').naturalWidth > 0")
            page.wait_for_function("parseFloat(document.getElementById('playhead').style.left) > 0")
            scores = page.locator("#neighbours .score").all_inner_texts()
            assert len(scores) == 10 and all(float(s.split()[0]) <= 1.0 for s in scores)
            assert f"track={track_id}" in page.url

            # an option re-runs the search: no neighbour by the query's artist any more
            own = [t for t in neighbours if tiny_index.tracks.artists[tiny_index.position(t)] == artist]
            page.check("#opt-artist")
            page.wait_for_function(f"{NEIGHBOUR_IDS}.join() !== {neighbours!r}.join()" if own else "true")
            page.wait_for_function("document.querySelectorAll('#neighbours li.neighbour').length === 10")
            filtered = page.evaluate(NEIGHBOUR_IDS)
            assert all(tiny_index.tracks.artists[tiny_index.position(t)] != artist for t in filtered)
            assert "exclude_same_artist=true" in page.url

            # a tag filter narrows the results to tracks with the tag
            counts: dict[str, int] = {}
            for t in filtered:
                for tag in tags.get(tiny_index.position(t), []):
                    counts[tag] = counts.get(tag, 0) + 1
            tag = min(counts, key=lambda t: (counts[t], t))
            page.select_option("#opt-tag", tag)
            page.wait_for_function(
                "(t => { const c = [...document.querySelectorAll('#neighbours li.neighbour')]; return c.length > 0 && "
                "c.every(li => [...li.querySelectorAll('.tag')].some(b => b.textContent === t)); })",
                arg=tag,
            )
            tagged = page.evaluate(NEIGHBOUR_IDS)
            assert all(tag in tags[tiny_index.position(t)] for t in tagged) and tagged != filtered
            assert f"tag={tag}" in page.url.replace("%2F", "/").replace("+", " ")
            page.wait_for_function("document.querySelector('#track-count').textContent.includes('tagged')")

            # a copied link restores the same result in a new page
            link = page.url
            other = browser.new_page(viewport={"width": 1200, "height": 800})
            other.goto(link)
            other.wait_for_selector("body[data-ready='1']")
            other.wait_for_function(f"{NEIGHBOUR_IDS}.length === {len(tagged)}")
            assert other.evaluate(NEIGHBOUR_IDS) == tagged
            assert other.is_checked("#opt-artist") and other.input_value("#opt-tag") == tag
            assert other.get_attribute("#query-track .card", "data-track-id") == track_id
            other.close()

            # Back and Forward walk the results
            page.go_back()  # before the tag
            page.wait_for_function(f"{NEIGHBOUR_IDS}.join() === {filtered!r}.join()")
            assert page.input_value("#opt-tag") == ""
            page.go_back()  # before the artist filter
            page.wait_for_function("!document.getElementById('opt-artist').checked")
            page.wait_for_function(f"{NEIGHBOUR_IDS}.join() === {neighbours!r}.join()")
            page.go_forward()
            page.wait_for_function(f"{NEIGHBOUR_IDS}.join() === {filtered!r}.join()")
            assert page.is_checked("#opt-artist")

            # save as playlist: the M3U8 downloads and parses
            with page.expect_download() as download:
                page.click("#export-m3u8")
            text = Path(download.value.path()).read_text(encoding="utf-8")
            lines = text.splitlines()
            assert lines[0] == "#EXTM3U" and download.value.suggested_filename.endswith(".m3u8")
            extinf = [i for i, line in enumerate(lines) if line.startswith("#EXTINF:")]
            assert len(extinf) == 11
            paths = [lines[i + 1] for i in extinf]
            assert [Path(q).resolve() for q in paths] == [
                Path(tiny_index.tracks.paths[tiny_index.position(t)]).resolve() for t in [track_id, *filtered]
            ]
            with page.expect_download() as download:
                page.click("#export-json")
            assert json.loads(Path(download.value.path()).read_text()) == [track_id, *filtered]

            if os.environ.get(SCREENSHOT_ENV):
                page.mouse.move(*page.evaluate(POINT_ON_PAGE, tiny_index.position(filtered[0])))
                page.wait_for_selector("#map-tip:not([hidden])")
                page.screenshot(path=os.environ[SCREENSHOT_ENV])

            # upload a file: its neighbours replace the list
            page.set_input_files("#upload", tiny_index.tracks.paths[row])
            page.click("#upload-form button")
            page.wait_for_function("document.querySelector('#query-track').textContent.includes('uploaded file')")
            page.wait_for_function("document.querySelectorAll('#neighbours li.neighbour').length === 10")
            assert page.get_attribute("#neighbours li.neighbour .card", "data-track-id") == track_id
            assert not errors, errors
        finally:
            browser.close()
