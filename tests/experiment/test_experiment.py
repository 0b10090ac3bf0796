"""The experiment runner: config checks, the table (mean ± std, best in bold, verdict), and a tiny
grid end to end on the tiny world (results.csv, results.md, figures, resumability, a failed run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixtape.cli import main
from mixtape.config import ConfigError, config_from_dict
from mixtape.errors import MixtapeError
from mixtape.experiment.config import BASELINE, ExperimentConfig
from mixtape.experiment.results import (
    RESULT_COLUMNS,
    ResultRow,
    claims,
    claims_markdown,
    read_results,
    results_csv_text,
    results_markdown,
    summarize,
    verdict,
)
from mixtape.experiment.runner import Experiment

TABLE_METRICS = {
    "roc_auc",
    "pr_auc",
    "triplet_acc",
    "ndcg@10",
    "map@10",
    "p@10",
    "ndcg@10_artist_filtered",
    "artist_p@10",
    "hubness",
}


def _rows(strategy: str, task: str, metric: str, values: list[float]) -> list[ResultRow]:
    return [ResultRow(strategy, "small", seed, task, metric, v) for seed, v in enumerate(values)]


def _handmade() -> list[ResultRow]:
    """Three strategies and the baseline over two seeds; values chosen so the outcome is known."""
    rows: list[ResultRow] = []
    rows += _rows("self", "probe-genre", "pr_auc", [0.68, 0.70])  # 0.690 ± 0.014
    rows += _rows("artist", "probe-genre", "pr_auc", [0.60, 0.62])  # 0.610 ± 0.014
    rows += _rows("playlist", "probe-genre", "pr_auc", [0.72, 0.74])  # 0.730 ± 0.014: ahead of self by 0.04 > one std
    rows += _rows(BASELINE, "probe-genre", "pr_auc", [0.50, 0.52])
    rows += _rows("self", "similarity", "triplet_acc", [0.61, 0.61])  # 0.610 ± 0.000
    rows += _rows("artist", "similarity", "triplet_acc", [0.55, 0.57])
    rows += _rows("playlist", "similarity", "triplet_acc", [0.60, 0.64])  # 0.620 ± 0.028: within one std of self
    rows += _rows(BASELINE, "similarity", "triplet_acc", [0.70, 0.70])  # random weights win here
    rows += _rows("self", "similarity", "hubness", [1.0, 1.2])
    rows += _rows("playlist", "similarity", "hubness", [0.4, 0.6])  # lowest: best
    rows += _rows("self", "similarity", "artist_p@10", [0.9, 0.9])  # descriptive: never bold
    rows += _rows("playlist", "similarity", "artist_p@10", [0.2, 0.2])
    return rows


def test_table_shows_mean_std_and_bolds_the_best_of_each_column(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(results_csv_text(_handmade()))
    rows = read_results(path)
    assert len(rows) == len(_handmade())
    md = results_markdown(rows, "hand-made", kinds=None)
    lines = md.splitlines()
    tagging = lines.index("| strategy | seeds | genre PR-AUC ↑ |")
    assert lines[tagging + 2].startswith("| random init (no pre-training) | 2 | 0.510 ± 0.014 |")  # baseline first
    assert "| playlist | 2 | **0.730 ± 0.014** |" in md
    assert "| self | 2 | 0.690 ± 0.014 |" in md and "| artist | 2 | 0.610 ± 0.014 |" in md
    sim_header = next(line for line in lines if line.startswith("| strategy | seeds | triplet acc."))
    assert sim_header == "| strategy | seeds | triplet acc. ↑ | artist P@10 | hubness ↓ |"
    sim_rows = lines[lines.index(sim_header) + 2 :]
    playlist = next(line for line in sim_rows if line.startswith("| playlist |"))
    self_row = next(line for line in sim_rows if line.startswith("| self |"))
    base = next(line for line in sim_rows if line.startswith("| random init"))
    assert "**0.700 ± 0.000**" in base  # the baseline can win a column, and then it is the bold one
    assert playlist.endswith("| 0.620 ± 0.028 | 0.200 ± 0.000 | **0.500 ± 0.141** |")  # lower hubness is better
    assert "**" not in self_row  # artist P@10 is descriptive: its 0.900 is not bold
    verdict_at = next(i for i, line in enumerate(lines) if line.startswith("Best per task:"))
    assert lines[verdict_at - 4] == "### Verdict"  # the verdict follows the tables, then the claims close the file
    assert lines[verdict_at + 2] == "### Claims, tested over seeds" and lines[-1].startswith("| ")


def test_verdict_says_who_wins_by_how_much_and_when_it_is_within_one_std() -> None:
    text = verdict(summarize(_handmade()))
    assert "probe-genre PR-AUC: **playlist** (0.730 ± 0.014), ahead of self by 0.040, more than one std" in text
    assert "similarity triplet acc.: **playlist** (0.620 ± 0.028), within one std of self (0.610 ± 0.000)" in text
    assert (
        "yet no better than random init (no pre-training) (0.700 ± 0.000)" in text
    )  # random weights beat every strategy there
    assert "Playlist-based strategies (playlist) beat artist/self (self, artist) on this run: better on 2 of 2" in text
    assert "(1 by more than one std)" in text


def test_verdict_when_playlists_lose_and_with_one_seed() -> None:
    rows = [
        ResultRow(s, "small", 0, "probe-genre", "pr_auc", v)
        for s, v in (("self", 0.8), ("playlist", 0.6), ("artist", 0.7))
    ]
    text = verdict(summarize(rows))
    assert "**self** (0.800), ahead of artist by 0.100 (one seed: no spread measured)" in text
    assert (
        "Playlist-based strategies (playlist) did not beat artist/self (self, artist)" in text and "worse on 1" in text
    )


def test_variant_labels_are_grouped_by_their_strategy() -> None:
    rows = [ResultRow(s, "small", 0, "probe-genre", "pr_auc", v) for s, v in (("cooc-k5", 0.9), ("self", 0.7))]
    assert (
        "playlist-based strategies (cooc-k5) beat artist/self (self)"
        in verdict(summarize(rows), {"cooc-k5": "cooc-topk", "self": "self"}).lower()
    )


def test_every_playlist_derived_strategy_is_judged_as_playlist_based() -> None:
    """pmi-svd (and any strategy whose source is playlists) competes as playlist-based, never as 'other'."""
    from mixtape.pairs.params import PARAMS, SOURCES

    assert set(SOURCES) == set(PARAMS)  # a new built-in strategy must say where its positives come from
    rows: list[ResultRow] = []
    rows += _rows("artist", "similarity", "triplet_acc", [0.64, 0.66, 0.65])
    rows += _rows("pmi-svd", "similarity", "triplet_acc", [0.70, 0.71, 0.69])
    found = {(c.text, c.a, c.b) for c, _ in claims(rows)}
    assert ("best playlist-based beats artist", "pmi-svd", "artist") in found
    assert "playlist-based strategies (pmi-svd) beat artist/self (artist)" in verdict(summarize(rows)).lower()


def test_claims_are_paired_over_seeds_and_keep_the_oracle_apart() -> None:
    rows: list[ResultRow] = []
    rows += _rows("self", "similarity", "triplet_acc", [0.60, 0.62, 0.61])
    rows += _rows("artist", "similarity", "triplet_acc", [0.64, 0.66, 0.65])
    rows += _rows("cooc-topk", "similarity", "triplet_acc", [0.70, 0.71, 0.69])  # +0.05 over artist on every seed
    rows += _rows("playlist", "similarity", "triplet_acc", [0.59, 0.63, 0.60])  # below self on two seeds of three
    rows += _rows("theme", "similarity", "triplet_acc", [0.80, 0.80, 0.80])  # the oracle: a ceiling, never "best"
    rows += _rows(BASELINE, "similarity", "triplet_acc", [0.55, 0.55, 0.56])
    found = {(c.text, c.a, c.b): (c, spread) for c, spread in claims(rows)}
    c, spread = found[("best playlist-based beats artist", "cooc-topk", "artist")]
    assert c.diffs == pytest.approx((0.06, 0.05, 0.04)) and c.p_value < 0.05 and c.holds(spread) == "yes"
    c, spread = found[("metadata strategy beats self", "playlist", "self")]
    assert c.mean == pytest.approx(-0.0033, abs=1e-3) and c.holds(spread) == "no"
    assert ("best strategy beats random init", "cooc-topk", "random init (no pre-training)") in found  # not theme
    c, _ = found[("oracle ceiling above the best strategy", "theme", "cooc-topk")]
    assert c.mean == pytest.approx(0.10)
    md = claims_markdown(rows)
    assert (
        "| best playlist-based beats artist | triplet acc. | cooc-topk | artist | 0.700 | 0.650 | +0.050 ± "
        "0.010 (n=3) |" in md
    )
    assert "**theme**" not in verdict(summarize(rows), None)  # the verdict's best is the best real strategy


def test_results_file_errors_name_the_file_and_the_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad_header = tmp_path / "a.csv"
    bad_header.write_text("strategy,seed,value\nself,0,1\n")
    with pytest.raises(MixtapeError, match="a.csv: header"):
        read_results(bad_header)
    with pytest.raises(MixtapeError, match="not found"):
        read_results(tmp_path / "missing.csv")
    partly = tmp_path / "b.csv"
    partly.write_text(
        ",".join(RESULT_COLUMNS) + "\nself,small,0,probe-genre,pr_auc,0.5\nself,small,zero,probe-genre,pr_auc,0.5\n"
    )
    assert len(read_results(partly)) == 1
    assert "line 3" in caplog.text


def _config(**data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"data": {"tracks": "t.csv"}, "strategies": ["self"], "backbones": ["small"]}
    base.update(data)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategies": ["selfie"]}, "unknown pair strategy 'selfie'"),
        ({"strategies": [{"name": "artist", "params": {"k": 5}}]}, "artist takes no parameter(s) ['k']"),
        ({"strategies": [{"name": "track2vec", "params": {"seed": 1}}]}, "'seed' comes from the experiment's `seeds`"),
        ({"strategies": ["self", "self"]}, "strategy self listed twice"),
        ({"backbones": ["resnet9000"]}, "unknown backbone 'resnet9000'"),
        ({"pretrain": {"model": {"backbone": "small"}}}, "model.backbone come(s) from the grid"),
        ({"tasks": {"probe_config": {"seed": 3}}}, "probe_config.seed comes from the experiment's `seeds`"),
        ({"seeds": [0, 0]}, "seed 0 listed twice"),
        ({"tasks": {"probe": ["genre"], "probes": []}}, "unknown key 'tasks.probes'"),
    ],
)
def test_bad_configs_are_refused_with_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(ExperimentConfig, _config(**change), "exp.yaml")
    assert "exp.yaml" in str(err.value) and message in str(err.value)


def test_a_bare_name_stands_for_a_strategy_or_backbone() -> None:
    cfg = config_from_dict(
        ExperimentConfig, _config(strategies=["self", {"name": "cooc-topk", "label": "cooc-k5", "params": {"k": 5}}])
    )
    assert [s.key for s in cfg.strategies] == ["self", "cooc-k5"] and cfg.backbones[0].name == "small"
    assert cfg.data.tracks == [Path("t.csv")]


# --- the tiny grid end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_grid(tiny_world, tiny_store, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExperimentConfig, Any]:
    """2 strategies × 1 seed × (probe genre + similarity), 20 steps of the small backbone, run once."""
    out = tmp_path_factory.mktemp("experiment") / "run"
    cfg = config_from_dict(
        ExperimentConfig,
        {
            "name": "tiny",
            "out": str(out),
            "data": {
                "tracks": str(tiny_world.tracks),
                "playlists": [str(tiny_world.playlists)],
                "heldout": [str(tiny_world.heldout)],
                "splits": str(tiny_world.splits),
                "triplets": str(tiny_world.triplets),
                "features": str(tiny_store.path),
            },
            "strategies": ["self", "playlist"],
            "backbones": [{"name": "small", "options": {"channels": [8, 16, 32]}}],
            "seeds": [0],
            "threads": 1,
            "pretrain": {
                "data": {"batch_size": 16, "patch_frames": 64, "workers": 0},
                "model": {"projection_dim": 32},
                "trainer": {
                    "max_steps": 20,
                    "checkpoint_every": 10,
                    "log_every": 2,
                    "accelerator": "cpu",
                    "devices": 1,
                    "precision": "32-true",
                },
            },
            "tasks": {
                "probe": ["genre"],
                "maps": ["genre", "moodtheme"],
                "probe_config": {"max_epochs": 30, "patience": 5},
            },
        },
    )
    return cfg, Experiment(cfg).run()


def test_tiny_grid_writes_the_long_table(tiny_grid) -> None:
    cfg, result = tiny_grid
    assert result.work.failed == []
    lines = result.results_csv.read_text().splitlines()
    assert lines[0] == ",".join(RESULT_COLUMNS)
    rows = read_results(result.results_csv)
    assert {r.strategy for r in rows} == {BASELINE, "self", "playlist"}
    assert {r.task for r in rows} == {"probe-genre", "similarity"}
    assert {r.metric for r in rows} == TABLE_METRICS  # every metric name of the table, and no other
    assert all(0.0 <= r.value <= 1.0 for r in rows if r.metric != "hubness")
    assert len(rows) == 3 * (2 + 7)


def test_tiny_grid_writes_results_md_figures_and_curves(tiny_grid) -> None:
    cfg, result = tiny_grid
    md = result.results_md.read_text()
    assert "| random init (no pre-training) | 1 |" in md and "| self | 1 |" in md and "| playlist | 1 |" in md
    assert md.count("**") >= 2 * 8  # each ranked column has a bold best
    assert any(line.startswith("Best per task: probe-genre PR-AUC: **") for line in md.splitlines())
    for name in ("probe-genre.png", "similarity.png", "tsne-small.png"):
        png = cfg.out / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"(plots/{name})" in md
    assert set(result.curves) == {"self · small", "playlist · small"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.curves.values())
    metrics = json.loads(
        (cfg.out / "runs" / "playlist" / "small" / "seed0" / "eval" / "probe-genre" / "metrics.json").read_text()
    )
    assert metrics["task"] == "probe" and metrics["config"]["seed"] == 0


def _outputs(root: Path) -> dict[Path, int]:
    files = [
        *root.glob("runs/*/small/seed0/pretrain/checkpoints/*.ckpt"),
        *root.glob("runs/*/small/seed0/eval/*/metrics.json"),
        *root.glob("pairs/*/positives.json"),
    ]
    return {p: p.stat().st_mtime_ns for p in files}


def test_second_run_does_no_new_work_and_a_lost_result_is_redone(tiny_grid) -> None:
    cfg, first = tiny_grid
    assert any(w.startswith("pretrain playlist") for w in first.work.ran)
    before = _outputs(cfg.out)
    assert (
        len([p for p in before if p.name == "last.ckpt"]) == 2
        and len([p for p in before if p.name == "metrics.json"]) == 3 * 2
    )
    again = Experiment(cfg).run()
    assert again.work.ran == [] and again.work.failed == []
    assert _outputs(cfg.out) == before
    assert again.results_csv.read_text() == first.results_csv.read_text()
    # A run killed after the probe but before its marker: only that task is redone.
    (cfg.out / "runs" / "self" / "small" / "seed0" / "eval" / "probe-genre" / "done.json").unlink()
    third = Experiment(cfg).run()
    assert third.work.ran == ["evaluate probe-genre of self · small · seed 0"]
    assert again.results_csv.read_text() == third.results_csv.read_text()


def test_a_failing_run_is_reported_and_the_others_kept(tiny_grid, monkeypatch: pytest.MonkeyPatch) -> None:
    import mixtape.experiment.runner as training_run  # the runner calls mixtape.training.run.pretrain by this name

    cfg, _ = tiny_grid
    real = training_run.pretrain

    def pretrain(config: Any, resume: bool = False) -> Any:
        if "/artist/" in str(config.out):
            raise MixtapeError("simulated: the loader could not fill a batch")
        return real(config, resume)

    monkeypatch.setattr(training_run, "pretrain", pretrain)
    grid = cfg.model_copy(
        update={
            "strategies": [
                *cfg.strategies,
                config_from_dict(ExperimentConfig, _config(strategies=["artist"])).strategies[0],
            ]
        }
    )
    result = Experiment(grid).run()
    assert result.work.failed == [
        "pretrain artist · small · seed 0: MixtapeError: simulated: the loader could not fill a batch",
        "evaluate artist · small · seed 0: not run, it has no pre-trained checkpoint",
    ]
    assert [w for w in result.work.ran if not w.startswith("pairs")] == []  # the other runs were up to date
    md = result.results_md.read_text()
    assert "### Failed runs (left out of the table)" in md and "simulated: the loader could not fill a batch" in md
    assert "| artist |" not in md and "| playlist | 1 |" in md


def test_experiment_command_regenerates_the_report(
    tiny_grid, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    cfg, _ = tiny_grid
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg.dump()))
    assert main(["experiment", str(path), "--report-only"]) == 0
    printed = capsys.readouterr().out
    assert (
        "| random init (no pre-training) | 1 |" in printed and "Best per task" in printed and "0 step(s) run" in printed
    )
    path.write_text(yaml.safe_dump({**cfg.dump(), "strategies": ["self", "cooc"]}))
    assert main(["experiment", str(path)]) == 2
    assert "unknown pair strategy 'cooc'" in capsys.readouterr().err


def test_paper_config_is_the_papers_grid() -> None:
    from mixtape.experiment import load_experiment_config

    cfg = load_experiment_config(Path(__file__).resolve().parents[2] / "configs" / "paper.yaml")
    assert [s.name for s in cfg.strategies] == ["self", "artist", "playlist", "cooc-topk", "track2vec"]
    assert [b.name for b in cfg.backbones] == ["efficientnet_b0"] and len(cfg.seeds) == 3
    assert cfg.tasks.probe == ["genre", "moodtheme", "instrument", "top50tags"] and cfg.tasks.similarity


@pytest.mark.parametrize("name", ["demo.yaml", "evidence.yaml", "study/recipe.yaml", "study/strategies.yaml"])
def test_shipped_world_configs_load_with_every_strategy_and_the_oracle(name: str) -> None:
    from mixtape.experiment import load_experiment_config

    cfg = load_experiment_config(Path(__file__).resolve().parents[2] / "configs" / name)
    assert cfg.data.world is not None and cfg.tasks.latent and len(cfg.seeds) == 3
    assert "theme" in [s.name for s in cfg.strategies] and cfg.pretrain.model.similarity == "cosine"


def test_finetuning_adds_its_own_table(tiny_grid) -> None:
    cfg, _ = tiny_grid
    tasks = cfg.tasks.model_copy(
        update={
            "finetune": ["genre"],
            "finetune_config": cfg.tasks.finetune_config.model_copy(update={"max_epochs": 1, "batch_size": 16}),
        }
    )
    grid = cfg.model_copy(update={"tasks": tasks, "strategies": cfg.strategies[:1]})
    result = Experiment(grid).run()
    assert sorted(result.work.ran) == [
        "evaluate finetune-genre of random-init · small · seed 0",
        "evaluate finetune-genre of self · small · seed 0",
    ]
    rows = [r for r in read_results(result.results_csv) if r.task == "finetune-genre"]
    assert {(r.strategy, r.metric) for r in rows} == {(s, m) for s in (BASELINE, "self") for m in ("roc_auc", "pr_auc")}
    md = result.results_md.read_text()
    assert "### Tagging: whole encoder fine-tuned" in md and "finetune-genre PR-AUC: **" in md


def test_on_a_world_the_theme_oracle_and_the_latent_probes_run(tiny_world, tiny_store, tmp_path: Path) -> None:
    """`theme` reads the experiment's own world.json, and every encoder gets the latent-attribute probes."""
    cfg = config_from_dict(
        ExperimentConfig,
        {
            "name": "latent",
            "out": str(tmp_path / "run"),
            "data": {"world": {"path": str(tiny_world.root)}, "features": str(tiny_store.path)},
            "strategies": ["theme"],
            "backbones": [{"name": "small", "options": {"channels": [8, 16]}}],
            "seeds": [0],
            "threads": 1,
            "pretrain": {
                "data": {"batch_size": 8, "patch_frames": 64, "workers": 0},
                "model": {"projection_dim": 16},
                "trainer": {
                    "max_steps": 4,
                    "checkpoint_every": 4,
                    "log_every": 2,
                    "accelerator": "cpu",
                    "devices": 1,
                    "precision": "32-true",
                },
            },
            "tasks": {"probe": [], "maps": [], "similarity": False},
        },
    )
    result = Experiment(cfg).run()
    assert result.work.failed == []
    stats = json.loads((cfg.out / "pairs" / "theme" / "stats.json").read_text())
    assert stats["params"]["world"] == str(tiny_world.world_json)
    rows = read_results(result.results_csv)
    assert {(r.strategy, r.task, r.metric) for r in rows} == {
        (s, "latent", m) for s in ("theme", BASELINE) for m in ("genre_acc", "mood_auc", "artist_acc")
    }
    assert all(0.0 <= r.value <= 1.0 for r in rows)
    md = result.results_md.read_text()
    assert (
        "### What the embedding encodes of the world's latent truth" in md
        and "| strategy | seeds | genre acc. ↑ | mood ROC-AUC ↑ | artist acc. |" in md
    )


def test_parallel_workers_give_the_same_table(tiny_grid, tmp_path: Path) -> None:
    """`parallel: 2` pre-trains and evaluates in worker processes: same numbers, same work log shape."""
    cfg, first = tiny_grid
    grid = cfg.model_copy(update={"out": tmp_path / "parallel", "parallel": 2})
    result = Experiment(grid).run()
    assert result.work.failed == []
    assert sorted(w for w in result.work.ran if w.startswith("pretrain")) == [
        "pretrain playlist · small · seed 0",
        "pretrain self · small · seed 0",
    ]
    assert len([w for w in result.work.ran if w.startswith("evaluate")]) == 3 * 2  # 3 encoders x (probe + similarity)
    # Other tests re-run the shared grid with other tasks, so compare the rows both tables hold.
    ours = {(r.strategy, r.backbone, r.seed, r.task, r.metric): r.value for r in read_results(result.results_csv)}
    theirs = {(r.strategy, r.backbone, r.seed, r.task, r.metric): r.value for r in read_results(first.results_csv)}
    common = ours.keys() & theirs.keys()
    assert {k[0] for k in ours} == {"random-init", "self", "playlist"}
    assert {k[0] for k in common} >= {"random-init", "self"} and {k[3] for k in common} >= {"similarity"}
    assert {k: ours[k] for k in common} == {k: theirs[k] for k in common}
