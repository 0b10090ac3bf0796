"""The usual suspects, each measured: the recipe study's experiment with one setting changed at a time.

Runs ``configs/study/recipe.yaml`` (artist, cooc-topk and the theme oracle; 3 seeds; similarity and
latent probes) once per variant below through `mixtape experiment` — the real pipeline, resumable —
and prints one table: triplet accuracy and nDCG@10 per strategy (mean ± std over seeds), the
cooc-topk − artist gap paired over seeds, and the latent genre and artist accuracies.

    python benchmarks/study/recipe_variants.py                 # every variant (about 5 min each on 2 cores)
    python benchmarks/study/recipe_variants.py --only base bilinear
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "study" / "recipe.yaml"

#: variant -> (what it tests, --set overrides). "base" is the shipped recipe.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "base": ("cosine / 0.1, batch 32, Adam 1e-3, 600 steps, half-width small CNN, 2-s patches", []),
    "bilinear": ("COLA's bilinear similarity (W ~ N(0, 0.05²))", ["pretrain.model.similarity=bilinear"]),
    "tau0.05": ("cosine / 0.05", ["pretrain.model.temperature=0.05"]),
    "tau0.2": ("cosine / 0.2", ["pretrain.model.temperature=0.2"]),
    "lr3e-3": ("learning rate 3e-3", ["pretrain.optim.lr=0.003"]),
    "warmup-cosine": (
        "60 warm-up steps, then a cosine decay to 0",
        ["pretrain.optim.warmup_steps=60", "pretrain.optim.schedule=cosine"],
    ),
    "batch64": (
        "batch 64 for 300 steps (the same pairs seen; twice the negatives per anchor)",
        ["pretrain.data.batch_size=64", "pretrain.trainer.max_steps=300", "pretrain.trainer.checkpoint_every=150"],
    ),
    "symmetric": ("symmetric loss (rows and columns of the score matrix)", ["pretrain.model.symmetric=true"]),
    "patch64": ("1-s patches (64 frames)", ["pretrain.data.patch_frames=64"]),
    "full-width": ("the default small CNN (channels 16..256, 4x the compute)", ["backbones=[{name: small}]"]),
}
STRATEGIES = ("artist", "cooc-topk", "theme")


def run(name: str, overrides: list[str]) -> Path:
    out = REPO / "runs" / "study" / name
    cmd = [sys.executable, "-m", "mixtape.cli", "experiment", str(CONFIG), "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    subprocess.run(cmd, check=True, cwd=REPO)
    return out / "results.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    args = ap.parse_args()

    from mixtape.experiment import read_results

    names = args.only or list(VARIANTS)
    lines = [
        "| variant | what changes | "
        + " | ".join(f"{s} triplet" for s in STRATEGIES)
        + " | "
        + " | ".join(f"{s} nDCG@10" for s in STRATEGIES)
        + " | cooc-topk − artist triplet (paired) | genre acc. (cooc-topk / artist) | artist acc. (cooc-topk / "
        "artist) |",
        "|---|---|" + "---:|" * (2 * len(STRATEGIES) + 3),
    ]
    for name in names:
        what, overrides = VARIANTS[name]
        rows = read_results(run(name, overrides))

        def values(strategy: str, task: str, metric: str, rows: list = rows) -> dict[int, float]:
            return {r.seed: r.value for r in rows if (r.strategy, r.task, r.metric) == (strategy, task, metric)}

        def cell(strategy: str, task: str, metric: str) -> str:
            v = np.array(list(values(strategy, task, metric).values()))
            return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else (f"{v.mean():.3f}" if len(v) else "–")

        a, b = values("cooc-topk", "similarity", "triplet_acc"), values("artist", "similarity", "triplet_acc")
        d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b))])
        gap = f"{d.mean():+.3f} ± {d.std(ddof=1):.3f}" if len(d) > 1 else "–"
        lines.append(
            f"| {name} | {what} | "
            + " | ".join(cell(s, "similarity", "triplet_acc") for s in STRATEGIES)
            + " | "
            + " | ".join(cell(s, "similarity", "ndcg@10") for s in STRATEGIES)
            + f" | {gap} | {cell('cooc-topk', 'latent', 'genre_acc')} / {cell('artist', 'latent', 'genre_acc')}"
            + f" | {cell('cooc-topk', 'latent', 'artist_acc')} / {cell('artist', 'latent', 'artist_acc')} |"
        )
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
