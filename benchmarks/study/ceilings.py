"""Floors and ceilings of the similarity metrics on a generated world, and what one 2-s patch carries.

Scored exactly as the experiment scores an encoder (cosine, triplet accuracy, nDCG@10 on held-out
playlists, the latent-attribute probes), for representations that need no pre-training:

- the latent truth itself (one-hot genre, mood shares, instruments, tempo, energy, artist): what a
  perfect embedding of each attribute would reach — the ceilings;
- mean and std of the log-mel over the whole track, and over one random 2-s patch (does a patch
  carry the genre and mood at all?);
- the encoder with random weights (the floor every pre-training must clear);
- the same encoder trained *supervised* on the latent genre and moods of the training tracks for
  ``--steps`` steps (cross-entropy + binary cross-entropy, same patches, batch, optimiser): what the
  architecture can learn in a CPU budget when told the answer.

    python benchmarks/study/ceilings.py configs/demo.yaml --steps 600

Prints a Markdown table (docs/evidence.md quotes it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

GENRES = ("rock", "metal", "electronic", "hiphop", "jazz", "folk", "classical", "ambient")


def score(exp: Any, emb: np.ndarray, truth: Any) -> dict[str, float]:
    from mixtape.evaluation.latent import latent_probe
    from mixtape.evaluation.similarity import evaluate_similarity

    data = exp.eval_data()
    pool = data.pool
    jitter = 1e-6 * np.random.default_rng(0).standard_normal(
        emb.shape
    )  # one-hot rows tie: break ties at random, not by row order
    m = evaluate_similarity(
        (emb + jitter)[pool.store_rows],
        artist=pool.artist,
        heldout=pool.heldout,
        triplets=data.triplets,
        k=10,
        mutual_proximity="none",
    ).metrics
    out = {
        "triplet_acc": m["triplet_acc"],
        "ndcg@10": m["ndcg@10"],
        "ndcg@10_artist_filtered": m["ndcg@10_artist_filtered"],
    }
    out.update(latent_probe(emb, truth))
    return out


def supervised(exp: Any, reader: Any, truth: Any, steps: int, seed: int) -> Any:
    """The experiment's backbone trained on latent genre + moods of the non-test tracks."""
    import torch

    from mixtape.models import Encoder

    cfg = exp.config
    backbone = cfg.backbones[0]
    torch.manual_seed(seed)
    encoder = Encoder(backbone.name, 96, **backbone.options)
    head = torch.nn.Linear(encoder.embedding_dim, truth.genre.max() + 1 + truth.moods.shape[1])
    opt = torch.optim.Adam(
        [p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad], lr=cfg.pretrain.optim.lr
    )
    train = np.flatnonzero(~truth.test)
    rng = np.random.default_rng(seed)
    batch = 2 * cfg.pretrain.data.batch_size  # as many patches per step as a contrastive step (anchor + positive)
    n_genres = int(truth.genre.max()) + 1
    encoder.train()
    for _ in range(steps):
        rows = rng.choice(train, batch, replace=False)
        x = torch.from_numpy(reader.random_patches(rows, rng))
        out = head(encoder(x))
        loss = torch.nn.functional.cross_entropy(out[:, :n_genres], torch.from_numpy(truth.genre[rows]))
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
            out[:, n_genres:], torch.from_numpy(truth.moods[rows]).float()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return encoder.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "config", type=Path, help="experiment config on a generated world (its world, features and backbone are used)"
    )
    ap.add_argument("--steps", type=int, default=600, help="steps of the supervised encoder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()

    from mixtape.audio import PatchReader
    from mixtape.experiment import Experiment, cpu_threads, load_experiment_config
    from mixtape.models import Encoder
    from mixtape.models.embedding import embed_tracks
    from mixtape.world.truth import read_latent

    cfg = load_experiment_config(args.config)
    exp = Experiment(cfg)
    exp.world()
    store = exp.features()
    reader = PatchReader(store, cfg.pretrain.data.patch_frames)
    ids = list(store.track_ids)
    truth = read_latent(exp.world().world_json, ids)
    doc = json.loads(exp.world().world_json.read_text(encoding="utf-8"))
    by_id = {t["track_id"]: t for t in doc["tracks"]}
    tracks = [by_id[i] for i in ids]
    instruments = doc["vocabulary"]["instruments"]
    genre = np.eye(len(truth.genres))[truth.genre]
    moods = truth.moods / truth.moods.sum(axis=1, keepdims=True)
    inst = np.array([[x in t["instruments"] for x in instruments] for t in tracks], dtype=float)
    inst /= np.linalg.norm(inst, axis=1, keepdims=True)
    tempo = np.array([[(t["tempo"] - 120.0) / 60.0] for t in tracks])
    energy = np.array([[t["energy"] - 0.5] for t in tracks])
    artist = np.eye(int(truth.artist.max()) + 1)[truth.artist]

    rows: list[tuple[str, dict[str, float] | list[dict[str, float]]]] = [
        ("latent: genre one-hot", score(exp, genre, truth)),
        ("latent: moods", score(exp, moods, truth)),
        ("latent: genre + moods", score(exp, np.hstack([genre, moods]), truth)),
        (
            "latent: genre + moods + instruments + tempo + energy",
            score(exp, np.hstack([genre, moods, 0.5 * inst, tempo, energy]), truth),
        ),
        ("latent: artist one-hot", score(exp, artist, truth)),
    ]
    rng = np.random.default_rng(0)
    whole, patch = [], []
    for i in range(len(store)):
        frames = np.asarray(store.frames(i), dtype=np.float64)
        whole.append(np.concatenate([frames.mean(axis=0), frames.std(axis=0)]))
        start = int(rng.integers(0, max(1, len(frames) - cfg.pretrain.data.patch_frames + 1)))
        one = frames[start : start + cfg.pretrain.data.patch_frames]
        patch.append(np.concatenate([one.mean(axis=0), one.std(axis=0)]))

    def standardize(x: list[np.ndarray]) -> np.ndarray:
        return (np.array(x) - np.mean(x, axis=0)) / (np.std(x, axis=0) + 1e-9)

    rows.append(("mel statistics, whole track (mean+std per band)", score(exp, standardize(whole), truth)))
    rows.append(("mel statistics, one 2-s patch", score(exp, standardize(patch), truth)))
    with cpu_threads(cfg.threads):
        random_init, trained = [], []
        backbone = cfg.backbones[0]
        for seed in args.seeds:
            import torch

            torch.manual_seed(seed)
            encoder = Encoder(backbone.name, 96, **backbone.options).eval()
            random_init.append(score(exp, embed_tracks(encoder, reader, np.arange(len(store))), truth))
            encoder = supervised(exp, reader, truth, args.steps, seed)
            trained.append(score(exp, embed_tracks(encoder, reader, np.arange(len(store))), truth))
    rows.append((f"{backbone.key}, random weights", random_init))
    rows.append((f"{backbone.key}, supervised on latent genre + moods, {args.steps} steps", trained))

    metrics = ("triplet_acc", "ndcg@10", "ndcg@10_artist_filtered", "genre_acc", "mood_auc", "artist_acc")
    print("| representation | " + " | ".join(metrics) + " |")
    print("|---|" + "---:|" * len(metrics))
    for name, values in rows:
        runs = values if isinstance(values, list) else [values]
        cells = []
        for m in metrics:
            v = np.array([r[m] for r in runs])
            cells.append(f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
