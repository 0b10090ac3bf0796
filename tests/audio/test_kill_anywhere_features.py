"""kill -9 `mixtape features` at random points of its work and re-run it: the store equals an uninterrupted one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from killing import KillSchedule, Run, kill_when_workers_run, leftover_temps, run_to_end, still_running

from mixtape.audio import FeatureStore
from mixtape.audio.store import FRAMES_FILE
from mixtape.fileio import file_checksum

#: The tiny world's 120 files listed this many times under other ids: 1200 tracks, so the store
#: commits (every 256 tracks) happen mid-run and a kill can fall before, between and after them.
REPEAT = 10
MARKER = r"features: \d+ tracks"  # logged once the store is open and the work is planned
END_MARKER = r"features: done"  # logged once the store is closed and reopened


@pytest.fixture(scope="module")
def many_tracks(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with open(tiny_world.tracks, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = tmp_path_factory.mktemp("kill-features") / "tracks.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["track_id", "path"])
        for k in range(REPEAT):
            w.writerows([f"{r['track_id']}-{k}", str(Path(tiny_world.tracks).parent / r["path"])] for r in rows)
    return table


def _args(table: Path, out: Path) -> list[str | Path]:
    return ["features", "--tracks", table, "--out", out, "--workers", "2"]


@pytest.fixture(scope="module")
def reference(many_tracks: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, Run]:
    folder = tmp_path_factory.mktemp("kill-features-reference")
    run = KillSchedule(0, MARKER, END_MARKER).reference(_args(many_tracks, folder / "store"), folder / "run.log")
    return FeatureStore.open(folder / "store"), run


def _same_tracks(store: FeatureStore, ref: FeatureStore, ids: list[str], context: str) -> None:
    for tid in ids:
        i, j = store.index(tid), ref.index(tid)
        assert store.checksums[i] == ref.checksums[j], f"{context}: {tid}: source checksum differs"
        assert np.array_equal(store.frames(i), ref.frames(j)), (
            f"{context}: {tid}: frames differ from the uninterrupted run"
        )


@pytest.mark.slow
def test_kill_anywhere_features(many_tracks: Path, reference: tuple[FeatureStore, Run], tmp_path: Path) -> None:
    ref, ref_run = reference
    out = tmp_path / "store"
    schedule = KillSchedule(1001, MARKER, END_MARKER)

    def after_kill(run: Run) -> None:
        # Only committed tracks are visible, each complete and equal to its uninterrupted twin.
        store = FeatureStore.open(out)
        assert store.track_ids == ref.track_ids[: len(store)], (
            f"{schedule}: the killed store is not a prefix of the uninterrupted one"
        )
        _same_tracks(store, ref, store.track_ids, str(schedule))

    assert ref_run.work_seconds is not None
    schedule.run(_args(many_tracks, out), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()

    store = FeatureStore.open(out)
    assert store.track_ids == ref.track_ids, f"{schedule}: other tracks or another order than the uninterrupted run"
    assert store.checksums == ref.checksums, str(schedule)
    _same_tracks(store, ref, store.track_ids, str(schedule))
    # Uncommitted frames of the killed runs were cut: the frames file is byte for byte the reference's.
    assert file_checksum(out / FRAMES_FILE) == file_checksum(ref.path / FRAMES_FILE), (
        f"{schedule}: {FRAMES_FILE} holds dead rows"
    )
    assert store.failures == [] and leftover_temps(out) == [], f"{schedule}: {store.failures} {leftover_temps(out)}"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_kill_while_workers_decode_leaves_no_orphan_holding_the_store(many_tracks: Path, tmp_path: Path) -> None:
    """kill -9 reaches only the parent: its decoding workers must exit too, else they idle forever and
    keep the store's lock (inherited through fork), and the re-run is refused as a concurrent writer."""
    out = tmp_path / "store"
    killed = kill_when_workers_run(_args(many_tracks, out), tmp_path / "killed.log", workers=2)
    assert killed.killed and len(killed.tree) >= 2, f"the run ended before its 2 workers were seen:\n{killed.tail()}"
    left = still_running(killed.tree, session=killed.session)
    assert not left, f"workers {left} outlived the killed run"
    rerun = run_to_end(_args(many_tracks, out), tmp_path / "rerun.log", MARKER)
    assert rerun.returncode == 0, rerun.tail()
    assert len(FeatureStore.open(out)) == REPEAT * 120
