"""Feature extraction: bad input never stops a run, resume, kill-safety, changed sources, shards and merge."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio.audio_signals import noise, tone, write_audio

from mixtape.audio import (
    ExtractionReport,
    FeatureStore,
    MelConfig,
    StoreError,
    extract_features,
    load_audio,
    log_mel,
    merge_stores,
    shard_of,
)
from mixtape.audio.store import FAILURES_FILE, FRAMES_FILE, JOURNAL_FILE, SNAPSHOT_FILE, StoreSettings, StoreWriter
from mixtape.catalog.tracks import TrackRecord
from mixtape.errors import MixtapeError
from mixtape.workers import WorkerCrashed, map_ordered


def _good_tracks(root: Path, n: int, seconds: float = 2.5) -> list[TrackRecord]:
    return [
        TrackRecord(f"good{i}", write_audio(root / f"good{i}.wav", noise(seconds + 0.1 * i, seed=i), 16000))
        for i in range(n)
    ]


def _bad_input(root: Path) -> tuple[list[TrackRecord], dict[str, str]]:
    """Every kind of bad input from the issue, and the valid odd ones; returns records and expected reasons."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("not audio at all\n")
    mp3 = write_audio(root / "truncated.mp3", tone(440.0, 6.0, 44100), 44100, format="MP3")
    mp3.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
    write_audio(root / "blip.wav", noise(0.05), 16000)
    write_audio(root / "silence.wav", np.zeros(3 * 16000, dtype=np.float32), 16000)
    nan = noise(3.0)
    nan[5000] = np.nan
    write_audio(root / "nan.wav", nan, 16000, subtype="FLOAT")
    write_audio(
        root / "eight.wav", (np.random.default_rng(1).standard_normal((3 * 16000, 8)) * 0.1).astype(np.float32), 16000
    )
    write_audio(root / "hires.flac", tone(1000.0, 3.0, 192000), 192000)
    write_audio(root / "ünï cødé ♪.ogg", noise(3.0, 16000, seed=4), 16000)
    write_audio(root / "short.wav", noise(1.0, seed=5), 16000)  # >= 0.5 s but < one patch: looped
    names = [
        "empty.wav",
        "text.wav",
        "truncated.mp3",
        "blip.wav",
        "silence.wav",
        "nan.wav",
        "eight.wav",
        "hires.flac",
        "ünï cødé ♪.ogg",
        "short.wav",
    ]
    records = [TrackRecord(Path(n).stem, root / n) for n in names] + [TrackRecord("missing", root / "missing.wav")]
    expected = {
        "empty": "empty file",
        "text": "not a readable audio file",
        "truncated": "truncated",
        "blip": "too short",
        "silence": "silent",
        "nan": "NaN",
        "missing": "file not found",
    }
    return records, expected


def test_bad_input_is_listed_and_the_rest_completes(tmp_path: Path) -> None:
    records, expected = _bad_input(tmp_path / "audio")
    records += _good_tracks(tmp_path / "audio", 2)
    report = extract_features(records, tmp_path / "store", workers=2)

    assert isinstance(report, ExtractionReport)
    failed = {tid: reason for tid, _, reason in report.failed}
    assert set(failed) == set(expected)
    for tid, words in expected.items():
        assert words in failed[tid], (tid, failed[tid])
    store = FeatureStore.open(tmp_path / "store")
    assert sorted(store.track_ids) == sorted(["eight", "hires", "ünï cødé ♪", "short", "good0", "good1"])
    assert report.done == 6 and len(store) == 6
    # The failures file lists each with its path and reason, readable as a TSV.
    listed = {tid: (path, reason) for tid, path, reason in store.failures}
    assert set(listed) == set(expected)
    assert listed["text"][0] == str(tmp_path / "audio" / "text.wav")
    header, *rows = (tmp_path / "store" / FAILURES_FILE).read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == ["track_id", "path", "reason"] and len(rows) == len(expected)
    assert "failed 7" in report.summary() and "done 6" in report.summary()

    # Valid odd input is processed correctly, not just accepted.
    i = store.index("eight")
    audio = load_audio(tmp_path / "audio" / "eight.wav")
    np.testing.assert_allclose(store.frames(i).astype(np.float32), log_mel(audio), rtol=2e-3, atol=2e-3)
    assert abs(store.durations[store.index("hires")] - 3.0) < 1e-3
    # A short track is looped up to one patch; its duration stays the real one.
    short = store.index("short")
    assert store.n_frames[short] == 128 and abs(store.durations[short] - 1.0) < 1e-6
    looped = np.resize(load_audio(tmp_path / "audio" / "short.wav"), MelConfig().samples_for(128))
    np.testing.assert_allclose(store.frames(short).astype(np.float32), log_mel(looped), rtol=2e-3, atol=2e-3)
    assert (store.n_frames >= 128).all()


def test_rerun_resumes_and_retries_failures(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 3)
    broken = tmp_path / "audio" / "later.wav"
    broken.write_text("not yet audio")
    records.append(TrackRecord("later", broken))
    first = extract_features(records, tmp_path / "store", workers=0)
    assert (first.done, len(first.failed)) == (3, 1)
    before = FeatureStore.open(tmp_path / "store")
    frames_before = before.frame_matrix.copy()

    write_audio(broken, noise(3.0, seed=9), 16000)  # the user fixes the file
    second = extract_features(records, tmp_path / "store", workers=0)
    assert (second.done, second.skipped_existing, len(second.failed)) == (1, 3, 0)
    after = FeatureStore.open(tmp_path / "store")
    assert after.track_ids == before.track_ids + ["later"]
    np.testing.assert_array_equal(after.frame_matrix[: len(frames_before)], frames_before)
    assert after.failures == []


def test_a_killed_run_leaves_nothing_half_written(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 4)
    extract_features(records[:2], tmp_path / "store", workers=0)
    committed = FeatureStore.open(tmp_path / "store")

    # A run killed mid-way: frames of a third track written, its index line half-written, no commit.
    writer = StoreWriter(tmp_path / "store", committed.settings)
    writer.add(
        "ghost", np.ones((200, 96), dtype=np.float16), duration=3.0, checksum="x", size=1, mtime_ns=1, path="/ghost.wav"
    )
    writer._frames.flush()
    with open(tmp_path / "store" / JOURNAL_FILE, "ab") as f:
        f.write(b'{"track_id":"ghost","offset":')
    writer.abort()

    seen = FeatureStore.open(tmp_path / "store")
    assert seen.track_ids == committed.track_ids  # the half-written track is invisible
    report = extract_features(records, tmp_path / "store", workers=0)
    assert (report.done, report.skipped_existing) == (2, 2)
    store = FeatureStore.open(tmp_path / "store")
    assert store.track_ids == ["good0", "good1", "good2", "good3"] and "ghost" not in store
    assert (tmp_path / "store" / FRAMES_FILE).stat().st_size == store.total_frames * 96 * 2  # leftovers cut
    for i, r in enumerate(records):
        np.testing.assert_allclose(
            store.frames(i).astype(np.float32), log_mel(load_audio(r.path)), rtol=2e-3, atol=2e-3
        )


def test_a_changed_source_is_recomputed_and_a_touch_is_not(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 2)
    extract_features(records, tmp_path / "store", workers=0)
    old = FeatureStore.open(tmp_path / "store").frames(0).copy()

    os.utime(records[1].path)  # same bytes, new mtime: not a change
    write_audio(records[0].path, noise(4.0, seed=42), 16000)  # new content
    report = extract_features(records, tmp_path / "store", workers=0)
    assert (report.done, report.recomputed, report.skipped_existing) == (1, 1, 1)
    store = FeatureStore.open(tmp_path / "store")
    assert store.track_ids == ["good1", "good0"] and len(store) == 2
    new = store.frames(store.index("good0"))
    assert new.shape[0] == MelConfig().n_frames(4 * 16000) and not np.array_equal(new[: len(old)], old)
    assert "superseded" in store.summary()
    # Merging into a new folder compacts the dead rows away.
    compact = merge_stores([tmp_path / "store"], tmp_path / "compact")
    assert compact.rows == compact.total_frames == store.total_frames
    np.testing.assert_array_equal(compact.frames(compact.index("good0")), new)


def test_shards_partition_the_tracks_and_merge_into_the_full_store(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 8, seconds=2.2)
    parts = [extract_features(records, tmp_path / f"shard{i}", workers=0, shard=(i, 2)) for i in range(2)]
    assert sum(p.in_shard for p in parts) == 8 and all(0 < p.in_shard < 8 for p in parts)
    assert "shard 1/2" in parts[1].summary()
    full = extract_features(records, tmp_path / "full", workers=0)
    merged = merge_stores([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    assert sorted(merged.track_ids) == sorted(FeatureStore.open(tmp_path / "full").track_ids)
    full_store = FeatureStore.open(tmp_path / "full")
    for tid in full_store.track_ids:
        np.testing.assert_array_equal(merged.frames(merged.index(tid)), full_store.frames(full_store.index(tid)))
    assert merged.settings.shard == (0, 1) and full.done == 8
    assert [shard_of(r.track_id, 2) for r in records] == [shard_of(r.track_id, 2) for r in records]  # stable


def test_merge_refuses_what_cannot_be_merged(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 4)
    extract_features(records, tmp_path / "a", workers=0, shard=(0, 2))
    extract_features(records, tmp_path / "b", workers=0, shard=(0, 3))
    extract_features(records, tmp_path / "c", workers=0, shard=(1, 2), mel=MelConfig(n_mels=64))
    with pytest.raises(StoreError, match="different shard splits"):
        merge_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "m1")
    with pytest.raises(StoreError, match="mel.n_mels"):
        merge_stores([tmp_path / "a", tmp_path / "c"], tmp_path / "m2")
    with pytest.raises(StoreError, match="given twice"):
        merge_stores([tmp_path / "a", tmp_path / "a"], tmp_path / "m3")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(MixtapeError, match="not empty"):
        merge_stores([tmp_path / "a"], tmp_path / "full")
    assert not any(p.name.startswith(".m") for p in tmp_path.iterdir())  # no half-merged folder left behind


def test_a_store_refuses_other_settings_and_a_second_writer(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 1)
    extract_features(records, tmp_path / "store", workers=0)
    with pytest.raises(StoreError, match="mel.n_mels: 96 != 64"):
        extract_features(records, tmp_path / "store", workers=0, mel=MelConfig(n_mels=64))
    with pytest.raises(StoreError, match="shard"):
        extract_features(records, tmp_path / "store", workers=0, shard=(0, 2))
    writer = StoreWriter(tmp_path / "store", StoreSettings())
    try:
        with pytest.raises(StoreError, match="another process"):
            extract_features(records, tmp_path / "store", workers=0)
    finally:
        writer.close()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and not a feature store"):
        extract_features(records, tmp_path / "junk", workers=0)
    with pytest.raises(MixtapeError, match="shard 2/2"):
        extract_features(records, tmp_path / "other", workers=0, shard=(2, 2))


def test_the_index_snapshot_and_journal_agree(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 3)
    extract_features(records[:2], tmp_path / "store", workers=0)
    extract_features(records, tmp_path / "store", workers=0)  # snapshot covers all; then drop it
    with_snapshot = FeatureStore.open(tmp_path / "store")
    (tmp_path / "store" / SNAPSHOT_FILE).unlink()
    from_journal = FeatureStore.open(tmp_path / "store")
    assert with_snapshot.track_ids == from_journal.track_ids == ["good0", "good1", "good2"]
    np.testing.assert_array_equal(with_snapshot.offsets, from_journal.offsets)
    assert with_snapshot.checksums == from_journal.checksums and with_snapshot.paths == from_journal.paths


def _double_or_crash(x: int) -> int:
    if x == 3:
        os._exit(1)  # what a segfaulting native decoder does to its worker
    return 2 * x


def _always_crash(x: int) -> int:
    os._exit(1)


def test_a_crashing_worker_costs_one_track_not_the_run() -> None:
    out = list(map_ordered(_double_or_crash, range(8), workers=2))
    assert out[:3] == [0, 2, 4] and out[4:] == [8, 10, 12, 14]
    assert isinstance(out[3], WorkerCrashed) and out[3].task == 3


def test_a_pool_that_cannot_work_at_all_is_an_error() -> None:
    with pytest.raises(MixtapeError, match="workers=0"):
        list(map_ordered(_always_crash, range(10), workers=2))


def test_cli_features_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixtape.cli import main

    _good_tracks(tmp_path / "audio", 3)
    table = tmp_path / "audio" / "tracks.csv"
    table.write_text("track_id,path\n" + "".join(f"good{i},good{i}.wav\n" for i in range(3)) + "gone,gone.wav\n")
    for i in range(2):
        assert (
            main(
                [
                    "features",
                    "--tracks",
                    str(table),
                    "--out",
                    str(tmp_path / f"s{i}"),
                    "--workers",
                    "0",
                    "--shard",
                    f"{i}/2",
                ]
            )
            == 0
        )
    assert "features ->" in capsys.readouterr().out
    assert (
        main(["features", "--merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "all")]) == 0
    )
    out = capsys.readouterr().out
    assert "3 tracks" in out and "1 failed" in out
    assert main(["features", "--merge", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "feature store not found" in capsys.readouterr().err


def test_gpu_log_mel_mode_matches_cpu_workers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    records = _good_tracks(tmp_path / "audio", 3)
    extract_features(records, tmp_path / "cpu", workers=1)
    extract_features(records, tmp_path / "gpu", workers=1, device="cuda")
    cpu, gpu = FeatureStore.open(tmp_path / "cpu"), FeatureStore.open(tmp_path / "gpu")
    np.testing.assert_allclose(cpu.frame_matrix.astype(np.float32), gpu.frame_matrix.astype(np.float32), atol=2e-3)


def test_store_survives_a_missing_source_on_rerun(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 2)
    extract_features(records, tmp_path / "store", workers=0)
    shutil.move(str(records[0].path), str(tmp_path / "elsewhere.wav"))
    report = extract_features(records, tmp_path / "store", workers=0)
    assert (report.done, report.skipped_existing, len(report.failed)) == (0, 2, 0)
    assert sf.info(str(tmp_path / "elsewhere.wav")).frames > 0


def test_bad_arguments_are_refused_before_any_work(tmp_path: Path) -> None:
    records = _good_tracks(tmp_path / "audio", 1)
    with pytest.raises(MixtapeError, match="workers must be"):
        extract_features(records, tmp_path / "s1", workers=-1)
    with pytest.raises(MixtapeError, match="unknown device 'gpu'"):
        extract_features(records, tmp_path / "s2", device="gpu")


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from mixtape.audio import extract as ex, extract_features
from mixtape.audio.store import StoreWriter
from mixtape.catalog.tracks import TrackRecord

ex.COMMIT_TRACKS = 1  # commit after every track
real_add, calls = StoreWriter.add, [0]

def add(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:  # SIGKILL in the middle of writing the third track's frames
        self._frames.write(b"\\x00" * 1000)
        self._frames.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_add(self, *args, **kwargs)

StoreWriter.add = add
records = [TrackRecord(p.stem, p) for p in sorted(Path(sys.argv[1]).glob("*.wav"))]
extract_features(records, sys.argv[2], workers=0)
"""


def test_a_sigkilled_process_leaves_a_store_that_resumes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    records = _good_tracks(tmp_path / "audio", 4)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "audio"), str(tmp_path / "store")],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    killed = FeatureStore.open(tmp_path / "store")
    assert killed.track_ids == ["good0", "good1"]  # committed ones only; the half-written third is invisible
    assert (tmp_path / "store" / FRAMES_FILE).stat().st_size > killed.total_frames * 96 * 2  # the debris is there
    report = extract_features(records, tmp_path / "store", workers=0)
    assert (report.done, report.skipped_existing) == (2, 2)
    store = FeatureStore.open(tmp_path / "store")
    assert store.track_ids == ["good0", "good1", "good2", "good3"]
    for i, r in enumerate(records):
        np.testing.assert_allclose(
            store.frames(i).astype(np.float32), log_mel(load_audio(r.path)), rtol=2e-3, atol=2e-3
        )


def test_repeated_and_unusable_track_ids(tmp_path: Path) -> None:
    good = _good_tracks(tmp_path / "audio", 2)
    records = [good[0], TrackRecord("good0", good[1].path), good[1], TrackRecord("bad\0id", good[1].path)]
    report = extract_features(records, tmp_path / "store", workers=0)
    store = FeatureStore.open(tmp_path / "store")
    assert store.track_ids == ["good0", "good1"] and report.done == 2
    assert store.paths[0] == good[0].path  # the first record of a repeated id wins
    assert [r for _, _, r in report.failed] == ["track id is empty or contains a NUL character"]
    assert store.failures[0][0] == "bad\\0id"


def test_worker_tasks_go_largest_file_first(tmp_path: Path) -> None:
    """With results taken in order, a long track dispatched last idles the other workers: the pool
    gets the largest files first, and a file it cannot stat (it fails in its worker) last."""
    from mixtape.audio.extract import _longest_first

    sizes = {"a": 10, "b": 3000, "c": 500}
    for name, size in sizes.items():
        (tmp_path / f"{name}.wav").write_bytes(b"x" * size)
    tasks = [(name, str(tmp_path / f"{name}.wav")) for name in ("a", "gone", "b", "c")]
    assert [t for t, _ in _longest_first(tasks)] == ["b", "c", "a", "gone"]
