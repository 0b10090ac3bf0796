"""Predicted tags for the search page: the evaluation's MLP probe, trained on a collection's embeddings.

The probe is ``mixtape.evaluation.probe`` unchanged (same architecture, recipe and early stopping); what
this module adds is what serving needs and evaluation does not: the trained probe saved to disk
(``tagger.safetensors`` + ``tagger.json``) and loaded again, tied to the encoder whose embeddings it
reads. It is trained on L2-normalised embeddings, the vectors an index holds, so the server can tag
any indexed track from the index alone, and an uploaded file from its query vector.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixtape.errors import MixtapeError
from mixtape.io import atomic_write_bytes, atomic_write_text, file_checksum, get_logger, read_json_header
from mixtape.models.weights import build_for_weights

from .embeddings import Embeddings
from .index import unit_rows

log = get_logger(__name__)

WEIGHTS_FILE = "tagger.safetensors"
META_FILE = "tagger.json"
FORMAT_NAME = "mixtape-tagger"


class TaggerError(MixtapeError):
    """A tagging model that is missing, damaged, or made for another encoder."""


@dataclass
class TaggerReport:
    out: Path
    tags: int
    train: int
    validation: int
    test: int
    val_pr_auc: float
    test_roc_auc: float
    test_pr_auc: float
    notes: list[str]

    def summary(self) -> str:
        lines = [
            f"tagger -> {self.out}: {self.tags} tags, trained on {self.train} tracks (validation {self.validation}, test {self.test})",
            f"  test macro ROC-AUC {self.test_roc_auc:.3f}, PR-AUC {self.test_pr_auc:.3f} (validation PR-AUC {self.val_pr_auc:.3f})",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def train_tagger(embeddings: str | Path, dataset: Any, out: str | Path, config: Any | None = None) -> TaggerReport:
    """Train the probe on the tagged tracks of an embeddings folder and save it into ``out``.

    ``dataset``: a ``mixtape.evaluation.TagDataset`` (train/validation/test splits of tagged tracks);
    its tracks without an embedding are left out and reported.
    """
    from safetensors.torch import save as save_safetensors

    from mixtape.evaluation import ProbeConfig, align_to_store, tag_scores, train_probe

    cfg = config or ProbeConfig()
    emb = Embeddings.open(embeddings)
    aligned = align_to_store(dataset, emb.tracks.track_ids, f"embeddings {emb.path}")
    x = {name: unit_rows(emb.vectors[split.rows]) for name, split in aligned.splits.items()}
    y = {name: split.labels for name, split in aligned.splits.items()}
    model, stopper = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg)
    probs = _sigmoid(model, x["test"])
    scores = tag_scores(y["test"], probs, aligned.tags, split="test")
    out = Path(out)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights = atomic_write_bytes(out / WEIGHTS_FILE, save_safetensors(tensors))
    meta = {
        "format": FORMAT_NAME,
        "version": 1,
        "tags": list(aligned.tags),
        "dim": int(x["train"].shape[1]),
        "hidden": cfg.hidden,
        "dropout": cfg.dropout,
        "input": "L2-normalised track embeddings",
        "encoder": emb.encoder_info,
        "embeddings": {"path": str(emb.path.resolve()), "checksum": emb.checksum},
        "dataset": aligned.name,
        "val_pr_auc": float(stopper.best_score),
        "test_roc_auc": float(scores.roc_auc),
        "test_pr_auc": float(scores.pr_auc),
        "weights_checksum": file_checksum(weights),
        "config": cfg.model_dump(mode="json"),
    }
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2) + "\n")
    sizes = {name: len(split) for name, split in aligned.splits.items()}
    return TaggerReport(out, len(aligned.tags), sizes["train"], sizes["validation"], sizes["test"], float(stopper.best_score), float(scores.roc_auc), float(scores.pr_auc), list(aligned.notes))


def _sigmoid(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))).numpy()


class Tagger:
    """A saved probe: tag probabilities for unit track vectors."""

    def __init__(self, path: Path, meta: dict[str, Any], model: torch.nn.Module) -> None:
        self.path = path
        self.meta = meta
        self.model = model.eval()
        self.tags: list[str] = list(meta["tags"])

    @classmethod
    def load(cls, path: str | Path) -> Tagger:
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        from mixtape.evaluation.probe import TagProbe

        path = Path(path)
        meta = read_json_header(
            path / META_FILE,
            kind="tagging model",
            format_name=FORMAT_NAME,
            version=None,
            missing_hint="make a tagging model with `mixtape tagger`",
            error=TaggerError,
            required=("tags", "dim", "hidden", "dropout", "weights_checksum"),
        )
        tags, dropout, encoder = meta["tags"], meta["dropout"], meta.get("encoder")
        sizes_ok = all(isinstance(meta[k], int) and not isinstance(meta[k], bool) and meta[k] > 0 for k in ("dim", "hidden"))
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags) and sizes_ok and isinstance(dropout, (int, float)) and 0 <= dropout < 1 and isinstance(encoder, (dict, type(None)))):
            raise TaggerError(f"{path / META_FILE}: damaged (tags must be a list of names, dim and hidden positive integers, dropout in [0, 1), encoder an object); re-run `mixtape tagger`")
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise TaggerError(f"{weights}: missing")
        if file_checksum(weights) != meta.get("weights_checksum"):
            raise TaggerError(f"{weights}: checksum differs from {META_FILE} (replaced or truncated)")
        try:
            state = load_safetensors(weights.read_bytes())
        except SafetensorError as err:
            raise TaggerError(f"{weights}: not a readable safetensors file: {err}") from None
        # Built only once its shapes match the weights: a damaged tagger.json cannot make it allocate more than they hold.
        model = build_for_weights(
            lambda: TagProbe(meta["dim"], len(tags), meta["hidden"], float(dropout)), state, str(weights), TaggerError, f"weights do not fit the model in {META_FILE}"
        )
        return cls(path, meta, model)

    @property
    def encoder_fingerprint(self) -> str | None:
        return (self.meta.get("encoder") or {}).get("fingerprint")

    def predict(self, unit_vectors: np.ndarray) -> np.ndarray:
        """Tag probabilities ``[N, T]`` for L2-normalised vectors ``[N, D]``."""
        x = np.asarray(unit_vectors, dtype=np.float32).reshape(-1, int(self.meta["dim"]))
        with torch.no_grad():
            return _sigmoid(self.model, x)

    def top(self, unit_vector: np.ndarray, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` most probable tags of one vector: ``[{"tag", "p"}]``, most probable first."""
        p = self.predict(unit_vector)[0]
        order = np.argsort(-p, kind="stable")[:n]
        return [{"tag": self.tags[i], "p": round(float(p[i]), 4)} for i in order.tolist()]
