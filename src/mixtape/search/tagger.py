"""Predicted tags for the search page: a saved tag probe (``tagger.safetensors`` + ``tagger.json``),
loaded and applied to the vectors an index holds.

The probe is the evaluation's ``TagProbe`` (``mixtape.models.heads``), trained by
``mixtape.evaluation.tagger.train_tagger`` on L2-normalised embeddings, the vectors an index holds, so
the server can tag any indexed track from the index alone, and an uploaded file from its query vector.
The file records the fingerprint of the encoder whose embeddings it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from pydantic import Field

from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.models.heads import TagProbe
from mixtape.models.weights import build_for_weights, read_safetensors
from mixtape.stagefolder import StageFolder, StageHeader, register_stage_folder

log = get_logger(__name__)

WEIGHTS_FILE = "tagger.safetensors"


class TaggerHeader(StageHeader):
    """What ``tagger.json`` must hold to rebuild the probe: a damaged one is refused before any allocation."""

    tags: list[str]
    dim: int = Field(gt=0)
    hidden: int = Field(gt=0)
    dropout: float = Field(ge=0.0, lt=1.0)
    weights_checksum: str
    encoder: dict[str, Any] | None = None


TAGGER_FOLDER = register_stage_folder(
    StageFolder(
        "tagging model",
        "tagger.json",
        "mixtape-tagger",
        1,
        "make one with `mixtape tagger`",
        check_version=False,
        model=TaggerHeader,
    )
)
META_FILE = TAGGER_FOLDER.header_file


class TaggerError(MixtapeError):
    """A tagging model that is missing, damaged, or made for another encoder."""


def sigmoid_scores(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Tag probabilities of a probe for rows of ``x``."""
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
        path = Path(path)
        hint = "make a tagging model with `mixtape tagger`"
        header = cast(TaggerHeader, TAGGER_FOLDER.read(path, error=TaggerError, hint=hint))
        weights = path / WEIGHTS_FILE
        state = read_safetensors(weights, header.weights_checksum, META_FILE, TaggerError)
        # Built only once its shapes match the weights: a damaged tagger.json cannot make it allocate
        # more than they hold.
        model = build_for_weights(
            lambda: TagProbe(header.dim, len(header.tags), header.hidden, header.dropout),
            state,
            str(weights),
            TaggerError,
            f"weights do not fit the model in {META_FILE}",
        )
        return cls(path, header.model_dump(mode="json"), model)

    @property
    def encoder_fingerprint(self) -> str | None:
        return (self.meta.get("encoder") or {}).get("fingerprint")

    def predict(self, unit_vectors: np.ndarray) -> np.ndarray:
        """Tag probabilities ``[N, T]`` for L2-normalised vectors ``[N, D]``."""
        x = np.asarray(unit_vectors, dtype=np.float32).reshape(-1, int(self.meta["dim"]))
        with torch.no_grad():
            return sigmoid_scores(self.model, x)

    def top(self, unit_vector: np.ndarray, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` most probable tags of one vector: ``[{"tag", "p"}]``, most probable first."""
        p = self.predict(unit_vector)[0]
        order = np.argsort(-p, kind="stable")[:n]
        return [{"tag": self.tags[i], "p": round(float(p[i]), 4)} for i in order.tolist()]
