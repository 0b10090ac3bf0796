"""`mixtape experiment CONFIG`: the comparison table of pre-training strategies.

A config lists pair strategies × backbones × seeds × downstream tasks. The runner builds what is
missing, in stages that each call the project's own functions (never the CLI):

    world / features   the embedded world (when configured) and the feature store
    pairs              one positives folder per strategy (per seed for strategies that take one)
    pretrain           one run per (strategy, backbone, seed)
    evaluate           probe / fine-tune / similarity of every run, and of a randomly initialised
                       encoder (the baseline row: what the table would say without pre-training)
    report             results.csv (long format), results.md (mean ± std over seeds, best in bold,
                       a generated verdict), bar charts, t-SNE maps of test embeddings

Every step is skipped when its output exists and was made from the same inputs (pairs: input
checksums; pre-training: the resolved config and the final step; evaluation: the checkpoint's
checksum, the task config and the data files' checksums), so a killed experiment continues where it
stopped when re-run. One run that fails is recorded and reported, and the others go on.

The run folder::

    experiment.yaml                       the resolved config
    features/                             feature store (unless data.features names one)
    holdout_tracks.txt                    tracks kept out of pre-training (the tag test split)
    pairs/<strategy>[/seed<k>]/           positives (mixtape pairs)
    runs/<strategy>/<backbone>/seed<k>/pretrain/   checkpoints, logs, training_curve.png
    runs/<strategy>/<backbone>/seed<k>/eval/<task>/ metrics.json, per-tag / per-query tables
    runs/random-init/<backbone>/seed<k>/eval/      the baseline
    results.csv, results.md, plots/*.png, failures.json
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import Field, field_validator, model_validator

from mixtape.config import ConfigError, StrictConfig, load_config
from mixtape.errors import MixtapeError
from mixtape.evaluation.finetune import FinetuneConfig
from mixtape.evaluation.probe import ProbeConfig
from mixtape.evaluation.similarity import SimilarityConfig
from mixtape.io import atomic_open, atomic_write_text, file_checksum, get_logger, progress
from mixtape.training.config import DataConfig, ModelConfig, OptimConfig, PretrainConfig, TrainerConfig

log = get_logger(__name__)
T = TypeVar("T")

RESULT_COLUMNS = ("strategy", "backbone", "seed", "task", "metric", "value")
TAGGING_METRICS = ("roc_auc", "pr_auc")
BASELINE = "random-init"
BASELINE_TITLE = "random init (no pre-training)"
#: Strategies whose positives come from playlists, and those they are compared against in the verdict.
PLAYLIST_BASED = ("playlist", "cooc-topk", "track2vec")
ARTIST_OR_SELF = ("artist", "album", "self")
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
PLOTS = "plots"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def similarity_metric_names(k: int = 10) -> tuple[str, ...]:
    """The similarity metrics that go into the table (the rest stay in each run's metrics.json)."""
    return ("triplet_acc", f"ndcg@{k}", f"map@{k}", f"p@{k}", f"ndcg@{k}_artist_filtered", f"artist_p@{k}", "hubness")


# --- configuration ---------------------------------------------------------------------------------


class WorldSource(StrictConfig):
    """The embedded world as the data: its folder, generated there first when ``size`` is given."""

    path: Path
    size: Literal["tiny", "small", "medium", "large"] | None = Field(None, description="generate the world when the folder holds none")
    seed: int = 0


class DataSection(StrictConfig):
    """Where the tracks, playlists, tags and triplets are: a world folder, or a user's own files.

    Paths given here win over the world's; relative paths start from the working directory.
    """

    world: WorldSource | None = None
    tracks: list[Path] = Field(default_factory=list, description="tracks table(s) whose audio is extracted (CSV/TSV track_id,path[,artist_id,album_id]; MTG-Jamendo TSVs)")
    pretrain_tracks: list[Path] = Field(default_factory=list, description="the table(s) pair strategies and the similarity pool draw from (default: tracks)")
    audio_root: Path | None = None
    playlists: list[Path] = Field(default_factory=list, description="training playlists (files or folders)")
    heldout: list[Path] = Field(default_factory=list, description="held-out playlists: retrieval ground truth, never a positive")
    mapping: Path | None = None
    match: Literal["auto", "id", "path"] = "auto"
    holdout_tracks: Path | None = Field(None, description="track list kept out of pre-training")
    holdout_test_split: bool = Field(True, description="also keep the tag test split's tracks out of pre-training")
    tag_dataset: Literal["mtg-jamendo", "magnatagatune", "csv"] = "mtg-jamendo"
    splits: Path | None = Field(None, description="mtg-jamendo: splits folder; csv: folder of train/validation/test lists")
    tags: Path | None = Field(None, description="magnatagatune: annotations_final.csv; csv: track_id,tags file")
    split_index: int = 0
    triplets: Path | None = None
    features: Path | None = Field(None, description="feature store (extracted here from the tracks when incomplete); default OUT/features")
    workers: int | None = Field(None, ge=1, description="processes for world rendering and feature extraction (default: all cores)")

    @field_validator("tracks", "pretrain_tracks", "playlists", "heldout", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value


class StrategySpec(StrictConfig):
    """One row of the table: a pair strategy with its parameters (``label`` tells two variants apart)."""

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    @model_validator(mode="after")
    def _check(self) -> StrategySpec:
        from mixtape.pairs.run import resolve_params
        from mixtape.pairs.strategies import STRATEGIES

        if self.name not in STRATEGIES:
            raise ValueError(f"unknown pair strategy {self.name!r} (choose among {', '.join(STRATEGIES)})")
        if "seed" in self.params:
            raise ValueError(f"strategy {self.key}: 'seed' comes from the experiment's `seeds`, not from params")
        try:
            accepted = resolve_params(self.name, dict(self.params))
        except MixtapeError as err:
            raise ValueError(f"strategy {self.key}: {err}") from None
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            raise ValueError(f"strategy {self.key}: {self.name} takes no parameter(s) {unknown} (it takes: {', '.join(sorted(accepted)) or 'none'})")
        if not _LABEL.match(self.key) or self.key == BASELINE:
            raise ValueError(f"strategy label {self.key!r} must be letters, digits, '.', '_', '+', '-' (and not {BASELINE!r}): it names folders")
        return self


class BackboneSpec(StrictConfig):
    """An encoder architecture of the registry, with its options."""

    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    @model_validator(mode="after")
    def _check(self) -> BackboneSpec:
        from mixtape.models.registry import backbone_names

        names = backbone_names()
        if self.name not in names:
            raise ValueError(f"unknown backbone {self.name!r}; registered backbones: {', '.join(names)}")
        if not _LABEL.match(self.key):
            raise ValueError(f"backbone label {self.key!r} must be letters, digits, '.', '_', '+', '-': it names folders")
        return self


class PretrainData(StrictConfig):
    """The data-loading part of the pre-training config (store and positives come from the grid)."""

    patch_frames: int = Field(128, ge=8)
    batch_size: int = Field(256, ge=2)
    workers: int = Field(4, ge=0)
    prefetch: int = Field(4, ge=1)


class PretrainSection(StrictConfig):
    """Pre-training settings shared by every run; backbone and seed come from the grid."""

    data: PretrainData = Field(default_factory=PretrainData)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _grid_keys(self) -> PretrainSection:
        set_here = [f"model.{k}" for k in ("backbone", "backbone_options") if k in self.model.model_fields_set]
        set_here += ["trainer.seed"] if "seed" in self.trainer.model_fields_set else []
        if set_here:
            raise ValueError(f"{', '.join(set_here)} come(s) from the grid (`backbones`, `seeds`), not from `pretrain`")
        return self


class TasksSection(StrictConfig):
    """The downstream tasks of every run, and the t-SNE maps."""

    probe: list[str] = Field(default_factory=lambda: ["genre", "moodtheme", "instrument"], description="tag subsets probed on frozen embeddings")
    finetune: list[str] = Field(default_factory=list, description="tag subsets fine-tuned on (the whole encoder; slow)")
    similarity: bool = True
    maps: list[str] = Field(default_factory=lambda: ["genre", "moodtheme"], description="tag subsets that colour the t-SNE maps of test embeddings")
    baseline: bool = Field(True, description="evaluate a randomly initialised encoder too (the no-pre-training row)")
    probe_config: ProbeConfig = Field(default_factory=ProbeConfig)
    finetune_config: FinetuneConfig = Field(default_factory=FinetuneConfig)
    similarity_config: SimilarityConfig = Field(default_factory=SimilarityConfig)
    embed_batch_size: int = Field(64, ge=1, description="patches per forward pass when embedding tracks")
    device: str = "cpu"

    @model_validator(mode="after")
    def _grid_seed(self) -> TasksSection:
        for name in ("probe_config", "finetune_config"):
            if "seed" in getattr(self, name).model_fields_set:
                raise ValueError(f"{name}.seed comes from the experiment's `seeds`")
        return self


def _as_specs(value: Any) -> Any:
    """``[self, {name: cooc-topk, params: {k: 5}}]``: a bare name stands for ``{name: ...}``."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class ExperimentConfig(StrictConfig):
    """A grid of strategies × backbones × seeds × tasks, and where its data and results are."""

    name: str = "experiment"
    out: Path = Path("runs/experiment")
    data: DataSection
    strategies: list[StrategySpec] = Field(min_length=1)
    backbones: list[BackboneSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    pretrain: PretrainSection = Field(default_factory=PretrainSection)
    tasks: TasksSection = Field(default_factory=TasksSection)
    threads: int | None = Field(None, ge=1, description="torch CPU threads during the experiment (1 is fastest for small models on a busy machine)")

    @field_validator("strategies", "backbones", mode="before")
    @classmethod
    def _names_as_specs(cls, value: Any) -> Any:
        return _as_specs(value)

    def dump(self) -> dict[str, Any]:
        """The config as plain data that loads back: without the keys the grid sets (backbone, seeds)."""
        grid_set = {
            "pretrain": {"model": {"backbone", "backbone_options"}, "trainer": {"seed"}},
            "tasks": {"probe_config": {"seed"}, "finetune_config": {"seed"}},
        }
        return self.model_dump(mode="json", exclude=grid_set)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        for what, keys in (("strategy", [s.key for s in self.strategies]), ("backbone", [b.key for b in self.backbones]), ("seed", self.seeds)):
            repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
            if repeated:
                raise ValueError(f"{what} {', '.join(repeated)} listed twice (give variants a distinct `label`)")
        return self


def load_experiment_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment YAML; ``overrides`` (dotted keys, e.g. ``pretrain.trainer.max_steps``) win."""
    return load_config(ExperimentConfig, path, overrides)


# --- results: long format, summary, Markdown ---------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    strategy: str
    backbone: str
    seed: int
    task: str
    metric: str
    value: float


def results_csv_text(rows: Sequence[ResultRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RESULT_COLUMNS)
    for r in rows:
        w.writerow([r.strategy, r.backbone, r.seed, r.task, r.metric, "nan" if not math.isfinite(r.value) else f"{r.value:.6g}"])
    return buf.getvalue()


def read_results(path: str | Path) -> list[ResultRow]:
    """Rows of a results.csv; a malformed row is skipped and logged with its line number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MixtapeError(f"results file not found: {path} (run the experiment first)") from None
    except UnicodeDecodeError as err:
        raise MixtapeError(f"{path}: not UTF-8 text ({err}); delete it and re-run the experiment to rewrite it from the finished runs") from None
    try:
        header = [h.strip() for h in _csv_fields(lines[0])] if lines else []
    except csv.Error:
        header = []
    if tuple(header) != RESULT_COLUMNS:
        raise MixtapeError(f"{path}: header {header} is not {','.join(RESULT_COLUMNS)}")
    rows: list[ResultRow] = []
    bad: list[str] = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            fields = _csv_fields(line)
        except csv.Error as err:  # an over-long field, or a NUL in old Pythons
            bad.append(f"line {lineno}: {err}")
            continue
        if not fields:
            continue
        try:
            if len(fields) != len(RESULT_COLUMNS) or not all(f.strip() for f in fields[:5]):
                raise ValueError(f"{len(fields)} fields")
            rows.append(ResultRow(fields[0], fields[1], int(fields[2]), fields[3], fields[4], float(fields[5]) if fields[5].strip() else math.nan))
        except ValueError as err:
            bad.append(f"line {lineno}: {err}")
    if bad:
        log.warning("%s: %d malformed row(s) skipped: %s", path, len(bad), "; ".join(bad[:5]))
    return rows


def _csv_fields(line: str) -> list[str]:
    """One line's fields: results.csv has no field spanning lines, so one bad quote spoils one row only."""
    return next(csv.reader([line]), [])


@dataclass
class Cell:
    """A metric of one table row over its seeds."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        v = [x for x in self.values if math.isfinite(x)]
        return float(np.mean(v)) if v else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (NaN with one seed: no spread was measured)."""
        v = [x for x in self.values if math.isfinite(x)]
        return float(np.std(v, ddof=1)) if len(v) > 1 else math.nan

    def text(self, digits: int = 3) -> str:
        if not math.isfinite(self.mean):
            return "–"
        return f"{self.mean:.{digits}f}" if not math.isfinite(self.std) else f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


Column = tuple[str, str]  # (task, metric)
RowKey = tuple[str, str]  # (strategy, backbone)


@dataclass
class Summary:
    """results.csv folded over seeds: rows (strategy, backbone) × columns (task, metric)."""

    rows: list[RowKey]
    columns: list[Column]
    cells: dict[tuple[RowKey, Column], Cell]

    def cell(self, row: RowKey, column: Column) -> Cell | None:
        return self.cells.get((row, column))

    def label(self, row: RowKey) -> str:
        name = BASELINE_TITLE if row[0] == BASELINE else row[0]
        return name if len({b for _, b in self.rows}) == 1 else f"{name} · {row[1]}"

    def seeds(self, row: RowKey) -> int:
        return max((c.n for (r, _), c in self.cells.items() if r == row), default=0)


def _metric_rank(metric: str) -> int:
    order = [*TAGGING_METRICS, "triplet_acc", "ndcg@", "map@", "p@", "ndcg@_artist_filtered", "artist_p@", "hubness"]
    generic = re.sub(r"@\d+", "@", metric)
    return order.index(generic) if generic in order else len(order)


def summarize(rows: Sequence[ResultRow]) -> Summary:
    """Group by row and column; the baseline first, then rows and tasks in order of first appearance."""
    keys: list[RowKey] = []
    tasks: list[str] = []
    metrics: dict[str, list[str]] = {}
    cells: dict[tuple[RowKey, Column], Cell] = {}
    for r in rows:
        key = (r.strategy, r.backbone)
        if key not in keys:
            keys.append(key)
        if r.task not in tasks:
            tasks.append(r.task)
        if r.metric not in metrics.setdefault(r.task, []):
            metrics[r.task].append(r.metric)
        cells.setdefault((key, (r.task, r.metric)), Cell([])).values.append(r.value)
    keys.sort(key=lambda k: k[0] != BASELINE)  # stable: the baseline rows first
    columns = [(t, m) for t in tasks for m in sorted(metrics[t], key=_metric_rank)]
    return Summary(keys, columns, cells)


def direction(metric: str) -> Literal["higher", "lower", "none"]:
    """Which way a metric is better: hubness is a defect; same-artist precision only describes the space."""
    if metric.startswith("hubness"):
        return "lower"
    if metric.startswith("artist_p@"):
        return "none"
    return "higher"


def best_rows(summary: Summary, column: Column) -> list[RowKey]:
    """The rows with the best mean in ``column`` (all of them on a tie); none for an unranked metric."""
    how = direction(column[1])
    means = {r: c.mean for r in summary.rows if (c := summary.cell(r, column)) is not None and math.isfinite(c.mean)}
    if how == "none" or not means:
        return []
    target = max(means.values()) if how == "higher" else min(means.values())
    return [r for r, m in means.items() if abs(m - target) <= 1e-12]


_METRIC_TITLES = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "triplet_acc": "triplet acc.",
    "hubness": "hubness",
}


def metric_title(metric: str) -> str:
    if metric in _METRIC_TITLES:
        title = _METRIC_TITLES[metric]
    else:
        title = metric.replace("ndcg@", "nDCG@").replace("map@", "mAP@").replace("artist_p@", "artist P@").replace("_artist_filtered", " artist-filtered")
        title = re.sub(r"^p@", "P@", title)
    arrow = {"higher": " ↑", "lower": " ↓", "none": ""}[direction(metric)]
    return title + arrow


def column_title(column: Column) -> str:
    task, metric = column
    subject = task.split("-", 1)[1] if task.startswith(("probe-", "finetune-")) else ""
    return f"{subject} {metric_title(metric)}".strip()


_FAMILIES = (
    ("probe", "Tagging: MLP probe on frozen embeddings (macro over tags, test split)"),
    ("finetune", "Tagging: whole encoder fine-tuned (macro over tags, test split)"),
    ("similarity", "Similarity: cosine on frozen embeddings (triplets, held-out playlist retrieval, hubness)"),
)


def _family(task: str) -> str:
    return task.split("-", 1)[0] if task.startswith(("probe-", "finetune-")) else task


def markdown_tables(summary: Summary) -> str:
    """One table per task family (tagging probe, fine-tuning, similarity, others): a row per strategy,
    a column per task metric, ``mean ± std`` over seeds, the best of each column in bold."""
    families = [f for f, _ in _FAMILIES]
    present = list(dict.fromkeys(_family(t) for t, _ in summary.columns))
    present.sort(key=lambda f: families.index(f) if f in families else len(families))
    titles = dict(_FAMILIES)
    blocks: list[str] = []
    for fam in present:
        cols = [c for c in summary.columns if _family(c[0]) == fam]
        best = {c: set(best_rows(summary, c)) for c in cols}
        lines = [f"### {titles.get(fam, fam)}", "", "| strategy | seeds | " + " | ".join(column_title(c) for c in cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for row in summary.rows:
            cells = []
            for c in cols:
                cell = summary.cell(row, c)
                text = cell.text() if cell is not None else "–"
                cells.append(f"**{text}**" if row in best[c] else text)
            lines.append(f"| {summary.label(row)} | {summary.seeds(row)} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _strategy_kind(label: str, kinds: dict[str, str] | None) -> str:
    """The pair strategy behind a row label (a label may name a variant, e.g. ``cooc-topk-k5``)."""
    if kinds and label in kinds:
        return kinds[label]
    from mixtape.pairs.strategies import STRATEGIES

    matches = [s for s in STRATEGIES if label == s or re.match(re.escape(s) + r"[-_:+.]", label)]
    return max(matches, key=len) if matches else label


def primary_columns(summary: Summary) -> list[Column]:
    """The metric the verdict judges each task by: PR-AUC for tagging (it moves more than ROC-AUC
    on rare tags), triplet accuracy and plain nDCG@k for similarity."""
    out: list[Column] = []
    for task in dict.fromkeys(t for t, _ in summary.columns):
        metrics = [m for t, m in summary.columns if t == task]
        if _family(task) in ("probe", "finetune") and "pr_auc" in metrics:
            out.append((task, "pr_auc"))
        elif task == "similarity":
            out += [(task, m) for m in metrics if m == "triplet_acc" or re.fullmatch(r"ndcg@\d+", m)]
    return out


_LEVEL = 5e-4  # means closer than this print the same at three decimals: called level, not a win


def _compare(a: Cell, b: Cell) -> tuple[int, bool]:
    """Whether ``a`` beats ``b`` (higher is better): 1, -1 or 0 (level), and whether by more than one std."""
    diff = a.mean - b.mean
    if abs(diff) < _LEVEL:
        return 0, False
    spread = max((s for s in (a.std, b.std) if math.isfinite(s)), default=math.nan)
    return (1 if diff > 0 else -1), bool(math.isfinite(spread) and abs(diff) > spread)


def _ranked(summary: Summary, rows: Sequence[RowKey], col: Column) -> list[tuple[RowKey, Cell]]:
    """Rows with a finite mean in ``col``, best first (every verdict metric is higher-is-better)."""
    cells = [(r, c) for r in rows if (c := summary.cell(r, col)) is not None and math.isfinite(c.mean)]
    return sorted(cells, key=lambda rc: -rc[1].mean)


def _best_per_task(summary: Summary, col: Column, trained: Sequence[RowKey], baseline: RowKey | None, one_seed: bool) -> str:
    ranked = _ranked(summary, trained, col)
    name = f"{col[0]} {metric_title(col[1]).rstrip(' ↑')}"
    if not ranked:
        return f"{name}: not measured"
    (best, bc), rest = ranked[0], ranked[1:]
    text = f"{name}: **{summary.label(best)}** ({bc.text()})"
    if rest:
        second, sc = rest[0]
        sign, clear = _compare(bc, sc)
        if sign == 0:
            text += f", level with {summary.label(second)} ({sc.text()})"
        elif one_seed:
            text += f", ahead of {summary.label(second)} by {bc.mean - sc.mean:.3f} (one seed: no spread measured)"
        elif clear:
            text += f", ahead of {summary.label(second)} by {bc.mean - sc.mean:.3f}, more than one std"
        else:
            text += f", within one std of {summary.label(second)} ({sc.text()})"
    base = summary.cell(baseline, col) if baseline is not None else None
    if base is not None and math.isfinite(base.mean) and _compare(bc, base)[0] <= 0:
        text += f", yet no better than {BASELINE_TITLE} ({base.text()})"
    return text


def _tally(pairs: Sequence[tuple[Cell, Cell]]) -> tuple[int, int, int, int]:
    """(wins, clear wins, losses, clear losses) of the first cell of each pair over the second."""
    wins = clear_wins = losses = clear_losses = 0
    for a, b in pairs:
        sign, clear = _compare(a, b)
        wins, clear_wins = wins + (sign > 0), clear_wins + (sign > 0 and clear)
        losses, clear_losses = losses + (sign < 0), clear_losses + (sign < 0 and clear)
    return wins, clear_wins, losses, clear_losses


def verdict(summary: Summary, kinds: dict[str, str] | None = None) -> str:
    """Two sentences computed from the table: the best strategy per task (its lead over the runner-up
    against one std, and against the random-init baseline), then whether playlist-based strategies
    beat artist/self and what pre-training added over random weights."""
    cols = primary_columns(summary)
    if not cols:
        return "No tagging PR-AUC or similarity metric was measured, so no strategy can be called best."
    one_seed = all(summary.seeds(r) <= 1 for r in summary.rows)
    trained = [r for r in summary.rows if r[0] != BASELINE]
    baseline = next((r for r in summary.rows if r[0] == BASELINE), None)
    sentences = ["Best per task: " + "; ".join(_best_per_task(summary, c, trained, baseline, one_seed) for c in cols) + "."]

    def top(group: Sequence[str] | None, col: Column) -> Cell | None:
        rows = [r for r in trained if group is None or _strategy_kind(r[0], kinds) in group]
        ranked = _ranked(summary, rows, col)
        return ranked[0][1] if ranked else None

    def counts(wins: int, clear_wins: int, losses: int, clear_losses: int, n: int) -> str:
        if one_seed:
            return f"better on {wins} of {n} of these metrics, worse on {losses} (one seed: no spread measured)"
        return f"better on {wins} of {n} of these metrics ({clear_wins} by more than one std), worse on {losses} ({clear_losses} by more than one std)"

    clauses: list[str] = []
    playlist_rows = [summary.label(r) for r in trained if _strategy_kind(r[0], kinds) in PLAYLIST_BASED]
    other_rows = [summary.label(r) for r in trained if _strategy_kind(r[0], kinds) in ARTIST_OR_SELF]
    if playlist_rows and other_rows:
        pairs = [(pl, ot) for c in cols if (pl := top(PLAYLIST_BASED, c)) is not None and (ot := top(ARTIST_OR_SELF, c)) is not None]
        if pairs:
            w, cw, lo, cl = _tally(pairs)
            head = "beat" if w > lo else "did not beat" if w < lo else "were level overall with"
            clauses.append(f"playlist-based strategies ({', '.join(playlist_rows)}) {head} artist/self ({', '.join(other_rows)}) on this run: {counts(w, cw, lo, cl, len(pairs))}")
    elif trained:
        missing = "artist/self strategy" if playlist_rows else "playlist-based strategy"
        clauses.append(f"the grid has no {missing}, so playlist positives are not compared with artist/self ones")
    if baseline is not None and trained:
        pairs = [(t, b) for c in cols if (t := top(None, c)) is not None and (b := summary.cell(baseline, c)) is not None and math.isfinite(b.mean)]
        if pairs:
            w, cw, lo, cl = _tally(pairs)
            text = f"the best pre-trained strategy against {BASELINE_TITLE}: {counts(w, cw, lo, cl, len(pairs))}"
            never = [
                summary.label(r)
                for r in trained
                if not any(_compare(c, b)[0] > 0 for col in cols if (c := summary.cell(r, col)) is not None and (b := summary.cell(baseline, col)) is not None and math.isfinite(c.mean) and math.isfinite(b.mean))
            ]
            if never:
                text += f"; {', '.join(never)} beat random init on none of them"
            clauses.append(text)
    if clauses:
        sentence = "; ".join(clauses) + "."
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


def results_markdown(
    rows: Sequence[ResultRow],
    title: str = "experiment",
    figures: Sequence[tuple[str, str]] = (),
    failures: Sequence[str] = (),
    kinds: dict[str, str] | None = None,
) -> str:
    """results.md: legend, the tables, failed runs, figures (caption, relative path), and the verdict last."""
    summary = summarize(rows)
    lines = [f"# {title}: pre-training strategies compared", ""]
    if not rows:
        lines += ["No result yet.", ""] + ([*[f"- {f}" for f in failures], ""] if failures else [])
        return "\n".join(lines)
    n_seeds = max(summary.seeds(r) for r in summary.rows)
    lines += [
        f"Mean ± sample std over seeds (up to {n_seeds} per row; a single seed shows the value alone); the best of each column is in **bold** "
        "(↑ higher is better, ↓ lower is better; artist P@k, the share of neighbours by the query's own artist, describes the space and is not ranked). "
        f"`{BASELINE_TITLE}` is the same encoder evaluated with its initial weights: what the table would show without pre-training.",
        "",
        markdown_tables(summary),
        "",
    ]
    if failures:
        lines += ["### Failed runs (left out of the table)", "", *[f"- {f}" for f in failures], ""]
    if figures:
        lines += ["### Figures", ""]
        lines += [f"![{caption}]({path})" for caption, path in figures]
        lines.append("")
    lines += [
        "### Verdict",
        "",
        "_Generated from the numbers above: tagging is judged by PR-AUC, similarity by triplet accuracy and nDCG@k; "
        "a gap is \"within one std\" when it is smaller than the larger standard deviation over seeds of the two rows._",
        "",
        verdict(summary, kinds),
        "",
    ]
    return "\n".join(lines)


# --- the runner ------------------------------------------------------------------------------------


@dataclass
class WorkLog:
    """What a run of the experiment did, found up to date, or could not do."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unit:
    """One (strategy, backbone, seed) cell of the grid; ``strategy`` None is the random-init baseline."""

    strategy: StrategySpec | None
    backbone: BackboneSpec
    seed: int

    @property
    def label(self) -> str:
        return self.strategy.key if self.strategy is not None else BASELINE

    @property
    def key(self) -> tuple[str, str, int]:
        return self.label, self.backbone.key, self.seed

    def folder(self, root: Path) -> Path:
        return root / "runs" / self.label / self.backbone.key / f"seed{self.seed}"

    def describe(self) -> str:
        return f"{self.label} · {self.backbone.key} · seed {self.seed}"


@dataclass
class ExperimentResult:
    out: Path
    results_csv: Path
    results_md: Path
    table: str
    figures: list[Path]
    curves: dict[str, Path]
    work: WorkLog

    def summary(self) -> str:
        w = self.work
        lines = [
            self.table,
            "",
            f"work: {len(w.ran)} step(s) run, {len(w.skipped)} up to date, {len(w.failed)} failed",
            *[f"  failed: {f}" for f in w.failed],
            f"results: {self.results_csv}",
            f"table:   {self.results_md}",
        ]
        return "\n".join(lines)


@dataclass
class _EvalData:
    """What every evaluation shares: the store, the tag datasets on it, the similarity pool."""

    store: Any
    tag_sets: dict[str, Any]  # subset → TagDataset (as read)
    aligned: dict[str, Any]  # subset → AlignedTagDataset (on the store)
    pool: Any | None
    triplets: Any | None
    rows: np.ndarray  # store rows every task needs an embedding for
    fingerprint: str  # checksums of the data files the metrics depend on


def _digest(obj: Any) -> str:
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` CPU threads in torch and in the BLAS/OpenMP pools (t-SNE, matrix products).

    On a busy 2-core machine, threads of small kernels spin-wait on each other: measured there, one
    thread embedded tracks 10x faster than two, pre-trained the small CNN 3x faster, and ran t-SNE of
    166 tracks in 0.6 s instead of 7.9 s. ``None`` leaves the libraries' defaults.
    """
    import torch
    from threadpoolctl import threadpool_limits

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


class Experiment:
    """The runner: each stage is a method (the demo times them one by one); ``run`` does them all."""

    def __init__(self, config: ExperimentConfig, out: str | Path | None = None) -> None:
        self.config = config
        self.out = Path(out) if out is not None else Path(config.out)
        self.work = WorkLog()
        self._world: Any = None
        self._eval: _EvalData | None = None
        self._pairs: dict[tuple[str, int], Path] = {}
        self._checkpoints: dict[tuple[str, str, int], Path] = {}
        self._pretrained = False
        self._paired = False
        self._unevaluated: set[tuple[str, str, int]] = set()

    # -- the grid --

    def units(self, baseline: bool = False) -> list[Unit]:
        """Every (strategy, backbone, seed) to pre-train; with ``baseline``, the random-init ones first."""
        c = self.config
        grid = [Unit(s, b, seed) for s in c.strategies for b in c.backbones for seed in c.seeds]
        if baseline and c.tasks.baseline:
            grid = [Unit(None, b, seed) for b in c.backbones for seed in c.seeds] + grid
        return grid

    def _attempt(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one step of the batch; a failure is logged and recorded, and the batch goes on."""
        try:
            return fn()
        except KeyboardInterrupt:
            raise
        except Exception as err:  # one bad run must not cost the others
            log.error("%s failed: %s", what, err, exc_info=not isinstance(err, MixtapeError))
            self.work.failed.append(f"{what}: {type(err).__name__}: {err}")
            return None

    # -- data --

    def world(self) -> Any:
        """Generate (or reopen) the configured world; None when the data are a user's own files."""
        from mixtape.world import World, synth

        src = self.config.data.world
        if src is None:
            return None
        if self._world is None:
            if src.size is not None:
                self._world = synth(src.path, size=src.size, seed=src.seed, workers=self.config.data.workers)
            else:
                self._world = World.load(src.path)
        return self._world

    def _paths(self) -> dict[str, Any]:
        """The data files, the world's filling in what the config leaves out."""
        d, w = self.config.data, self.world()
        tracks = list(d.tracks) or ([w.tracks] if w else [])
        paths = {
            "tracks": tracks,
            "pretrain_tracks": list(d.pretrain_tracks) or tracks,
            "playlists": list(d.playlists) or ([w.playlists] if w else []),
            "heldout": list(d.heldout) or ([w.heldout] if w else []),
            "splits": d.splits or (w.splits if w else None),
            "tags": d.tags,
            "triplets": d.triplets or (w.triplets if w else None),
            "features": d.features or self.out / "features",
        }
        if not tracks:
            raise ConfigError("data: give `tracks` (tracks tables) or `world` (a world folder)")
        return paths

    def features(self) -> Any:
        """Extract the feature store of the tracks table (resumable: present tracks are kept)."""
        from mixtape.audio import FeatureStore, extract_features
        from mixtape.catalog import read_tracks

        paths = self._paths()
        records: dict[str, Any] = {}
        for path in paths["tracks"]:
            table = read_tracks(path, self.config.data.audio_root)
            for reason in table.skipped:
                log.warning("tracks table %s: skipped row: %s", path, reason)
            repeated = [r.track_id for r in table.records if r.track_id in records]
            if repeated:
                log.warning("tracks table %s: %d track(s) already listed by an earlier table kept from there, e.g. %s", path, len(repeated), repeated[0])
            records.update({r.track_id: r for r in table.records if r.track_id not in records})
        report = extract_features(list(records.values()), paths["features"], workers=self.config.data.workers)
        (self.work.ran if report.done else self.work.skipped).append("features")
        if report.failed:
            self.work.failed.append(f"features: {len(report.failed)} track(s) could not be decoded (left out of every stage), e.g. {report.failed[0][0]}: {report.failed[0][2]}")
        return FeatureStore.open(paths["features"])

    def _tag_dataset(self, subset: str) -> Any:
        from mixtape.evaluation.datasets import load_tag_dataset

        d, p = self.config.data, self._paths()
        return load_tag_dataset(d.tag_dataset, p["tags"], p["splits"], subset, d.split_index)

    def _holdout_file(self) -> Path | None:
        """Tracks that neither anchor nor serve as positives: the listed ones and the tag test split's."""
        from mixtape.catalog import read_track_list

        d = self.config.data
        subsets = list(dict.fromkeys(self.config.tasks.probe + self.config.tasks.finetune))
        if not d.holdout_test_split or not subsets:
            return d.holdout_tracks
        ids: list[str] = list(read_track_list(d.holdout_tracks)) if d.holdout_tracks else []
        for subset in subsets:
            ids += self._tag_dataset(subset).splits["test"].track_ids
        text = "track_id\n" + "".join(f"{t}\n" for t in dict.fromkeys(ids))
        path = self.out / "holdout_tracks.txt"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged content keeps the pairs' checksums
            atomic_write_text(path, text)
        return path

    # -- pairs --

    def _pairs_key(self, spec: StrategySpec, seed: int) -> tuple[str, int]:
        """Strategies that take a seed (track2vec) get positives per seed; the others share one folder."""
        from mixtape.pairs.run import resolve_params

        seeded = "seed" in resolve_params(spec.name, {**spec.params, "seed": seed})
        return spec.key, (seed if seeded else -1)

    def pairs(self) -> dict[tuple[str, int], Path]:
        """Build (or find up to date) the positives of every strategy."""
        from mixtape.pairs.run import run_pairs

        p = self._paths()
        holdout = self._holdout_file()
        todo = {self._pairs_key(s, seed): (s, seed) for s in self.config.strategies for seed in self.config.seeds}
        for (key, seed_key), (spec, seed) in progress(list(todo.items()), desc="pairs", unit="strategy"):
            out = self.out / "pairs" / key / (f"seed{seed_key}" if seed_key >= 0 else "")
            what = f"pairs {key}" + (f" seed {seed}" if seed_key >= 0 else "")

            def build(spec: StrategySpec = spec, seed: int = seed, out: Path = out) -> Any:
                return run_pairs(
                    p["pretrain_tracks"], out, spec.name, p["playlists"], p["heldout"], holdout, self.config.data.audio_root,
                    mapping=self.config.data.mapping, match=self.config.data.match, **{**spec.params, "seed": seed},
                )

            run = self._attempt(what, build)
            if run is not None:
                self._pairs[(key, seed_key)] = out
                (self.work.skipped if run.skipped else self.work.ran).append(what)
        self._paired = True
        return self._pairs

    # -- pre-training --

    def pretrain_config(self, unit: Unit, positives: Path) -> PretrainConfig:
        """The resolved pre-training config of one grid cell."""
        assert unit.strategy is not None
        p = self.config.pretrain
        return PretrainConfig(
            data=DataConfig(store=Path(self._paths()["features"]), positives=positives, **p.data.model_dump()),
            model=ModelConfig(**{**p.model.model_dump(), "backbone": unit.backbone.name, "backbone_options": dict(unit.backbone.options)}),
            optim=p.optim,
            trainer=TrainerConfig(**{**p.trainer.model_dump(), "seed": unit.seed}),
            out=unit.folder(self.out) / "pretrain",
        )

    @staticmethod
    def pretrain_done(config: PretrainConfig) -> bool:
        """A finished run of this very config: result.json, the same config.yaml, last.ckpt at max_steps."""
        from mixtape.training.run import last_checkpoint

        result, saved = _read_json(config.out / "result.json"), config.out / "config.yaml"
        if result is None or not saved.is_file() or not last_checkpoint(config.out).is_file():
            return False
        same = yaml.safe_load(saved.read_text(encoding="utf-8")) == json.loads(json.dumps(config.model_dump(mode="json")))
        return same and int(result.get("steps", -1)) >= config.trainer.max_steps

    def pretrain(self) -> dict[tuple[str, str, int], Path]:
        """Pre-train every grid cell whose positives exist; finished runs are kept, interrupted ones resumed."""
        from mixtape.training.run import last_checkpoint, pretrain

        if not self._paired:
            self.pairs()
        with cpu_threads(self.config.threads):
            for unit in progress(self.units(), desc="pretraining", unit="run"):
                assert unit.strategy is not None
                positives = self._pairs.get(self._pairs_key(unit.strategy, unit.seed))
                what = f"pretrain {unit.describe()}"
                if positives is None:
                    self.work.failed.append(f"{what}: not run, its positives could not be built")
                    continue
                config = self.pretrain_config(unit, positives)
                if self.pretrain_done(config):
                    self.work.skipped.append(what)
                    self._checkpoints[unit.key] = last_checkpoint(config.out)
                    continue
                result = self._attempt(what, lambda config=config: pretrain(config, resume=True))
                if result is not None:
                    self.work.ran.append(what)
                    self._checkpoints[unit.key] = result.checkpoint
        self._pretrained = True
        return self._checkpoints

    # -- evaluation --

    def _eval_data(self) -> _EvalData:
        """Read the tag datasets and the similarity data once, aligned to the feature store."""
        if self._eval is not None:
            return self._eval
        from mixtape.audio import FeatureStore
        from mixtape.catalog import load_catalog, playlist_files
        from mixtape.evaluation.datasets import align_to_store
        from mixtape.evaluation.similarity import build_pool, read_triplets

        p, t, d = self._paths(), self.config.tasks, self.config.data
        store = FeatureStore.open(p["features"])
        ids = list(store.track_ids)
        subsets = list(dict.fromkeys(t.probe + t.finetune + t.maps))
        tag_sets = {s: self._tag_dataset(s) for s in subsets}
        aligned = {s: align_to_store(ds, ids, f"feature store {p['features']}") for s, ds in tag_sets.items()}
        for s, a in aligned.items():
            for note in a.notes:
                log.warning("%s: %s", s, note)
        pool = triplets = None
        files: list[Path] = [Path(f) for f in p["pretrain_tracks"]]
        if t.similarity:
            catalog = load_catalog(p["pretrain_tracks"], playlists=(), heldout=p["heldout"], audio_root=d.audio_root, mapping=d.mapping, match=d.match)
            pool = build_pool(ids, catalog)
            for note in pool.notes:
                log.warning("similarity pool: %s", note)
            if p["triplets"] is not None:
                triplets = read_triplets(p["triplets"], {tid: i for i, tid in enumerate(pool.track_ids)})
                files.append(Path(p["triplets"]))
            files += [f for h in p["heldout"] for f in playlist_files(Path(h))]
        files += sorted({Path(split.source) for ds in tag_sets.values() for split in ds.splits.values() if Path(split.source).is_file()})
        rows = [s.rows for a in aligned.values() for s in a.splits.values()] + ([pool.store_rows] if pool is not None else [])
        needed = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
        fingerprint = _digest({"store_tracks": ids, "files": [(str(f), file_checksum(f)) for f in dict.fromkeys(files)]})
        self._eval = _EvalData(store, tag_sets, aligned, pool, triplets, needed, fingerprint)
        return self._eval

    def _encoder(self, unit: Unit) -> tuple[Callable[[], Any], str]:
        """A loader of the unit's encoder (only called when some task is not up to date) and its fingerprint."""
        from mixtape.evaluation.encoders import EvalEncoder, load_eval_encoder

        if unit.strategy is not None:
            ckpt = self._checkpoints[unit.key]
            return (lambda: load_eval_encoder(ckpt)), _digest({"checkpoint": file_checksum(ckpt)})
        store = self._eval_data().store
        mel = store.mel_config.model_dump(mode="json")
        patch = self.config.pretrain.data.patch_frames

        def random_init() -> EvalEncoder:
            import torch

            from mixtape.models import Encoder

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(unit.seed)
                encoder = Encoder(unit.backbone.name, int(store.mel_config.n_mels), **unit.backbone.options)
            return EvalEncoder(encoder.eval(), mel, patch, f"{unit.backbone.key} with random initial weights (seed {unit.seed})")

        return random_init, _digest({"random_init": unit.backbone.model_dump(mode="json"), "seed": unit.seed, "mel": mel, "patch_frames": patch})

    def _embeddings(self, unit: Unit, load: Callable[[], Any], encoder_fp: str) -> tuple[np.ndarray, dict[int, int], Any]:
        """Track embeddings of every store row some task needs, computed once per encoder and cached."""
        from mixtape.evaluation.encoders import open_store_for
        from mixtape.models.embedding import embed_tracks

        data, t = self._eval_data(), self.config.tasks
        path = unit.folder(self.out) / "eval" / "embeddings.npz"
        key = _digest({"encoder": encoder_fp, "rows": data.rows.tolist(), "batch": t.embed_batch_size})
        encoder = None
        try:
            with np.load(path) as cached:
                ok = str(cached["key"]) == key
                emb = cached["embeddings"] if ok else None
        except (FileNotFoundError, KeyError, ValueError, OSError):
            emb = None
        if emb is None:
            encoder = load()
            _, reader = open_store_for(encoder, self._paths()["features"])
            emb = embed_tracks(encoder.encoder, reader, data.rows, batch_size=t.embed_batch_size, device=t.device, desc=f"embedding ({unit.describe()})")
            with atomic_open(path, "wb") as f:
                np.savez(f, key=np.array(key), rows=data.rows, embeddings=emb)
        return emb, {int(r): i for i, r in enumerate(data.rows)}, encoder

    def task_list(self) -> list[tuple[str, str, str]]:
        """(task name, kind, subset) in table order."""
        t = self.config.tasks
        tasks = [(f"probe-{s}", "probe", s) for s in t.probe] + [(f"finetune-{s}", "finetune", s) for s in t.finetune]
        return tasks + ([("similarity", "similarity", "")] if t.similarity else [])

    def _task_config(self, kind: str, seed: int) -> StrictConfig:
        t = self.config.tasks
        if kind == "probe":
            return t.probe_config.model_copy(update={"seed": seed})
        if kind == "finetune":
            return t.finetune_config.model_copy(update={"seed": seed})
        return t.similarity_config

    def evaluate_unit(self, unit: Unit) -> None:
        """Every task of one encoder; each is skipped when its done.json matches encoder, config and data."""
        from mixtape.evaluation.probe import probe_embeddings
        from mixtape.evaluation.report import write_similarity_outputs, write_tagging_outputs
        from mixtape.evaluation.similarity import evaluate_similarity
        from mixtape.evaluation.tasks import tagging_task

        data, t = self._eval_data(), self.config.tasks
        load, encoder_fp = self._encoder(unit)
        cache: dict[str, Any] = {}

        def embeddings() -> tuple[np.ndarray, dict[int, int]]:
            if "emb" not in cache:
                cache["emb"], cache["pos"], cache["encoder"] = self._embeddings(unit, load, encoder_fp)
            return cache["emb"], cache["pos"]

        def encoder() -> Any:
            if cache.get("encoder") is None:
                cache["encoder"] = load()
            return cache["encoder"]

        for task, kind, subset in self.task_list():
            folder = unit.folder(self.out) / "eval" / task
            cfg = self._task_config(kind, unit.seed)
            fp = _digest({"encoder": encoder_fp, "task": task, "config": cfg.model_dump(mode="json"), "data": data.fingerprint, "batch": t.embed_batch_size})
            what = f"evaluate {task} of {unit.describe()}"
            done = _read_json(folder / "done.json")
            if done is not None and done.get("fingerprint") == fp and (folder / "metrics.json").is_file():
                self.work.skipped.append(what)
                continue
            (folder / "done.json").unlink(missing_ok=True)  # stale results must not reach the table if this attempt fails
            extra = {"encoder": f"{unit.describe()}", "features": str(self._paths()["features"]), "config": cfg.model_dump(mode="json")}

            def run(task: str = task, kind: str = kind, subset: str = subset, cfg: Any = cfg, folder: Path = folder, extra: dict = extra) -> bool:
                if kind == "probe":
                    emb, pos = embeddings()
                    ds = data.aligned[subset]
                    split_emb = {name: emb[[pos[int(r)] for r in split.rows]] for name, split in ds.splits.items()}
                    write_tagging_outputs(probe_embeddings(split_emb, ds, cfg), folder, extra)
                elif kind == "finetune":
                    tagging_task(encoder(), self._paths()["features"], data.tag_sets[subset], "finetune", cfg, out=folder, device=t.device)
                else:
                    emb, pos = embeddings()
                    pool = data.pool
                    sc = self.config.tasks.similarity_config
                    result = evaluate_similarity(
                        emb[[pos[int(r)] for r in pool.store_rows]], artist=pool.artist, heldout=pool.heldout, triplets=data.triplets,
                        k=sc.k, mutual_proximity=sc.mutual_proximity,
                    )
                    result.notes[:0] = pool.notes
                    write_similarity_outputs(result, pool.track_ids, folder, extra)
                atomic_write_text(folder / "done.json", json.dumps({"fingerprint": fp, "task": task}) + "\n")
                return True

            if self._attempt(what, run):
                self.work.ran.append(what)

    def evaluate(self) -> None:
        """Evaluate the baseline and every pre-trained run; results.csv is rewritten after each encoder."""
        if not self._pretrained:
            self.pretrain()
        self._eval_data()
        with cpu_threads(self.config.threads):
            for unit in progress(self.units(baseline=True), desc="evaluating", unit="encoder"):
                if unit.strategy is not None and unit.key not in self._checkpoints:
                    self.work.failed.append(f"evaluate {unit.describe()}: not run, it has no pre-trained checkpoint")
                    self._unevaluated.add(unit.key)
                    continue
                self.evaluate_unit(unit)
                self.write_results_csv()

    # -- results --

    def collect(self) -> list[ResultRow]:
        """The table's metrics of every finished evaluation of the grid, in grid order."""
        k = self.config.tasks.similarity_config.k
        wanted = {"probe": TAGGING_METRICS, "finetune": TAGGING_METRICS, "similarity": similarity_metric_names(k)}
        rows: list[ResultRow] = []
        for unit in self.units(baseline=True):
            if unit.key in self._unevaluated:  # results of an older checkpoint would not be this config's
                continue
            for task, kind, _ in self.task_list():
                folder = unit.folder(self.out) / "eval" / task
                if _read_json(folder / "done.json") is None:
                    continue
                metrics = (_read_json(folder / "metrics.json") or {}).get("metrics", {})
                for metric in wanted[kind]:
                    if metric in metrics:
                        value = metrics[metric]
                        rows.append(ResultRow(unit.label, unit.backbone.key, unit.seed, task, metric, math.nan if value is None else float(value)))
        return rows

    def write_results_csv(self) -> Path:
        return atomic_write_text(self.out / RESULTS_CSV, results_csv_text(self.collect()))

    def _maps(self) -> list[Path]:
        """t-SNE of the test tracks' embeddings (first seed of each row), coloured by each map subset's tags."""
        from mixtape.evaluation.plots import EmbeddingMap, embedding_maps

        t = self.config.tasks
        if not t.maps:
            return []
        data = self._eval_data()
        test_rows = np.unique(np.concatenate([data.aligned[s].splits["test"].rows for s in t.maps]))
        if len(test_rows) < 5:
            log.warning("t-SNE maps skipped: only %d test tracks", len(test_rows))
            return []
        labels: dict[str, list[str]] = {}
        for s in t.maps:
            split = data.aligned[s].splits["test"]
            first = {int(r): data.aligned[s].tags[int(np.flatnonzero(y)[0])].split("---")[-1] for r, y in zip(split.rows, split.labels, strict=True) if y.any()}
            labels[s] = [first.get(int(r), "") for r in test_rows]
        figures: list[Path] = []
        for backbone in self.config.backbones:
            maps: list[EmbeddingMap] = []
            for unit in self.units(baseline=True):
                if unit.backbone != backbone or unit.seed != self.config.seeds[0] or unit.key in self._unevaluated:
                    continue
                coords = self._tsne(unit, test_rows)
                if coords is not None:
                    title = BASELINE_TITLE if unit.strategy is None else unit.label
                    maps.append(EmbeddingMap(title, coords, labels))
            if maps:
                out = self.out / PLOTS / f"tsne-{backbone.key}.png"
                figures.append(embedding_maps(maps, t.maps, out, f"t-SNE of test-track embeddings ({backbone.key}, seed {self.config.seeds[0]})"))
        return figures

    def _tsne(self, unit: Unit, test_rows: np.ndarray) -> np.ndarray | None:
        """2-D t-SNE coordinates of ``test_rows``, cached beside the embeddings they come from."""
        path = unit.folder(self.out) / "eval" / "embeddings.npz"
        cache = unit.folder(self.out) / "eval" / "tsne.npz"
        try:
            with np.load(path) as saved:
                key, rows, emb = str(saved["key"]), saved["rows"], saved["embeddings"]
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None
        want = _digest({"embeddings": key, "rows": test_rows.tolist(), "seed": unit.seed})
        try:
            with np.load(cache) as saved:
                if str(saved["key"]) == want:
                    return np.asarray(saved["coords"])
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass
        from sklearn.manifold import TSNE

        pos = {int(r): i for i, r in enumerate(rows)}
        x = emb[[pos[int(r)] for r in test_rows]]
        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=unit.seed).fit_transform(x).astype(np.float32)
        with atomic_open(cache, "wb") as f:
            np.savez(f, key=np.array(want), coords=coords)
        self.work.ran.append(f"t-SNE of {unit.describe()}")
        return coords

    def _bars(self, rows: Sequence[ResultRow]) -> list[Path]:
        from mixtape.evaluation.plots import Bar, metric_bars

        summary = summarize(rows)
        figures = []
        for task in dict.fromkeys(t for t, _ in summary.columns):
            panels = {
                metric_title(m): [Bar(summary.label(r), c.mean, c.std, r[0] == BASELINE) for r in summary.rows if (c := summary.cell(r, (task, m))) is not None]
                for tt, m in summary.columns
                if tt == task
            }
            figures.append(metric_bars(f"{task} (mean ± std over seeds)", panels, self.out / PLOTS / f"{task}.png"))
        return figures

    def curves(self) -> dict[str, Path]:
        """The training curve of each strategy's first-seed run (per backbone), where it was drawn."""
        out: dict[str, Path] = {}
        for unit in self.units():
            png = unit.folder(self.out) / "pretrain" / "training_curve.png"
            if unit.seed == self.config.seeds[0] and png.is_file():
                out[f"{unit.label} · {unit.backbone.key}"] = png
        return out

    def report(self) -> ExperimentResult:
        """results.csv, the plots, results.md (regenerated from the CSV) and failures.json."""
        csv_path = self.write_results_csv()
        rows = read_results(csv_path)
        with cpu_threads(self.config.threads):
            figures = (self._bars(rows) if rows else []) + (self._maps() if rows else [])
        kinds = {s.key: s.name for s in self.config.strategies}
        captions = [(f.stem, f.relative_to(self.out).as_posix()) for f in figures]
        md = results_markdown(rows, self.config.name, captions, self.work.failed, kinds)
        md_path = atomic_write_text(self.out / RESULTS_MD, md)
        atomic_write_text(self.out / "failures.json", json.dumps(self.work.failed, indent=2) + "\n")
        summary = summarize(rows)
        table = (markdown_tables(summary) + "\n\n" + verdict(summary, kinds)) if rows else "no result yet"
        return ExperimentResult(self.out, csv_path, md_path, table, figures, self.curves(), self.work)

    def save_config(self) -> Path:
        """experiment.yaml in the run folder: the resolved config, loadable by `mixtape experiment`."""
        data = {**self.config.dump(), "out": str(self.out)}
        return atomic_write_text(self.out / "experiment.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def run(self) -> ExperimentResult:
        """Every stage, each skipping what is already done."""
        self.save_config()
        self.world()
        self.features()
        self.pairs()
        self.pretrain()
        self.evaluate()
        return self.report()


def run_experiment(config: ExperimentConfig | str | Path, out: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentResult:
    """Run (or continue) an experiment from a config object or a YAML file."""
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config, overrides)
    return Experiment(config, out).run()


def report_only(config: ExperimentConfig | str | Path, out: str | Path | None = None) -> ExperimentResult:
    """Regenerate results.md and the plots from the run folder's finished evaluations, running nothing."""
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config)
    exp = Experiment(config, out)
    previous = _read_json_list(exp.out / "failures.json")
    exp.work.failed.extend(previous)  # the last run's failures stay listed in the regenerated table
    return exp.report()


def _read_json_list(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []
