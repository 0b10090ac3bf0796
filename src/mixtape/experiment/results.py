"""Results of an experiment: the long-format CSV, the summary over seeds, the Markdown tables, the
verdict, and the study's claims tested over seeds — pure functions of the rows, so a table can be
regenerated from ``results.csv`` alone."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mixtape.errors import MixtapeError
from mixtape.evaluation.latent import LATENT_METRICS
from mixtape.experiment.config import BASELINE
from mixtape.fileio import get_logger
from mixtape.pairs.params import SOURCES

log = get_logger(__name__)

RESULT_COLUMNS = ("strategy", "backbone", "seed", "task", "metric", "value")
TAGGING_METRICS = ("roc_auc", "pr_auc")
BASELINE_TITLE = "random init (no pre-training)"
#: Strategies whose positives come from playlists, and those they are compared against in the verdict.
PLAYLIST_BASED = tuple(s for s, source in SOURCES.items() if source == "playlists")
ARTIST_OR_SELF = tuple(s for s, source in SOURCES.items() if source in ("metadata", "self"))
METADATA = tuple(s for s, source in SOURCES.items() if source in ("metadata", "playlists"))
#: Strategies that read the generated world's latent truth: a ceiling to report, never a contender.
ORACLES = tuple(s for s, source in SOURCES.items() if source == "oracle")


def similarity_metric_names(k: int = 10) -> tuple[str, ...]:
    """The similarity metrics that go into the table (the rest stay in each run's metrics.json)."""
    return ("triplet_acc", f"ndcg@{k}", f"map@{k}", f"p@{k}", f"ndcg@{k}_artist_filtered", f"artist_p@{k}", "hubness")


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
        w.writerow(
            [
                r.strategy,
                r.backbone,
                r.seed,
                r.task,
                r.metric,
                "nan" if not math.isfinite(r.value) else f"{r.value:.6g}",
            ]
        )
    return buf.getvalue()


def read_results(path: str | Path) -> list[ResultRow]:
    """Rows of a results.csv; a malformed row is skipped and logged with its line number."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MixtapeError(f"results file not found: {path} (run the experiment first)") from None
    except UnicodeDecodeError as err:
        raise MixtapeError(
            f"{path}: not UTF-8 text ({err}); delete it and re-run the experiment to rewrite it from the finished runs"
        ) from None
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
            rows.append(
                ResultRow(
                    fields[0],
                    fields[1],
                    int(fields[2]),
                    fields[3],
                    fields[4],
                    float(fields[5]) if fields[5].strip() else math.nan,
                )
            )
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
        return (
            f"{self.mean:.{digits}f}"
            if not math.isfinite(self.std)
            else f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        )


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
    order = [
        *TAGGING_METRICS,
        "triplet_acc",
        "ndcg@",
        "map@",
        "p@",
        "ndcg@_artist_filtered",
        "artist_p@",
        "hubness",
        *LATENT_METRICS,
    ]
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
    if metric.startswith("artist_p@") or metric == "artist_acc":
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
    "genre_acc": "genre acc.",
    "mood_auc": "mood ROC-AUC",
    "artist_acc": "artist acc.",
}


def metric_title(metric: str) -> str:
    if metric in _METRIC_TITLES:
        title = _METRIC_TITLES[metric]
    else:
        title = (
            metric.replace("ndcg@", "nDCG@")
            .replace("map@", "mAP@")
            .replace("artist_p@", "artist P@")
            .replace("_artist_filtered", " artist-filtered")
        )
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
    (
        "latent",
        "What the embedding encodes of the world's latent truth: linear probes (genre accuracy and mood "
        "ROC-AUC on the artist-disjoint test split; artist accuracy on held-out tracks of known artists)",
    ),
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
        lines = [
            f"### {titles.get(fam, fam)}",
            "",
            "| strategy | seeds | " + " | ".join(column_title(c) for c in cols) + " |",
            "|---|---:|" + "---:|" * len(cols),
        ]
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
    from mixtape.pairs.params import PARAMS as STRATEGIES

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


def _best_per_task(
    summary: Summary, col: Column, trained: Sequence[RowKey], baseline: RowKey | None, one_seed: bool
) -> str:
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
    trained = [r for r in summary.rows if r[0] != BASELINE and _strategy_kind(r[0], kinds) not in ORACLES]
    baseline = next((r for r in summary.rows if r[0] == BASELINE), None)
    sentences = [
        "Best per task: " + "; ".join(_best_per_task(summary, c, trained, baseline, one_seed) for c in cols) + "."
    ]

    def top(group: Sequence[str] | None, col: Column) -> Cell | None:
        rows = [r for r in trained if group is None or _strategy_kind(r[0], kinds) in group]
        ranked = _ranked(summary, rows, col)
        return ranked[0][1] if ranked else None

    def counts(wins: int, clear_wins: int, losses: int, clear_losses: int, n: int) -> str:
        if one_seed:
            return f"better on {wins} of {n} of these metrics, worse on {losses} (one seed: no spread measured)"
        return (
            f"better on {wins} of {n} of these metrics ({clear_wins} by more than one std), worse on {losses} "
            f"({clear_losses} by more than one std)"
        )

    clauses: list[str] = []
    playlist_rows = [summary.label(r) for r in trained if _strategy_kind(r[0], kinds) in PLAYLIST_BASED]
    other_rows = [summary.label(r) for r in trained if _strategy_kind(r[0], kinds) in ARTIST_OR_SELF]
    if playlist_rows and other_rows:
        pairs = [
            (pl, ot)
            for c in cols
            if (pl := top(PLAYLIST_BASED, c)) is not None and (ot := top(ARTIST_OR_SELF, c)) is not None
        ]
        if pairs:
            w, cw, lo, cl = _tally(pairs)
            head = "beat" if w > lo else "did not beat" if w < lo else "were level overall with"
            clauses.append(
                f"playlist-based strategies ({', '.join(playlist_rows)}) {head} artist/self "
                f"({', '.join(other_rows)}) on this run: {counts(w, cw, lo, cl, len(pairs))}"
            )
    elif trained:
        missing = "artist/self strategy" if playlist_rows else "playlist-based strategy"
        clauses.append(f"the grid has no {missing}, so playlist positives are not compared with artist/self ones")
    if baseline is not None and trained:
        pairs = [
            (t, b)
            for c in cols
            if (t := top(None, c)) is not None
            and (b := summary.cell(baseline, c)) is not None
            and math.isfinite(b.mean)
        ]
        if pairs:
            w, cw, lo, cl = _tally(pairs)
            text = f"the best pre-trained strategy against {BASELINE_TITLE}: {counts(w, cw, lo, cl, len(pairs))}"
            never = [
                summary.label(r)
                for r in trained
                if not any(
                    _compare(c, b)[0] > 0
                    for col in cols
                    if (c := summary.cell(r, col)) is not None
                    and (b := summary.cell(baseline, col)) is not None
                    and math.isfinite(c.mean)
                    and math.isfinite(b.mean)
                )
            ]
            if never:
                text += f"; {', '.join(never)} beat random init on none of them"
            clauses.append(text)
    if clauses:
        sentence = "; ".join(clauses) + "."
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


# --- claims: paired comparisons over seeds -------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """``a`` beats ``b`` on one metric, tested on the per-seed differences (the same seed trains both)."""

    text: str
    column: Column
    a: str
    b: str
    diffs: tuple[float, ...]
    a_mean: float
    b_mean: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.diffs)) if self.diffs else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.diffs, ddof=1)) if len(self.diffs) > 1 else math.nan

    @property
    def p_value(self) -> float:
        """One-sided paired t-test that the mean difference is positive (NaN below two seeds or with no spread)."""
        if len(self.diffs) < 2 or not self.std > 0:
            return math.nan
        from scipy.stats import ttest_1samp

        return float(ttest_1samp(self.diffs, 0.0, alternative="greater").pvalue)

    def holds(self, seed_std: float) -> str:
        """ "yes" when ``a`` is ahead by more than ``seed_std`` (the larger std over seeds of the two rows)."""
        if not self.diffs:
            return "not measured"
        if self.mean <= 0:
            return "no"
        return "yes" if math.isfinite(seed_std) and self.mean > seed_std else "ahead, within one std"


def _per_seed(rows: Sequence[ResultRow], strategy: str, backbone: str, column: Column) -> dict[int, float]:
    return {
        r.seed: r.value
        for r in rows
        if (r.strategy, r.backbone, r.task, r.metric) == (strategy, backbone, *column) and math.isfinite(r.value)
    }


def claims(rows: Sequence[ResultRow], kinds: dict[str, str] | None = None) -> list[tuple[Claim, float]]:
    """The comparisons the study is about, each with the larger std over seeds of its two rows:
    the best playlist-based strategy against artist (triplets and nDCG), every metadata strategy
    against self (triplets), and the best strategy against random init and against the oracle."""
    summary = summarize(rows)
    cols = [c for c in primary_columns(summary) if c[0] == "similarity"]
    out: list[tuple[Claim, float]] = []
    for backbone in dict.fromkeys(b for _, b in summary.rows):
        rows_b = [r for r in summary.rows if r[1] == backbone]

        def of(group: Sequence[str], rows_b: list[RowKey] = rows_b) -> list[RowKey]:
            return [r for r in rows_b if r[0] != BASELINE and _strategy_kind(r[0], kinds) in group]

        def claim(text: str, a: RowKey, b: RowKey, col: Column) -> None:
            sa, sb = _per_seed(rows, *a, col), _per_seed(rows, *b, col)
            seeds = sorted(set(sa) & set(sb))
            ca, cb = summary.cell(a, col), summary.cell(b, col)
            spread = max((c.std for c in (ca, cb) if c is not None and math.isfinite(c.std)), default=math.nan)
            out.append(
                (
                    Claim(
                        text,
                        col,
                        summary.label(a),
                        summary.label(b),
                        tuple(sa[s] - sb[s] for s in seeds),
                        ca.mean if ca else math.nan,
                        cb.mean if cb else math.nan,
                    ),
                    spread,
                )
            )

        baseline = next((r for r in rows_b if r[0] == BASELINE), None)
        contenders = [r for r in rows_b if r[0] != BASELINE and _strategy_kind(r[0], kinds) not in ORACLES]
        artist = of(("artist",))
        selfs = of(("self",))
        oracle = of(ORACLES)
        for col in cols:
            best_pl = _ranked(summary, of(PLAYLIST_BASED), col)
            if best_pl and artist:
                claim("best playlist-based beats artist", best_pl[0][0], artist[0], col)
        trip = [c for c in cols if c[1] == "triplet_acc"]
        for col in trip:
            for r in of(METADATA):
                if selfs:
                    claim("metadata strategy beats self", r, selfs[0], col)
        for col in cols:
            best = _ranked(summary, contenders, col)
            if best and baseline is not None:
                claim("best strategy beats random init", best[0][0], baseline, col)
            if best and oracle:
                claim("oracle ceiling above the best strategy", oracle[0], best[0][0], col)
    return out


def claims_markdown(rows: Sequence[ResultRow], kinds: dict[str, str] | None = None) -> str:
    """The claims as a table: both means, the paired difference over seeds, a one-sided paired t-test,
    and whether the lead exceeds one std over seeds (the demo's bar for "clearly")."""
    found = claims(rows, kinds)
    if not found:
        return ""
    lines = [
        "| claim | metric | A | B | A | B | A − B (paired over seeds) | p (one-sided paired t) | A ahead by > 1 std |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for c, spread in found:
        diff = (
            "–"
            if not c.diffs
            else f"{c.mean:+.3f}" + (f" ± {c.std:.3f}" if math.isfinite(c.std) else "") + f" (n={len(c.diffs)})"
        )
        p = f"{c.p_value:.3f}" if math.isfinite(c.p_value) else "–"
        lines.append(
            f"| {c.text} | {metric_title(c.column[1]).rstrip(' ↑')} | {c.a} | {c.b} | {c.a_mean:.3f} | "
            f"{c.b_mean:.3f} | {diff} | {p} | {c.holds(spread)} |"
        )
    return "\n".join(lines)


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
        f"Mean ± sample std over seeds (up to {n_seeds} per row; a single seed shows the value alone); the best of "
        "each column is in **bold** (↑ higher is better, ↓ lower is better; artist P@k, the share of neighbours by "
        f"the query's own artist, describes the space and is not ranked). `{BASELINE_TITLE}` is the same encoder "
        "evaluated with its initial weights: what the table would show without pre-training.",
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
        'a gap is "within one std" when it is smaller than the larger standard deviation over seeds of the two rows._',
        "",
        verdict(summary, kinds),
        "",
    ]
    table = claims_markdown(rows, kinds)
    if table:
        lines += [
            "### Claims, tested over seeds",
            "",
            "_Each pair of runs with the same seed shares the initial weights' seed and the batch order's seed, so the "
            "differences are paired; p is a one-sided paired t-test (with three seeds only a large, steady "
            "lead reaches p < 0.05)._",
            "",
            table,
            "",
        ]
    return "\n".join(lines)
