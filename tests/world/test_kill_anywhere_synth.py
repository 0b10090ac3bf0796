"""kill -9 `mixtape synth` at random points of its work and re-run it: the world equals an uninterrupted one's,
and the render workers (behind a fork server) do not outlive the killed run."""

from __future__ import annotations

from pathlib import Path

import pytest
from killing import KillSchedule, Run, kill_when_workers_run, leftover_temps, still_running

from mixtape.fileio import file_checksum

MARKER = r"\d+ to render"  # the catalogue is built and the folder claimed; rendering starts
END_MARKER = r"world written to"


def _args(out: Path) -> list[str | Path]:
    return ["synth", "--size", "tiny", "--seed", "0", "--out", out, "--workers", "2"]


def _files(root: Path) -> dict[str, str]:
    """Checksum of every file of a world folder by relative path (temp files aside)."""
    return {
        p.relative_to(root).as_posix(): file_checksum(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp")
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Run]:
    folder = tmp_path_factory.mktemp("kill-synth-reference")
    run = KillSchedule(0, MARKER, END_MARKER).reference(_args(folder / "world"), folder / "run.log")
    return _files(folder / "world"), run


@pytest.mark.slow
def test_kill_anywhere_synth(reference: tuple[dict[str, str], Run], tmp_path: Path) -> None:
    want, ref_run = reference
    out = tmp_path / "world"
    schedule = KillSchedule(6006, MARKER, END_MARKER)

    def after_kill(run: Run) -> None:
        # Whatever a killed run left is whole: each file is byte for byte the uninterrupted run's.
        got = _files(out)
        assert set(got) <= set(want), (
            f"{schedule}: files no uninterrupted run writes: {sorted(set(got) - set(want))[:5]}"
        )
        torn = [name for name, checksum in got.items() if checksum != want[name]]
        assert not torn, f"{schedule}: half-written or different files after a kill: {torn[:5]}"

    assert ref_run.work_seconds is not None
    schedule.run(_args(out), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()
    assert _files(out) == want, f"{schedule}: the re-run world differs from the uninterrupted one"
    assert leftover_temps(out) == [], f"{schedule}: {leftover_temps(out)}"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker processes through /proc")
def test_kill_while_rendering_leaves_no_orphan_workers(tmp_path: Path) -> None:
    """The render pool runs behind a fork server, whose workers are not the run's children: without
    a lifeline they and the fork server idle forever after a kill -9 of the run."""
    killed = kill_when_workers_run(_args(tmp_path / "world"), tmp_path / "killed.log", workers=3)
    assert killed.killed and len(killed.tree) >= 3, (
        f"the run ended before its fork server and 2 workers were seen:\n{killed.tail()}"
    )
    left = still_running(killed.tree, session=killed.session)
    assert not left, f"processes {left} outlived the killed run"
