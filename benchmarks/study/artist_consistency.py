"""How consistent an artist is in genre, mood and instruments: real MTG-Jamendo metadata vs the world.

For pairs of tracks by the same artist and for random pairs by different artists (50,000 each, seeded),
the probability that the two share a tag of a family; the lift is their ratio. Used in
docs/evidence.md to ask whether the generated world lacks a property of real music.

    python benchmarks/study/artist_consistency.py            # needs ../shared/data/mtg-jamendo
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MTG = REPO.parent / "shared" / "data" / "mtg-jamendo" / "splits" / "split-0"


def share_rates(artists: Sequence[str], same: Callable[[int, int], bool], pairs: int, seed: int) -> tuple[float, float]:
    """P(share | same artist), P(share | random pair of different artists)."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(artists):
        by[a].append(i)
    multi = [a for a, v in by.items() if len(v) >= 2]
    within = []
    for _ in range(pairs):
        a = multi[rng.integers(len(multi))]
        i, j = rng.choice(by[a], 2, replace=False)
        within.append(same(int(i), int(j)))
    across = []
    while len(across) < pairs:
        i, j = rng.integers(len(artists), size=2)
        if artists[i] != artists[j]:
            across.append(same(int(i), int(j)))
    return float(np.mean(within)), float(np.mean(across))


def mtg_rows(subset: str) -> tuple[list[str], list[set[str]]]:
    artists, tags = [], []
    for split in ("train", "validation", "test"):
        for line in (MTG / f"autotagging_{subset}-{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
            f = line.split("\t")
            artists.append(f[1])
            tags.append(set(f[5:]))
    return artists, tags


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| data | family | tracks | artists | same artist | random pair | lift |\n|---|---|---:|---:|---:|---:|---:|")
    if MTG.is_dir():
        for family, subset in (("genre", "genre"), ("mood/theme", "moodtheme"), ("instrument", "instrument")):
            artists, tags = mtg_rows(subset)
            s, r = share_rates(artists, lambda i, j, tags=tags: bool(tags[i] & tags[j]), args.pairs, args.seed)
            print(
                f"| MTG-Jamendo | {family} | {len(artists)} | {len(set(artists))} | {s:.3f} | {r:.3f} | {s / r:.1f} |"
            )
    else:
        print(f"(MTG-Jamendo splits not found at {MTG})")

    from mixtape.world.latent import build_catalogue
    from mixtape.world.sizes import SIZES

    t = build_catalogue(SIZES["small"], 0).tracks
    artists = [str(a) for a in t.artist]
    for family, same in (
        ("genre", lambda i, j: bool(t.genre[i] == t.genre[j])),
        ("mood", lambda i, j: bool((t.moods[i] & t.moods[j]).any())),
        ("instrument", lambda i, j: bool((t.instruments[i] & t.instruments[j]).any())),
    ):
        s, r = share_rates(artists, same, args.pairs, args.seed)
        print(f"| world `small` | {family} | {len(artists)} | {len(set(artists))} | {s:.3f} | {r:.3f} | {s / r:.1f} |")


if __name__ == "__main__":
    main()
