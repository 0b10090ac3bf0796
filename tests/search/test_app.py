"""The web API (FastAPI TestClient): search, neighbours, audio with range requests, uploads, and
every way a request can be bad: unknown ids, path tricks, oversize, non-audio, too short."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections import Counter
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


# --- the explorer: names, paging, map, tags, playlists, spectrograms ------------------------------


def test_tracks_carry_their_names(client: TestClient, tiny_index: SimilarIndex) -> None:
    tracks = client.get("/api/tracks", params={"limit": 5}).json()["tracks"]
    titles = getattr(tiny_index.tracks, "titles", None) or [None] * len(tiny_index)
    names = getattr(tiny_index.tracks, "artist_names", None) or [None] * len(tiny_index)
    for t in tracks:
        assert "title" in t and "artist_name" in t
        assert t["title"] == titles[t["row"]] and t["artist_name"] == names[t["row"]]
    data = client.get(f"/api/similar/{tiny_index.tracks.track_ids[0]}", params={"k": 3}).json()
    assert all("title" in n["track"] and "artist_name" in n["track"] for n in data["neighbours"])
    assert client.get("/api/info").json()["names"] == bool(any(titles) or any(names))


def test_the_collection_is_paged(client: TestClient, tiny_index: SimilarIndex) -> None:
    n = len(tiny_index)
    pages, offset = [], 0
    while True:
        data = client.get("/api/tracks", params={"offset": offset, "limit": 7}).json()
        assert data["total"] == n and data["offset"] == offset and data["limit"] == 7
        if not data["tracks"]:
            break
        pages += [t["track_id"] for t in data["tracks"]]
        offset += 7
    assert pages == list(tiny_index.tracks.track_ids)
    one = client.get("/api/tracks", params={"offset": 5, "limit": 1}).json()["tracks"]
    assert [t["row"] for t in one] == [5]
    artist = tiny_index.tracks.artists[0]
    found = client.get("/api/tracks", params={"query": artist, "offset": 1, "limit": 2}).json()
    matching = [t for t, a in zip(tiny_index.tracks.track_ids, tiny_index.tracks.artists, strict=True) if a == artist]
    assert found["total"] == len(matching) and [t["track_id"] for t in found["tracks"]] == matching[1:3]
    assert client.get("/api/tracks", params={"offset": -1}).status_code == 422
    assert client.get("/api/tracks", params={"limit": 501}).status_code == 422


def test_the_map(client: TestClient, tiny_index: SimilarIndex) -> None:
    info = client.get("/api/map").json()
    assert info["tracks"] == len(tiny_index) and info["color_by"] == ["artist", "album"]
    if tiny_index.layout is None:
        assert info["available"] is False and "no map" in info["problem"]
        assert client.get("/api/map/points").status_code == 404
        return
    assert info["available"] is True
    r = client.get(info["points"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    xy = np.frombuffer(r.content, dtype="<f4").reshape(-1, 2)
    assert xy.shape == (len(tiny_index), 2) and xy.min() >= 0.0 and xy.max() <= 1.0
    np.testing.assert_allclose(xy, tiny_index.layout, atol=1e-6)
    for by, labels in (("artist", tiny_index.tracks.artists), ("album", tiny_index.tracks.albums)):
        colors = client.get("/api/map/colors", params={"by": by}).json()
        codes = np.frombuffer(base64.b64decode(colors["codes"]), dtype="<i4")
        assert len(codes) == len(tiny_index) and sum(g["count"] for g in colors["legend"]) == int((codes >= 0).sum())
        counts = [g["count"] for g in colors["legend"]]
        assert counts == sorted(counts, reverse=True)
        # tracks of one group share a code; the legend counts it
        for row in range(len(tiny_index)):
            same = [r for r in range(len(tiny_index)) if labels[r] == labels[row]]
            assert {int(codes[r]) for r in same} == {int(codes[row])}
            assert colors["legend"][codes[row]]["count"] == len(same)
    assert client.get("/api/map/colors", params={"by": "tag"}).status_code == 404  # no tags served
    assert client.get("/api/map/colors", params={"by": "bogus"}).status_code == 422


def test_a_map_less_index_says_so(tiny_index: SimilarIndex, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    shutil.copytree(tiny_index.path, folder)
    meta = json.loads((folder / "index.json").read_text())
    if (folder / "layout.npy").exists():
        (folder / "layout.npy").unlink()
        meta.get("files", {}).pop("layout.npy", None)
        meta.pop("layout", None)
        (folder / "index.json").write_text(json.dumps(meta))
    client = TestClient(create_app(folder))
    assert client.get("/api/info").json()["map"] is False
    info = client.get("/api/map").json()
    assert info["available"] is False and info["problem"]
    assert client.get("/api/map/points").status_code == 404
    assert client.get(f"/api/similar/{tiny_index.tracks.track_ids[0]}").status_code == 200


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tags_table_formats_and_errors(tiny_index: SimilarIndex, tmp_path: Path, caplog) -> None:
    from mixtape.search.app import TagsTableError, read_tags_table

    ids = tiny_index.tracks.track_ids
    pos = {t: i for i, t in enumerate(ids)}
    wide = _write(tmp_path / "wide.tsv", f"track_id\tgenre\tmood\n{ids[0]}\trock\thappy, calm\n{ids[1]}\tpop\t\n")
    assert read_tags_table(wide, pos) == {0: ["rock", "happy", "calm"], 1: ["pop"]}
    long = _write(tmp_path / "long.tsv", f"track_id\ttag\n{ids[2]}\tjazz\n\n{ids[2]}\tpiano\n{ids[2]}\tjazz\n")
    assert read_tags_table(long, pos) == {2: ["jazz", "piano"]}
    mtg = _write(
        tmp_path / "mtg.tsv",
        f"TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n{ids[3]}\ta\tb\tp.wav\t8.0\tgenre---rock\tinstrument---bass\n",
    )
    assert read_tags_table(mtg, pos) == {3: ["rock", "bass"]}
    with caplog.at_level("WARNING"):
        some = _write(tmp_path / "some.tsv", f"track_id\ttag\nnot-a-track\tx\n{ids[4]}\tfolk\n")
        assert read_tags_table(some, pos) == {4: ["folk"]}
    assert "1 rows name tracks that are not in the index" in caplog.text and "line 2" in caplog.text
    bad = {
        "header.tsv": ("id\ttag\nx\ty\n", "line 1: the header must start with a track_id column"),
        "alone.tsv": ("track_id\n", "line 1"),
        "cells.tsv": (f"track_id\ttag\n{ids[0]}\ta\n{ids[1]}\tb\tc\n", "line 3: 3 cells, the header has 2 columns"),
        "noid.tsv": (f"track_id\ttag\n{ids[0]}\ta\n\tb\n", "line 3: the track_id cell is empty"),
        "long.tsv": (f"track_id\ttag\n{ids[0]}\t{'x' * 101}\n", "line 2: a tag of 101 characters"),
        "none.tsv": ("track_id\ttag\nghost\ta\n", "no row names a track of the index"),
        "empty.tsv": ("", "empty"),
    }
    for name, (text, message) in bad.items():
        with pytest.raises(TagsTableError, match=message):
            read_tags_table(_write(tmp_path / name, text), pos)
    (tmp_path / "latin1.tsv").write_bytes(b"track_id\ttag\n" + ids[0].encode() + b"\tcaf\xe9\n")
    with pytest.raises(TagsTableError, match="line 2: not UTF-8"):
        read_tags_table(tmp_path / "latin1.tsv", pos)
    with pytest.raises(TagsTableError, match="not found"):
        read_tags_table(tmp_path / "missing.tsv", pos)
    with pytest.raises(TagsTableError, match="line 1"):  # the server refuses to start on it
        create_app(tiny_index, ServeConfig(tags_table=str(tmp_path / "header.tsv")))


@pytest.fixture(scope="module")
def tagged(tiny_world, tiny_index: SimilarIndex) -> TestClient:
    """The server with the world's own MTG-Jamendo tags table."""
    return TestClient(create_app(tiny_index, ServeConfig(tags_table=str(tiny_world.tags))))


def test_tags_are_shown_filter_the_results_and_colour_the_map(tagged: TestClient, tiny_index: SimilarIndex) -> None:
    info = tagged.get("/api/info").json()
    assert info["tags"] == "table"
    vocab = tagged.get("/api/tags").json()["tags"]
    assert vocab and all(v["count"] >= 1 for v in vocab)
    tid = tiny_index.tracks.track_ids[0]
    data = tagged.get(f"/api/similar/{tid}", params={"k": 10}).json()
    assert data["query"]["tags"] and all(t["p"] is None for t in data["query"]["tags"])
    # a tag some but not all of the unfiltered neighbours have
    counts = Counter(t["tag"] for n in data["neighbours"] for t in n["track"]["tags"])
    tag = next(t for t, c in counts.items() if 0 < c < 10)
    narrowed = tagged.get(f"/api/similar/{tid}", params={"k": 10, "tag": tag}).json()
    assert narrowed["neighbours"] and narrowed["options"]["tag"] == tag
    assert all(tag in [t["tag"] for t in n["track"]["tags"]] for n in narrowed["neighbours"])
    assert [n["rank"] for n in narrowed["neighbours"]] == list(range(1, len(narrowed["neighbours"]) + 1))
    total = next(v["count"] for v in vocab if v["tag"] == tag)
    assert len(narrowed["neighbours"]) == min(10, total - (tag in [t["tag"] for t in data["query"]["tags"]]))
    scores = [n["score"] for n in narrowed["neighbours"]]
    assert scores == sorted(scores, reverse=True)
    listed = tagged.get("/api/tracks", params={"tag": tag, "limit": 500}).json()
    assert listed["total"] == total and all(tag in [t["tag"] for t in x["tags"]] for x in listed["tracks"])
    assert tagged.get("/api/tracks", params={"tag": "no-such-tag"}).json()["total"] == 0
    colors = tagged.get("/api/map/colors", params={"by": "tag"})
    assert colors.status_code == 200 and {g["label"] for g in colors.json()["legend"]} <= {v["tag"] for v in vocab}
    assert tagged.get("/api/map").json()["color_by"] == ["artist", "album", "tag"]


def test_a_tag_filter_without_tags_is_a_clear_400(client: TestClient, tiny_index: SimilarIndex) -> None:
    r = client.get(f"/api/similar/{tiny_index.tracks.track_ids[0]}", params={"tag": "rock"})
    assert r.status_code == 400 and "no tags" in r.json()["detail"]


def _parse_m3u8(text: str) -> list[tuple[int, str, str]]:
    """(seconds, label, location) per entry of an extended M3U."""
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    entries, i = [], 1
    while i < len(lines):
        if lines[i].startswith("#EXTINF:"):
            seconds, label = lines[i][len("#EXTINF:") :].split(",", 1)
            entries.append((int(seconds), label, lines[i + 1]))
            i += 2
        else:
            assert lines[i].startswith("#"), lines[i]
            i += 1
    return entries


def test_playlists_out(client: TestClient, tiny_index: SimilarIndex) -> None:
    tid = tiny_index.tracks.track_ids[6]
    params = {"k": 5, "exclude_same_artist": "true"}
    similar = client.get(f"/api/similar/{tid}", params=params).json()
    ids = [tid] + [n["track"]["track_id"] for n in similar["neighbours"]]
    r = client.get(f"/api/playlist/{tid}.m3u8", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/x-mpegurl")
    assert r.headers["content-disposition"].startswith("attachment;") and ".m3u8" in r.headers["content-disposition"]
    entries = _parse_m3u8(r.text)
    assert [Path(e[2]).resolve() for e in entries] == [
        Path(tiny_index.tracks.paths[tiny_index.position(t)]).resolve() for t in ids
    ]
    assert all(Path(e[2]).is_file() for e in entries)
    for (seconds, label, _), t in zip(entries, ids, strict=True):
        row = tiny_index.position(t)
        assert seconds == round(tiny_index.tracks.durations[row])
        info = tiny_index.info(row)
        assert label.endswith(getattr(info, "title", None) or info.name)
        assert label.startswith((getattr(info, "artist_name", None) or info.artist_id) + " - ")
    urls = _parse_m3u8(client.get(f"/api/playlist/{tid}.m3u8", params={**params, "urls": 1}).text)
    assert [e[2] for e in urls] == [f"http://testserver/api/audio/{quote(t, safe='')}" for t in ids]
    assert client.get(urls[1][2].replace("http://testserver", "")).status_code == 200
    as_json = client.get(f"/api/playlist/{tid}.json", params=params)
    assert as_json.status_code == 200 and as_json.headers["content-disposition"].startswith("attachment;")
    assert as_json.json() == ids
    assert client.get("/api/playlist/no-such-track.m3u8").status_code == 404
    assert client.get(f"/api/playlist/{tid}.exe").status_code == 404
    assert client.get(f"/api/playlist/{tid}.m3u8", params={"k": 0}).status_code == 422


def test_m3u8_labels_stay_on_one_line() -> None:
    from mixtape.search.app import m3u8_text

    text = m3u8_text("a\nb", [{"track_id": "t", "title": "x\n#EXTM3U", "artist_name": "y", "duration": None}], ["p\nq"])
    assert text.splitlines() == ["#EXTM3U", "#PLAYLIST:a b", "#EXTINF:-1,y - x #EXTM3U", "p q"]


PNG = b"\x89PNG\r\n\x1a\n"


def test_spectrogram_from_the_feature_store(client: TestClient, tiny_index: SimilarIndex, tiny_store) -> None:
    tid = tiny_index.tracks.track_ids[3]
    r = client.get(f"/api/spectrogram/{tid}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content.startswith(PNG)
    assert r.headers["x-spectrogram-source"] == "store"
    frames = tiny_store.frames(tiny_store.index(tid))
    mel = tiny_store.mel_config
    assert float(r.headers["x-spectrogram-seconds"]) == pytest.approx(len(frames) * mel.hop_size / mel.sample_rate)
    from PIL import Image

    image = Image.open(io.BytesIO(r.content))
    assert image.size == (min(len(frames), 1200), mel.n_mels)
    assert client.get(f"/api/spectrogram/{tid}").content == r.content  # cached
    assert client.get("/api/spectrogram/no-such-track").status_code == 404


def test_spectrogram_from_audio_when_no_store_is_reachable(tiny_index: SimilarIndex, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    shutil.copytree(tiny_index.path, folder)
    meta = json.loads((folder / "index.json").read_text())
    meta["embeddings"]["path"] = str(tmp_path / "moved-away")
    (folder / "index.json").write_text(json.dumps(meta))
    client = TestClient(create_app(folder, ServeConfig(spectrogram_seconds=2.0, spectrogram_width=50)))
    tid = tiny_index.tracks.track_ids[3]
    r = client.get(f"/api/spectrogram/{tid}")
    assert r.status_code == 200 and r.content.startswith(PNG) and r.headers["x-spectrogram-source"] == "audio"
    assert float(r.headers["x-spectrogram-seconds"]) == pytest.approx(2.0)
    from PIL import Image

    assert Image.open(io.BytesIO(r.content)).size[0] == 50


def test_serve_command_reads_a_tags_table(
    tiny_world, tiny_index: SimilarIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import uvicorn

    from mixtape.cli import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    assert main(["serve", "--index", str(tiny_index.path), "--tags", str(tiny_world.tags)]) == 0
    assert TestClient(seen["app"]).get("/api/info").json()["tags"] == "table"
    bad = _write(tmp_path / "bad.tsv", f"track_id\ttag\n{tiny_index.tracks.track_ids[0]}\ta\tb\n")
    assert main(["serve", "--index", str(tiny_index.path), "--tags", str(bad)]) != 0
    assert "line 2: 3 cells" in capsys.readouterr().err
