"""`mixtape demo` on the tiny world with a minimal grid: every stage runs and report.md has every section."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mixtape.catalog import read_tracks
from mixtape.demo import DEFAULT_CONFIG, REPORT_FILE, WORLD_TAGS, run_demo
from mixtape.errors import MixtapeError
from mixtape.search import SimilarIndex

MINIMAL = {
    "seeds": [0],
    "strategies": ["self", "playlist"],
    "backbones": [{"name": "small", "options": {"channels": [8, 16, 32]}}],
    "pretrain.data.batch_size": 16,
    "pretrain.data.patch_frames": 64,
    "pretrain.data.workers": 0,
    "pretrain.trainer.max_steps": 12,
    "pretrain.trainer.checkpoint_every": 6,
    "pretrain.trainer.log_every": 2,
    "tasks.probe": ["genre"],
    "tasks.probe_config.max_epochs": 20,
}


def test_demo_config_is_the_documented_grid() -> None:
    from mixtape.experiment import load_experiment_config

    cfg = load_experiment_config(DEFAULT_CONFIG)
    assert [s.key for s in cfg.strategies] == ["self", "artist", "playlist", "cooc-topk", "track2vec", "theme"]
    assert [b.name for b in cfg.backbones] == ["small"] and cfg.seeds == [0, 1, 2]
    assert cfg.data.world is not None and cfg.data.world.size == "small" and cfg.tasks.baseline


def test_demo_on_the_tiny_world_writes_the_whole_report(tiny_world, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    shutil.copytree(
        tiny_world.root, out / "world"
    )  # the same world the demo would render (tiny, seed 0), already on disk
    report = run_demo(out, size="tiny", seed=0, workers=1, overrides=MINIMAL)
    text = (out / REPORT_FILE).read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    names = [s.split(" (")[0] for s in sections]
    assert names == [
        "## world",
        "## features",
        "## pairs",
        "## pretrain",
        "## evaluation",
        "## report",
        "## search",
        "## results",
        "## bar charts",
        "## t-SNE maps of test embeddings",
        "## training curves",
        "## time per stage",
    ]
    assert "| random init (no pre-training) | 1 |" in text and "| playlist | 1 |" in text
    assert "Best per task: probe-genre PR-AUC: **" in text
    for link in (
        "plots/probe-genre.png",
        "plots/similarity.png",
        "plots/tsne-small.png",
        "runs/self/small/seed0/pretrain/training_curve.png",
    ):
        assert f"({link})" in text and (out / link).is_file(), link
    assert "self · small · seed 0: 12 steps" in text
    assert [s.name for s in report.stages] == [
        "world",
        "features",
        "pairs",
        "pretrain",
        "evaluation",
        "report",
        "search",
    ]
    printed = report.console()
    assert str(out / REPORT_FILE) in printed and "| total |" in printed and "Best per task" in printed
    # the demo ends with the command that opens the listening page on an index of the whole world
    assert f"mixtape serve --index {out / 'search' / 'index'} --tags {out / WORLD_TAGS}" in printed
    assert (out / WORLD_TAGS).is_file()  # the page gets the world's tags: chips, tag filters, map colours
    index = SimilarIndex.open(out / "search" / "index")
    first = read_tracks(tiny_world.tracks).records[0].track_id
    assert len(index.similar_to_track(first, k=5).neighbours) == 5


def test_demo_with_a_missing_config_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="demo config not found: .*nope.yaml"):
        run_demo(tmp_path / "d", size="tiny", config=tmp_path / "nope.yaml")


def test_the_listening_page_is_built_on_the_best_real_strategy_not_the_oracle(tmp_path: Path) -> None:
    """`theme` learns from the world's hidden truth: a ceiling for the study, not a model a user could
    train, so the demo's search index uses the best of the others even when the oracle scores higher."""
    from mixtape.demo import _best_checkpoint

    rows = ["strategy,backbone,seed,task,metric,value"]
    for strategy, score in (("theme", 0.30), ("track2vec", 0.22), ("artist", 0.20)):
        rows += [f"{strategy},small,{seed},similarity,ndcg@10,{score + seed / 1000}" for seed in (0, 1)]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    checkpoints = {
        (s, "small", seed): tmp_path / f"{s}{seed}.ckpt" for s in ("theme", "track2vec", "artist") for seed in (0, 1)
    }
    assert _best_checkpoint(checkpoints, tmp_path / "results.csv")[0] == ("track2vec", "small", 0)
    only_oracle = {k: v for k, v in checkpoints.items() if k[0] == "theme"}
    assert _best_checkpoint(only_oracle, tmp_path / "results.csv")[0] == ("theme", "small", 0)
