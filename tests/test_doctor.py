"""`mixtape doctor`: a healthy run folder is healthy; each fault is named with its file and its fix.

One run folder is built with the real stages on the tiny world (pairs, a 4-step pretrain of the
narrow `small` backbone, export, embeddings, index; the session's feature store), then every fault
test damages a copy of the part it needs and runs the command.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from training.run_helpers import config_dict

from mixtape.cli import main


@dataclass
class Run:
    root: Path
    store: Path
    pairs: Path
    pretrain: Path
    export: Path
    search: Path
    world: object


def _pretrain(store: Path, pairs: Path, out: Path, steps: int, **model: object) -> Path:
    from mixtape.training.config import PretrainConfig
    from mixtape.training.run import pretrain

    data = config_dict(store, pairs, out)
    data["trainer"].update(max_steps=steps, checkpoint_every=2, trace_batches=False, log_every=1)
    data["model"].update(model)
    pretrain(PretrainConfig.model_validate(data))
    return out


@pytest.fixture(scope="module")
def run(tiny_world, tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Run:
    from mixtape.pairs import run_pairs
    from mixtape.search import build_index, embed_collection
    from mixtape.training.export import export_checkpoint

    root = tmp_path_factory.mktemp("doctor") / "run"
    pairs = root / "pairs"
    run_pairs(tiny_world.tracks, pairs, "cooc-topk", playlists=[tiny_world.playlists], heldout=[tiny_world.heldout])
    pretrain = _pretrain(tiny_store.path, pairs, root / "pretrain", steps=4)
    ckpt = pretrain / "checkpoints" / "last.ckpt"
    export_checkpoint(ckpt, root / "export", onnx=False)
    embed_collection(ckpt, root / "search", features=tiny_store.path, tracks=tiny_world.tracks)
    build_index(root / "search", root / "search" / "index")
    return Run(root, tiny_store.path, pairs, pretrain, root / "export", root / "search", tiny_world)


def doctor(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["doctor", *map(str, args)])
    return code, capsys.readouterr().out


def problems(out: str) -> list[str]:
    """Each PROBLEM line joined with its fix line."""
    lines = out.splitlines()
    return [
        line + "\n" + (lines[i + 1] if i + 1 < len(lines) else "")
        for i, line in enumerate(lines)
        if line.startswith("PROBLEM ")
    ]


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- healthy -------------------------------------------------------------------------------------


def test_a_healthy_run_folder_is_healthy(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys, run.root, run.store)
    assert code == 0, out
    assert "PROBLEM" not in out and "WARNING" not in out
    for folder, kind in (
        (run.store, "feature store"),
        (run.pairs, "positives"),
        (run.pretrain, "pretrain run"),
        (run.export, "export"),
        (run.search, "embeddings"),
        (run.search / "index", "search index"),
    ):
        assert f"ok {folder} ({kind})" in out
    assert out.rstrip().endswith(
        "doctor: 6 folders checked (export, positives, pretrain run, embeddings, search index, feature "
        "store): 0 problems, 0 warnings"
    )


def test_result_json_records_the_data_and_the_final_checkpoint(run: Run) -> None:
    from mixtape.audio import FeatureStore, store_fingerprint
    from mixtape.fileio import file_checksum

    result = json.loads((run.pretrain / "result.json").read_text())
    assert result["data"]["store"]["fingerprint"] == store_fingerprint(FeatureStore.open(run.store))
    assert result["data"]["positives"]["metadata_checksum"] == file_checksum(run.pairs / "positives.json")
    assert result["checkpoint_checksum"] == file_checksum(run.pretrain / "checkpoints" / "last.ckpt")


def test_a_folder_with_nothing_recognisable_says_what_doctor_looks_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code = main(["doctor", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"mixtape doctor: error: no mixtape folder found in {tmp_path}; doctor looks for folders holding "
        "store.json (feature store)" in err
    )
    assert "config.yaml beside checkpoints/ (pretrain run)" in err


# --- feature store -------------------------------------------------------------------------------


def test_flipped_bytes_in_frames_are_found(run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixtape.audio import FeatureStore

    store = copy(run.store, tmp_path / "store")
    opened = FeatureStore.open(store)
    victim = 3
    frames = store / "frames.f16"
    data = bytearray(frames.read_bytes())
    data[int(opened.offsets[victim]) * opened.n_mels * 2 + 10] ^= 0xFF
    frames.write_bytes(bytes(data))
    code, out = doctor(capsys, store)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {frames}: the frames of 1 track(s) no longer match the checksums recorded when they were written "
            f"({opened.track_ids[victim]}): the file was modified after extraction or the disk damaged it\n"
            f"  fix: delete {store} and extract it again: `mixtape features --tracks TRACKS_TABLE --out "
            f"{store}` (the frames cannot be repaired in place)"
        )
    ]
    code, out = doctor(capsys, "--quick", store)  # --quick does not hash frames
    assert code == 0 and f"ok {store} (feature store)" in out


def test_truncated_frames_are_found(run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = copy(run.store, tmp_path / "store")
    frames = store / "frames.f16"
    size = frames.stat().st_size
    with open(frames, "r+b") as f:
        f.truncate(size - 1000)
    code, out = doctor(capsys, store)
    assert code == 1
    (found,) = problems(out)
    assert found.startswith(f"PROBLEM {frames}: frames file is {size - 1000} bytes but the index needs {size} bytes")
    assert f"fix: delete {store} and extract it again: `mixtape features --tracks TRACKS_TABLE --out {store}`" in found


def test_changed_source_audio_is_found_and_failures_are_a_warning(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.audio import extract_features
    from mixtape.catalog import TrackRecord, read_tracks

    records = read_tracks(run.world.tracks).records[:3]  # type: ignore[attr-defined]
    audio = tmp_path / "audio"
    audio.mkdir()
    mine = [TrackRecord(r.track_id, Path(shutil.copy(r.path, audio / r.path.name))) for r in records]
    (audio / "broken.wav").write_bytes(b"not audio")
    store = tmp_path / "store"
    extract_features([*mine, TrackRecord("broken", audio / "broken.wav")], store, workers=0)
    victim = mine[1].path
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0x55  # same size, other content, new mtime
    victim.write_bytes(bytes(data))
    code, out = doctor(capsys, store)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {store}: the source audio of 1 track(s) changed since its features were extracted: "
            f"{victim} (track {mine[1].track_id}: content changed)\n"
            f"  fix: re-run `mixtape features --tracks TRACKS_TABLE --out {store}`: it recomputes exactly the "
            "tracks whose audio changed"
        )
    ]
    assert (
        f"WARNING {store / 'failures.tsv'}: 1 track(s) failed extraction and are not in the store, e.g. broken: " in out
    )
    assert out.rstrip().endswith("doctor: 1 folder checked (feature store): 1 problem, 1 warning")


# --- positives -----------------------------------------------------------------------------------


def test_a_playlist_file_edited_after_pairs_is_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.pairs import run_pairs

    world = run.world
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    tracks = Path(shutil.copy(world.tracks, catalogue / "tracks.csv"))  # type: ignore[attr-defined]
    playlists = copy(world.playlists, catalogue / "playlists")  # type: ignore[attr-defined]
    pairs = tmp_path / "pairs"
    run_pairs(tracks, pairs, "cooc-topk", playlists=[playlists], k=5)
    (slice_file,) = sorted(playlists.glob("*.json"))
    doc = json.loads(slice_file.read_text())
    doc["playlists"] = doc["playlists"][:-1]
    slice_file.write_text(json.dumps(doc))
    code, out = doctor(capsys, pairs)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {slice_file}: the catalogue changed since the pairs in {pairs} were computed (this "
            "playlists file was edited)\n"
            f"  fix: re-run `mixtape pairs --tracks {tracks} --playlists {slice_file} --strategy cooc-topk "
            f"--k 5 --norm count --min-count 1 --out {pairs}`"
        )
    ]


def test_a_replaced_positives_array_is_found_by_doctor_and_by_the_loader(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.errors import MixtapeError
    from mixtape.pairs import Positives

    pairs = copy(run.pairs, tmp_path / "pairs")
    anchors = np.load(pairs / "anchors.npy")
    np.save(pairs / "anchors.npy", anchors[::-1].copy())
    code, out = doctor(capsys, pairs)
    assert code == 1
    (found,) = problems(out)
    assert found.startswith(
        f"PROBLEM {pairs / 'anchors.npy'}: changed since it was written\n  fix: rebuild the positives: "
        "`mixtape pairs --tracks "
    )
    assert f"--strategy cooc-topk --k 10 --norm count --min-count 1 --out {pairs}`" in found
    with pytest.raises(MixtapeError, match=r"anchors\.npy: changed since it was written; re-run `mixtape pairs`"):
        Positives.load(pairs)


# --- pretrain run --------------------------------------------------------------------------------


def test_an_edited_model_section_of_config_yaml_is_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy(run.pretrain, tmp_path / "pretrain")
    config = folder / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["model"]["projection_dim"] = 64
    config.write_text(yaml.safe_dump(data))
    code, out = doctor(capsys, folder)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {config}: its model section differs from the model the checkpoints hold "
            "(model.projection_dim: checkpoint 32, config.yaml 64): it was edited after training\n"
            "  fix: set the model section back to what the checkpoints hold, or train the new model in a new "
            f"folder: `mixtape pretrain --config {config} --out NEW_RUN`"
        )
    ]


def test_a_checkpoint_of_another_model_is_found(run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _pretrain(run.store, run.pairs, tmp_path / "other", steps=2, projection_dim=16)
    folder = copy(run.pretrain, tmp_path / "pretrain")
    foreign = folder / "checkpoints" / "step0000002.ckpt"
    shutil.copy(other / "checkpoints" / "step0000002.ckpt", foreign)
    code, out = doctor(capsys, folder)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {foreign}: holds another model than config.yaml and the run's other checkpoints "
            "(model.projection_dim: checkpoint 16, config.yaml 32): "
            "it does not belong to this run\n  fix: remove it (or move it back to the run folder it came from)"
        )
    ]


def test_a_store_with_other_mel_settings_than_the_model_is_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = copy(run.store, tmp_path / "store")
    settings = json.loads((store / "store.json").read_text())
    settings["mel"]["fmax"] = 7000.0
    (store / "store.json").write_text(json.dumps(settings))
    folder = copy(run.pretrain, tmp_path / "pretrain")
    config = folder / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["data"]["store"] = str(store)
    config.write_text(yaml.safe_dump(data))
    code, out = doctor(capsys, folder)
    assert code == 1
    found = problems(out)
    assert (
        f"PROBLEM {store}: its log-mel settings differ from those the model in "
        f"{folder / 'checkpoints' / 'last.ckpt'} was trained on (fmax: model 8000.0, store 7000.0)\n"
        f"  fix: set data.store in {config} to a store extracted with the model's settings (or re-extract "
        "this one with them)"
    ) in found
    assert any(f.startswith(f"PROBLEM {store}: changed since the run trained on it") for f in found)


# --- export, embeddings, index -------------------------------------------------------------------


def test_replaced_export_weights_are_found(run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy(run.export, tmp_path / "export")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    code, out = doctor(capsys, folder)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {weights}: checksum differs from the one in config.json (weights replaced or truncated "
            "after export)\n"
            f"  fix: export again: `mixtape export --checkpoint {run.pretrain / 'checkpoints' / 'last.ckpt'} "
            f"--out {folder}`"
        )
    ]


def test_an_edited_tracks_tsv_is_refused_by_embeddings_and_found_by_doctor(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.search import Embeddings, EmbeddingsError

    folder = copy(run.search, tmp_path / "search")
    tracks = folder / "tracks.tsv"
    lines = tracks.read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # two tracks swapped: every vector now names the wrong track
    tracks.write_text("".join(lines))
    with pytest.raises(EmbeddingsError, match=r"tracks\.tsv: changed since the embeddings were written"):
        Embeddings.open(folder)
    code, out = doctor(capsys, folder)
    assert code == 1
    assert (
        f"PROBLEM {tracks}: changed since the embeddings were written (its checksum differs from "
        f"embeddings.json); re-run `mixtape embed` into {folder}" in out
    )


def test_an_index_built_from_other_embeddings_is_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.search import Embeddings, build_index
    from mixtape.search.embeddings import write_embeddings

    folder = copy(run.search, tmp_path / "search")
    index = folder / "index"
    build_index(folder, index, force=True)  # the copy's own index
    emb = Embeddings.open(folder)
    other = np.asarray(emb.vectors)[::-1].copy()
    meta = {k: emb.meta[k] for k in ("encoder", "store", "shard") if k in emb.meta}
    del emb
    write_embeddings(
        folder, [other], len(other), other.shape[1], Embeddings.open(folder).tracks, [], meta
    )  # as `mixtape embed --force` would
    code, out = doctor(capsys, index)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {index}: built from other embeddings than those now in {folder} (they changed since the "
            "index was built)\n"
            f"  fix: rebuild it: `mixtape index {folder} --out {index}`"
        )
    ]


def test_a_replaced_faiss_file_is_refused_at_open_and_found_by_doctor(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.search import SearchIndexError, SimilarIndex

    index = copy(run.search / "index", tmp_path / "index")
    faiss_file = index / "index.faiss"
    data = bytearray(faiss_file.read_bytes())
    data[-4:] = b"\x00\x00\x80\x3f"  # the last stored float becomes 1.0: a readable index with other vectors
    faiss_file.write_bytes(bytes(data))
    with pytest.raises(SearchIndexError, match=r"index\.faiss: changed since the index was built"):
        SimilarIndex.open(index)
    code, out = doctor(capsys, index)
    assert code == 1
    (found,) = problems(out)
    assert found == (
        f"PROBLEM {faiss_file}: changed since the index was built (its checksum differs from the one in index.json)\n"
        f"  fix: rebuild it: `mixtape index {run.search} --out {index}`"
    )


def test_a_tagger_of_another_encoder_than_its_embeddings_is_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.evaluation import ProbeConfig, load_tag_dataset
    from mixtape.evaluation.tagger import train_tagger
    from mixtape.search import Embeddings
    from mixtape.search.embeddings import write_embeddings

    folder = copy(run.search, tmp_path / "search")
    dataset = load_tag_dataset("mtg-jamendo", splits=run.world.splits, subset="genre")  # type: ignore[attr-defined]
    tagger = tmp_path / "tagger"
    train_tagger(folder, dataset, tagger, ProbeConfig(max_epochs=2, patience=1))
    code, out = doctor(capsys, tagger)
    assert code == 0 and f"ok {tagger} (tagger)" in out
    emb = Embeddings.open(folder)
    vectors = np.asarray(emb.vectors).copy()
    meta = {
        "encoder": {**emb.encoder_info, "fingerprint": "0" * 32},
        "store": emb.meta["store"],
        "shard": emb.meta["shard"],
    }
    write_embeddings(
        folder, [vectors], len(vectors), vectors.shape[1], emb.tracks, [], meta
    )  # re-embedded with another encoder
    code, out = doctor(capsys, tagger)
    assert code == 1
    assert problems(out) == [
        (
            f"PROBLEM {tagger}: trained on embeddings of another encoder than those now in {folder}: its tags "
            "would not mean anything for them\n"
            f"  fix: train it again: `mixtape tagger --embeddings {folder} --out {tagger} ...`"
        )
    ]


def test_an_experiment_folder_reports_failed_steps_as_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.demo import DEFAULT_CONFIG

    shutil.copy(DEFAULT_CONFIG, tmp_path / "experiment.yaml")
    (tmp_path / "failures.json").write_text(json.dumps(["pretrain self · small · seed 0: loss became nan"]))
    code, out = doctor(capsys, tmp_path)
    assert code == 0
    assert (
        f"WARNING {tmp_path / 'failures.json'}: 1 step(s) failed in the last run: pretrain self · small · "
        "seed 0: loss became nan" in out
    )
    assert f"WARNING {tmp_path}: has no results.csv yet: the experiment has not finished" in out
    assert out.rstrip().endswith("doctor: 1 folder checked (experiment): 0 problems, 2 warnings")


def test_positives_pairing_tracks_the_store_lacks_are_found(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.audio import extract_features
    from mixtape.catalog import read_tracks

    store = tmp_path / "store"
    extract_features(read_tracks(run.world.tracks).records[:4], store, workers=0)  # type: ignore[attr-defined]
    folder = copy(run.pretrain, tmp_path / "pretrain")
    config = folder / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["data"]["store"] = str(store)
    config.write_text(yaml.safe_dump(data))
    code, out = doctor(capsys, folder)
    assert code == 1
    found = [f for f in problems(out) if f.startswith(f"PROBLEM {run.pairs}: ")]
    assert len(found) == 1
    assert f"tracks these positives pair are not in the feature store {store}, e.g. " in found[0]
    assert found[0].endswith(
        "  fix: extract features for the tracks table the pairs were built from: `mixtape features --tracks "
        f"{run.world.tracks} --out {store}`"  # type: ignore[attr-defined]
    )


def test_a_problem_found_by_many_folders_is_listed_once_with_the_folders_that_found_it_again() -> None:
    from mixtape.doctor import DoctorReport, FolderCheck

    runs = [FolderCheck(Path(f"exp/runs/seed{i}"), "pretrain run") for i in range(7)]
    for run in runs:
        run.problem(
            Path("exp/features"),
            "the feature store this run trains on cannot be opened",
            f"set data.store in {run.path}/config.yaml",
        )
    runs[3].warning(Path("exp/runs/seed3/x"), "something else")
    report = DoctorReport(runs)
    text = report.render()
    assert text.count("PROBLEM exp/features: the feature store this run trains on cannot be opened") == 1
    assert "fix: set data.store in exp/runs/seed0/config.yaml" in text
    assert (
        "(found again by 6 more folders, the same fix applies there: exp/runs/seed1, exp/runs/seed2, "
        "exp/runs/seed3, exp/runs/seed4, exp/runs/seed5 and 1 more)" in text
    )
    assert "WARNING exp/runs/seed3/x: something else" in text
    assert (report.problems, report.warnings, report.exit_code) == (1, 1, 1)
    assert text.splitlines()[-1] == "doctor: 7 folders checked (7 pretrain runs): 1 problem, 1 warning"


def test_a_relative_path_that_is_not_found_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixtape.doctor import _relative_hint

    monkeypatch.chdir(tmp_path)
    assert _relative_hint(Path("/abs/store")) == ""
    assert f"read from the current folder {tmp_path}" in _relative_hint(Path("runs/demo/features"))
