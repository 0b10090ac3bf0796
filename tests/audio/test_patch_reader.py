"""PatchReader and FeatureStore reading, on stores written directly with synthetic frames (no audio)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mixtape.audio import FeatureStore, PatchReader, StoreError, covering_starts
from mixtape.audio.store import FRAMES_FILE, JOURNAL_FILE, SETTINGS_FILE, StoreSettings, StoreWriter

LENGTHS = [128, 200, 256, 300, 1000]


def _synthetic_store(path: Path, lengths: list[int] = LENGTHS) -> FeatureStore:
    """Track k's frame t holds t in band 0 and k in band 1 (exact in float16), so a patch says where it came from."""
    with StoreWriter(path, StoreSettings()) as writer:
        for k, n in enumerate(lengths):
            frames = np.zeros((n, 96), dtype=np.float16)
            frames[:, 0] = np.arange(n)
            frames[:, 1] = k
            frames[:, 2:] = np.random.default_rng(k).standard_normal((n, 94))
            writer.add(
                f"t{k}", frames, duration=n * 0.016, checksum=f"c{k}", size=n, mtime_ns=k, path=f"/audio/t{k}.wav"
            )
    return FeatureStore.open(path)


def test_random_patches_are_contiguous_slices_of_the_right_track(tmp_path: Path) -> None:
    store = _synthetic_store(tmp_path / "s")
    reader = PatchReader(store)
    idx = np.array([0, 1, 1, 4, 4, 4, 2, 3] * 20)
    patches = reader.random_patches(idx, np.random.default_rng(0))
    assert patches.shape == (len(idx), 96, 128) and patches.dtype == np.float32 and patches.flags.c_contiguous
    assert (patches[:, 1, :] == idx[:, None]).all()
    starts = patches[:, 0, 0].astype(int)
    assert (patches[:, 0, :] == starts[:, None] + np.arange(128)).all()
    assert (starts >= 0).all() and (starts + 128 <= np.array(LENGTHS)[idx]).all()
    # The rest of the patch is the stored frames, transposed.
    k, s = idx[3], starts[3]
    np.testing.assert_array_equal(patches[3], store.frames(k)[s : s + 128].astype(np.float32).T)
    # Starts vary over the whole room of a long track, and the generator decides them.
    many = reader.random_patches(np.full(400, 4), np.random.default_rng(1))[:, 0, 0]
    assert many.min() < 100 and many.max() > 770
    again = reader.random_patches(np.full(400, 4), np.random.default_rng(1))[:, 0, 0]
    np.testing.assert_array_equal(many, again)


def test_track_patches_cover_the_track(tmp_path: Path) -> None:
    reader = PatchReader(_synthetic_store(tmp_path / "s"))
    assert reader.patch_starts(0).tolist() == [0]
    assert reader.patch_starts(2).tolist() == [0, 128]
    assert reader.patch_starts(3).tolist() == [0, 128, 172]  # the last one ends at frame 300
    patches = reader.track_patches(3)
    assert patches.shape == (3, 96, 128)
    covered = np.unique(patches[:, 0, :].astype(int))
    np.testing.assert_array_equal(covered, np.arange(300))


def test_patches_longer_than_a_track_wrap_around(tmp_path: Path) -> None:
    reader = PatchReader(_synthetic_store(tmp_path / "s"), patch_frames=256)
    p = reader.random_patches(np.array([1, 0]), np.random.default_rng(0))
    assert p.shape == (2, 96, 256)
    np.testing.assert_array_equal(p[0, 0], np.arange(256) % 200)  # no room: starts at 0 and loops
    assert reader.track_patches(0).shape == (1, 96, 256)


def test_bad_indices_and_empty_requests(tmp_path: Path) -> None:
    reader = PatchReader(_synthetic_store(tmp_path / "s"))
    with pytest.raises(StoreError, match="track index 5 out of range"):
        reader.random_patches(np.array([0, 5]), np.random.default_rng(0))
    with pytest.raises(StoreError, match="out of range"):
        reader.track_patches(-1)
    assert reader.random_patches(np.zeros(0, dtype=np.int64), np.random.default_rng(0)).shape == (0, 96, 128)


def test_store_metadata_and_lookup(tmp_path: Path) -> None:
    store = _synthetic_store(tmp_path / "s")
    assert len(store) == 5 and store.track_ids == [f"t{k}" for k in range(5)]
    assert store.index("t3") == 3 and "t3" in store and "nope" not in store
    np.testing.assert_array_equal(store.indices(["t4", "t0"]), [4, 0])
    with pytest.raises(StoreError, match="'nope' is not in feature store") as info:
        store.index("nope")
    assert isinstance(info.value, KeyError) and str(info.value).startswith("track 'nope'")
    with pytest.raises(StoreError, match="1 track\\(s\\) not in feature store"):
        store.indices(["t1", "nope"])
    np.testing.assert_array_equal(store.n_frames, LENGTHS)
    np.testing.assert_array_equal(store.offsets, np.cumsum([0, *LENGTHS[:-1]]))
    assert store.checksums[2] == "c2" and store.paths[2] == Path("/audio/t2.wav")
    assert store.frames(1).dtype == np.float16 and store.frames(1).shape == (200, 96)
    assert store.mel_config.n_mels == 96 and store.failures == []
    assert "5 tracks" in store.summary() and store.size_bytes >= sum(LENGTHS) * 96 * 2


def test_a_store_truncated_under_a_reader_is_refused(tmp_path: Path) -> None:
    store = _synthetic_store(tmp_path / "s")
    reader = PatchReader(store)
    reader.random_patches(np.array([4]), np.random.default_rng(0))
    os.truncate(tmp_path / "s" / FRAMES_FILE, 1000 * 96 * 2)
    with pytest.raises(StoreError, match="truncated or modified"):
        reader.random_patches(np.array([4]), np.random.default_rng(0))
    with pytest.raises(StoreError, match="truncated or modified"):
        FeatureStore.open(tmp_path / "s")


def test_damaged_or_foreign_stores_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="feature store not found"):
        FeatureStore.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="no store.json"):
        FeatureStore.open(tmp_path / "plain")
    _synthetic_store(tmp_path / "s")
    with open(tmp_path / "s" / JOURNAL_FILE, "ab") as f:
        f.write(b"this is not json\n")
    with pytest.raises(StoreError, match="damaged"):
        FeatureStore.open(tmp_path / "s")
    _synthetic_store(tmp_path / "v")
    text = (tmp_path / "v" / SETTINGS_FILE).read_text().replace('"version": 1', '"version": 99')
    (tmp_path / "v" / SETTINGS_FILE).write_text(text)
    with pytest.raises(StoreError, match="version 99"):
        FeatureStore.open(tmp_path / "v")


def test_pickling_a_store_does_not_copy_its_frames(tmp_path: Path) -> None:
    store = _synthetic_store(tmp_path / "s", [5000] * 20)
    reader = PatchReader(store)
    reader.random_patches(np.array([0]), np.random.default_rng(0))  # maps the file
    blob = pickle.dumps(reader)
    assert len(blob) < store.total_frames * 96 * 2 / 20
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.track_patches(7), reader.track_patches(7))


def test_an_empty_store_opens(tmp_path: Path) -> None:
    StoreWriter(tmp_path / "e", StoreSettings()).close()
    store = FeatureStore.open(tmp_path / "e")
    assert len(store) == 0 and store.total_frames == 0 and store.frame_matrix.shape == (0, 96)
    assert PatchReader(store).random_patches(np.zeros(0, dtype=int), np.random.default_rng(0)).shape == (0, 96, 128)


def test_single_and_multi_threaded_conversion_agree(tmp_path: Path) -> None:
    import torch

    reader = PatchReader(_synthetic_store(tmp_path / "s"))
    idx = np.array([4, 3, 2, 1, 0, 4, 4])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = reader.random_patches(idx, np.random.default_rng(5))
        torch.set_num_threads(2)
        two = reader.random_patches(idx, np.random.default_rng(5))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    assert (one[:, 1, :] == idx[:, None]).all()


def test_covering_starts_follow_the_patch_reader(tiny_store) -> None:
    reader = PatchReader(tiny_store, 128)
    for i in range(0, len(tiny_store), 7):
        assert covering_starts(int(tiny_store.n_frames[i]), 128).tolist() == reader.patch_starts(i).tolist()
    assert covering_starts(100, 128).tolist() == [0]
    assert covering_starts(256, 128).tolist() == [0, 128]
    assert covering_starts(300, 128).tolist() == [0, 128, 172]
