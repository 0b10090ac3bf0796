"""The listening page's server under load: 200 concurrent similar-track searches against a real uvicorn.

    .venv/bin/python benchmarks/serve_load.py                       # 5,000 generated tracks, 200 requests
    .venv/bin/python benchmarks/serve_load.py --n 100000 --requests 500
    .venv/bin/python benchmarks/serve_load.py --index runs/demo/search/index   # an index of yours

Without ``--index`` it builds an index (exact, with a PCA map) over ``--n`` generated ``--dim``-d vectors
(groups of 50 "artists" in a 16-d latent space, mapped to ``--dim`` dimensions), written as outside vectors
(``ids`` + ``embeddings`` in an ``.npz``, as ``mixtape index --embeddings`` reads them), and serves it with a
randomly initialised 64-d encoder for uploads (``--index``: the index's own encoder). The server is the
app ``mixtape serve`` runs, on 127.0.0.1, in this process (uvicorn in a thread); the requests are
``GET /api/similar/{id}?k=10`` (every other one excluding the query's artist), all sent at once from one
asyncio client with one connection each. Also sent at once, and counted apart: uploads over the size
limit and uploads that are not audio, which must be refused (413, 415) while the searches are served.

Latency is per request, from send to the full answer, so under a 200-wide burst it includes the wait
for the server's worker threads: p50/p99 describe the burst, not one idle query. The last line is
machine-readable:

    RESULT requests=200 errors=0 p50_ms=... p99_ms=... wall_s=... refused_ok=40
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mixtape.search import IndexSettings, ServeConfig, SimilarIndex, build_index, create_app


def query_encoder(folder: Path) -> object:
    """A randomly initialised narrow encoder (64-d vectors) so that the server takes uploads: the refused
    ones never reach it (413 before reading, 415 at decoding)."""
    import torch

    from mixtape.audio import MelConfig
    from mixtape.models import Encoder
    from mixtape.models.bundle import EncoderBundle
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    out = folder / "encoder"
    export_safetensors(
        Encoder("small", channels=(8, 16, 32, 64)),
        out,
        metadata={"mel": MelConfig().model_dump(mode="json"), "patch_frames": 128},
    )
    return EncoderBundle.load(out)


def generated_index(folder: Path, n: int, dim: int, seed: int) -> Path:
    """An exact index with a PCA map over ``n`` grouped random vectors (artists of 50 tracks)."""
    rng = np.random.default_rng(seed)
    groups = max(1, n // 50)
    latent = rng.standard_normal((groups, 16)).astype(np.float32)
    lift = rng.standard_normal((16, dim)).astype(np.float32)
    which = rng.integers(0, groups, n)
    z = latent[which] + 0.6 * rng.standard_normal((n, 16)).astype(np.float32)
    vectors = z @ lift + 0.05 * rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.array([f"t{i:07d}" for i in range(n)])
    npz = folder / "vectors.npz"
    np.savez(npz, ids=ids, embeddings=vectors)
    out = folder / "index"
    build_index(npz, out, IndexSettings(kind="flat", layout="pca"))
    return out


@contextmanager
def running(app) -> Iterator[str]:
    """``app`` on a free 127.0.0.1 port (uvicorn in a thread); yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", backlog=2048))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def burst(url: str, ids: list[str], requests: int, refused: int, timeout: float) -> dict[str, object]:
    import httpx

    limits = httpx.Limits(max_connections=requests + 2 * refused, max_keepalive_connections=0)
    latencies: list[float] = []
    statuses: list[int] = []
    big = b"RIFF" + bytes(200 * 1024)  # over the 0.1 MB limit the server is started with

    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:

        async def search(i: int) -> None:
            start = time.perf_counter()
            try:
                r = await client.get(
                    f"/api/similar/{ids[i % len(ids)]}", params={"k": 10, "exclude_same_artist": i % 2 == 0}
                )
                ok = r.status_code == 200 and len(r.json()["neighbours"]) == 10
                statuses.append(r.status_code if ok else -r.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append(time.perf_counter() - start)

        async def refuse(kind: str) -> int:
            if kind == "large":
                r = await client.post("/api/similar", files={"file": ("big.wav", big, "audio/wav")})
                return int(r.status_code == 413)
            r = await client.post("/api/similar", files={"file": ("notes.txt", b"not audio " * 50, "text/plain")})
            return int(r.status_code == 415)

        started = time.perf_counter()
        jobs = [search(i) for i in range(requests)]
        jobs += [refuse("large") for _ in range(refused)] + [refuse("text") for _ in range(refused)]
        results = await asyncio.gather(*jobs)
        wall = time.perf_counter() - started
    refused_ok = sum(r for r in results if isinstance(r, int))
    ms = np.array(latencies) * 1000
    return {
        "requests": requests,
        "errors": sum(s != 200 for s in statuses),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "wall_s": wall,
        "refused_ok": refused_ok,
        "refused": 2 * refused,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=None, help="an index folder (default: build one from --n vectors)")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=64, help="64: the width of the query encoder this script exports")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument(
        "--refused", type=int, default=20, help="oversize uploads, and as many non-audio ones, in the burst"
    )
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mixtape-serve-load-") as tmp:
        built = time.perf_counter()
        folder = args.index or generated_index(Path(tmp), args.n, args.dim, args.seed)
        idx = SimilarIndex.open(folder)
        print(f"index {folder}: {len(idx)} tracks, {idx.kind}, {time.perf_counter() - built:.1f} s to build/open")
        encoder = None if args.index else query_encoder(Path(tmp))
        app = create_app(idx, ServeConfig(max_upload_mb=0.1), encoder=encoder)
        with running(app) as url:
            res = asyncio.run(burst(url, list(idx.tracks.track_ids), args.requests, args.refused, args.timeout))
            import httpx

            start = time.perf_counter()
            after = httpx.get(url + "/api/info", timeout=30).status_code
            print(f"after the burst: /api/info {after} in {1000 * (time.perf_counter() - start):.1f} ms")
    print(
        f"{res['requests']} concurrent searches in {res['wall_s']:.2f} s: {res['errors']} errors, "
        f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms; "
        f"{res['refused_ok']}/{res['refused']} bad uploads refused (413/415)"
    )
    print(
        f"RESULT requests={res['requests']} errors={res['errors']} p50_ms={res['p50_ms']:.1f} "
        f"p99_ms={res['p99_ms']:.1f} wall_s={res['wall_s']:.2f} refused_ok={res['refused_ok']}"
    )
    return 0 if res["errors"] == 0 and res["refused_ok"] == res["refused"] and after == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
