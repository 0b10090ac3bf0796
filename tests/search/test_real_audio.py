"""Real recordings (../shared/data/real-audio, mp3 and ogg): embedded with an encoder briefly trained
on the tiny world (a few contrastive steps on playlist positives), indexed, and queried with a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_data

from mixtape.search import Embeddings, SimilarIndex, build_index, embed_collection, load_query_encoder, similar_to_audio


@pytest.fixture(scope="module")
def world_checkpoint(tiny_world, tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mixtape.pairs import run_pairs
    from mixtape.training.config import PretrainConfig
    from mixtape.training.run import pretrain

    shared_data("real-audio")  # skip before training when the recordings are absent
    root = tmp_path_factory.mktemp("world-model")
    run_pairs(
        tiny_world.tracks, root / "pairs", "playlist", playlists=[tiny_world.playlists], heldout=[tiny_world.heldout]
    )
    config = PretrainConfig.model_validate(
        {
            "data": {
                "store": str(tiny_store.path),
                "positives": str(root / "pairs"),
                "batch_size": 8,
                "patch_frames": 64,
                "workers": 0,
            },
            "model": {"backbone": "small", "backbone_options": {"channels": [8, 16, 32, 64]}, "projection_dim": 32},
            "trainer": {
                "max_steps": 10,
                "checkpoint_every": 10,
                "log_every": 5,
                "accelerator": "cpu",
                "devices": 1,
                "precision": "32-true",
                "seed": 0,
            },
            "out": str(root / "run"),
        }
    )
    return pretrain(config).checkpoint


def test_real_recordings_are_indexed_and_queried(world_checkpoint: Path, tmp_path: Path) -> None:
    audio = shared_data("real-audio")
    files = sorted(p for p in audio.rglob("*") if p.suffix in (".mp3", ".ogg"))
    report = embed_collection(world_checkpoint, tmp_path / "emb", audio=audio, workers=2)
    emb = Embeddings.open(tmp_path / "emb")
    assert len(emb) + len(report.failed) == len(files) and len(emb) >= len(files) - 2
    assert all(
        tid.endswith((".mp3", ".ogg")) for tid in emb.tracks.track_ids
    )  # the .txt/.csv beside them are not audio
    assert emb.encoder_info["source"] == str(world_checkpoint)
    build_index(emb.path, tmp_path / "index")
    index = SimilarIndex.open(tmp_path / "index")
    query = next(p for p in files if "Vibe_Ace" in p.name)
    result = similar_to_audio(index, load_query_encoder(index), query, k=5)
    top = result.neighbours[0]
    assert top.track.track_id == query.relative_to(audio).as_posix() and top.score > 0.999
    assert len(result.neighbours) == 5 and all(n.score <= top.score + 1e-6 for n in result.neighbours)
    assert result.query["duration"] > 10
