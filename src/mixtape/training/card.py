"""The model card (``README.md``) of an export folder, in the Hugging Face format: YAML metadata
(licence, library, tags, pipeline) and sections a reader of a model hub expects: what the model is,
how to call it, its input front end, how it was trained, and how it scored.

The evaluation table comes from the experiment the checkpoint belongs to, when there is one: an
experiment keeps pre-training runs at ``runs/<strategy>/<backbone>/seed<k>/pretrain/`` and its scores
in ``results.csv`` at its root (``mixtape.experiment``), so the rows of that strategy, backbone and seed
are the card's table. A checkpoint trained by ``mixtape pretrain`` alone has no scores, and the card
says so rather than inventing any.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from mixtape.audio.mel import MelConfig
from mixtape.fileio import atomic_write_bytes, get_logger

log = get_logger(__name__)

README_FILE = "README.md"
#: Licence written when none is given: the weights' terms follow from the audio they were trained on.
DEFAULT_LICENSE = "unknown"


def experiment_scores(checkpoint: Path) -> tuple[Path, list[tuple[str, str, str]]] | None:
    """``(results.csv, [(task, metric, value)])`` of the experiment run a checkpoint belongs to, or None."""
    parts = checkpoint.resolve().parts
    # .../<root>/runs/<strategy>/<backbone>/seed<k>/pretrain/checkpoints/<file>.ckpt
    if len(parts) < 8 or parts[-3] != "pretrain" or parts[-7] != "runs" or not parts[-4].startswith("seed"):
        return None
    strategy, backbone, seed = parts[-6], parts[-5], parts[-4][len("seed") :]
    results = Path(*parts[:-7]) / "results.csv"
    if not results.is_file():
        return None
    rows = []
    try:
        for row in csv.DictReader(io.StringIO(results.read_text(encoding="utf-8"))):
            if (row.get("strategy"), row.get("backbone"), row.get("seed")) == (strategy, backbone, seed):
                rows.append((row.get("task") or "", row.get("metric") or "", row.get("value") or ""))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        log.warning("model card: cannot read the scores in %s (%s); the card gets no evaluation table", results, err)
        return None
    return (results, rows) if rows else None


def _run_config(checkpoint: Path) -> dict[str, Any]:
    """The resolved pre-training config saved beside ``checkpoints/`` (empty when absent or unreadable)."""
    path = checkpoint.parent.parent / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def model_card(
    config: dict[str, Any], checkpoint: Path | None, name: str, license: str = DEFAULT_LICENSE, onnx: str | None = None
) -> str:
    """The card of an export whose ``config.json`` is ``config``, trained in ``checkpoint``'s run."""
    mel = MelConfig.model_validate(config.get("mel") or {})
    patch_frames = int(config.get("patch_frames", 128))
    patch_seconds = mel.samples_for(patch_frames) / mel.sample_rate
    run = _run_config(checkpoint) if checkpoint is not None else {}
    model, data, trainer, optim = (run.get(k) or {} for k in ("model", "data", "trainer", "optim"))
    strategy = config.get("strategy") or "unknown"
    meta = {
        "license": license,
        "library_name": "mixtape",
        "pipeline_tag": "feature-extraction",
        "tags": ["audio", "music", "embeddings", "contrastive-learning", "mixtape", f"strategy-{strategy}"],
    }
    front_end = [
        ("sample rate", f"{mel.sample_rate} Hz (any input rate is resampled with soxr, {mel.resample_quality})"),
        ("frames", f"{mel.frame_size} samples, hop {mel.hop_size}, window {mel.window}, centred: {mel.center}"),
        ("mel bands", f"{mel.n_mels} ({mel.mel_scale} scale, {mel.mel_norm} norm), {mel.fmin:g}-{mel.fmax:g} Hz"),
        ("compression", f"log10(1 + {mel.log_multiplier:g} x) of the power mel spectrum, rounded to float16"),
        ("network input", f"[N, {mel.n_mels} mel bands, {patch_frames} frames] = {patch_seconds:.2f} s patches"),
        ("track embedding", "mean over non-overlapping patches (plus one ending at the track's end)"),
    ]
    training = [
        ("positive pairs", f"`{strategy}` (playlist / artist / album / self strategies: mixtape docs/pairs.md)"),
        ("steps", config.get("step", "unknown")),
        ("similarity", f"{model.get('similarity', config.get('similarity', 'unknown'))}"),
    ]
    if model.get("temperature") is not None:
        training.append(("temperature", model["temperature"]))
    if data:
        training += [
            ("batch", f"{data.get('batch_size')} pairs"),
            ("feature store", f"`{data.get('store')}`"),
            ("positives", f"`{data.get('positives')}`"),
        ]
    if optim:
        training.append(("optimiser", f"{optim.get('name')}, lr {optim.get('lr')}"))
    if trainer:
        training.append(("precision / devices", f"{trainer.get('precision')} / {trainer.get('devices')}"))
    scores = experiment_scores(checkpoint) if checkpoint is not None else None
    if scores is None:
        evaluation = (
            "Not evaluated in this run. Score it with `mixtape probe` (tagging) and `mixtape similarity` "
            "(triplets, held-out playlists), or train it inside `mixtape experiment`, whose scores this card shows."
        )
    else:
        source, rows = scores
        evaluation = f"From `{source}` (this run's seed; the experiment's report has every seed):\n\n" + _table(
            ("task", "metric", "value"), [(t, m, v) for t, m, v in rows]
        )
    files = [("config.json", "architecture and input contract"), ("model.safetensors", "encoder weights")]
    if onnx:
        files.append((onnx, "ONNX graph (see config.json's `onnx_input` for its input)"))
    backbone, dim = config.get("backbone", "?"), config.get("embedding_dim", "?")
    return "\n".join(
        [
            "---",
            yaml.safe_dump(meta, sort_keys=False).strip(),
            "---",
            "",
            f"# {name}",
            "",
            f"A music audio encoder ({backbone}, {dim}-d embeddings) pre-trained with contrastive learning on "
            f"`{strategy}` positive pairs by mixtape, after "
            '"Pre-Training Strategies Using Contrastive Learning and Playlist Information for Music '
            'Classification and Similarity" (ICASSP 2023). The embedding serves tagging (genre, mood, '
            "instruments) and music similarity.",
            "",
            "## Use",
            "",
            "```python",
            "import mixtape",
            "",
            'encoder = mixtape.load_encoder("path/to/this/folder")   # device="cuda" for a GPU',
            "vector = encoder.embed(waveform, sample_rate=44100)      # numpy or torch, mono or multichannel",
            "vectors = encoder.embed_files(paths)                     # bad files: NaN rows + .failures",
            "```",
            "",
            "HEAR 2021: `hear-validator mixtape.hear -m path/to/this/folder`.",
            "",
            "## Architecture",
            "",
            _table(
                ("field", "value"),
                [
                    ("backbone", f"`{backbone}` {json.dumps(config.get('backbone_kwargs') or {})}"),
                    ("embedding", f"{dim}-d"),
                ],
            ),
            "",
            "## Input front end",
            "",
            _table(("field", "value"), front_end),
            "",
            "## Training",
            "",
            _table(("field", "value"), training),
            "",
            "## Evaluation",
            "",
            evaluation,
            "",
            "## Files",
            "",
            _table(("file", "holds"), files),
            "",
            "## Licence",
            "",
            f"`{license}`. The terms of these weights follow from the audio they were trained on; set the "
            "licence with `mixtape export --license`.",
            "",
        ]
    )


def write_model_card(out_dir: Path, text: str) -> Path:
    return atomic_write_bytes(out_dir / README_FILE, text.encode("utf-8"))
