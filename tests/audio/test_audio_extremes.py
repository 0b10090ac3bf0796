"""Audio at the extremes: length, channels, sample rate, amplitude, broken headers, real truncated files.

Each case says what the features stage does with it: decode it correctly, or skip it with a reason
that `failures.tsv` lists (never a crash, never NaN features in the store).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio.audio_signals import noise, peak_hz, tone, write_audio
from conftest import shared_data

from mixtape.audio import AudioDecodeError, FeatureStore, MelConfig, extract_features, load_audio, log_mel
from mixtape.audio.decode import BLOCK_FRAMES
from mixtape.audio.extract import MAX_PEAK
from mixtape.catalog.tracks import TrackRecord


def _extract(tmp_path: Path, files: dict[str, Path]) -> tuple[FeatureStore, dict[str, str]]:
    """Extract ``files`` (track id -> path) in this process; the store and the failures by track id."""
    report = extract_features([TrackRecord(tid, p) for tid, p in files.items()], tmp_path / "store", workers=0)
    return FeatureStore.open(tmp_path / "store"), {tid: reason for tid, _, reason in report.failed}


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_mono_stereo_and_six_channels_are_downmixed(tmp_path: Path, channels: int) -> None:
    x = (np.random.default_rng(channels).standard_normal((3 * 16000, channels)) * 0.1).astype(np.float32)
    path = write_audio(tmp_path / f"c{channels}.wav", x[:, 0] if channels == 1 else x, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), x.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
def test_common_sample_rates_are_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    path = write_audio(tmp_path / f"r{rate}.flac", tone(1000.0, 3.0, rate), rate)
    y = load_audio(path)
    assert abs(len(y) - 3 * 16000) <= 1 and abs(peak_hz(y, 16000) - 1000.0) < 2.0
    store, failed = _extract(tmp_path, {"t": path})
    assert failed == {} and store.n_frames[0] == MelConfig().n_frames(len(y))


def test_a_one_sample_file_is_too_short(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "one.wav", np.array([0.5], dtype=np.float32), 16000)
    assert len(load_audio(path)) == 1  # decodes; the store's rule refuses it
    store, failed = _extract(tmp_path, {"one": path})
    assert len(store) == 0 and failed["one"].startswith("too short: 0.000 s of audio, the minimum is 0.5 s")


def test_a_long_file_is_decoded_block_by_block(tmp_path: Path) -> None:
    seconds = 240  # four minutes at 22.05 kHz: several decoding blocks
    path = write_audio(tmp_path / "long.wav", noise(seconds, 22050, seed=3), 22050, subtype="PCM_16")
    assert seconds * 22050 > 3 * BLOCK_FRAMES
    store, failed = _extract(tmp_path, {"long": path})
    assert failed == {} and store.durations[0] == pytest.approx(seconds, abs=1e-3)
    assert store.n_frames[0] == MelConfig().n_frames(seconds * 16000)
    assert np.isfinite(store.frames(0).astype(np.float32)).all()


def test_a_loud_float_wav_is_kept_and_an_absurd_one_is_refused(tmp_path: Path) -> None:
    base = noise(3.0, seed=1)
    loud = write_audio(
        tmp_path / "loud.wav", base * 1000.0, 16000, subtype="FLOAT"
    )  # peaks ~400, far beyond full scale
    clipped = write_audio(tmp_path / "clipped.wav", np.clip(base * 20.0, -1.0, 1.0), 16000, subtype="PCM_16")
    absurd = write_audio(tmp_path / "absurd.wav", base * 1e30, 16000, subtype="FLOAT")
    store, failed = _extract(tmp_path, {"loud": loud, "clipped": clipped, "absurd": absurd})
    assert sorted(store.track_ids) == ["clipped", "loud"]
    for tid in ("loud", "clipped"):
        frames = store.frames(store.index(tid)).astype(np.float32)
        assert np.isfinite(frames).all()
    np.testing.assert_allclose(
        store.frames(store.index("loud")).astype(np.float32), log_mel(load_audio(loud)), rtol=2e-3, atol=2e-2
    )
    assert failed["absurd"].startswith("amplitude out of range: peak ") and f"above {MAX_PEAK:g}" in failed["absurd"]
    assert "absurd" in {tid for tid, _, _ in store.failures}


def test_infinite_samples_are_refused(tmp_path: Path) -> None:
    x = noise(2.0)
    x[[10, 20]] = [np.inf, -np.inf]
    path = write_audio(tmp_path / "inf.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="2 of 32000 samples are NaN or infinite"):
        load_audio(path)


def _wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, noise(seconds, seed=2), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_a_truncated_wav_is_reported_as_truncated(tmp_path: Path) -> None:
    data = _wav_bytes(6.0)
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 3])  # the header still declares 6 s
    with pytest.raises(AudioDecodeError, match=r"truncated: decoded 2\.00 s of the 6\.00 s its header declares"):
        load_audio(path)
    store, failed = _extract(tmp_path, {"cut": path})
    assert len(store) == 0 and failed["cut"].startswith("truncated")


def test_a_wav_streamed_without_its_length_is_not_truncated(tmp_path: Path) -> None:
    """Streaming writers (ffmpeg to a pipe) leave 0xFFFFFFFF as the data size: the audio is all there."""
    data = bytearray(_wav_bytes(3.0))
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    assert len(load_audio(path)) == 3 * 16000


def test_a_real_mp3_of_minutes_decodes_and_a_truncated_copy_is_reported(tmp_path: Path) -> None:
    mp3 = min(shared_data("real-audio", "jamendo").glob("*.mp3"), key=lambda p: p.stat().st_size)
    declared = sf.info(str(mp3)).duration
    y = load_audio(mp3)
    assert declared > 120 and len(y) / 16000 == pytest.approx(declared, abs=0.1)
    cut = tmp_path / "cut.mp3"
    data = mp3.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 5])
    with pytest.raises(
        AudioDecodeError, match=rf"truncated: decoded \d+\.\d\d s of the {declared:.2f} s its header declares"
    ):
        load_audio(cut)


def test_a_truncated_real_ogg_keeps_the_audio_that_is_there(tmp_path: Path) -> None:
    """Ogg carries no total length to compare with, so a cut Ogg file is kept at its decoded length."""
    src = shared_data("real-audio", "excerpts", "Karissa_Hobbs_-_Lets_Go_Fishin.ogg")
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(src.read_bytes()[:300_000])
    store, failed = _extract(tmp_path, {"cut": cut})
    assert failed == {} and 10 < store.durations[0] < sf.info(str(src)).duration - 10
