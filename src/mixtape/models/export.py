"""Write a trained encoder for use outside mixtape: safetensors + JSON, and ONNX.

The folder has the layout the Hugging Face ecosystem loads (``config.json`` + ``model.safetensors``,
plus a ``README.md`` model card written by ``mixtape export``): ``EncoderBundle.load`` rebuilds the exact
``Encoder``; the JSON records the architecture, the input it expects (mel bands, patch frames, the mel
front-end config) and a checksum of the weights, so a stale or mismatched pair is detected.

The ONNX graph returns ``embeddings`` ``[N, D]`` and takes one of three inputs (``ONNX_INPUTS``):

- ``mel``: log-mel patches ``melspectrogram`` ``[N, n_mels, frames]`` = ``[N, 96, 128]``, mel bands as
  rows, the layout of mixtape's encoders;
- ``essentia``: ``melspectrogram`` ``[N, frames, n_mels]`` = ``[N, 128, 96]``, the layout Essentia
  documents for its Discogs-EffNet/MusiCNN models (``TensorflowInputMusiCNN`` frames stacked in time):
  the transpose of ``mel``, so Essentia's patches can be fed unchanged;
- ``waveform``: ``[N, samples]`` mono audio at the encoder's rate, the log-mel front end inside the
  graph (``WaveformEncoder``), one track-level embedding per row.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal, cast

import torch
from pydantic import Field
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from mixtape.audio.mel import MelConfig
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_bytes, file_checksum, get_logger
from mixtape.models.encoder import Encoder
from mixtape.models.waveform import WaveformEncoder
from mixtape.models.weights import build_for_weights, read_safetensors
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder

log = get_logger(__name__)

WEIGHTS_FILE = "model.safetensors"


class ExportHeader(StageHeader):
    """What ``config.json`` must hold to rebuild the encoder, typed (a damaged one is refused by name)."""

    backbone: str
    n_mels: int = Field(gt=0)
    embedding_dim: int = Field(gt=0)
    weights: str
    backbone_kwargs: dict[str, Any] = {}
    weights_checksum: str | None = None


EXPORT_FOLDER = register_stage_folder(
    StageFolder(
        "encoder export", "config.json", "mixtape-encoder", 1, "write one with `mixtape export`", model=ExportHeader
    )
)
CONFIG_FILE = EXPORT_FOLDER.header_file
ONNX_OPSET = 17
ONNX_INPUT = "melspectrogram"
ONNX_WAVEFORM_INPUT = "waveform"
ONNX_OUTPUT = "embeddings"
OnnxInput = Literal["mel", "essentia", "waveform"]
ONNX_INPUTS: tuple[OnnxInput, ...] = ("mel", "essentia", "waveform")
# Keys of config.json computed from the encoder itself; metadata may repeat them only with equal values.
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
    """Write ``model.safetensors`` and ``config.json`` into ``out_dir``; returns the JSON path.

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
    """The ``config.json`` of an export folder, typed and checked for what ``load_export_folder`` needs."""
    hint = f"is {out_dir} a folder written by `mixtape export`?"
    return cast(ExportHeader, EXPORT_FOLDER.read(out_dir, error=ExportError, hint=hint))


def read_export_config(out_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of an export folder as a dict (its typed fields checked)."""
    return _read_export_header(out_dir).model_dump(mode="json")


def load_export_folder(out_dir: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """The ``Encoder`` of an export folder (CPU, eval mode) and its ``config.json``, weights checked
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
    # Built only once its shapes match the weights: a damaged config.json cannot make it allocate more than
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


class FramesFirst(nn.Module):
    """Takes Essentia's ``[N, frames, n_mels]`` patches and feeds the encoder its ``[N, n_mels, frames]``."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.transpose(1, 2))


def _onnx_graph(
    encoder: Encoder, onnx_input: OnnxInput, n_mels: int, patch_frames: int, mel: MelConfig
) -> tuple[nn.Module, torch.Tensor, str, dict[int, str], dict[str, str]]:
    """The module to trace, a dummy input, the input's name, its dynamic axes and the metadata it records."""
    if onnx_input == "waveform":
        graph = WaveformEncoder(encoder, mel, patch_frames)
        props = {
            "input_layout": f"[N, samples >= {graph.min_samples}] mono at {mel.sample_rate} Hz",
            "sample_rate": str(mel.sample_rate),
            "min_samples": str(graph.min_samples),
            "mel": mel.model_dump_json(),
        }
        dummy = torch.zeros(2, graph.min_samples + 1000)
        return graph, dummy, ONNX_WAVEFORM_INPUT, {0: "N", 1: "samples"}, props
    if onnx_input == "essentia":
        layout = f"[N, {patch_frames} frames, {n_mels} mel bands] (Essentia's layout)"
        dummy = torch.zeros(2, patch_frames, n_mels)
        return FramesFirst(encoder), dummy, ONNX_INPUT, {0: "N"}, {"input_layout": layout}
    layout = f"[N, {n_mels} mel bands, {patch_frames} frames]"
    return encoder, torch.zeros(2, n_mels, patch_frames), ONNX_INPUT, {0: "N"}, {"input_layout": layout}


def export_onnx(
    encoder: Encoder,
    out_path: str | Path,
    n_mels: int = 96,
    patch_frames: int = 128,
    onnx_input: OnnxInput = "mel",
    mel: MelConfig | None = None,
) -> Path:
    """Write the encoder as an ONNX graph (opset 17) taking ``onnx_input`` (see the module docstring)
    and returning ``embeddings`` [N, D].

    The batch axis is dynamic (and the length, for ``waveform``). Exported in eval mode (running
    batch-norm statistics, no stochastic depth) from a float32 CPU copy; the graph is checked with
    ``onnx.checker`` and carries the backbone, input layout and shapes as metadata properties.
    """
    import onnx

    if not isinstance(encoder, Encoder):
        raise ExportError(f"export_onnx expects a mixtape Encoder, got {type(encoder).__name__}")
    if n_mels != encoder.n_mels:
        raise ExportError(f"export_onnx: n_mels={n_mels} but the encoder was built for {encoder.n_mels} mel bands")
    if patch_frames < 1:
        raise ExportError(f"export_onnx: patch_frames must be positive, got {patch_frames}")
    if onnx_input not in ONNX_INPUTS:
        raise ExportError(f"export_onnx: onnx_input must be one of {', '.join(ONNX_INPUTS)}, got {onnx_input!r}")
    mel = mel or MelConfig(n_mels=n_mels)
    if mel.n_mels != n_mels:
        raise ExportError(f"export_onnx: the mel config has n_mels={mel.n_mels} but the encoder takes {n_mels}")
    out_path = Path(out_path)
    model = _cpu_eval_copy(encoder)
    graph_module, dummy, input_name, dynamic, extra = _onnx_graph(model, onnx_input, n_mels, patch_frames, mel)
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs the
        # extra onnxscript package; the traced graph of these plain CNNs is the same either way.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            graph_module.eval(),
            (dummy,),
            Path(scratch) / "graph.onnx",  # a path, as the exporter's signature asks (not a buffer)
            dynamo=False,
            input_names=[input_name],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={input_name: dynamic, ONNX_OUTPUT: {0: "N"}},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )
        graph = onnx.load(Path(scratch) / "graph.onnx")
    props = {
        "backbone": model.backbone_name,
        "input": onnx_input,
        "n_mels": str(n_mels),
        "patch_frames": str(patch_frames),
        "embedding_dim": str(model.embedding_dim),
        "producer": "mixtape",
    } | extra
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    atomic_write_bytes(out_path, graph.SerializeToString())
    log.info(
        "exported %s encoder to ONNX %s (input %s %s)", model.backbone_name, out_path, input_name, props["input_layout"]
    )
    return out_path
