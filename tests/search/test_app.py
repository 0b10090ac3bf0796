"""The web API (FastAPI TestClient): search, neighbours, audio with range requests, uploads, and
every way a request can be bad: unknown ids, path tricks, oversize, non-audio, too short."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from mixtape.search import ServeConfig, SimilarIndex, create_app


@pytest.fixture(scope="module")
def client(tiny_index: SimilarIndex) -> TestClient:
    return TestClient(create_app(tiny_index))


def _wav_bytes(seconds: float, sr: int = 16000, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    audio = 0.3 * np.random.default_rng(seed).standard_normal(int(seconds * sr)).astype(np.float32)
    sf.write(buf, audio, sr, format="WAV")
    return buf.getvalue()


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text and "cdn" not in page.text.lower()
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "/api/similar" in js.text
    assert client.get("/static/style.css").status_code == 200
    for bad in ("/static/index.html", "/static/..%2F..%2Fapp.py", "/static/%2Fetc%2Fpasswd"):
        assert client.get(bad).status_code == 404


def test_info_and_name_search(client: TestClient, tiny_index: SimilarIndex) -> None:
    info = client.get("/api/info").json()
    assert info["tracks"] == len(tiny_index) and info["index"]["kind"] == "flat" and info["query_by_audio"] is True
    assert info["rerank"] == ["none", "mp"] and info["max_upload_mb"] == 50
    artist = tiny_index.tracks.artists[0]
    found = client.get("/api/tracks", params={"query": artist}).json()
    assert found["total"] >= 1 and all(t["artist_id"] == artist for t in found["tracks"])
    assert found["tracks"][0]["audio_url"].startswith("/api/audio/")
    assert client.get("/api/tracks", params={"limit": 0}).status_code == 422


def test_similar_to_a_track(client: TestClient, tiny_index: SimilarIndex) -> None:
    tid = tiny_index.tracks.track_ids[4]
    r = client.get(f"/api/similar/{quote(tid, safe='')}", params={"k": 5, "exclude_same_artist": "true"})
    assert r.status_code == 200
    data = r.json()
    assert data["query"]["track_id"] == tid and len(data["neighbours"]) == 5
    assert all(n["track"]["artist_id"] != data["query"]["artist_id"] for n in data["neighbours"])
    scores = [n["score"] for n in data["neighbours"]]
    assert scores == sorted(scores, reverse=True) and [n["rank"] for n in data["neighbours"]] == [1, 2, 3, 4, 5]
    mp = client.get(f"/api/similar/{tid}", params={"k": 5, "rerank": "mp"}).json()
    assert all("mp_score" in n for n in mp["neighbours"])
    assert client.get(f"/api/similar/{tid}", params={"k": 0}).status_code == 422
    assert client.get(f"/api/similar/{tid}", params={"rerank": "bogus"}).status_code == 422


def test_unknown_ids_and_path_tricks_never_reach_the_file_system(
    client: TestClient, tiny_index: SimilarIndex, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"TOP-SECRET")
    real = tiny_index.tracks.paths[0]
    attempts = [
        "no-such-track",
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "../../../../etc/passwd",
        quote(str(secret), safe=""),
        quote(str(secret)),
        quote(real, safe=""),  # a real collection file, but named by path instead of id
        "%2E%2E%2F" * 8 + "etc%2Fpasswd",
    ]
    for a in attempts:
        for route in ("/api/audio/", "/api/similar/"):
            r = client.get(route + a)
            assert r.status_code == 404, (route, a, r.status_code)
            assert b"TOP-SECRET" not in r.content and b"root:" not in r.content
            # either looked up as an id and not found, or (dot segments removed by the client) no route at all
            assert "not in the index" in r.json()["detail"] or r.json()["detail"] == "Not Found"


def test_audio_is_served_with_range_requests(client: TestClient, tiny_index: SimilarIndex) -> None:
    tid, path = tiny_index.tracks.track_ids[2], Path(tiny_index.tracks.paths[2])
    data = path.read_bytes()
    full = client.get(f"/api/audio/{tid}")
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "audio/wav"
    part = client.get(f"/api/audio/{tid}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = client.get(f"/api/audio/{tid}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert client.get(f"/api/audio/{tid}", headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416


def test_upload_of_a_collection_track_finds_itself(client: TestClient, tiny_index: SimilarIndex) -> None:
    path = Path(tiny_index.tracks.paths[7])
    r = client.post("/api/similar", params={"k": 3}, files={"file": (path.name, path.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["query"]["name"] == path.name and data["query"]["duration"] > 1
    top = data["neighbours"][0]
    assert top["track"]["track_id"] == tiny_index.tracks.track_ids[7] and top["score"] > 0.9999
    raw = client.post(
        "/api/similar",
        params={"k": 3},
        content=path.read_bytes(),
        headers={"content-type": "audio/wav", "x-filename": "../../x.wav"},
    )
    assert raw.status_code == 200 and raw.json()["neighbours"][0]["track"]["track_id"] == tiny_index.tracks.track_ids[7]
    assert raw.json()["query"]["name"] == "x.wav"


def test_bad_uploads_get_clear_4xx(tiny_index: SimilarIndex) -> None:
    small = TestClient(create_app(tiny_index, ServeConfig(max_upload_mb=0.05)))  # 51 KiB
    big = _wav_bytes(3.0)  # ~96 KB
    r = small.post("/api/similar", files={"file": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    def chunks():  # no Content-Length: the server must count what arrives
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = small.post("/api/similar", content=chunks(), headers={"content-type": "audio/wav"})
    assert r.status_code == 413
    r = small.post("/api/similar", files={"file": ("notes.txt", b"just some text, not audio" * 10, "text/plain")})
    assert r.status_code == 415 and "not a readable audio file" in r.json()["detail"]
    r = small.post("/api/similar", files={"file": ("fake.mp3", b"\x00\x01garbage" * 50, "audio/mpeg")})
    assert r.status_code == 415
    r = small.post("/api/similar", files={"file": ("blip.wav", _wav_bytes(0.2), "audio/wav")})
    assert r.status_code == 422 and "too short" in r.json()["detail"]
    silent = io.BytesIO()
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
    r = small.post("/api/similar", files={"file": ("silence.wav", silent.getvalue(), "audio/wav")})
    assert r.status_code == 422 and "silent" in r.json()["detail"]
    r = small.post("/api/similar", files={"file": ("empty.wav", b"", "audio/wav")})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = small.post("/api/similar", files={"other": ("a.wav", _wav_bytes(1.0), "audio/wav")})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = small.post("/api/similar", content=b'{"a": 1}', headers={"content-type": "application/json"})
    assert r.status_code == 415 and "content type" in r.json()["detail"]
    ok = small.post("/api/similar", files={"file": ("ok.wav", _wav_bytes(1.0), "audio/wav")})
    assert ok.status_code == 200


def test_without_the_encoder_uploads_are_503_and_the_rest_works(tiny_index: SimilarIndex, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    shutil.copytree(tiny_index.path, folder)
    meta = json.loads((folder / "index.json").read_text())
    meta["encoder"]["source"] = str(tmp_path / "moved-away")
    (folder / "index.json").write_text(json.dumps(meta))
    client = TestClient(create_app(folder))
    info = client.get("/api/info").json()
    assert info["query_by_audio"] is False and "no longer at" in info["query_by_audio_problem"]
    r = client.post("/api/similar", files={"file": ("a.wav", _wav_bytes(1.0), "audio/wav")})
    assert r.status_code == 503 and "unavailable" in r.json()["detail"]
    assert client.get(f"/api/similar/{tiny_index.tracks.track_ids[0]}").status_code == 200


def test_predicted_tags_from_a_tagging_model(
    tiny_world, tiny_embeddings, tiny_index: SimilarIndex, tmp_path: Path
) -> None:
    from mixtape.evaluation import ProbeConfig, load_tag_dataset
    from mixtape.evaluation.tagger import train_tagger
    from mixtape.search import Tagger

    dataset = load_tag_dataset("mtg-jamendo", splits=tiny_world.splits, subset="genre")
    report = train_tagger(tiny_embeddings.path, dataset, tmp_path / "tagger", ProbeConfig(max_epochs=3, patience=2))
    assert report.tags == len(dataset.tags) and 0.0 <= report.test_roc_auc <= 1.0
    tagger = Tagger.load(tmp_path / "tagger")
    client = TestClient(create_app(tiny_index, tagger=tagger))
    data = client.get(f"/api/similar/{tiny_index.tracks.track_ids[1]}", params={"k": 3}).json()
    for track in [data["query"]] + [n["track"] for n in data["neighbours"]]:
        assert len(track["tags"]) == 5 and all(t["tag"] in dataset.tags and 0.0 <= t["p"] <= 1.0 for t in track["tags"])
        ps = [t["p"] for t in track["tags"]]
        assert ps == sorted(ps, reverse=True)
    path = Path(tiny_index.tracks.paths[1])
    up = client.post("/api/similar", files={"file": (path.name, path.read_bytes(), "audio/wav")}).json()
    assert [t["tag"] for t in up["query"]["tags"]] == [t["tag"] for t in data["query"]["tags"]]
    assert client.get("/api/info").json()["tagger"]["tags"] == len(dataset.tags)
