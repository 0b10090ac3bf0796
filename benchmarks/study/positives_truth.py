"""What each strategy's positives share with their anchor, in the world's latent truth (no training).

For the positives an experiment trained on (``RUN/pairs/<strategy>``), draws anchor/positive pairs the
way training does (a uniform anchor, then the strategy's sampler) and reports how often the positive
shares the anchor's genre, its moods (Jaccard), instruments (Jaccard), tempo and energy (the triplet
annotators' five aspects, ``mixtape.world.triplets.aspect_similarity``), their weighted sum with the
annotators' mean weights, and how often it is by the same artist. It also counts, over one epoch of
real batches (``PairBatchSampler``, batch 32), how many of each anchor's in-batch negatives share its
genre and a mood (its theme: false negatives for a theme-like strategy) or its artist.

    python benchmarks/study/positives_truth.py runs/demo          # after `mixtape demo`

Prints a Markdown table (docs/evidence.md quotes it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="an experiment run folder on a generated world (e.g. runs/demo)")
    ap.add_argument("--pairs", type=int, default=50_000, help="pairs sampled per strategy")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    from mixtape.pairs import PairBatchSampler, Positives
    from mixtape.world.latent import build_catalogue
    from mixtape.world.sizes import SIZES
    from mixtape.world.triplets import ASPECT_WEIGHTS, aspect_similarity

    world = json.loads((args.run / "world" / "world.json").read_text(encoding="utf-8"))
    cat = build_catalogue(SIZES[world["size"]], int(world["seed"]))
    t = cat.tracks
    index = {cat.track_id(i): i for i in range(len(t))}
    rng = np.random.default_rng(0)
    header = (
        "| positives | genre | moods (Jaccard) | instruments (Jaccard) | tempo | energy | weighted (annotators) | "
        "same artist | theme-sharing negatives per anchor | same-artist negatives per anchor |"
    )
    print(header)
    print("|---|" + "---:|" * (header.count("|") - 2))

    def row(
        name: str, a: np.ndarray, p: np.ndarray, fn_theme: float | None = None, fn_artist: float | None = None
    ) -> None:
        s = aspect_similarity(cat, a, p)
        m = s.mean(axis=0)
        extra = [f"{v:.2f}" if v is not None else "–" for v in (fn_theme, fn_artist)]
        print(
            f"| {name} | "
            + " | ".join(f"{v:.3f}" for v in m)
            + f" | {float((s @ ASPECT_WEIGHTS).mean()):.3f} | {float((t.artist[a] == t.artist[p]).mean()):.2f} | "
            + " | ".join(extra)
            + " |"
        )

    n = len(t)
    a, p = rng.integers(0, n, args.pairs), rng.integers(0, n, args.pairs)
    keep = a != p
    row("random pair (chance)", a[keep], p[keep])
    for folder in sorted((args.run / "pairs").iterdir()):
        source = folder / "seed0" if (folder / "seed0").is_dir() else folder
        if not (source / "positives.json").is_file():
            continue
        pos = Positives.load(source)
        rows = np.array([index[str(tid)] for tid in pos.track_ids])
        anchors = pos.anchors[rng.integers(0, len(pos.anchors), args.pairs)]
        positives = pos.sample(anchors, rng)
        theme_fn, artist_fn = [], []
        for batch_a, batch_p in PairBatchSampler(pos, args.batch_size, seed=0).batches(0):
            wa, wp = rows[batch_a], rows[batch_p]
            same_genre = t.genre[wa][:, None] == t.genre[wp][None, :]
            share_mood = (t.moods[wa].astype(int) @ t.moods[wp].T.astype(int)) > 0
            same_artist = t.artist[wa][:, None] == t.artist[wp][None, :]
            off = ~np.eye(len(wa), dtype=bool)
            theme_fn.append(float((same_genre & share_mood & off).sum(axis=1).mean()))
            artist_fn.append(float((same_artist & off).sum(axis=1).mean()))
        row(folder.name, rows[anchors], rows[positives], float(np.mean(theme_fn)), float(np.mean(artist_fn)))


if __name__ == "__main__":
    main()
