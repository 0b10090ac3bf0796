"""`mixtape export`: a pre-training checkpoint → the encoder alone, as safetensors + JSON and ONNX.

Only the encoder leaves the run: the projection head and the similarity exist for the contrastive
loss and are not part of the representation that is evaluated, searched or shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixtape.fileio import file_checksum, get_logger
from mixtape.models import Encoder
from mixtape.models.checkpoint import read_checkpoint_encoder

log = get_logger(__name__)

ONNX_FILE = "encoder.onnx"


def onnx_max_difference(
    encoder: Encoder, onnx_path: Path, patch_frames: int, batch: int = 4, seed: int = 0
) -> float | None:
    """Largest absolute difference between ONNX Runtime and torch on random patches (None without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        return None
    from mixtape.models.export import ONNX_INPUT

    x = np.random.default_rng(seed).normal(size=(batch, encoder.n_mels, patch_frames)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {ONNX_INPUT: x})
    with torch.no_grad():
        want = encoder.eval()(torch.from_numpy(x)).numpy()
    return float(np.max(np.abs(got - want)))


@dataclass
class ExportResult:
    out_dir: Path
    config: Path
    onnx: Path | None
    backbone: str
    embedding_dim: int
    onnx_max_diff: float | None

    def summary(self) -> str:
        lines = [
            f"exported {self.backbone} encoder ({self.embedding_dim}-d) to {self.out_dir}",
            f"  safetensors + config: {self.config}",
        ]
        if self.onnx is not None:
            check = (
                "not checked (onnxruntime not installed)"
                if self.onnx_max_diff is None
                else f"max |onnx - torch| = {self.onnx_max_diff:.2e}"
            )
            lines.append(f"  onnx: {self.onnx} ({check})")
        return "\n".join(lines)


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, onnx: bool = False) -> ExportResult:
    """Write ``encoder.safetensors`` + ``encoder.json`` (and ``encoder.onnx``) for a checkpoint's encoder.

    ``encoder.json`` is written last and records the checksums of the checkpoint it came from and of
    the ONNX file, so ``mixtape doctor`` can tell a stale or replaced export.
    """
    from mixtape.models.export import CONFIG_FILE, export_onnx, export_safetensors

    out_dir = Path(out_dir)
    encoder, meta = read_checkpoint_encoder(checkpoint)
    meta["checkpoint_checksum"] = file_checksum(checkpoint)
    (out_dir / CONFIG_FILE).unlink(missing_ok=True)  # the folder is incomplete until the new JSON lands
    onnx_path, diff = None, None
    if onnx:
        onnx_path = export_onnx(encoder, out_dir / ONNX_FILE, n_mels=encoder.n_mels, patch_frames=meta["patch_frames"])
        diff = onnx_max_difference(encoder, onnx_path, meta["patch_frames"])
        meta |= {"onnx": ONNX_FILE, "onnx_checksum": file_checksum(onnx_path)}
    config = export_safetensors(encoder, out_dir, metadata=meta)
    result = ExportResult(out_dir, config, onnx_path, encoder.backbone_name, encoder.embedding_dim, diff)
    log.info("%s", result.summary())
    return result
