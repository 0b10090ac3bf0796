"""Write a trained encoder for use outside mixtape: safetensors + JSON, and ONNX.

The safetensors pair (``encoder.safetensors`` + ``encoder.json``) rebuilds the exact ``Encoder``
with ``EncoderBundle.load``; the JSON records the architecture, the input it expects (mel bands, patch
frames, the mel front-end config) and a checksum of the weights, so a stale or mismatched pair is
detected. The ONNX graph takes log-mel patches ``[N, 96, 128]`` named ``melspectrogram`` (as
Essentia's Discogs-EffNet models do) and returns ``embeddings`` ``[N, D]``.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from pydantic import Field
from safetensors.torch import save as save_safetensors_bytes

from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_bytes, file_checksum, get_logger
from mixtape.models.encoder import Encoder
from mixtape.models.weights import build_for_weights, read_safetensors
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder

log = get_logger(__name__)

WEIGHTS_FILE = "encoder.safetensors"


class ExportHeader(StageHeader):
    """What ``encoder.json`` must hold to rebuild the encoder, typed (a damaged one is refused by name)."""

    backbone: str
    n_mels: int = Field(gt=0)
    embedding_dim: int = Field(gt=0)
    weights: str
    backbone_kwargs: dict[str, Any] = {}
    weights_checksum: str | None = None


EXPORT_FOLDER = register_stage_folder(
    StageFolder(
        "encoder export", "encoder.json", "mixtape-encoder", 1, "write one with `mixtape export`", model=ExportHeader
    )
)
CONFIG_FILE = EXPORT_FOLDER.header_file
ONNX_OPSET = 17
ONNX_INPUT = "melspectrogram"
ONNX_OUTPUT = "embeddings"
# Keys of encoder.json computed from the encoder itself; metadata may repeat them only with equal values.
_DERIVED_KEYS = (
    "format",
    "version",
    "backbone",
    "n_mels",
    "backbone_kwargs",
    "embedding_dim",
    "weights",
    "weights_checksum",
)


class ExportError(MixtapeError, ValueError):
    """An export that cannot be written, or an exported folder that cannot be loaded."""


def _cpu_eval_copy(encoder: Encoder) -> Encoder:
    """A float32 CPU copy in eval mode, so exporting never changes the caller's (training) module."""
    return copy.deepcopy(encoder).to(device="cpu", dtype=torch.float32).eval()


def export_safetensors(encoder: Encoder, out_dir: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``encoder.safetensors`` and ``encoder.json`` into ``out_dir``; returns the JSON path.

    ``metadata`` is stored in the JSON as given (it must be JSON-serialisable): the training engine
    passes ``patch_frames`` (default 128) and ``mel`` (the front-end config dict), and may add the
    strategy, step or run folder. The weights are written first and the JSON last, so a complete
    JSON always describes complete weights.
    """
    if not isinstance(encoder, Encoder):
        raise ExportError(f"export_safetensors expects a mixtape Encoder, got {type(encoder).__name__}")
    out_dir = Path(out_dir)
    metadata = dict(metadata or {})
    model = _cpu_eval_copy(encoder)
    info: dict[str, Any] = EXPORT_FOLDER.header(**model.config())
    for key in _DERIVED_KEYS:
        if key in metadata and key in info and metadata[key] != info[key]:
            raise ExportError(f"metadata key '{key}'={metadata[key]!r} contradicts the encoder ({info[key]!r})")
    patch_frames = metadata.pop("patch_frames", 128)
    if not isinstance(patch_frames, int) or patch_frames < 1:
        raise ExportError(f"metadata key 'patch_frames' must be a positive int, got {patch_frames!r}")
    tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    weights_path = atomic_write_bytes(
        out_dir / WEIGHTS_FILE, save_safetensors_bytes(tensors, metadata={"format": EXPORT_FOLDER.format})
    )
    info.update(
        {
            "patch_frames": patch_frames,
            "mel": metadata.pop("mel", {}),
            "weights": WEIGHTS_FILE,
            "weights_checksum": file_checksum(weights_path),
        }
    )
    info.update({k: v for k, v in metadata.items() if k not in _DERIVED_KEYS})
    config_path = EXPORT_FOLDER.write_header(out_dir, info, error=ExportError)
    log.info("exported %s encoder (%d-d) to %s", model.backbone_name, model.embedding_dim, out_dir)
    return config_path


def _read_export_header(out_dir: str | Path) -> ExportHeader:
    """The ``encoder.json`` of an export folder, typed and checked for what ``load_export_folder`` needs."""
    hint = f"is {out_dir} a folder written by `mixtape export`?"
    return cast(ExportHeader, EXPORT_FOLDER.read(out_dir, error=ExportError, hint=hint))


def read_export_config(out_dir: str | Path) -> dict[str, Any]:
    """The ``encoder.json`` of an export folder as a dict (its typed fields checked)."""
    return _read_export_header(out_dir).model_dump(mode="json")


def load_export_folder(out_dir: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """The ``Encoder`` of an export folder (CPU, eval mode) and its ``encoder.json``, weights checked
    against the JSON. Callers use ``EncoderBundle.load``, which adds the input contract."""
    out_dir = Path(out_dir)
    header = _read_export_header(out_dir)
    info = header.model_dump(mode="json")
    config = out_dir / CONFIG_FILE
    kwargs = header.backbone_kwargs
    if Path(header.weights).name != header.weights:
        raise ExportError(f"{config}: 'weights' must name a file of {out_dir}, got {header.weights!r}")
    weights_path = out_dir / header.weights
    state = read_safetensors(weights_path, header.weights_checksum, CONFIG_FILE, ExportError)
    # Built only once its shapes match the weights: a damaged encoder.json cannot make it allocate more than
    # they hold.
    encoder = build_for_weights(
        lambda: Encoder(header.backbone, header.n_mels, **kwargs),
        state,
        str(weights_path),
        ExportError,
        f"weights do not fit backbone {header.backbone!r} as {CONFIG_FILE} records it",
    )
    if encoder.embedding_dim != header.embedding_dim:
        raise ExportError(
            f"{config}: embedding_dim {header.embedding_dim!r} but backbone '{header.backbone}' "
            f"gives {encoder.embedding_dim}"
        )
    return encoder.eval(), info


def export_onnx(encoder: Encoder, out_path: str | Path, n_mels: int = 96, patch_frames: int = 128) -> Path:
    """Write the encoder as an ONNX graph (opset 17): ``melspectrogram`` [N, n_mels, patch_frames] →
    ``embeddings`` [N, D].

    Only the batch axis is dynamic. Exported in eval mode (running batch-norm statistics, no
    stochastic depth) from a float32 CPU copy; the graph is checked with ``onnx.checker`` and carries
    the backbone name and input shape as metadata properties.
    """
    import onnx

    if not isinstance(encoder, Encoder):
        raise ExportError(f"export_onnx expects a mixtape Encoder, got {type(encoder).__name__}")
    if n_mels != encoder.n_mels:
        raise ExportError(f"export_onnx: n_mels={n_mels} but the encoder was built for {encoder.n_mels} mel bands")
    if patch_frames < 1:
        raise ExportError(f"export_onnx: patch_frames must be positive, got {patch_frames}")
    out_path = Path(out_path)
    model = _cpu_eval_copy(encoder)
    dummy = torch.zeros(2, n_mels, patch_frames)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs the
        # extra onnxscript package; the traced graph of these plain CNNs is the same either way.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            buffer,
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "N"}, ONNX_OUTPUT: {0: "N"}},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    props = {
        "backbone": model.backbone_name,
        "n_mels": str(n_mels),
        "patch_frames": str(patch_frames),
        "embedding_dim": str(model.embedding_dim),
        "producer": "mixtape",
    }
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    atomic_write_bytes(out_path, graph.SerializeToString())
    log.info(
        "exported %s encoder to ONNX %s (input %s [N, %d, %d])",
        model.backbone_name,
        out_path,
        ONNX_INPUT,
        n_mels,
        patch_frames,
    )
    return out_path
