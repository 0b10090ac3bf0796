"""`mixtape export`: the checkpoint's encoder as safetensors + JSON and ONNX, agreeing with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mixtape.cli import main
from mixtape.models.bundle import EncoderBundle
from mixtape.models.checkpoint import CheckpointMismatchError, read_checkpoint_encoder
from mixtape.training.export import export_checkpoint


def test_export_round_trips_and_onnx_agrees_with_torch(
    reference_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ort = pytest.importorskip("onnxruntime")
    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "export"), "--onnx"]) == 0
    assert "max |onnx - python|" in capsys.readouterr().out

    encoder, meta = read_checkpoint_encoder(ckpt)
    assert meta["patch_frames"] == 64 and meta["strategy"] == "cooc-topk" and meta["mel"]["n_mels"] == 96
    exported = EncoderBundle.load(tmp_path / "export").encoder
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(5, 96, 64)).astype(np.float32))
    with torch.no_grad():
        want = encoder(x).numpy()
        torch.testing.assert_close(exported(x).numpy(), want)
    session = ort.InferenceSession(str(tmp_path / "export" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert got.shape == (5, encoder.embedding_dim)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_export_result_reports_the_onnx_difference(reference_run, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    result = export_checkpoint(reference_run.run_dir / "checkpoints" / "last.ckpt", tmp_path, onnx=True)
    assert result.onnx == tmp_path / "encoder.onnx" and result.onnx_max_diff is not None and result.onnx_max_diff < 1e-4


def test_export_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    bogus = tmp_path / "x.ckpt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="not a readable checkpoint"):
        export_checkpoint(bogus, tmp_path / "out")


def test_the_export_folder_is_a_model_folder_with_a_card(reference_run, tmp_path: Path) -> None:
    """config.json + model.safetensors + README.md, as the Hugging Face tools load them; the card carries
    the licence, the architecture, the front end and the training, and says when there are no scores."""
    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "m"), "--license", "cc-by-4.0"]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (tmp_path / "m" / "README.md").read_text()
    for text in ("## Use", "mixtape.load_encoder", "`cooc-topk`", "96 (slaney scale", "64 frames", "Not evaluated"):
        assert text in card, text
    hub = pytest.importorskip("huggingface_hub")
    data = hub.ModelCard.load(tmp_path / "m" / "README.md").data
    assert data.license == "cc-by-4.0" and data.library_name == "mixtape" and data.pipeline_tag == "feature-extraction"


def test_the_card_shows_the_experiment_scores_of_its_run(reference_run, tmp_path: Path) -> None:
    run = tmp_path / "exp" / "runs" / "cooc-topk" / "small" / "seed1" / "pretrain" / "checkpoints"
    run.mkdir(parents=True)
    (run / "last.ckpt").write_bytes((reference_run.run_dir / "checkpoints" / "last.ckpt").read_bytes())
    (tmp_path / "exp" / "results.csv").write_text(
        "strategy,backbone,seed,task,metric,value\n"
        "cooc-topk,small,1,similarity,triplet_acc,0.7125\n"
        "cooc-topk,small,0,similarity,triplet_acc,0.5\n"
        "artist,small,1,similarity,triplet_acc,0.25\n"
    )
    export_checkpoint(run / "last.ckpt", tmp_path / "m")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "| similarity | triplet_acc | 0.7125 |" in card
    assert "0.5 |" not in card and "0.25" not in card and "Not evaluated" not in card


def test_load_encoder_takes_the_export_or_the_checkpoint(reference_run, tmp_path: Path) -> None:
    import mixtape

    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    export_checkpoint(ckpt, tmp_path / "m")
    audio = np.random.default_rng(0).standard_normal(40000).astype(np.float32) * 0.1
    from_export = mixtape.load_encoder(tmp_path / "m", device="cpu")
    from_checkpoint = mixtape.load_encoder(ckpt, device="cpu")
    assert from_export.patch_frames == from_checkpoint.patch_frames == 64
    np.testing.assert_array_equal(from_export.embed(audio, 16000), from_checkpoint.embed(audio, 16000))


def test_onnx_with_the_front_end_inside_matches_the_python_api(reference_run, tiny_store, tmp_path: Path) -> None:
    """Waveform in, embedding out: the graph's log-mel (a DFT as convolution) and patch mean agree with
    `load_encoder(...).embed` to 1e-4, for lengths that are and are not a whole number of patches."""
    ort = pytest.importorskip("onnxruntime")
    import mixtape
    from mixtape.audio import load_audio

    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    result = export_checkpoint(ckpt, tmp_path / "m", onnx=True, onnx_input="waveform")
    assert result.onnx_max_diff is not None and result.onnx_max_diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "m" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "waveform"
    api = mixtape.load_encoder(tmp_path / "m", device="cpu")
    audio = load_audio(tiny_store.paths[2], 16000)
    for n in (len(audio), api.patch_samples, api.patch_samples + 5 * 256):
        (got,) = session.run(None, {"waveform": audio[None, :n]})
        np.testing.assert_allclose(got[0], api.embed(audio[:n], 16000), atol=1e-4)


def test_mel_axis_order_and_essentia_layout(reference_run, tiny_store, tmp_path: Path) -> None:
    """mixtape's encoders take [N, bands, frames] = [N, 96, P]; Essentia documents [batch, 128, 96] for its
    Discogs-EffNet input, i.e. frames first, which is what `log_mel` returns per track. `--onnx-input
    essentia` takes that layout unchanged, and Essentia's own TensorflowInputMusiCNN frames fed to it
    give the same embedding as mixtape's front end (to Essentia's single-precision noise)."""
    ort = pytest.importorskip("onnxruntime")
    from mixtape.audio import load_audio, log_mel

    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    encoder, meta = read_checkpoint_encoder(ckpt)
    p = meta["patch_frames"]
    export_checkpoint(ckpt, tmp_path / "mel", onnx=True)
    export_checkpoint(ckpt, tmp_path / "ess", onnx=True, onnx_input="essentia")
    mel_graph = ort.InferenceSession(str(tmp_path / "mel" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    ess_graph = ort.InferenceSession(str(tmp_path / "ess" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert mel_graph.get_inputs()[0].shape[1:] == [96, p]
    assert ess_graph.get_inputs()[0].shape[1:] == [p, 96]

    audio = load_audio(tiny_store.paths[0], 16000)
    frames = log_mel(audio)[:p]  # [frames, bands]: Essentia's layout
    assert frames.shape == (p, 96)
    with torch.no_grad():
        want = encoder(torch.from_numpy(frames.T.copy())[None]).numpy()
    (got,) = ess_graph.run(None, {"melspectrogram": frames[None]})
    np.testing.assert_allclose(got, want, atol=1e-4)
    (got_mel,) = mel_graph.run(None, {"melspectrogram": frames.T[None].copy()})
    np.testing.assert_allclose(got_mel, want, atol=1e-4)

    es = pytest.importorskip("essentia.standard")
    extractor = es.TensorflowInputMusiCNN()
    essentia_frames = np.array(
        [
            extractor(f)
            for f in es.FrameGenerator(
                audio, frameSize=512, hopSize=256, startFromZero=True, validFrameThresholdRatio=1
            )
        ][:p],
        dtype=np.float32,
    )
    (from_essentia,) = ess_graph.run(None, {"melspectrogram": essentia_frames[None]})
    cosine = float((from_essentia @ want.T).item() / np.linalg.norm(from_essentia) / np.linalg.norm(want))
    assert cosine > 0.999
