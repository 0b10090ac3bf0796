"""`mixtape probe` and `mixtape similarity` on vectors that mixtape did not make (`--embeddings`).

The vectors are random numbers named by the tiny world's track ids, saved the two ways another model's
user would write them: an ``.npz`` of ``ids`` and ``embeddings``, and a folder of ``vectors.npy`` and a
``tracks.tsv`` with only a ``track_id`` column. A few tracks have no vector, to check that they are
reported as skipped. Only the plumbing is judged (which tracks are scored, what is reported, that the
encoder path and the vectors path compute the same thing), never whether a score is good.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mixtape.catalog import read_tracks
from mixtape.cli import main

DIM = 12
DROPPED = 3  # tracks of the world without a vector


def _split_ids(tiny_world, split: str, subset: str = "genre") -> list[str]:
    with open(tiny_world.splits / f"autotagging_{subset}-{split}.tsv", newline="", encoding="utf-8") as f:
        return [row[0] for row in list(csv.reader(f, delimiter="\t"))[1:] if row]


@pytest.fixture(scope="module")
def world_ids(tiny_world) -> list[str]:
    return [r.track_id for r in read_tracks(tiny_world.tracks).records]


@pytest.fixture(scope="module")
def dropped(tiny_world) -> list[str]:
    """One test track, one training track and one more: tracks the outside model has no vector for."""
    test, train = _split_ids(tiny_world, "test"), _split_ids(tiny_world, "train")
    return [test[0], train[0], train[1]]


@pytest.fixture(scope="module")
def outside(world_ids: list[str], dropped: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same random vectors as an .npz (float32) and as a folder (vectors.npy in float64, ids-only tracks.tsv)."""
    root = tmp_path_factory.mktemp("outside")
    ids = [t for t in world_ids if t not in dropped][::-1]  # another order than the world's
    vectors = np.random.default_rng(0).standard_normal((len(ids), DIM)).astype(np.float32)
    npz = root / "clap.npz"
    np.savez(npz, ids=np.array(ids), embeddings=vectors)
    folder = root / "mert"
    folder.mkdir()
    np.save(folder / "vectors.npy", vectors.astype(np.float64))
    (folder / "tracks.tsv").write_text("track_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    return {"npz": npz, "folder": folder}


def _probe(tiny_world, embeddings: Path, out: Path, *extra: str) -> int:
    argv = ["probe", "--embeddings", str(embeddings), "--splits", str(tiny_world.splits), "--subset", "genre"]
    return main([*argv, "--max-epochs", "3", "--out", str(out), *extra])


def test_probe_scores_outside_vectors_and_reports_the_tracks_without_one(
    tiny_world, outside: dict[str, Path], dropped: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = {}
    for form, path in outside.items():
        out = tmp_path / form
        assert _probe(tiny_world, path, out) == 0, form
        printed = capsys.readouterr()
        assert "ROC-AUC" in printed.out and f"{dropped[0]!r}" in printed.err  # the skipped test track is logged
        m = json.loads((out / "metrics.json").read_text())
        assert m["task"] == "probe" and m["embeddings"] == str(path) and m["encoder"] is None
        with open(out / "predictions.csv", newline="") as f:
            rows = list(csv.reader(f))
        test_ids = _split_ids(tiny_world, "test")
        assert [r[0] for r in rows[1:]] == [t for t in test_ids if t not in dropped]  # every test track with a vector
        assert len(rows[0]) - 1 == m["data"]["tags"]  # a column per tag
        with open(out / "missing_features.csv", newline="") as f:
            missing = sorted(tuple(r) for r in list(csv.reader(f))[1:])
        assert missing == sorted([(dropped[0], "test"), (dropped[1], "train"), (dropped[2], "train")])
        assert m["data"]["test_missing_features"] == 1 and m["data"]["train_missing_features"] == 2
        metrics[form] = m["metrics"]
    # the same vectors give the same probe, whichever way they were saved
    assert metrics["npz"] == metrics["folder"]


def _triplet_rows(tiny_world) -> list[list[str]]:
    with open(tiny_world.triplets, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def test_similarity_scores_outside_vectors_on_triplets_and_heldout_playlists(
    tiny_world, outside: dict[str, Path], dropped: list[str], world_ids: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "sim"
    argv = ["similarity", "--embeddings", str(outside["npz"]), "--tracks", str(tiny_world.tracks)]
    argv += ["--heldout", str(tiny_world.heldout), "--triplets", str(tiny_world.triplets), "--out", str(out)]
    assert main(argv) == 0
    saved = json.loads((out / "metrics.json").read_text())
    m = saved["metrics"]
    assert saved["embeddings"] == str(outside["npz"]) and saved["encoder"] is None
    assert m["pool_tracks"] == len(world_ids) - DROPPED
    naming_dropped = sum(1 for row in _triplet_rows(tiny_world) if set(row[:3]) & set(dropped))
    assert m["triplets_skipped_unknown_track"] == naming_dropped
    assert m["triplets_evaluated"] + m["triplets_tied_votes"] == len(_triplet_rows(tiny_world)) - naming_dropped
    assert m["retrieval_queries"] > 0 and "ndcg@10_mp" in m and "ndcg@10_artist_filtered" in m
    assert any(f"{DROPPED} catalogue track(s) have no vectors" in n and repr(dropped[0]) in n for n in saved["notes"])
    with open(out / "per_query.csv", newline="") as f:
        queries = [row[0] for row in list(csv.reader(f))[1:]]
    assert len(queries) == m["retrieval_queries"] and not set(queries) & set(dropped)


def test_similarity_of_an_outside_folder_without_a_tracks_table_pools_every_vector(
    tiny_world, outside: dict[str, Path], world_ids: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "sim"
    argv = ["similarity", "--embeddings", str(outside["folder"]), "--triplets", str(tiny_world.triplets)]
    assert main([*argv, "--mutual-proximity", "none", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())["metrics"]
    assert m["pool_tracks"] == len(world_ids) - DROPPED and m["triplets_evaluated"] > 0
    assert "ndcg@10" not in m and "hubness_mp" not in m  # no held-out playlists; no mutual proximity
    assert not (out / "per_query.csv").exists()


@pytest.fixture(scope="module")
def encoder_dir(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("enc") / "small"
    mel = tiny_store.mel_config.model_dump(mode="json")
    export_safetensors(Encoder("small", channels=(8, 16)), folder, metadata={"mel": mel})
    return folder


def test_an_encoders_own_vectors_score_as_the_encoder_does(
    tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path
) -> None:
    """The vectors path and the encoder path share everything after the track embeddings: fed the
    encoder's own track embeddings, `--embeddings` gives the encoder's metrics."""
    from mixtape.audio import PatchReader
    from mixtape.models import embed_tracks
    from mixtape.models.bundle import EncoderBundle

    enc = EncoderBundle.load(encoder_dir)
    vectors = embed_tracks(enc.encoder, PatchReader(tiny_store), np.arange(len(tiny_store)))
    npz = tmp_path / "own.npz"
    np.savez(npz, ids=np.array(list(tiny_store.track_ids)), embeddings=vectors)
    data = ["--tracks", str(tiny_world.tracks), "--heldout", str(tiny_world.heldout)]
    data += ["--triplets", str(tiny_world.triplets)]
    runs = {
        "encoder": ["--encoder", str(encoder_dir), "--features", str(tiny_store.path)],
        "vectors": ["--embeddings", str(npz)],
    }
    sim, probe = {}, {}
    for name, source in runs.items():
        assert main(["similarity", *source, *data, "--out", str(tmp_path / f"sim-{name}")]) == 0
        sim[name] = json.loads((tmp_path / f"sim-{name}" / "metrics.json").read_text())["metrics"]
        tagging = ["--splits", str(tiny_world.splits), "--subset", "genre", "--max-epochs", "3"]
        assert main(["probe", *source, *tagging, "--out", str(tmp_path / f"probe-{name}")]) == 0
        probe[name] = json.loads((tmp_path / f"probe-{name}" / "metrics.json").read_text())["metrics"]
    assert sim["encoder"].keys() == sim["vectors"].keys()
    for key, value in sim["encoder"].items():
        assert sim["vectors"][key] == pytest.approx(value, abs=1e-5), key
    assert probe["vectors"]["test_tracks"] == probe["encoder"]["test_tracks"]
    assert probe["vectors"]["roc_auc"] == pytest.approx(probe["encoder"]["roc_auc"], abs=1e-3)


def test_embeddings_and_an_encoder_are_exclusive_and_one_is_required(
    tiny_world, tiny_store, outside: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz, out = str(outside["npz"]), str(tmp_path / "o")
    tagging = ["--splits", str(tiny_world.splits), "--out", out]
    store = ["--features", str(tiny_store.path)]
    runs = [
        (["probe", "--embeddings", npz, *store, *tagging], "probe: --embeddings cannot be combined with --features"),
        (
            ["similarity", "--embeddings", npz, "--encoder", "enc", *store, "--out", out],
            "similarity: --embeddings cannot be combined with --encoder and --features",
        ),
        (["probe", *tagging], "probe: give --encoder and --features (a mixtape encoder on a feature store), or"),
        (["probe", "--encoder", "enc", *tagging], "or --embeddings PATH (precomputed vectors of any model)"),
        (["similarity", "--out", out], "or --embeddings PATH (precomputed vectors of any model), or --audio FOLDER"),
        (["finetune", "--embeddings", npz, *tagging], "finetune: --embeddings cannot be fine-tuned"),
        (["finetune", "--encoder", "enc", *tagging], "finetune: give --encoder and --features"),
        (
            ["similarity", "--embeddings", npz, "--audio", str(tmp_path), "--group-by", "artist", "--out", out],
            "similarity: --embeddings cannot be combined with --audio",
        ),
    ]
    for argv, message in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert not Path(out).exists()
    assert "--embeddings" not in _help(["finetune", "--help"], capsys)  # offered by probe only
    assert "--embeddings" in _help(["probe", "--help"], capsys)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return capsys.readouterr().out


def test_vectors_naming_no_track_of_the_data_are_refused_with_the_count(
    tiny_world, world_ids: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.npz"  # another vocabulary of ids, e.g. vectors of another dataset's tracks
    np.savez(other, ids=np.array([f"jamendo-{i}" for i in range(8)]), embeddings=np.ones((8, 4), np.float32))
    out = str(tmp_path / "o")
    runs = [
        (
            ["probe", "--embeddings", str(other), "--splits", str(tiny_world.splits), "--out", out],
            f"{other}: none of its 8 track ids is one of the",
        ),
        (
            ["similarity", "--embeddings", str(other), "--tracks", str(tiny_world.tracks), "--out", out],
            f"none of the catalogue's {len(world_ids)} tracks is in the embeddings {other} (8 tracks; 0 matched)",
        ),
        (
            ["similarity", "--embeddings", str(other), "--triplets", str(tiny_world.triplets), "--out", out],
            f"{tiny_world.triplets}: none of its triplets can be scored: {len(_triplet_rows(tiny_world))} name a "
            "track that is not among the 8 tracks of the pool",
        ),
    ]
    for argv, message in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "0 matched" in err, (argv, err)
    assert not Path(out).exists()


def test_bad_vector_files_are_one_line_errors_naming_the_file(
    tiny_world, world_ids: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every check of the reader reaches the user through each command (the reader's own tests
    cover each problem in detail: tests/search/test_outside_vectors.py)."""
    nan = np.ones((4, 3), np.float32)
    nan[2, 1] = np.nan
    files = {
        "missing.npz": None,
        "nan.npz": (
            world_ids[:4],
            nan,
            f"NaN or Inf (or a value beyond float32's range) in the vector(s) of 1 track(s): {world_ids[2]!r}",
        ),
        "short.npz": (world_ids[:4], np.ones((3, 3), np.float32), "4 track ids for 3 vectors"),
        "twice.npz": ([world_ids[0]] * 2, np.ones((2, 3), np.float32), f"appear more than once: {world_ids[0]!r}"),
        "flat.npz": (world_ids[:4], np.ones(4, np.float32), "vectors of shape [4]; expected a 2-D array"),
        "empty.npz": ([], np.zeros((0, 3), np.float32), "no vectors (an empty set)"),
    }
    for name, content in files.items():
        path = tmp_path / name
        if content is not None:
            np.savez(path, ids=np.array(content[0], dtype=str), embeddings=content[1])
        message = content[2] if content is not None else "not found"
        for argv in (
            ["probe", "--embeddings", str(path), "--splits", str(tiny_world.splits), "--out", str(tmp_path / "o")],
            ["similarity", "--embeddings", str(path), "--out", str(tmp_path / "o")],
            ["index", "--embeddings", str(path), "--out", str(tmp_path / "i")],
        ):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            errors = [line for line in err.splitlines() if line.startswith("mixtape ")]
            assert len(errors) == 1 and "Traceback" not in err, err
            assert errors[0].startswith(f"mixtape {argv[0]}: error: {path}: ") and message in errors[0], (argv, err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "i" / "index.json").exists()


def test_a_folder_written_by_mixtape_embed_is_scored_with_its_encoder_recorded(
    tiny_world, tiny_store, encoder_dir: Path, tmp_path: Path
) -> None:
    emb = tmp_path / "emb"
    store = ["--features", str(tiny_store.path), "--tracks", str(tiny_world.tracks)]
    assert main(["embed", "--checkpoint", str(encoder_dir), *store, "--out", str(emb)]) == 0
    tagging = ["--splits", str(tiny_world.splits), "--max-epochs", "2"]
    assert main(["probe", "--embeddings", str(emb), *tagging, "--out", str(tmp_path / "probe")]) == 0
    probe = json.loads((tmp_path / "probe" / "metrics.json").read_text())
    assert probe["embeddings"] == str(emb) and probe["encoder"] == str(encoder_dir)
    assert not (tmp_path / "probe" / "missing_features.csv").exists()  # every tagged track has a vector
    data = ["--tracks", str(tiny_world.tracks), "--triplets", str(tiny_world.triplets)]
    assert main(["similarity", "--embeddings", str(emb), *data, "--out", str(tmp_path / "sim")]) == 0
    sim = json.loads((tmp_path / "sim" / "metrics.json").read_text())
    assert sim["metrics"]["pool_tracks"] == len(tiny_store) and sim["metrics"]["triplets_skipped_unknown_track"] == 0
