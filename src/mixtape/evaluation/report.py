"""Writing evaluation results: ``metrics.json``, a per-tag (or per-query) CSV, predictions; all atomic.

The files are meant for both people and the experiment runner: metric names are the runner's
(``roc_auc``, ``pr_auc``, ``triplet_acc``, ``ndcg@10`` …), NaN is written as ``null`` in JSON and as an
empty cell in CSV, and the per-tag table says why an excluded tag was excluded.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mixtape.evaluation.similarity import SimilarityResult
from mixtape.evaluation.tagging import TaggingResult
from mixtape.fileio import atomic_write_text

METRICS_FILE = "metrics.json"
PER_TAG_FILE = "per_tag.csv"
PREDICTIONS_FILE = "predictions.csv"
PER_QUERY_FILE = "per_query.csv"
MISSING_FILE = "missing_features.csv"


def _json_safe(value: Any) -> Any:
    """NaN/inf → None, numpy scalars → Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")


def _csv_text(header: list[str], rows: list[list[Any]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(
            [
                "" if isinstance(v, float) and not math.isfinite(v) else (f"{v:.6g}" if isinstance(v, float) else v)
                for v in row
            ]
        )
    return buf.getvalue()


def write_table(path: str | Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    """A CSV (or, with ``delimiter="\\t"``, TSV) table written atomically; NaN as an empty cell, floats to 6 digits."""
    return atomic_write_text(path, _csv_text(header, rows, delimiter))


def write_tagging_outputs(
    result: TaggingResult, out_dir: str | Path, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """``metrics.json`` (metrics, data report, excluded tags), ``per_tag.csv``, ``predictions.csv``
    (test tracks × tags), and ``missing_features.csv`` (track_id, split) when some of the dataset's
    tracks had no features."""
    out = Path(out_dir)
    metrics = {
        "task": result.method,
        "dataset": result.dataset,
        "metrics": result.metrics(),
        "excluded_tags": result.test.excluded,
        "data": result.data,
        "val_pr_auc_history": result.val_history,
        **(extra or {}),
    }
    per_tag = [[r.tag, r.positives, r.negatives, r.roc_auc, r.pr_auc, r.excluded] for r in result.test.per_tag]
    preds = [[tid, *map(float, row)] for tid, row in zip(result.test_track_ids, result.predictions, strict=True)]
    files = {
        "metrics": write_json(out / METRICS_FILE, metrics),
        "per_tag": atomic_write_text(
            out / PER_TAG_FILE, _csv_text(["tag", "positives", "negatives", "roc_auc", "pr_auc", "excluded"], per_tag)
        ),
        "predictions": atomic_write_text(out / PREDICTIONS_FILE, _csv_text(["track_id", *result.tags], preds)),
    }
    if result.missing:
        missing = [[tid, split] for split, ids in result.missing.items() for tid in ids]
        files["missing"] = atomic_write_text(out / MISSING_FILE, _csv_text(["track_id", "split"], missing))
    return files


def write_similarity_outputs(
    result: SimilarityResult, track_ids: list[str], out_dir: str | Path, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """``metrics.json`` (metrics + notes) and, when retrieval ran, ``per_query.csv`` (one row per query track)."""
    out = Path(out_dir)
    files = {
        "metrics": write_json(
            out / METRICS_FILE,
            {"task": "similarity", "metrics": result.metrics, "notes": result.notes, **(extra or {})},
        )
    }
    pq = result.per_query
    if "query" in pq:
        cols = [c for c in pq if c not in ("query", "relevant")]
        rows = [
            [track_ids[int(q)], int(r), *(float(pq[c][i]) for c in cols)]
            for i, (q, r) in enumerate(zip(pq["query"], pq["relevant"], strict=True))
        ]
        files["per_query"] = atomic_write_text(out / PER_QUERY_FILE, _csv_text(["track_id", "relevant", *cols], rows))
    return files


def tagging_table(result: TaggingResult, max_tags: int = 20) -> str:
    """The printed report: macro metrics, then the per-tag table (best and worst tags when there are many)."""
    lines = [result.summary(), "", f"{'tag':<32} {'pos':>5} {'ROC-AUC':>8} {'PR-AUC':>8}"]
    rows = sorted((r for r in result.test.per_tag if not r.excluded), key=lambda r: -r.pr_auc)
    shown = rows if len(rows) <= max_tags else rows[: max_tags // 2] + rows[-(max_tags // 2) :]
    for i, r in enumerate(shown):
        if len(rows) > max_tags and i == max_tags // 2:
            lines.append(f"{'…':<32}")
        lines.append(f"{r.tag[:32]:<32} {r.positives:>5} {r.roc_auc:>8.4f} {r.pr_auc:>8.4f}")
    return "\n".join(lines)
