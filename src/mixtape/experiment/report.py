"""The experiment's figures: bar charts of every task's metrics and t-SNE maps of test embeddings.

Pure functions of the results rows or of embeddings; the runner decides which runs they draw and
caches the t-SNE coordinates beside the embeddings they come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mixtape.evaluation.plots import Bar, metric_bars
from mixtape.experiment.config import BASELINE
from mixtape.experiment.results import ResultRow, metric_title, summarize

#: Folder of the figures inside a run folder.
PLOTS = "plots"


def metric_bar_charts(rows: Sequence[ResultRow], out_dir: Path) -> list[Path]:
    """One PNG per task: a panel per metric, a bar per row (mean ± std over seeds), the baseline marked."""
    summary = summarize(rows)
    figures = []
    for task in dict.fromkeys(t for t, _ in summary.columns):
        panels = {
            metric_title(m): [
                Bar(summary.label(r), c.mean, c.std, r[0] == BASELINE)
                for r in summary.rows
                if (c := summary.cell(r, (task, m))) is not None
            ]
            for tt, m in summary.columns
            if tt == task
        }
        figures.append(metric_bars(f"{task} (mean ± std over seeds)", panels, out_dir / f"{task}.png"))
    return figures


def tsne_coordinates(x: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE of ``x`` (perplexity scaled down for small sets), float32."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    return (
        TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x).astype(np.float32)
    )
