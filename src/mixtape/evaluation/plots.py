"""Figures of the comparison table: bar charts of each task's metrics, and 2-D maps of test embeddings.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no
display needed) and written atomically as PNG, so a report never links a half-written image.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtape.fileio import atomic_write_bytes

#: Colours of the bars, one per row of the table (the baseline row is drawn grey and hatched).
_PALETTE = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)
_BASELINE_COLOUR = "#b0b0b0"
_MAX_CLASSES = 10  # colours of a map; rarer labels are drawn as "other"


@dataclass
class Bar:
    """One bar of a metric panel: a table row's mean over seeds and its spread."""

    label: str
    mean: float
    std: float
    baseline: bool = False


def _save(fig: object, out: Path, dpi: int = 110) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)  # type: ignore[attr-defined]
    return atomic_write_bytes(out, buffer.getvalue())


def _figure(width: float, height: float) -> object:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def metric_bars(title: str, panels: Mapping[str, Sequence[Bar]], out: str | Path) -> Path:
    """One panel per metric (own y-axis: hubness and accuracies do not share a scale), one bar per row,
    the standard deviation over seeds as an error bar."""
    names = list(panels)
    n_rows = max((len(b) for b in panels.values()), default=1)
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    fig = _figure(max(4.0, cols * (1.2 + 0.45 * n_rows)), 3.1 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)  # type: ignore[attr-defined]
    for ax, metric in zip(axes.ravel(), names, strict=False):
        bars = list(panels[metric])
        x = np.arange(len(bars))
        means = np.array([b.mean for b in bars], dtype=float)
        stds = np.array([b.std if np.isfinite(b.std) else 0.0 for b in bars], dtype=float)
        colours = [_BASELINE_COLOUR if b.baseline else _PALETTE[i % len(_PALETTE)] for i, b in enumerate(bars)]
        spread = any(np.isfinite(b.std) for b in bars)
        drawn = ax.bar(
            x,
            np.nan_to_num(means),
            yerr=stds if spread else None,
            color=colours,
            capsize=3,
            edgecolor="black",
            linewidth=0.4,
        )
        for patch, b in zip(drawn, bars, strict=True):
            if b.baseline:
                patch.set_hatch("//")
        finite = np.isfinite(means)
        if finite.any():
            # Bars start at zero (a cut axis would make small gaps look large); the values are written on them.
            low = min(0.0, float(np.min(means[finite] - stds[finite])))
            high = max(0.0, float(np.max(means[finite] + stds[finite])))
            pad = max((high - low) * 0.15, 1e-3)
            ax.set_ylim(low - (pad if low < 0 else 0.0), high + pad)
            for xi, m, sd in zip(x[finite], means[finite], stds[finite], strict=True):
                ax.text(
                    xi,
                    m + sd + pad * 0.1 if m >= 0 else m - sd - pad * 0.1,
                    f"{m:.3f}",
                    ha="center",
                    va="bottom" if m >= 0 else "top",
                    fontsize=7,
                )
        ax.set_xticks(x)
        ax.set_xticklabels([b.label for b in bars], rotation=35, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)  # type: ignore[attr-defined]
    fig.tight_layout()  # type: ignore[attr-defined]
    return _save(fig, Path(out))


@dataclass
class EmbeddingMap:
    """2-D coordinates of one encoder's test tracks, with a label per track for each colouring."""

    title: str
    coords: np.ndarray  # [n, 2]
    labels: Mapping[str, Sequence[str]]  # colouring name → one label per track ("" = no tag)


def _class_colours(labels: Sequence[Sequence[str]]) -> dict[str, str]:
    """The same colour for a label in every panel of a row of maps: by overall frequency, top ones only."""
    counts: dict[str, int] = {}
    for per_map in labels:
        for label in per_map:
            if label:
                counts[label] = counts.get(label, 0) + 1
    top = sorted(counts, key=lambda k: (-counts[k], k))[:_MAX_CLASSES]
    return {label: _PALETTE[i % len(_PALETTE)] for i, label in enumerate(top)}


def embedding_maps(maps: Sequence[EmbeddingMap], colourings: Sequence[str], out: str | Path, title: str = "") -> Path:
    """A grid of scatter plots: one column per encoder, one row per colouring (e.g. genre, mood)."""
    n_cols, n_rows = max(1, len(maps)), max(1, len(colourings))
    fig = _figure(3.3 * n_cols + 1.8, 3.3 * n_rows + 0.4)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)  # type: ignore[attr-defined]
    for r, colouring in enumerate(colourings):
        colours = _class_colours([m.labels.get(colouring, []) for m in maps])
        for c, m in enumerate(maps):
            ax = axes[r, c]
            labels = np.asarray(list(m.labels.get(colouring, [""] * len(m.coords))), dtype=object)
            other = np.array([lab not in colours for lab in labels], dtype=bool)
            if other.any():
                ax.scatter(m.coords[other, 0], m.coords[other, 1], s=6, c="#d0d0d0", label="other / none", linewidths=0)
            for label, colour in colours.items():
                sel = labels == label
                if sel.any():
                    ax.scatter(m.coords[sel, 0], m.coords[sel, 1], s=8, c=colour, label=label, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(m.title, fontsize=9)
            if c == 0:
                ax.set_ylabel(colouring, fontsize=9)
            if c == n_cols - 1:
                ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False, markerscale=1.5)
    if title:
        fig.suptitle(title, fontsize=10)  # type: ignore[attr-defined]
    fig.tight_layout()  # type: ignore[attr-defined]
    return _save(fig, Path(out))
