"""Decoding: formats, downmix, resampling, odd paths, and a clear error for every kind of bad file."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
from audio.audio_signals import noise, peak_hz, tone, write_audio

from mixtape.audio import AudioDecodeError, load_audio
from mixtape.errors import MixtapeError


@pytest.mark.parametrize(("ext", "kwargs"), [("wav", {}), ("flac", {}), ("ogg", {}), ("mp3", {"format": "MP3"})])
def test_formats_decode_to_16k_mono_at_the_right_pitch(tmp_path: Path, ext: str, kwargs: dict) -> None:
    path = write_audio(tmp_path / f"tone.{ext}", tone(440.0, 3.0, sample_rate=44100, channels=2), 44100, **kwargs)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 3 * 16000) <= 0.05 * 16000  # mp3 adds encoder delay/padding
    assert abs(peak_hz(y, 16000) - 440.0) < 3.0


def test_eight_channels_are_averaged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16000, 8)) * 0.1).astype(np.float32)
    y = load_audio(write_audio(tmp_path / "eight.wav", x, 16000, subtype="FLOAT"))
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1e-6)


def test_192_khz_is_resampled(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "hires.wav", tone(1000.0, 2.0, sample_rate=192000), 192000, subtype="PCM_24")
    y = load_audio(path)
    assert len(y) == 2 * 16000
    assert abs(peak_hz(y, 16000) - 1000.0) < 2.0
    # Energy above 8 kHz cannot exist at 16 kHz; a 1 kHz tone keeps its level through the resampler.
    assert abs(np.sqrt(np.mean(y[1000:-1000] ** 2)) - 0.3 / np.sqrt(2)) < 0.01


def test_a_path_with_spaces_and_non_ascii_characters(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "dir with spaces" / "Ünïcødé ♪ — track 01.flac", noise(1.0), 16000)
    y = load_audio(path)
    assert len(y) == 16000


def test_audio_is_resampled_to_the_requested_rate(tmp_path: Path) -> None:
    y = load_audio(write_audio(tmp_path / "a.wav", noise(1.0, 16000), 16000), sample_rate=22050)
    assert len(y) == 22050


def _error(path: Path) -> AudioDecodeError:
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert str(path) in str(info.value)  # every message names the file
    assert isinstance(info.value, MixtapeError)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.wav").reason == "file not found"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert "empty file" in _error(path).reason


def test_text_file_named_wav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no ffmpeg, whatever the machine has
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not audio\n")
    reason = _error(path).reason
    assert "not a readable audio file" in reason and "ffmpeg is not on PATH" in reason


def test_truncated_mp3(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "song.mp3", tone(440.0, 6.0, sample_rate=44100), 44100, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(path).reason


def test_nan_samples_in_a_float_wav(tmp_path: Path) -> None:
    x = noise(1.0)
    x[100:110] = np.nan
    x[200] = np.inf
    path = write_audio(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    reason = _error(path).reason
    assert "11 of 16000 samples are NaN or infinite" in reason


def test_a_directory_is_not_audio(tmp_path: Path) -> None:
    (tmp_path / "folder.wav").mkdir()
    assert "not a regular file" in _error(tmp_path / "folder.wav").reason


def test_decode_error_survives_pickling(tmp_path: Path) -> None:
    err = AudioDecodeError(tmp_path / "x.wav", "file not found")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, str(back)) == (err.path, err.reason, str(err))


def _fake_ffmpeg(bin_dir: Path, body: str) -> None:
    """A stand-in ffmpeg on PATH: the fallback's subprocess plumbing is tested without ffmpeg installed."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "ffmpeg"
    script.write_text(f"#!{os.environ.get('PYTHON', 'python3')}\nimport sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_ffmpeg_fallback_reads_what_libsndfile_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    ramp = np.linspace(-0.5, 0.5, 16000, dtype="<f4")
    (tmp_path / "ramp.f32").write_bytes(ramp.tobytes())
    body = (
        "args = sys.argv[1:]\n"
        "assert args[args.index('-ar') + 1] == '16000' and args[args.index('-ac') + 1] == '1' and args[-1] == '-'\n"
        f"sys.stdout.buffer.write(open({str(tmp_path / 'ramp.f32')!r}, 'rb').read())\n"
    )
    monkeypatch.setenv("PYTHON", sys.executable)
    _fake_ffmpeg(tmp_path / "bin", body)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A not something libsndfile reads")
    np.testing.assert_array_equal(load_audio(path), ramp)


def test_ffmpeg_failure_is_reported_with_its_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("PYTHON", sys.executable)
    _fake_ffmpeg(tmp_path / "bin", "sys.stderr.write('moov atom not found\\n')\nsys.exit(1)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    path = tmp_path / "broken.m4a"
    path.write_bytes(b"garbage")
    reason = _error(path).reason
    assert "nor ffmpeg" in reason and "moov atom not found" in reason
