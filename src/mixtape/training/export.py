"""`mixtape export`: a pre-training checkpoint → the encoder alone, as a model folder (config.json,
model.safetensors, README.md model card) and ONNX.

Only the encoder leaves the run: the projection head and the similarity exist for the contrastive
loss and are not part of the representation that is evaluated, searched or shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixtape.fileio import file_checksum
from mixtape.models import Encoder
from mixtape.models.checkpoint import read_checkpoint_encoder
from mixtape.models.export import OnnxInput
from mixtape.training.card import DEFAULT_LICENSE, model_card, write_model_card

ONNX_FILE = "encoder.onnx"


def onnx_max_difference(
    encoder: Encoder, onnx_path: Path, patch_frames: int, onnx_input: str = "mel", mel: Any = None, seed: int = 0
) -> float | None:
    """Largest absolute difference between ONNX Runtime and mixtape's Python path (None without
    onnxruntime): on random patches for a mel input, on random audio of two lengths (a whole number of
    patches and not) against ``AudioEncoder`` for a waveform input."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return None
    from mixtape.models.bundle import EncoderBundle
    from mixtape.models.inference import AudioEncoder

    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    if onnx_input == "waveform":
        api = AudioEncoder(EncoderBundle(encoder, mel, patch_frames, str(onnx_path)), device="cpu")
        diffs = []
        for n_samples in (api.patch_samples + 3 * patch_frames * api.mel.hop_size, api.patch_samples * 3 + 4321):
            audio = (rng.standard_normal((2, n_samples)) * 0.1).astype(np.float32)
            (got,) = session.run(None, {name: audio})
            diffs.append(float(np.max(np.abs(got - api.embed_batch(list(audio), api.sample_rate)))))
        return max(diffs)
    x = rng.normal(size=(4, encoder.n_mels, patch_frames)).astype(np.float32)
    with torch.no_grad():
        want = encoder.eval()(torch.from_numpy(x)).numpy()
    (got,) = session.run(None, {name: x.transpose(0, 2, 1).copy() if onnx_input == "essentia" else x})
    return float(np.max(np.abs(got - want)))


@dataclass
class ExportResult:
    out_dir: Path
    config: Path
    onnx: Path | None
    backbone: str
    embedding_dim: int
    onnx_max_diff: float | None
    onnx_input: str | None = None

    def summary(self) -> str:
        lines = [
            f"exported {self.backbone} encoder ({self.embedding_dim}-d) to {self.out_dir}",
            f"  config.json + model.safetensors + README.md (model card): {self.out_dir}",
        ]
        if self.onnx is not None:
            check = (
                "not checked (onnxruntime not installed)"
                if self.onnx_max_diff is None
                else f"max |onnx - python| = {self.onnx_max_diff:.2e}"
            )
            lines.append(f"  onnx: {self.onnx}, input {self.onnx_input} ({check})")
        return "\n".join(lines)


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    onnx: bool = False,
    onnx_input: OnnxInput = "mel",
    license: str = DEFAULT_LICENSE,
    name: str | None = None,
) -> ExportResult:
    """Write ``config.json`` + ``model.safetensors`` (and ``encoder.onnx``) for a checkpoint's encoder,
    and the ``README.md`` model card.

    ``config.json`` is written after the weights and records the checksums of the checkpoint it came from
    and of the ONNX file, so ``mixtape doctor`` can tell a stale or replaced export. The folder is what
    ``huggingface_hub.upload_folder`` pushes (``pip install mixtape[hub]``).
    """
    from mixtape.audio.mel import MelConfig
    from mixtape.models.export import CONFIG_FILE, export_onnx, export_safetensors, read_export_config

    out_dir = Path(out_dir)
    encoder, meta = read_checkpoint_encoder(checkpoint)
    meta["checkpoint_checksum"] = file_checksum(checkpoint)
    (out_dir / CONFIG_FILE).unlink(missing_ok=True)  # the folder is incomplete until the new JSON lands
    onnx_path, diff = None, None
    if onnx:
        mel = MelConfig.model_validate(meta.get("mel") or {"n_mels": encoder.n_mels})
        onnx_path = export_onnx(
            encoder, out_dir / ONNX_FILE, encoder.n_mels, meta["patch_frames"], onnx_input=onnx_input, mel=mel
        )
        diff = onnx_max_difference(encoder, onnx_path, meta["patch_frames"], onnx_input, mel.model_dump(mode="json"))
        meta |= {"onnx": ONNX_FILE, "onnx_input": onnx_input, "onnx_checksum": file_checksum(onnx_path)}
    config = export_safetensors(encoder, out_dir, metadata=meta)
    card = model_card(
        read_export_config(out_dir),
        Path(checkpoint),
        name or out_dir.resolve().name,
        license,
        ONNX_FILE if onnx else None,
    )
    write_model_card(out_dir, card)
    result = ExportResult(
        out_dir, config, onnx_path, encoder.backbone_name, encoder.embedding_dim, diff, onnx_input if onnx else None
    )
    return result
