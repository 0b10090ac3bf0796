"""Predicted tags for the search page: a saved tag probe (``tagger.safetensors`` + ``tagger.json``),
loaded and applied to the vectors an index holds.

The probe is the evaluation's ``TagProbe`` (``mixtape.models.heads``), trained by
``mixtape.evaluation.tagger.train_tagger`` on L2-normalised embeddings, the vectors an index holds, so
the server can tag any indexed track from the index alone, and an uploaded file from its query vector.
The file records the fingerprint of the encoder whose embeddings it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixtape.errors import MixtapeError
from mixtape.fileio import get_logger
from mixtape.models.heads import TagProbe
from mixtape.models.weights import build_for_weights, read_safetensors
from mixtape.stagefolder import StageFolder, register_stage_folder

log = get_logger(__name__)

WEIGHTS_FILE = "tagger.safetensors"
TAGGER_FOLDER = register_stage_folder(
    StageFolder(
        "tagging model", "tagger.json", "mixtape-tagger", 1, "make one with `mixtape tagger`", check_version=False
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
        meta = TAGGER_FOLDER.read_header(
            path,
            error=TaggerError,
            required=("tags", "dim", "hidden", "dropout", "weights_checksum"),
            hint="make a tagging model with `mixtape tagger`",
        )
        tags, dropout, encoder = meta["tags"], meta["dropout"], meta.get("encoder")
        sizes_ok = all(
            isinstance(meta[k], int) and not isinstance(meta[k], bool) and meta[k] > 0 for k in ("dim", "hidden")
        )
        if not (
            isinstance(tags, list)
            and all(isinstance(t, str) for t in tags)
            and sizes_ok
            and isinstance(dropout, (int, float))
            and 0 <= dropout < 1
            and isinstance(encoder, (dict, type(None)))
        ):
            raise TaggerError(
                f"{path / META_FILE}: damaged (tags must be a list of names, dim and hidden positive integers, dropout "
                "in [0, 1), encoder an object); re-run `mixtape tagger`"
            )
        weights = path / WEIGHTS_FILE
        state = read_safetensors(weights, meta.get("weights_checksum"), META_FILE, TaggerError)
        # Built only once its shapes match the weights: a damaged tagger.json cannot make it allocate
        # more than they hold.
        model = build_for_weights(
            lambda: TagProbe(meta["dim"], len(tags), meta["hidden"], float(dropout)),
            state,
            str(weights),
            TaggerError,
            f"weights do not fit the model in {META_FILE}",
        )
        return cls(path, meta, model)

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
