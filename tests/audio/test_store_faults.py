"""The feature store under faults: a disk that fills during extraction, and a store changed under a reader."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio.audio_signals import noise, write_audio

from mixtape.audio import FeatureStore, PatchReader, StoreError, extract_features, load_audio, log_mel
from mixtape.audio.store import FRAMES_FILE
from mixtape.catalog.tracks import TrackRecord

# Extraction under a file size limit: writing past it fails with EFBIG ("File too large"), as a full
# disk fails with ENOSPC; SIGXFSZ is ignored so the write returns the error instead of killing the process.
FULL_DISK = """
import resource, signal, sys
from mixtape.audio import extract
from mixtape.cli import main
extract.COMMIT_TRACKS = 2  # commit every two tracks, so some are committed before the disk fills
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
sys.exit(main(["features", "--tracks", sys.argv[1], "--out", sys.argv[2], "--workers", "0"]))
"""

TRACK_BYTES = 157 * 96 * 2  # 2.5 s of audio: 157 frames of 96 float16 bands


def _tracks(folder: Path, n: int, first: int = 0) -> list[TrackRecord]:
    return [
        TrackRecord(f"t{i}", write_audio(folder / f"t{i}.wav", noise(2.5, seed=i), 16000))
        for i in range(first, first + n)
    ]


def test_a_disk_that_fills_during_extraction_is_a_clear_error_and_the_rerun_completes(tmp_path: Path) -> None:
    records = _tracks(tmp_path / "audio", 10)
    table = tmp_path / "audio" / "tracks.csv"
    table.write_text("track_id,path\n" + "".join(f"{r.track_id},{r.path.name}\n" for r in records))
    store = tmp_path / "store"
    limit = int(4.5 * TRACK_BYTES)  # room for four tracks' frames, not five
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(table), str(store), str(limit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MIXTAPE_NO_PROGRESS": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f"mixtape features: error: feature store {store}: cannot write frames.f16: File too large." in proc.stderr
    assert "Free space (or raise the file size limit) and re-run the same command" in proc.stderr
    kept = FeatureStore.open(store)
    assert kept.track_ids == ["t0", "t1", "t2", "t3"]  # committed before the disk filled: kept, and readable
    assert kept.failures == []  # no track was blamed for the disk

    from mixtape.cli import main

    assert main(["features", "--tracks", str(table), "--out", str(store), "--workers", "0"]) == 0  # space freed: resume
    done = FeatureStore.open(store)
    assert done.track_ids == [f"t{i}" for i in range(10)] and done.failures == []
    assert (store / FRAMES_FILE).stat().st_size == done.total_frames * 96 * 2  # the torn tail was cut
    for i, r in enumerate(records):
        np.testing.assert_allclose(done.frames(i).astype(np.float32), log_mel(load_audio(r.path)), rtol=2e-3, atol=2e-3)


def test_a_reader_keeps_its_snapshot_while_a_second_run_appends(tmp_path: Path) -> None:
    extract_features(_tracks(tmp_path / "audio", 3), tmp_path / "store", workers=0)
    reader = FeatureStore.open(tmp_path / "store")
    before = reader.frame_matrix.copy()
    patches = PatchReader(reader, 128)
    extract_features(_tracks(tmp_path / "audio", 5), tmp_path / "store", workers=0)  # two more tracks appended

    assert len(reader) == 3 and reader.track_ids == ["t0", "t1", "t2"]
    np.testing.assert_array_equal(reader.frame_matrix, before)
    assert patches.random_patches(np.arange(3), np.random.default_rng(0)).shape == (3, 96, 128)
    reopened = FeatureStore.open(tmp_path / "store")
    assert reopened.track_ids == ["t0", "t1", "t2", "t3", "t4"]
    np.testing.assert_array_equal(reopened.frame_matrix[: len(before)], before)


def test_frames_truncated_under_an_open_reader_is_a_store_error(tmp_path: Path) -> None:
    extract_features(_tracks(tmp_path / "audio", 3), tmp_path / "store", workers=0)
    reader = FeatureStore.open(tmp_path / "store")
    reader.frames(0)  # the memmap is open
    os.truncate(tmp_path / "store" / FRAMES_FILE, TRACK_BYTES)  # reading past this would be SIGBUS
    with pytest.raises(
        StoreError, match=r"frames file is \d+ bytes but the index needs \d+ bytes: the store was truncated or modified"
    ):
        reader.frames(2)
    with pytest.raises(StoreError, match="truncated or modified"):
        PatchReader(reader, 128).random_patches(np.array([2]), np.random.default_rng(0))
    with pytest.raises(StoreError, match="truncated or modified"):
        FeatureStore.open(tmp_path / "store")


def test_frames_replaced_under_an_open_reader_is_a_store_error(tmp_path: Path) -> None:
    extract_features(_tracks(tmp_path / "audio", 3), tmp_path / "a", workers=0)
    extract_features(_tracks(tmp_path / "audio", 3, first=3), tmp_path / "b", workers=0)
    reader = FeatureStore.open(tmp_path / "a")
    shutil.copy(tmp_path / "b" / FRAMES_FILE, tmp_path / "a" / "new.f16")
    os.replace(tmp_path / "a" / "new.f16", tmp_path / "a" / FRAMES_FILE)  # same size, other frames
    with pytest.raises(
        StoreError, match="the frames file was replaced after this store was opened .*open the store again"
    ):
        reader.frames(0)
    with pytest.raises(StoreError, match="replaced"):
        PatchReader(reader, 128).track_patches(1)
    FeatureStore.open(tmp_path / "a").frames(0)  # a reader opened afterwards reads the file as it now is
