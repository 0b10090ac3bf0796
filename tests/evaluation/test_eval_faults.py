"""Evaluation against what does not fit: tags naming tracks without features, checkpoints of other
models, and an encoder trained on other log-mel settings than the store it is given."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from mixtape.audio import FeatureStore, MelConfig, extract_features
from mixtape.catalog import read_tracks
from mixtape.cli import main
from mixtape.models import Encoder
from mixtape.models.export import export_safetensors

GHOSTS = ["track_900001", "track_900002", "track_900003"]


@pytest.fixture(scope="module")
def encoder96(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `small` encoder exported with the tiny store's settings (96 mel bands)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("enc96") / "small"
    export_safetensors(
        Encoder("small", channels=(8, 16)), folder, metadata={"mel": tiny_store.mel_config.model_dump(mode="json")}
    )
    return folder


@pytest.fixture(scope="module")
def store64(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """A dozen tiny-world tracks extracted with 64 mel bands."""
    out = tmp_path_factory.mktemp("store64") / "features"
    extract_features(read_tracks(tiny_world.tracks).records[:12], out, mel=MelConfig(n_mels=64), workers=0)
    return FeatureStore.open(out)


def test_tags_naming_tracks_without_features_are_listed_and_the_rest_evaluated(
    tiny_world, tiny_store, encoder96: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splits = tmp_path / "splits"
    shutil.copytree(tiny_world.splits, splits)
    for split, ghost in (("train", GHOSTS[0]), ("test", GHOSTS[1]), ("test", GHOSTS[2])):
        path = splits / f"autotagging_genre-{split}.tsv"
        first_row = path.read_text(encoding="utf-8").splitlines()[1].split("\t")
        with open(path, "a", encoding="utf-8") as f:
            f.write("\t".join([ghost, *first_row[1:]]) + "\n")
    out = tmp_path / "probe"
    argv = [
        "probe",
        "--encoder",
        str(encoder96),
        "--features",
        str(tiny_store.path),
        "--splits",
        str(splits),
        "--subset",
        "genre",
    ]
    assert main([*argv, "--max-epochs", "2", "--out", str(out)]) == 0
    with open(out / "missing_features.csv", newline="", encoding="utf-8") as f:
        missing = sorted(tuple(row) for row in csv.reader(f))
    assert missing == sorted([("track_id", "split"), (GHOSTS[0], "train"), (GHOSTS[1], "test"), (GHOSTS[2], "test")])
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["metrics"]["test_tracks"]
        == len(tiny_world.splits.joinpath("autotagging_genre-test.tsv").read_text().splitlines()) - 1
    )
    n_test = metrics["metrics"]["test_tracks"] + 2
    err = capsys.readouterr().err  # the log names the split file, the count and the ids
    assert (
        f"autotagging_genre-test.tsv): 2 of {n_test} tracks have no features in" in err
        and f"'{GHOSTS[1]}', '{GHOSTS[2]}'" in err
    )


def _foreign_checkpoint(path: Path) -> Path:
    """What another Lightning project saves: weights and hyper-parameters, but no mixtape model record."""
    torch.save(
        {
            "epoch": 3,
            "global_step": 300,
            "state_dict": {"net.weight": torch.zeros(4, 4)},
            "hyper_parameters": {"lr": 0.1},
        },
        path,
    )
    return path


def _mismatched_checkpoint(path: Path) -> Path:
    """A mixtape checkpoint record naming the `small` backbone around the weights of a `vggish` one."""
    state = {f"encoder.{k}": v for k, v in Encoder("vggish").state_dict().items()}
    hp = {
        "model": {"backbone": "small", "backbone_options": {}},
        "n_mels": 96,
        "patch_frames": 128,
        "data_info": {"mel": MelConfig().model_dump(mode="json")},
    }
    torch.save({"global_step": 10, "state_dict": state, "hyper_parameters": hp}, path)
    return path


def test_checkpoints_of_other_models_are_refused_by_probe_embed_and_export(
    tiny_world, tiny_store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _foreign_checkpoint(tmp_path / "other-project.ckpt")
    mismatched = _mismatched_checkpoint(tmp_path / "mismatched.ckpt")
    store = str(tiny_store.path)
    for ckpt, message in (
        (foreign, "not a mixtape pre-training checkpoint (no model hyper-parameters)"),
        (mismatched, "encoder weights do not fit backbone 'small'"),
    ):
        runs = {
            "probe": [
                "probe",
                "--encoder",
                str(ckpt),
                "--features",
                store,
                "--splits",
                str(tiny_world.splits),
                "--out",
                str(tmp_path / "p"),
            ],
            "embed": ["embed", "--checkpoint", str(ckpt), "--features", store, "--out", str(tmp_path / "e")],
            "export": ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x")],
        }
        for command, argv in runs.items():
            assert main(argv) == 2, (command, ckpt)
            err = capsys.readouterr().err
            assert f"mixtape {command}: error: {ckpt}: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "e").exists() and not (tmp_path / "x").exists()


def test_an_encoder_of_96_mel_bands_with_a_store_of_64(
    store64: FeatureStore, encoder96: Path, tiny_world, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(store64.path)
    runs = {
        "probe": [
            "probe",
            "--encoder",
            str(encoder96),
            "--features",
            store,
            "--splits",
            str(tiny_world.splits),
            "--out",
            str(tmp_path / "p"),
        ],
        "similarity": ["similarity", "--encoder", str(encoder96), "--features", store, "--out", str(tmp_path / "s")],
        "embed": ["embed", "--checkpoint", str(encoder96), "--features", store, "--out", str(tmp_path / "e")],
    }
    for command, argv in runs.items():
        assert main(argv) == 2, command
        err = capsys.readouterr().err
        assert (
            f"mixtape {command}: error: encoder {encoder96} was trained on log-mel features made with other "
            f"settings than feature store {store}" in err
        )
        assert "n_mels: encoder 96, store 64" in err and "Re-extract the features with the encoder's settings" in err
    assert not (tmp_path / "e").exists()
