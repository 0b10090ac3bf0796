"""`mixtape tagger`: train the tag probe on a collection's embeddings and save it for the search page.

The probe is the evaluation's (same architecture, recipe and early stopping, ``mixtape.evaluation.probe``);
what this adds is the saved form the search page loads (``mixtape.search.tagger``), tied to the encoder
whose embeddings it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mixtape.evaluation.datasets import TagDataset, align_to_store
from mixtape.evaluation.metrics import tag_scores
from mixtape.evaluation.probe import ProbeConfig, train_probe
from mixtape.fileio import atomic_write_bytes, file_checksum
from mixtape.search.embeddings import Embeddings
from mixtape.search.index import unit_rows
from mixtape.search.tagger import TAGGER_FOLDER, WEIGHTS_FILE, sigmoid_scores


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
            f"tagger -> {self.out}: {self.tags} tags, trained on {self.train} tracks (validation {self.validation}, "
            f"test {self.test})",
            f"  test macro ROC-AUC {self.test_roc_auc:.3f}, PR-AUC {self.test_pr_auc:.3f} (validation PR-AUC "
            f"{self.val_pr_auc:.3f})",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def train_tagger(
    embeddings: str | Path, dataset: TagDataset, out: str | Path, config: ProbeConfig | None = None
) -> TaggerReport:
    """Train the probe on the tagged tracks of an embeddings folder and save it into ``out``.

    ``dataset``: a ``TagDataset`` (train/validation/test splits of tagged tracks);
    its tracks without an embedding are left out and reported.
    """
    from safetensors.torch import save as save_safetensors

    cfg = config or ProbeConfig()
    emb = Embeddings.open(embeddings)
    aligned = align_to_store(dataset, emb.tracks.track_ids, f"embeddings {emb.path}")
    x = {name: unit_rows(emb.vectors[split.rows]) for name, split in aligned.splits.items()}
    y = {name: split.labels for name, split in aligned.splits.items()}
    model, stopper = train_probe(x["train"], y["train"], x["validation"], y["validation"], cfg)
    probs = sigmoid_scores(model, x["test"])
    scores = tag_scores(y["test"], probs, aligned.tags, split="test")
    out = Path(out)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights = atomic_write_bytes(out / WEIGHTS_FILE, save_safetensors(tensors))
    meta = {
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
    TAGGER_FOLDER.write_header(out, meta)
    sizes = {name: len(split) for name, split in aligned.splits.items()}
    return TaggerReport(
        out,
        len(aligned.tags),
        sizes["train"],
        sizes["validation"],
        sizes["test"],
        float(stopper.best_score),
        float(scores.roc_auc),
        float(scores.pr_auc),
        list(aligned.notes),
    )
