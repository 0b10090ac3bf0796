"""`mixtape.load_encoder`: waveform in, the vector `mixtape embed` stores out; any layout and rate,
long audio in bounded memory, bad files listed without stopping the batch, clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
import torch

import mixtape
from mixtape.audio import PatchReader, covering_starts, load_audio
from mixtape.catalog import read_tracks
from mixtape.models import embed_tracks
from mixtape.models.bundle import EncoderBundle
from mixtape.models.inference import AudioEncoder, AudioInputError, load_encoder


@pytest.fixture(scope="module")
def encoder_folder(tiny_encoder: Path) -> Path:
    return tiny_encoder


@pytest.fixture(scope="module")
def enc(encoder_folder: Path) -> AudioEncoder:
    return load_encoder(encoder_folder, device="cpu")


@pytest.fixture(scope="module")
def tracks(tiny_world) -> list[Path]:
    return [r.path for r in read_tracks(tiny_world.tracks).records]


def _store_vectors(encoder_folder: Path, store, rows: list[int]) -> np.ndarray:
    return embed_tracks(EncoderBundle.load(encoder_folder).encoder, PatchReader(store), rows)


def test_the_top_level_api_and_its_attributes(enc: AudioEncoder, encoder_folder: Path, tiny_store) -> None:
    top = mixtape.load_encoder(encoder_folder, device="cpu")
    assert isinstance(top, AudioEncoder)
    assert top.embedding_dim == enc.embedding_dim == 64
    assert top.sample_rate == tiny_store.mel_config.sample_rate == 16000
    assert top.mel == tiny_store.mel_config and top.patch_frames == 128
    assert top.patch_seconds == pytest.approx((512 + 127 * 256) / 16000)
    assert "64-d" in repr(top) and "16000 Hz" in repr(top)


def test_a_waveform_embeds_to_the_vector_of_its_store_track(enc: AudioEncoder, encoder_folder, tiny_store) -> None:
    rows = [0, 5]
    want = _store_vectors(encoder_folder, tiny_store, rows)
    for row, vector in zip(rows, want, strict=True):
        audio = load_audio(tiny_store.paths[row], 16000)
        got = enc.embed(audio, 16000)
        assert got.shape == (64,) and got.dtype == np.float32
        np.testing.assert_allclose(got, vector, atol=1e-5)


def test_files_embed_like_the_store_and_a_bad_file_is_a_listed_nan_row(
    enc: AudioEncoder, encoder_folder, tiny_store, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF but not a wave file")
    paths = [tiny_store.paths[0], broken, tmp_path / "missing.flac", tiny_store.paths[3]]
    result = enc.embed_files(paths, batch_size=16, progress=False)
    assert result.shape == (4, 64) and np.asarray(result).shape == (4, 64)
    assert result.ok.tolist() == [True, False, False, True]
    assert np.isnan(result[1]).all() and np.isnan(result[2]).all()
    assert [p for p, _ in result.failures] == [str(broken), str(tmp_path / "missing.flac")]
    assert "file not found" in result.failures[1][1] and result.failures[0][1]
    np.testing.assert_allclose(result[[0, 3]], _store_vectors(encoder_folder, tiny_store, [0, 3]), atol=1e-5)


def test_channel_layouts_and_sample_rates(enc: AudioEncoder, tracks: list[Path]) -> None:
    mono = load_audio(tracks[1], 16000)
    want = enc.embed(mono, 16000)
    np.testing.assert_allclose(enc.embed(np.stack([mono, mono]), 16000), want, atol=1e-6)  # [channels, samples]
    np.testing.assert_allclose(enc.embed(np.stack([mono, mono], axis=1), 16000), want, atol=1e-6)  # [samples, ch]
    np.testing.assert_allclose(enc.embed(torch.from_numpy(mono), np.int64(16000)), want, atol=1e-6)
    np.testing.assert_allclose(enc.embed(mono.astype(np.float64), 16000), want, atol=1e-6)
    at_44k = soxr.resample(mono, 16000, 44100)
    got = enc.embed(at_44k, 44100)  # resampled back to 16 kHz: not bit-equal, but the same music
    cosine = float(got @ want / np.linalg.norm(got) / np.linalg.norm(want))
    assert cosine > 0.99


def test_short_audio_is_looped_to_one_patch(enc: AudioEncoder, tracks: list[Path]) -> None:
    clip = load_audio(tracks[2], 16000)[:5000]
    looped = np.resize(clip, enc.patch_samples)
    np.testing.assert_array_equal(enc.embed(clip, 16000), enc.embed(looped, 16000))


def test_a_batch_equals_one_by_one(enc: AudioEncoder, tracks: list[Path]) -> None:
    waves = [load_audio(tracks[i], 16000)[: n * 16000] for i, n in ((0, 3), (1, 9), (2, 1))]
    batch = enc.embed_batch(waves, 16000)
    assert batch.shape == (3, 64)
    for wave, row in zip(waves, batch, strict=True):
        np.testing.assert_allclose(row, enc.embed(wave, 16000), atol=1e-5)


def test_long_audio_is_embedded_in_bounded_chunks(
    encoder_folder: Path, tracks: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten minutes of audio never has more than a few patches' frames computed at once, and chunking
    does not change the vector."""
    import mixtape.models.inference as inference

    clip = load_audio(tracks[0], 16000)
    audio = np.tile(clip, 600 * 16000 // len(clip) + 1)[: 600 * 16000]
    whole = AudioEncoder(EncoderBundle.load(encoder_folder), device="cpu", chunk_patches=10_000).embed(audio, 16000)
    spans: list[int] = []
    real = inference.log_mel_batch

    def recording(wave: torch.Tensor, config: object) -> torch.Tensor:
        spans.append(int(wave.shape[-1]))
        return real(wave, config)  # type: ignore[arg-type]

    monkeypatch.setattr(inference, "log_mel_batch", recording)
    chunked = AudioEncoder(EncoderBundle.load(encoder_folder), device="cpu", chunk_patches=4)
    np.testing.assert_allclose(chunked.embed(audio, 16000), whole, atol=1e-5)
    n_patches = len(covering_starts(chunked.mel.n_frames(len(audio)), 128))
    assert n_patches > 250 and len(spans) == -(-n_patches // 4) and max(spans) <= 4 * chunked.patch_samples


def test_frames_over_time(enc: AudioEncoder, tracks: list[Path]) -> None:
    audio = load_audio(tracks[0], 16000)[: 10 * 16000]
    times, vectors = enc.embed_frames(audio, 16000, hop_seconds=0.5)
    seconds = len(audio) / 16000
    assert vectors.shape == (len(times), 64) and len(times) == int((seconds - enc.patch_seconds) / 0.496) + 1
    np.testing.assert_allclose(np.diff(times), 0.496)  # 0.5 s rounded to whole 16 ms frames (31)
    assert times[0] == pytest.approx(enc.patch_seconds / 2)
    assert times[-1] + enc.patch_seconds / 2 <= seconds + 1e-9
    # a frame is the embedding of the patch it is centred on
    start = int(round((times[3] - enc.patch_seconds / 2) * 16000))
    np.testing.assert_allclose(vectors[3], enc.embed(audio[start : start + enc.patch_samples], 16000), atol=1e-5)
    centred, _ = enc.embed_frames(audio, 16000, hop_seconds=0.048, centered=True)
    assert centred[0] == 0.0 and seconds - 0.048 < centred[-1] <= seconds and np.allclose(np.diff(centred), 0.048)


@pytest.mark.parametrize(
    ("audio", "rate", "message"),
    [
        (np.zeros(16000, np.float32), 16000.0, r"sample_rate must be an integer number of Hz .*16000\.0 \(float\)"),
        (np.zeros(16000, np.float32), True, r"sample_rate must be an integer.*True \(bool\)"),
        (np.zeros(16000, np.float32), 0, "sample_rate must be positive, got 0"),
        (np.zeros(0, np.float32), 16000, r"audio: empty waveform \(0 samples\)"),
        (np.array([0.1, np.nan, np.inf] * 100, np.float32), 16000, "200 of 300 samples are NaN or infinite"),
        (np.zeros(16000, np.int16), 16000, r"samples must be floating point .*int16.*divide by 32768"),
        (np.zeros((2, 3, 16000), np.float32), 16000, r"expected 1-D or 2-D samples, got shape \(2, 3, 16000\)"),
        (np.zeros((100, 200), np.float32), 16000, r"shape \(100, 200\) is not \[samples\]"),
        (np.full(16000, 1e7, np.float32), 16000, "peak amplitude 1e\\+07 is out of range"),
        ("song.wav", 16000, "expected a numpy array or torch tensor of samples, got str"),
    ],
)
def test_bad_input_is_named(enc: AudioEncoder, audio: object, rate: object, message: str) -> None:
    with pytest.raises(AudioInputError, match=message):
        enc.embed(audio, rate)  # type: ignore[arg-type]


def test_a_bad_waveform_in_a_batch_is_named_by_position(enc: AudioEncoder) -> None:
    with pytest.raises(AudioInputError, match=r"audio\[1\]: empty waveform"):
        enc.embed_batch([np.zeros(16000, np.float32), np.zeros(0, np.float32)], 16000)


def test_a_missing_encoder_is_named(tmp_path: Path) -> None:
    with pytest.raises(mixtape.errors.MixtapeError, match="encoder not found"):
        load_encoder(tmp_path / "nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda(encoder_folder: Path, enc: AudioEncoder, tracks: list[Path]) -> None:
    gpu = load_encoder(encoder_folder, device="cuda")
    audio = load_audio(tracks[0], 16000)
    np.testing.assert_allclose(gpu.embed(audio, 16000), enc.embed(audio, 16000), atol=1e-3)
