"""Learning curves: triplet accuracy, nDCG@10, latent-attribute probes and in-batch accuracy against steps.

Each (strategy, seed) is pre-trained in stages in one run folder: train to the first step count,
evaluate ``last.ckpt``, resume to the next count, and so on (the learning rate is flat unless the
config says otherwise, so the stages are one uninterrupted run cut at the listed steps). Everything
else — world, features, positives, the model and the optimiser — comes from an experiment config,
so a curve describes exactly the runs that config makes.

    python benchmarks/learning_curves.py configs/demo.yaml --steps 150,600,2000,8000 \\
        --strategies artist,playlist,cooc-topk,theme --seeds 0 --out runs/curves

Two invocations on different strategies keep two cores busy (each trains on one thread); the second
draws both with ``--merge runs/curves-a/curves.csv``.

Writes ``OUT/curves.csv`` (strategy, seed, step, metric, value), ``OUT/curves.png`` and the resolved
experiment config; prints a table and a ``RESULT`` line per strategy. Re-running resumes: finished
stages are read back from ``curves.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

METRICS = (
    "triplet_acc",
    "ndcg@10",
    "ndcg@10_artist_filtered",
    "artist_p@10",
    "genre_acc",
    "mood_auc",
    "artist_acc",
    "train_acc",
)


def _in_batch_accuracy(run_dir: Path, step: int, window: int = 50) -> float:
    """Mean logged in-batch accuracy over the ``window`` steps before ``step`` (the training log's own)."""
    from mixtape.training.callbacks import read_metrics

    acc = read_metrics(run_dir / "logs").get("train/acc", {})
    recent = [a for s, a in acc.items() if step - window < s + 1 <= step]
    return float(np.mean(recent)) if recent else math.nan


def evaluate_checkpoint(exp: Any, checkpoint: Path) -> dict[str, float]:
    """Similarity (triplets, held-out playlists) and the latent probes of one checkpoint."""
    from mixtape.evaluation.latent import latent_probe
    from mixtape.evaluation.similarity import evaluate_similarity
    from mixtape.models.bundle import EncoderBundle
    from mixtape.models.embedding import embed_tracks
    from mixtape.world.truth import read_latent

    data = exp.eval_data()
    encoder = EncoderBundle.load(checkpoint)
    store, reader = encoder.open_store(exp.paths.features)
    rows = np.arange(len(store), dtype=np.int64)
    emb = embed_tracks(encoder.encoder, reader, rows, batch_size=256, desc=f"embedding {checkpoint.parent.parent.name}")
    pool = data.pool
    sim = evaluate_similarity(
        emb[pool.store_rows],
        artist=pool.artist,
        heldout=pool.heldout,
        triplets=data.triplets,
        k=10,
        mutual_proximity="none",
    ).metrics
    out = {m: float(sim[m]) for m in METRICS if m in sim}
    out.update(latent_probe(emb, read_latent(exp.world().world_json, list(store.track_ids))))
    return out


def _done(path: Path) -> dict[tuple[str, int, int], dict[str, float]]:
    found: dict[tuple[str, int, int], dict[str, float]] = {}
    if path.is_file():
        with open(path, encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                found.setdefault((r["strategy"], int(r["seed"]), int(r["step"])), {})[r["metric"]] = float(r["value"])
    return found


def _write(path: Path, results: dict[tuple[str, int, int], dict[str, float]]) -> None:
    from mixtape.fileio import atomic_write_text

    lines = ["strategy,seed,step,metric,value"]
    for (strategy, seed, step), metrics in sorted(results.items()):
        lines += [f"{strategy},{seed},{step},{m},{v:.6g}" for m, v in metrics.items()]
    atomic_write_text(path, "\n".join(lines) + "\n")


def plot(results: dict[tuple[str, int, int], dict[str, float]], out: Path, title: str) -> Path:
    """One panel per metric, one line per strategy (mean over seeds, shaded ± std), log-scaled steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = [
        ("triplet_acc", "triplet accuracy"),
        ("ndcg@10", "nDCG@10 (held-out playlists)"),
        ("ndcg@10_artist_filtered", "nDCG@10, artist filter"),
        ("train_acc", "in-batch accuracy"),
        ("genre_acc", "latent genre (probe acc.)"),
        ("mood_auc", "latent moods (probe ROC-AUC)"),
        ("artist_acc", "latent artist (probe acc.)"),
    ]
    fig, grid = plt.subplots(2, 4, figsize=(13, 6.4))
    axes = grid.ravel()
    strategies = list(dict.fromkeys(k[0] for k in results))
    all_steps = sorted({k[2] for k in results})
    for ax, (metric, name) in zip(axes, panels, strict=False):
        for strategy in strategies:
            steps = sorted({k[2] for k in results if k[0] == strategy})
            values = [
                [results[k][metric] for k in results if k[0] == strategy and k[2] == s and metric in results[k]]
                for s in steps
            ]
            mean = np.array([np.mean(v) if v else np.nan for v in values])
            std = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values])
            line = ax.plot(steps, mean, marker="o", ms=3, label=strategy)[0]
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(all_steps))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("steps", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    axes[-1].legend(handles, labels, loc="center", fontsize=9, title="positives")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path, help="experiment config (world, features, model, optimiser, batch)")
    ap.add_argument("--steps", default="150,600,2000,8000", help="comma-separated step counts to evaluate at")
    ap.add_argument("--strategies", default=None, help="comma-separated strategy labels of the config (default: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the config's)")
    ap.add_argument("--out", type=Path, default=Path("runs/curves"))
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the config, e.g. pretrain.data.batch_size=64",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="curves.csv files of other invocations (e.g. other strategies run at the same time) to draw in the "
        "same plot",
    )
    args = ap.parse_args()

    import yaml

    from mixtape.experiment import Experiment, cpu_threads, load_experiment_config
    from mixtape.fileio import atomic_write_text
    from mixtape.training.config import parse_overrides
    from mixtape.training.run import last_checkpoint, pretrain

    steps = sorted({int(s) for s in args.steps.split(",")})
    overrides = parse_overrides(args.set)
    overrides["out"] = str(args.out)
    if args.seeds:
        overrides["seeds"] = args.seeds
    cfg = load_experiment_config(args.config, overrides)
    if args.strategies:
        wanted = args.strategies.split(",")
        cfg = cfg.model_copy(update={"strategies": [s for s in cfg.strategies if s.key in wanted]})
    if cfg.data.world is None:
        raise SystemExit("learning curves need a generated world (data.world): the latent probes read its world.json")
    exp = Experiment(cfg)
    atomic_write_text(exp.out / "curves.yaml", yaml.safe_dump({**cfg.dump(), "steps": steps}, sort_keys=False))
    exp.world()
    exp.features()
    pairs = exp.pairs()
    csv_path = exp.out / "curves.csv"
    results = _done(csv_path)
    started = time.perf_counter()
    for unit in exp.units():
        assert unit.strategy is not None
        positives = pairs[exp.pairs_key(unit.strategy, unit.seed)]
        for step in steps:
            key = (unit.label, unit.seed, step)
            if key in results:
                continue
            config = exp.pretrain_config(unit, positives)
            config = config.model_copy(
                update={"trainer": config.trainer.model_copy(update={"max_steps": step, "checkpoint_every": steps[0]})}
            )
            with cpu_threads(cfg.threads):
                pretrain(config, resume=True)
                metrics = evaluate_checkpoint(exp, last_checkpoint(config.out))
            metrics["train_acc"] = _in_batch_accuracy(config.out, step)
            results[key] = metrics
            _write(csv_path, results)
            print(
                f"{unit.label:>12} seed {unit.seed} step {step:>6}: "
                + ", ".join(f"{m} {metrics.get(m, math.nan):.3f}" for m in METRICS),
                flush=True,
            )
    for other in args.merge:
        results = {**_done(other), **results}
    png = plot(
        results,
        exp.out / "curves.png",
        f"learning curves ({cfg.name}: {cfg.backbones[0].key}, batch {cfg.pretrain.data.batch_size})",
    )
    print(f"\ncurves: {csv_path}\nplot: {png}\ntime: {time.perf_counter() - started:.0f} s")
    for strategy in dict.fromkeys(k[0] for k in results):
        last = max(k[2] for k in results if k[0] == strategy)
        vals = [results[k] for k in results if k[0] == strategy and k[2] == last]
        print(
            f"RESULT strategy={strategy} step={last} "
            + " ".join(
                f"{m}={np.mean([v[m] for v in vals]):.4f}"
                for m in ("triplet_acc", "ndcg@10", "genre_acc", "artist_acc")
            )
        )


if __name__ == "__main__":
    main()
