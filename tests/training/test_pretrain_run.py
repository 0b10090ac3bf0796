"""End-to-end runs on the tiny world: the run folder, and every bad input refused with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from training.run_helpers import CHECKPOINT_EVERY, MAX_STEPS, config_dict, read_trace

from mixtape.cli import main
from mixtape.models.checkpoint import CheckpointMismatchError
from mixtape.training.data import PairDataError
from mixtape.training.module import TrainingDivergedError
from mixtape.training.run import RunFolderError, pretrain


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_run_folder_holds_config_checkpoints_logs_and_curve(reference_run) -> None:
    run = reference_run.run_dir
    assert reference_run.steps == MAX_STEPS and reference_run.loss is not None and np.isfinite(reference_run.loss)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["backbone"] == "small" and saved["trainer"]["max_steps"] == MAX_STEPS
    periodic = sorted(p.name for p in (run / "checkpoints").glob("step*.ckpt"))
    assert periodic == [f"step{s:07d}.ckpt" for s in range(CHECKPOINT_EVERY, MAX_STEPS + 1, CHECKPOINT_EVERY)]
    assert _step(run / "checkpoints" / "last.ckpt") == MAX_STEPS  # saved at the end, between periodic saves
    header = (run / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/acc", "train/lr", "train/samples_per_s"} <= set(header)
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert (run / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (segment,) = read_trace(run / "trace" / "batches-rank0.tsv")
    assert [s for s, _ in segment] == list(range(1, MAX_STEPS + 1))


def test_batches_never_repeat_a_track(reference_run) -> None:
    for _, ids in read_trace(reference_run.run_dir / "trace" / "batches-rank0.tsv")[0]:
        anchors = ids.split(",")
        assert len(anchors) == 8 == len(set(anchors))


def test_existing_run_needs_resume(reference_run, make_config) -> None:
    with pytest.raises(RunFolderError, match="--resume"):
        pretrain(make_config(reference_run.run_dir))


def test_resume_refuses_a_checkpoint_of_another_backbone(reference_run, make_config, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference_run.run_dir / "checkpoints", run / "checkpoints")
    with pytest.raises(CheckpointMismatchError, match=r"holds a 'small' backbone but the config asks for 'vggish'"):
        pretrain(make_config(run, **{"model.backbone": "vggish", "model.backbone_options": {}}), resume=True)


def test_positives_that_do_not_match_the_store_are_refused(tiny_pairs, make_config, tmp_path: Path) -> None:
    from mixtape.pairs import Positives

    positives = Positives.load(tiny_pairs)
    renamed = positives.track_ids.copy()
    renamed[positives.anchors[:3]] = ["ghost-1", "ghost-2", "ghost-3"]
    Positives(positives.strategy, renamed, positives.anchors, positives.hops, positives.params).save(tmp_path / "pairs")
    with pytest.raises(PairDataError, match=r"3 of the \d+ tracks they pair are not in the store .*'ghost-1'"):
        pretrain(make_config(tmp_path / "run", **{"data.positives": str(tmp_path / "pairs")}))


def test_a_store_without_usable_tracks_is_refused(make_config, tmp_path: Path) -> None:
    from mixtape.audio import extract_features
    from mixtape.catalog import read_tracks

    (tmp_path / "bad.wav").write_text("not audio")
    (tmp_path / "tracks.csv").write_text("track_id,path\nt1,bad.wav\n")
    extract_features(read_tracks(tmp_path / "tracks.csv").records, tmp_path / "features", workers=1)
    with pytest.raises(PairDataError, match=r"holds no usable tracks; 1 track\(s\) failed extraction"):
        pretrain(make_config(tmp_path / "run", **{"data.store": str(tmp_path / "features")}))


def test_batch_larger_than_the_anchors_is_refused(make_config, tmp_path: Path) -> None:
    with pytest.raises(PairDataError, match=r"batch size 5000 is larger than the \d+ anchors of strategy 'cooc-topk'"):
        pretrain(make_config(tmp_path / "run", **{"data.batch_size": 5000}))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixtape.training.module as module

    real = module.contrastive_loss
    calls = {"n": 0}

    def diverging(scores: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
        calls["n"] += 1
        loss = real(scores, symmetric=symmetric)
        return loss * float("nan") if calls["n"] == 7 else loss

    monkeypatch.setattr(module, "contrastive_loss", diverging)
    run = tmp_path / "run"
    with pytest.raises(
        TrainingDivergedError, match=r"loss became nan at step 7 .*\n.*last good checkpoint is .*last\.ckpt"
    ):
        pretrain(make_config(run, **{"trainer.max_steps": 10, "trainer.checkpoint_every": 3}))
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())


def test_cli_names_an_unknown_key_and_a_wrong_type(
    tiny_store, tiny_pairs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config_dict(tiny_store.path, tiny_pairs, tmp_path / "run")
    data["trainer"]["max_stpes"] = 5
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(data))
    assert main(["pretrain", "--config", str(tmp_path / "typo.yaml")]) == 2
    assert "unknown key 'trainer.max_stpes'" in capsys.readouterr().err
    del data["trainer"]["max_stpes"]
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(data))
    assert main(["pretrain", "--config", str(tmp_path / "ok.yaml"), "--set", "data.batch_size=lots"]) == 2
    assert "key 'data.batch_size'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_user_error_masked_by_lightning_teardown_is_surfaced() -> None:
    from mixtape.errors import MixtapeError
    from mixtape.training.run import _user_error_behind

    try:
        try:
            raise MixtapeError("pair sampler: cannot form a batch")
        except MixtapeError:
            raise RuntimeError("Please call `iter(combined_loader)` first.")  # noqa: B904  (what Lightning's teardown does)
    except RuntimeError as err:
        assert str(_user_error_behind(err)) == "pair sampler: cannot form a batch"
    plain = RuntimeError("something else")
    assert _user_error_behind(plain) is plain


def test_a_kill_between_the_final_periodic_checkpoint_and_last_ckpt_is_repaired_on_resume(
    reference_run, make_config, tmp_path: Path
) -> None:
    """Lightning writes step{N}.ckpt, then last.ckpt: a kill in between leaves last.ckpt one interval
    behind while the run is complete. The resumed run must bring last.ckpt (what evaluation reads) to
    the final step, not finish at once and leave the older weights there."""
    run = tmp_path / "run"
    shutil.copytree(reference_run.run_dir, run)
    ckpts = run / "checkpoints"
    final = ckpts / f"step{MAX_STEPS:07d}.ckpt"
    earlier = ckpts / f"step{MAX_STEPS - CHECKPOINT_EVERY:07d}.ckpt"
    assert final.is_file() and earlier.is_file()
    shutil.copy(earlier, ckpts / "last.ckpt")
    (run / "result.json").unlink()
    result = pretrain(make_config(run), resume=True)
    assert result.steps == MAX_STEPS
    assert _step(ckpts / "last.ckpt") == MAX_STEPS
    got = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    want = torch.load(final, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_last_ckpt_holds_the_final_step_when_max_steps_is_not_a_multiple_of_checkpoint_every(
    make_config, tmp_path: Path
) -> None:
    result = pretrain(make_config(tmp_path / "run", **{"trainer.max_steps": 6, "trainer.checkpoint_every": 4}))
    assert result.steps == 6 and _step(result.checkpoint) == 6
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step*.ckpt")) == ["step0000004.ckpt"]


def test_tracks_that_failed_extraction_are_left_out_of_pre_training(
    tiny_pairs, tiny_store, make_config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One bad file among the playlists' tracks costs that track, not the run: a paired track missing from
    the store but listed in its failures.tsv is left out (logged); one that is not listed still means the
    store came from another tracks table and is refused."""
    import json

    from mixtape.pairs import Positives
    from mixtape.training.data import prepare_pair_data, tracks_in_use

    store = Path(shutil.copytree(tiny_store.path, tmp_path / "store"))
    positives = Positives.load(tiny_pairs)
    renamed = positives.track_ids.copy()
    renamed[positives.anchors[:2]] = ["broken-1", "broken-2"]
    Positives(positives.strategy, renamed, positives.anchors, positives.hops, positives.params).save(tmp_path / "pairs")
    (store / "failures.tsv").write_text(
        "track_id\tpath\treason\nbroken-1\t/music/a.mp3\ttruncated\nbroken-2\t/music/b.mp3\tnot audio\n"
    )
    cfg = make_config(tmp_path / "run", **{"data.store": str(store), "data.positives": str(tmp_path / "pairs")})
    with caplog.at_level("WARNING", logger="mixtape.training.data"):
        data = prepare_pair_data(cfg.data)
    assert "2 of the" in caplog.text and "failed feature extraction" in caplog.text and "'broken-1'" in caplog.text
    assert (data.store_rows[tracks_in_use(data.positives)] >= 0).all()
    assert data.n_anchors == len(data.positives.anchors) <= len(positives.anchors) - 2
    pretrain(make_config(tmp_path / "run", **{"data.store": str(store), "data.positives": str(tmp_path / "pairs")}))
    assert json.loads((tmp_path / "run" / "result.json").read_text())

    (store / "failures.tsv").write_text("track_id\tpath\treason\nbroken-1\t/music/a.mp3\ttruncated\n")
    with pytest.raises(PairDataError, match=r"1 of the \d+ tracks they pair are not in the store .* nor among its"):
        prepare_pair_data(cfg.data)


def test_every_checkpoint_is_written_after_its_steps_are_traced(make_config, tmp_path: Path, monkeypatch) -> None:
    """A kill between a checkpoint and the trace line of its step must not leave a saved step untraced."""
    from mixtape.training.callbacks import AtomicCheckpointIO

    run = tmp_path / "run"
    seen: list[tuple[int, int]] = []
    save = AtomicCheckpointIO.save_checkpoint

    def save_and_record(self, checkpoint, path, storage_options=None) -> None:
        trace = run / "trace" / "batches-rank0.tsv"
        traced = [s for s, _ in read_trace(trace)[-1]] if trace.exists() else []
        seen.append((int(checkpoint["global_step"]), max(traced, default=0)))
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_and_record)
    pretrain(make_config(run, **{"trainer.max_steps": 2 * CHECKPOINT_EVERY}))
    assert [saved for saved, _ in seen if saved % CHECKPOINT_EVERY == 0]
    assert all(traced >= saved for saved, traced in seen), seen
