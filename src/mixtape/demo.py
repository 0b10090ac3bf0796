"""`mixtape demo`: the whole pipeline on the embedded default world, from nothing to the comparison table.

The demo is the experiment runner (``mixtape.experiment``) on ``configs/demo.yaml``, with
the world and the feature store placed in the demo's own run folder and each stage timed: world →
features → pairs per strategy → pre-training per strategy × seed → evaluation (and a randomly
initialised encoder as the no-pre-training baseline) → table, plots and ``report.md``.

Every stage writes into the run folder and resumes, so re-running the demo after an interruption
(or after changing one stage) only redoes what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, get_logger

log = get_logger(__name__)
T = TypeVar("T")

REPORT_FILE = "report.md"
#: The world's tags table, relative to the demo folder (``data.world.path`` is ``OUT/world``).
WORLD_TAGS = Path("world") / "tags" / "autotagging.tsv"
SERVE_COMMAND = ".venv/bin/mixtape serve --index {index} --tags {tags}"  # the world's tags: chips, filters, map colours
#: The demo's grid; the repository's configs/ folder (an editable install, as `make demo` makes).
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


@dataclass
class StageResult:
    name: str
    seconds: float
    summary: str


@dataclass
class DemoReport:
    out: Path
    stages: list[StageResult] = field(default_factory=list)
    result: Any | None = None  # the experiment's ExperimentResult, once the report stage ran

    def run(self, name: str, fn: Callable[[], T], summarize: Callable[[T], str]) -> T:
        """Run one stage, time it, and keep its summary for the report."""
        log.info("demo stage %s ...", name)
        start = time.perf_counter()
        result = fn()
        self.stages.append(StageResult(name, time.perf_counter() - start, summarize(result)))
        return result

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def _rel(self, path: Path) -> str:
        try:
            return Path(path).resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return str(path)

    def times(self) -> list[str]:
        lines = ["| stage | seconds |", "|---|---:|"]
        lines += [f"| {s.name} | {s.seconds:.1f} |" for s in self.stages]
        return lines + [f"| total | {self.total_seconds:.1f} |"]

    def render(self) -> str:
        """report.md: what each stage did, the table with its verdict, the figures, time per stage."""
        lines = [
            f"# mixtape demo — {self.out}",
            "",
            "Pre-training strategies compared on the embedded world: each strategy's positives pre-train the same "
            "encoder, which is then probed on tags and used for similarity; a randomly initialised encoder goes "
            "through the same evaluation. Everything below is computed by this run.",
            "",
        ]
        for stage in self.stages:
            lines += [f"## {stage.name} ({stage.seconds:.1f} s)", "", "```", stage.summary.rstrip(), "```", ""]
        r = self.result
        if r is not None:
            lines += [
                "## results",
                "",
                r.table,
                "",
                f"Long-format results: `{self._rel(r.results_csv)}`; the same table: `{self._rel(r.results_md)}`.",
                "",
            ]
            if r.work.failed:
                lines += ["Failed steps (left out of the table):", "", *[f"- {f}" for f in r.work.failed], ""]
            bars = [f for f in r.figures if not f.stem.startswith("tsne")]
            maps = [f for f in r.figures if f.stem.startswith("tsne")]
            if bars:
                lines += ["## bar charts", "", *[f"![{f.stem}]({self._rel(f)})" for f in bars], ""]
            if maps:
                lines += [
                    "## t-SNE maps of test embeddings (coloured by genre and by mood)",
                    "",
                    *[f"![{f.stem}]({self._rel(f)})" for f in maps],
                    "",
                ]
            if r.curves:
                lines += ["## training curves (first seed)", ""]
                lines += [f"**{name}**\n\n![{name}]({self._rel(path)})\n" for name, path in r.curves.items()]
        lines += ["## time per stage", "", *self.times(), ""]
        if r is not None:
            w = r.work
            lines.append(
                f"Times of this invocation: {len(w.ran)} step(s) ran, {len(w.skipped)} were up to date and skipped "
                "(a re-run only redoes what is missing, so its times are not those of a run from nothing)."
            )
        return "\n".join(lines) + "\n"

    def console(self) -> str:
        """What the command prints: the table and verdict, time per stage, where the report is."""
        table = self.result.table if self.result is not None else ""
        serve = SERVE_COMMAND.format(index=self.out / "search" / "index", tags=self.out / WORLD_TAGS)
        return "\n".join(
            [
                table,
                "",
                *self.times(),
                "",
                f"report: {self.out / REPORT_FILE}",
                f"listen to similar tracks: {serve}  (then open http://127.0.0.1:8000/)",
            ]
        )


def _pairs_summary(out: Path, pairs: dict[tuple[str, int], Path]) -> str:
    lines = []
    for (label, seed), folder in pairs.items():
        try:
            stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        share = stats.get("same_artist_share")
        artist = f", {100 * share:.0f}% of positives by the anchor's artist" if share is not None else ""
        which = f"{label} (seed {seed})" if seed >= 0 else label
        lines.append(
            f"{which}: {stats['anchors']} anchors ({100 * stats['anchor_share_of_trainable']:.0f}% of "
            f"trainable tracks){artist}"
        )
    return "\n".join(lines) or "no positives built"


def _pretrain_summary(checkpoints: dict[tuple[str, str, int], Path]) -> str:
    lines = []
    for (label, backbone, seed), ckpt in checkpoints.items():
        result_file = Path(ckpt).parents[1] / "result.json"
        try:
            r = json.loads(result_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        loss = "n/a" if r.get("loss") is None else f"{r['loss']:.3f}"
        acc = "n/a" if r.get("accuracy") is None else f"{r['accuracy']:.2f}"
        lines.append(
            f"{label} · {backbone} · seed {seed}: {r['steps']} steps, last loss {loss}, in-batch accuracy "
            f"{acc} ({r['seconds']:.0f} s)"
        )
    return "\n".join(lines) or "no run finished"


def _best_checkpoint(
    checkpoints: dict[tuple[str, str, int], Path], results_csv: Path
) -> tuple[tuple[str, str, int], Path]:
    """The run whose encoder retrieves held-out playlists best (mean nDCG@10 over seeds; its lowest seed).
    An oracle (``theme``, trained on the world's hidden truth) is the study's ceiling, not a model a user
    could train on their catalogue, so the page is built on the best real strategy."""
    from mixtape.experiment import read_results
    from mixtape.experiment.results import ORACLES

    scores: dict[tuple[str, str], list[float]] = {}
    for row in read_results(results_csv):
        if row.task == "similarity" and row.metric == "ndcg@10":
            scores.setdefault((row.strategy, row.backbone), []).append(row.value)
    real = [k for k in checkpoints if k[0] not in ORACLES] or list(checkpoints)
    ranked = sorted(real, key=lambda k: (-float(np.mean(scores.get(k[:2], [-np.inf]))), k[2]))
    if not ranked:
        raise MixtapeError("the demo has no finished pre-training run to build a search index from")
    return ranked[0], checkpoints[ranked[0]]


def _search_index(out: Path, checkpoints: dict[tuple[str, str, int], Path], results_csv: Path, tracks: Path) -> str:
    """Embed the demo collection with the best encoder and index it, so the listening page can open on it."""
    from mixtape.search import build_index, embed_collection

    (label, backbone, seed), ckpt = _best_checkpoint(checkpoints, results_csv)
    embedded = embed_collection(ckpt, out / "search", features=out / "features", tracks=tracks)
    indexed = build_index(out / "search", out / "search" / "index")
    return "\n".join(
        [
            f"encoder: {label} · {backbone} · seed {seed} (best held-out playlist nDCG@10), {ckpt}",
            embedded.summary(),
            indexed.summary(),
            f"open the listening page: {SERVE_COMMAND.format(index=out / 'search' / 'index', tags=out / WORLD_TAGS)}",
        ]
    )


def run_demo(
    out: str | Path,
    size: str = "small",
    seed: int = 0,
    workers: int | None = None,
    config: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> DemoReport:
    """Run the demo grid (``configs/demo.yaml`` unless ``config``) into ``out`` and write ``report.md``.

    The world (``size``, ``seed``) and the feature store go into ``out``; ``overrides`` (dotted keys)
    change the grid, e.g. ``{"seeds": [0], "pretrain.trainer.max_steps": 50}``.
    """
    from mixtape.experiment import Experiment, load_experiment_config

    out = Path(out)
    path = Path(config) if config is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise MixtapeError(
            f"demo config not found: {path} (give one with --config; the repository's configs/demo.yaml is the default)"
        )
    placed = {
        "data.world.path": str(out / "world"),
        "data.world.size": size,
        "data.world.seed": seed,
        "data.features": str(out / "features"),
        "out": str(out),
    }
    if workers is not None:
        placed["data.workers"] = workers
    cfg = load_experiment_config(path, {**(overrides or {}), **placed})
    exp = Experiment(cfg, out)
    exp.save_config()
    report = DemoReport(out)
    report.run("world", exp.world, lambda w: w.summary())
    report.run("features", exp.features, lambda s: s.summary())
    report.run("pairs", exp.pairs, lambda p: _pairs_summary(out, p))
    checkpoints = report.run("pretrain", exp.pretrain, _pretrain_summary)

    def evaluated(_: None) -> str:
        done = [w for w in exp.work.ran if w.startswith("evaluate")]
        kept = [w for w in exp.work.skipped if w.startswith("evaluate")]
        return (
            f"{len(done)} evaluation(s) run, {len(kept)} up to date (baseline: {cfg.tasks.baseline}; tasks: "
            f"{', '.join(t for t, _, _ in exp.task_list())})"
        )

    report.run("evaluation", exp.evaluate, evaluated)
    result = report.run("report", exp.report, lambda r: f"{len(r.figures)} figure(s); table in {r.results_md}")
    report.result = result
    report.run(
        "search",
        lambda: _search_index(out, checkpoints, result.results_csv, Path(exp.world().tracks)),
        lambda s: s,
    )
    atomic_write_text(out / REPORT_FILE, report.render())
    log.info("demo finished in %.1f s; report %s", report.total_seconds, out / REPORT_FILE)
    return report
