"""Probe, fine-tuning and similarity on the tiny world with a randomly initialised `small` encoder.

The encoder is untrained, so only the plumbing is judged: every metric is finite and in range, the
outputs are written, and bad input through the CLI gives exit code 2 and a message.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mixtape.cli import main
from mixtape.evaluation import similarity_task
from mixtape.models import Encoder, embed_tracks
from mixtape.models.bundle import MelMismatchError
from mixtape.models.export import export_safetensors


def _export(folder: Path, mel: dict) -> Path:
    torch.manual_seed(0)
    export_safetensors(Encoder("small"), folder, metadata={"mel": mel})
    return folder


@pytest.fixture(scope="module")
def encoder_dir(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("enc") / "small", tiny_store.mel_config.model_dump(mode="json"))


def _in_unit(x: float) -> bool:
    return np.isfinite(x) and 0.0 <= x <= 1.0


def test_embed_tracks_on_the_store(tiny_store) -> None:
    from mixtape.audio import PatchReader

    torch.manual_seed(0)
    enc = Encoder("small")
    reader = PatchReader(tiny_store)
    emb = embed_tracks(enc, reader, np.arange(20))
    assert emb.shape == (20, enc.embedding_dim) and np.isfinite(emb).all()
    with torch.no_grad():
        want = enc.eval()(torch.from_numpy(reader.track_patches(5))).mean(dim=0).numpy()
    assert np.allclose(emb[5], want, atol=1e-4)


def test_probe_cli_on_the_tiny_world(
    tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe"
    argv = [
        "probe",
        "--encoder",
        str(encoder_dir),
        "--features",
        str(tiny_store.path),
        "--splits",
        str(tiny_world.splits),
    ]
    rc = main([*argv, "--subset", "genre", "--max-epochs", "4", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ROC-AUC" in printed and "PR-AUC" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    m = metrics["metrics"]
    assert _in_unit(m["roc_auc"]) and _in_unit(m["pr_auc"]) and m["epochs"] <= 4 and m["tags_evaluated"] >= 2
    assert metrics["encoder"] == str(encoder_dir) and metrics["config"]["max_epochs"] == 4
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) - 1 == m["test_tracks"] and all(_in_unit(float(v)) for v in rows[1][1:])
    per_tag = (out / "per_tag.csv").read_text().splitlines()
    assert per_tag[0] == "tag,positives,negatives,roc_auc,pr_auc,excluded" and len(per_tag) - 1 == len(rows[0]) - 1


def test_finetune_cli_on_the_tiny_world(tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    argv = [
        "finetune",
        "--encoder",
        str(encoder_dir),
        "--features",
        str(tiny_store.path),
        "--splits",
        str(tiny_world.splits),
        "--subset",
        "moodtheme",
    ]
    assert main([*argv, "--max-epochs", "1", "--batch-size", "16", "--encoder-lr", "1e-5", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    m = metrics["metrics"]
    assert metrics["task"] == "finetune" and metrics["config"]["encoder_lr"] == 1e-5
    assert _in_unit(m["roc_auc"]) and _in_unit(m["pr_auc"]) and m["epochs"] == 1
    assert len((out / "predictions.csv").read_text().splitlines()) - 1 == m["test_tracks"]


def test_similarity_cli_on_the_tiny_world(tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    argv = [
        "similarity",
        "--encoder",
        str(encoder_dir),
        "--features",
        str(tiny_store.path),
        "--tracks",
        str(tiny_world.tracks),
    ]
    rc = main([*argv, "--heldout", str(tiny_world.heldout), "--triplets", str(tiny_world.triplets), "--out", str(out)])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    for key in ("triplet_acc", "ndcg@10", "map@10", "p@10", "ndcg@10_artist_filtered", "artist_p@10", "ndcg@10_mp"):
        assert _in_unit(m[key]), key
    assert np.isfinite(m["hubness"]) and np.isfinite(m["hubness_mp"])
    assert m["pool_tracks"] == len(tiny_store) and m["retrieval_queries"] > 0 and m["triplets_evaluated"] > 0
    per_query = (out / "per_query.csv").read_text().splitlines()
    assert (
        per_query[0].startswith("track_id,relevant,ndcg@10,ap@10,p@10") and len(per_query) - 1 == m["retrieval_queries"]
    )


def test_similarity_with_a_triplet_naming_an_unknown_track(
    tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path
) -> None:
    trip = tmp_path / "triplets.csv"
    lines = tiny_world.triplets.read_text().splitlines()[:6]
    trip.write_text("\n".join([*lines, "track_999999,track_000001,track_000002,3,1"]) + "\n")
    result = similarity_task(encoder_dir, tiny_store.path, tiny_world.tracks, triplets=trip)
    assert result.metrics["triplets_skipped_unknown_track"] == 1
    assert result.metrics["triplets_evaluated"] + result.metrics["triplets_tied_votes"] == 5


def test_mel_mismatch_refused_through_the_cli(
    tiny_world, tiny_store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mel = tiny_store.mel_config.model_dump(mode="json") | {"hop_size": 512}
    other = _export(tmp_path / "other", mel)
    argv = [
        "probe",
        "--encoder",
        str(other),
        "--features",
        str(tiny_store.path),
        "--splits",
        str(tiny_world.splits),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(other) in err and str(tiny_store.path) in err and "hop_size: encoder 512, store 256" in err
    with pytest.raises(MelMismatchError):
        similarity_task(other, tiny_store.path)


def test_tag_file_matching_no_store_track_through_the_cli(
    tiny_store, encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text("track_id,tags,split\nfoo,rock,train\nbar,jazz,validation\nbaz,rock,test\n")
    argv = [
        "probe",
        "--encoder",
        str(encoder_dir),
        "--features",
        str(tiny_store.path),
        "--dataset",
        "csv",
        "--tags",
        str(tags),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert "none of the 3 tracks" in capsys.readouterr().err
