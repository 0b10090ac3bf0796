"""`mixtape pairs`: files written atomically, statistics printed, re-runs with the same inputs are no-ops."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from mixtape.cli import build_parser, main
from mixtape.pairs import STRATEGIES, Positives, resolve_params, run_pairs


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "tracks.csv").write_text(
        "track_id,path,artist_id\n" + "".join(f"t{i},t{i}.wav,a{i // 3}\n" for i in range(12))
    )
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "a.jsonl").write_text(
        '{"playlist_id": "p1", "tracks": ["t0", "t1", "t4", "t7"]}\n{"playlist_id": "p2", "tracks": ["t1", "t2", "t5", '
        '"t9"]}\n{"playlist_id": "p3", "tracks": ["t3", "t6", "t9", "t10", "ghost"]}\n'
    )
    (tmp_path / "held.csv").write_text("playlist_id,track_id\nh1,t0\nh1,t11\n")
    return {
        "tracks": tmp_path / "tracks.csv",
        "lists": tmp_path / "lists",
        "held": tmp_path / "held.csv",
        "out": tmp_path / "out",
    }


def pairs_args(inputs: dict[str, Path], *extra: str) -> list[str]:
    return [
        "pairs",
        "--tracks",
        str(inputs["tracks"]),
        "--playlists",
        str(inputs["lists"]),
        "--heldout",
        str(inputs["held"]),
        "--out",
        str(inputs["out"]),
        *extra,
    ]


def test_writes_positives_and_statistics(inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(pairs_args(inputs, "--strategy", "cooc-topk", "--k", "2", "--norm", "jaccard", "--workers", "1")) == 0
    out = capsys.readouterr().out
    assert "pairs: strategy cooc-topk" in out and "positive by the same artist" in out and "positives written to" in out
    folder = inputs["out"]
    for name in ("positives.json", "stats.json", "catalog.json", "anchors.npy", "hop0.npz", "track_ids.json"):
        assert (folder / name).exists(), name
    assert not list(folder.glob(".*.tmp"))
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["params"]["norm"] == "jaccard" and stats["params"]["k"] == 2
    meta = json.loads((folder / "positives.json").read_text())
    assert {i["path"].rsplit("/", 1)[-1] for i in meta["inputs"]["playlists"]} == {"a.jsonl"}
    assert (
        json.loads((folder / "catalog.json").read_text())["report"]["counts"]["playlist entries matching no track"] == 1
    )
    pos = Positives.load(folder)
    assert pos.strategy == "cooc-topk" and len(pos.track_ids) == 12


def test_rerun_is_a_no_op_until_an_input_or_parameter_changes(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = pairs_args(inputs, "--strategy", "playlist")
    assert main(args) == 0
    stamp = (inputs["out"] / "hop0.npz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert (inputs["out"] / "hop0.npz").stat().st_mtime_ns == stamp
    assert main([*args, "--workers", "1"]) == 0  # threads do not change the result
    assert "up to date" in capsys.readouterr().out
    with (inputs["lists"] / "a.jsonl").open("a") as f:
        f.write('{"playlist_id": "p4", "tracks": ["t8", "t0"]}\n')
    assert main(args) == 0
    assert "positives written" in capsys.readouterr().out
    assert main([*args, "--force"]) == 0
    assert "positives written" in capsys.readouterr().out


def test_mix_from_the_command_line(inputs: dict[str, Path]) -> None:
    assert main(pairs_args(inputs, "--strategy", "mix", "--mix", "playlist=0.7,artist=0.3")) == 0
    pos = Positives.load(inputs["out"])
    assert [p.strategy for p in pos.parts] == ["playlist", "artist"] and np.allclose(pos.weights, [0.7, 0.3])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--strategy", "artist", "--mix", "playlist=1"], "--mix needs --strategy mix"),
        (["--strategy", "mix", "--mix", "playlist=a"], "not a number"),
        (["--strategy", "artist", "--holdout-tracks", "/nonexistent/split.tsv"], "holdout_tracks input not found"),
    ],
)
def test_errors_exit_2_with_a_message(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(pairs_args(inputs, *extra)) == 2
    assert message in capsys.readouterr().err


def _pairs_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["pairs"]


def test_cli_choices_and_flags_come_from_the_strategy_models() -> None:
    from mixtape.pairs.params import known_parameters

    actions = {a.dest: a for a in _pairs_parser()._actions}
    assert tuple(actions["strategy"].choices) == STRATEGIES
    # every parameter of every strategy has its flag, and no flag repeats a default of its own
    assert set(known_parameters()) <= set(actions)
    assert all(actions[name].default is None for name in known_parameters())
    assert actions["norm"].choices == ["count", "pmi", "jaccard"]
    assert "--no-use-context" in actions["use_context"].option_strings


def test_resolve_params_fills_defaults() -> None:
    assert resolve_params("cooc-topk", {"k": 3, "dim": 8}) == {"k": 3, "norm": "count", "min_count": 1, "workers": 2}
    mix = resolve_params("mix", {"mix": "self=1,cooc-topk=1", "k": 5})
    assert mix["mix"] == {"self": 1.0, "cooc-topk": 1.0} and mix["k"] == 5


def test_run_pairs_from_python(inputs: dict[str, Path]) -> None:
    run = run_pairs(inputs["tracks"], inputs["out"], "album", playlists=[inputs["lists"]])
    assert not run.up_to_date and run.stats["anchors"] == 0 and "no positive: unknown album" in run.summary()
