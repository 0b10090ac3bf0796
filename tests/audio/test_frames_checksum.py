"""Every track of a feature store records the checksum of its frames; damaged frames are found, never merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio.audio_signals import noise, write_audio

from mixtape.audio import FeatureStore, StoreError, extract_features, merge_stores, verify_frames
from mixtape.audio.check import source_changes, uncommitted_bytes, writer_active
from mixtape.audio.store import FRAMES_FILE, JOURNAL_FILE, SNAPSHOT_FILE, StoreWriter, frames_checksum
from mixtape.catalog.tracks import TrackRecord


def _store(tmp_path: Path, n: int = 3) -> Path:
    records = [
        TrackRecord(f"t{i}", write_audio(tmp_path / "audio" / f"t{i}.wav", noise(2.5, seed=i), 16000)) for i in range(n)
    ]
    extract_features(records, tmp_path / "store", workers=0)
    return tmp_path / "store"


def _flip(store: Path, track: int) -> None:
    opened = FeatureStore.open(store)
    frames = store / FRAMES_FILE
    data = bytearray(frames.read_bytes())
    data[int(opened.offsets[track]) * opened.n_mels * 2 + 7] ^= 0x40
    frames.write_bytes(bytes(data))


def test_each_track_records_the_checksum_of_its_frames(tmp_path: Path) -> None:
    store = FeatureStore.open(_store(tmp_path))
    assert store.frames_checksums == [frames_checksum(store.frames(i)) for i in range(len(store))]
    assert len(set(store.frames_checksums)) == len(store)
    assert verify_frames(store) == ([], 0)
    snapshot_only = FeatureStore.open(store.path)  # read back through index.npz
    assert snapshot_only.frames_checksums == store.frames_checksums


def test_flipped_frames_are_found_and_never_merged(tmp_path: Path) -> None:
    path = _store(tmp_path)
    _flip(path, 1)
    store = FeatureStore.open(path)  # the frames file is long enough: opening works
    assert verify_frames(store) == ([1], 0)
    with pytest.raises(
        StoreError,
        match=rf"merge: {path / FRAMES_FILE}: track 't1' .*its frames no longer match the checksum recorded when "
        r"they were written",
    ):
        merge_stores([path], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_a_merge_carries_the_checksums(tmp_path: Path) -> None:
    path = _store(tmp_path)
    merged = merge_stores([path], tmp_path / "merged")
    assert merged.frames_checksums == FeatureStore.open(path).frames_checksums


def test_a_store_written_before_frames_checksums_reads_and_merges_into_a_checked_one(tmp_path: Path) -> None:
    path = _store(tmp_path)
    lines = [json.loads(line) for line in (path / JOURNAL_FILE).read_text().splitlines()]
    for row in lines:
        del row["frames_checksum"]
    (path / JOURNAL_FILE).write_text("".join(json.dumps(row) + "\n" for row in lines))
    with np.load(path / SNAPSHOT_FILE) as z:
        old = {k: z[k] for k in z.files if k != "frames_checksum"}
    with open(path / SNAPSHOT_FILE, "wb") as f:
        np.savez(f, **old)
    store = FeatureStore.open(path)
    assert store.frames_checksums == ["", "", ""]
    assert verify_frames(store) == ([], 3)  # nothing to compare with: counted as unchecked
    merged = merge_stores([path], tmp_path / "merged")
    assert verify_frames(merged) == ([], 0)


def test_source_changes_and_leftovers(tmp_path: Path) -> None:
    path = _store(tmp_path)
    audio = tmp_path / "audio"
    (audio / "t0.wav").unlink()
    write_audio(audio / "t2.wav", noise(2.5, seed=99), 16000)  # same length, other content
    changes = source_changes(FeatureStore.open(path))
    assert [(c.track_id, c.what) for c in changes] == [("t0", "missing"), ("t2", "content changed")]
    with open(path / FRAMES_FILE, "ab") as f:
        f.write(b"\0" * 10)
    with open(path / JOURNAL_FILE, "ab") as f:
        f.write(b'{"track_id": "half')
    assert uncommitted_bytes(FeatureStore.open(path)) == (10, 18)
    assert not writer_active(path)
    shutil.rmtree(audio)
    writer = StoreWriter(path, FeatureStore.open(path).settings)
    try:
        assert writer_active(path)
    finally:
        writer.abort()
    assert not writer_active(path)
