"""kill -9 `mixtape pairs` at random points of its work and re-run it: the positives equal an uninterrupted run's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from killing import KillSchedule, Run, leftover_temps

from mixtape.errors import MixtapeError
from mixtape.pairs import Positives
from mixtape.pairs.positives import META_FILE, STATS_FILE

#: A mixture of four strategies, so a kill can fall while any of them is built or while the part
#: folders and the top-level files are written; track2vec runs enough epochs (single-threaded, hence
#: deterministic) that building takes most of the work window.
MIX = "playlist=0.3,cooc-topk=0.3,track2vec=0.2,artist=0.2"
MARKER = r"catalogue: \d+ tracks"  # logged once the inputs are checksummed and the catalogue is read


def _args(world, out: Path) -> list[str | Path]:
    return [
        "pairs", "--tracks", world.tracks, "--playlists", world.playlists, "--heldout", world.heldout,
        "--strategy", "mix", "--mix", MIX, "--epochs", "40", "--workers", "1", "--seed", "0", "--out", out,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    folder = tmp_path_factory.mktemp("kill-pairs-reference")
    return folder / "pairs", KillSchedule(0, MARKER).reference(_args(tiny_world, folder / "pairs"), folder / "run.log")


def assert_same_positives(got: Positives, want: Positives, context: str) -> None:
    """Same strategy, tracks, anchors, hop matrices and mixture parts, exactly."""
    assert got.strategy == want.strategy and list(got.track_ids) == list(want.track_ids), context
    assert np.array_equal(got.anchors, want.anchors), f"{context}: {got.strategy}: anchors differ"
    assert len(got.hops) == len(want.hops), context
    for k, (a, b) in enumerate(zip(got.hops, want.hops, strict=True)):
        same = a.shape == b.shape and all(
            np.array_equal(getattr(a, n), getattr(b, n)) for n in ("indptr", "indices", "data")
        )
        assert same, f"{context}: {got.strategy}: hop {k} differs"
    assert len(got.parts) == len(want.parts), context
    for a, b in zip(got.parts, want.parts, strict=True):
        assert_same_positives(a, b, context)
    assert (got.weights is None) == (want.weights is None) and (
        got.weights is None or np.array_equal(got.weights, want.weights)
    ), context


@pytest.mark.slow
def test_kill_anywhere_pairs(tiny_world, reference: tuple[Path, Run], tmp_path: Path) -> None:
    ref_folder, ref_run = reference
    want = Positives.load(ref_folder)
    out = tmp_path / "pairs"
    schedule = KillSchedule(2002, MARKER)  # the work ends with the files written: the window runs to the exit

    def after_kill(run: Run) -> None:
        # Either the folder says it is incomplete (a MixtapeError, what training would show the user)
        # or it loads whole and equal: never a torn file, never a parse error of another kind.
        try:
            got = Positives.load(out)
        except MixtapeError as err:
            assert "not found" in str(err) or "unreadable" in str(err) or "missing" in str(err), f"{schedule}: {err}"
            return
        assert_same_positives(got, want, f"{schedule}: after a kill")

    assert ref_run.work_seconds is not None
    schedule.run(_args(tiny_world, out), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()

    assert_same_positives(Positives.load(out), want, str(schedule))
    for name in (STATS_FILE, "catalog.json"):
        assert json.loads((out / name).read_text()) == json.loads((ref_folder / name).read_text()), (
            f"{schedule}: {name} differs"
        )
    meta, ref_meta = json.loads((out / META_FILE).read_text()), json.loads((ref_folder / META_FILE).read_text())
    assert meta["fingerprint"] == ref_meta["fingerprint"], str(schedule)
    assert leftover_temps(out) == [], f"{schedule}: {leftover_temps(out)}"
