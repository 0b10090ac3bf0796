"""Search faults: a query encoder of another model, bad query parameters and out-of-range audio on the
web API (4xx JSON with a message, and the server keeps serving)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient

from mixtape.cli import main
from mixtape.search import SimilarIndex, create_app


def _wav(samples: np.ndarray, subtype: str = "FLOAT") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_a_query_encoder_of_another_model_is_refused(
    tiny_index: SimilarIndex, tiny_store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(7)  # same architecture and mel settings as the index's encoder, other weights
    other = tmp_path / "other"
    export_safetensors(
        Encoder("small", channels=(8, 16, 32, 64)),
        other,
        metadata={"mel": tiny_store.mel_config.model_dump(mode="json")},
    )
    query = tiny_index.tracks.paths[0]
    assert main(["search", "--index", str(tiny_index.path), "--audio", query, "--checkpoint", str(other)]) == 2
    err = capsys.readouterr().err
    assert (
        f"mixtape search: error: encoder {other} has other weights than the one the index {tiny_index.path} "
        "was built with" in err
    )
    assert "re-embed the collection" in err


def test_bad_query_parameters_are_4xx_json_and_the_server_keeps_serving(tiny_index: SimilarIndex) -> None:
    client = TestClient(create_app(tiny_index))
    tid = tiny_index.tracks.track_ids[3]
    for params in ({"k": 0}, {"k": 101}, {"k": "ten"}, {"min_score": 2.0}, {"rerank": "magic"}):
        r = client.get(f"/api/similar/{tid}", params=params)
        assert r.status_code == 422, params
        detail = r.json()["detail"]
        assert detail and all(d["msg"] and d["loc"][-1] in params for d in detail), detail
    r = client.get("/api/similar/no-such-track")
    assert r.status_code == 404 and "not in the index" in r.json()["detail"]
    r = client.get("/api/audio/no-such-track")
    assert r.status_code == 404 and "not in the index" in r.json()["detail"]
    assert client.get(f"/api/similar/{tid}", params={"k": 3}).status_code == 200  # still serving


def test_an_upload_of_absurd_amplitude_is_refused_not_turned_into_nan(tiny_index: SimilarIndex) -> None:
    client = TestClient(create_app(tiny_index))
    loud = (np.random.default_rng(0).standard_normal(3 * 16000) * 1e30).astype(np.float32)
    r = client.post("/api/similar", files={"file": ("loud.wav", _wav(loud), "audio/wav")})
    assert r.status_code == 422 and r.json()["detail"].startswith(
        "loud.wav: cannot be used as a query: amplitude out of range: peak "
    )
    clipped = np.clip(np.random.default_rng(1).standard_normal(3 * 16000) * 20, -1, 1).astype(np.float32)
    ok = client.post(
        "/api/similar", params={"k": 3}, files={"file": ("clipped.wav", _wav(clipped, "PCM_16"), "audio/wav")}
    )
    assert ok.status_code == 200 and np.isfinite([n["score"] for n in ok.json()["neighbours"]]).all()
