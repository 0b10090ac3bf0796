"""Kill-anywhere harness: run a `mixtape` command, SIGKILL it at a random moment of its work, re-run it.

A command's *work* starts when its log prints a stage-specific marker (e.g. ``features: 720 tracks``)
and ends when it logs an end marker (or exits); an uninterrupted reference run measures how long that
takes. Each kill is then sent a random delay after the marker, drawn from ``random.Random(seed)``
within what is left of that window, so kills land inside the work rather than in the interpreter's
start-up (importing torch) or shut-down.

Every assertion message names the seed (``str(schedule)``); ``MIXTAPE_KILL_SEED=<seed>`` replays the
same delays. Timing noise still moves the exact point a delay lands on, so a failure is reproduced by
re-running a few times with that seed. Each test has a fixed default seed (CI runs the same schedule);
``MIXTAPE_KILL_SEED=random`` draws a fresh one per test, to explore other kill points.

Only the process that the harness started is killed, by its pid, as ``kill -9 PID`` would do; the
processes it had started (seen through Linux's /proc just before the kill) must notice and exit by
themselves (``assert_no_orphans``).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_SEED_ENV = "MIXTAPE_KILL_SEED"
POLL_SECONDS = 0.005
RUN_TIMEOUT = 300.0
#: How long workers of a killed run may take to notice and exit (DataLoader workers poll every 5 s).
SURVIVOR_GRACE = 10.0
FIRST_KILL_SHARE = 0.5  # of the window: the first kill lands even if this run is much faster than the reference


def mixtape_env() -> dict[str, str]:
    """The environment of every run: no progress bars, one BLAS/OpenMP thread (a 2-core CI box)."""
    return {
        **os.environ,
        "MIXTAPE_NO_PROGRESS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def mixtape_command(args: Sequence[str | Path]) -> list[str]:
    return [sys.executable, "-m", "mixtape.cli", *(str(a) for a in args)]


@dataclass
class Run:
    """One run of the command: how it ended, what it printed, and where in its work it was killed."""

    returncode: int
    output: str
    work_seconds: float | None  # from the marker to the end marker, the exit or the kill; None without a marker
    delay: float | None = None  # seconds after the marker the SIGKILL was sent; None when not killed
    tree: tuple[int, ...] = ()  # its descendant processes (workers) just before the kill
    session: int | None = None  # its session id (= its pid): workers forked around the kill stay in it

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def describe(self) -> str:
        if self.killed:
            return f"killed {self.delay:.3f} s into the work"
        return f"ran to the end (exit {self.returncode})"

    def tail(self, chars: int = 3000) -> str:
        return self.output[-chars:]


def _read(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""


def launch(args: Sequence[str | Path], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as sink:  # the child keeps its own copy of the descriptor
        # A session of its own: every process it starts, even one forked as it is killed and reparented
        # after, stays findable (session_members) until it exits.
        return subprocess.Popen(
            mixtape_command(args), env=mixtape_env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for_marker(proc: subprocess.Popen[bytes], log: Path, marker: re.Pattern[str], timeout: float) -> float | None:
    """The time the marker appeared in the log, or None when the process ended without printing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = proc.poll() is not None
        if marker.search(_read(log)):
            return time.monotonic()
        if done:
            return None
        time.sleep(POLL_SECONDS)
    proc.kill()
    proc.wait()
    command = " ".join(str(a) for a in proc.args) if isinstance(proc.args, list) else str(proc.args)
    raise AssertionError(f"{command}: no {marker.pattern!r} in the log within {timeout:.0f} s:\n{_read(log)[-3000:]}")


def run_to_end(
    args: Sequence[str | Path], log: Path, marker: str, end_marker: str | None = None, timeout: float = RUN_TIMEOUT
) -> Run:
    """Run the command uninterrupted; ``work_seconds``, the window later kills are drawn from, runs from
    ``marker`` to ``end_marker`` (the last log line of the work), or to the exit when there is none."""
    proc = launch(args, log)
    started = _wait_for_marker(proc, log, re.compile(marker), timeout)
    ended = _wait_for_marker(proc, log, re.compile(end_marker), timeout) if end_marker and started is not None else None
    returncode = proc.wait(timeout=timeout)
    ended = ended or time.monotonic()
    return Run(returncode, _read(log), None if started is None else ended - started)


def run_killed(args: Sequence[str | Path], log: Path, marker: str, delay: float, timeout: float = RUN_TIMEOUT) -> Run:
    """Run the command and SIGKILL it ``delay`` seconds after its marker (unless it ends first)."""
    proc = launch(args, log)
    started = _wait_for_marker(proc, log, re.compile(marker), timeout)
    if started is None:
        return Run(proc.wait(), _read(log), None)
    while proc.poll() is None and time.monotonic() < started + delay:
        time.sleep(min(POLL_SECONDS, max(0.0, started + delay - time.monotonic())))
    tree: list[int] = []
    if proc.poll() is None:
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
    returncode = proc.wait(timeout=timeout)
    killed = returncode == -signal.SIGKILL
    return Run(
        returncode,
        _read(log),
        time.monotonic() - started,
        delay if killed else None,
        tuple(tree) if killed else (),
        proc.pid if killed else None,
    )


def kill_when_workers_run(args: Sequence[str | Path], log: Path, workers: int, timeout: float = RUN_TIMEOUT) -> Run:
    """Run the command and SIGKILL it as soon as it has at least ``workers`` descendant processes
    (Linux); ``tree`` lists them. Not killed (``tree`` empty) when the run ends first."""
    proc = launch(args, log)
    deadline = time.monotonic() + timeout
    tree: list[int] = []
    while proc.poll() is None and len(tree := descendants(proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    returncode = proc.wait(timeout=timeout)
    killed = returncode == -signal.SIGKILL
    return Run(returncode, _read(log), None, 0.0 if killed else None, tuple(tree) if killed else (), proc.pid)


def _state(pid: int) -> str | None:
    """A process's state letter from /proc (R, S, Z, ...), or None when it is gone (or not Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/PID/stat after the command name) of every live process (Linux; none elsewhere):
    fields[0] is the state, [1] the parent pid, [3] the session id."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X"):
            yield int(entry.name), fields


def children_of(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid`` (Linux /proc; [] elsewhere)."""
    return [child for child, fields in _live_processes() if fields[1] == str(pid)]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``: pool workers, a fork server and its workers, trackers."""
    out: list[int] = []
    for child in children_of(pid):
        out += [child, *descendants(child)]
    return out


def session_members(session: int) -> list[int]:
    """Pids of the live processes of a session (Linux /proc; [] elsewhere)."""
    return [member for member, fields in _live_processes() if fields[3] == str(session)]


def still_running(pids: Sequence[int], grace: float = SURVIVOR_GRACE, session: int | None = None) -> list[int]:
    """Wait up to ``grace`` seconds for ``pids`` (and every process of ``session``) to exit; returns those
    still running then (zombies count as gone)."""
    deadline = time.monotonic() + grace

    def alive() -> list[int]:
        left = [p for p in pids if _state(p) not in (None, "Z", "X")]
        return sorted({*left, *(session_members(session) if session is not None else [])})

    while (left := alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_seed(default: int) -> int:
    """The seed of a test's kill delays: ``MIXTAPE_KILL_SEED`` (an integer, or ``random``) or ``default``."""
    override = os.environ.get(KILL_SEED_ENV, "").strip()
    if override.lower() == "random":
        return random.SystemRandom().randrange(2**32)
    try:
        return int(override) if override else default
    except ValueError:
        raise ValueError(f"{KILL_SEED_ENV}={override!r}: give an integer seed, or 'random'") from None


class KillSchedule:
    """Random kill points for one test, from ``random.Random(seed)``; ``str()`` says how to replay them.

    ``marker`` and ``end_marker`` are the log lines that open and close the command's work (see
    :func:`run_to_end`); a kill sent after ``end_marker`` was printed did not interrupt any work.
    """

    def __init__(self, default_seed: int, marker: str, end_marker: str | None = None, kills: int = 3) -> None:
        self.seed = kill_seed(default_seed)
        self.rng = random.Random(self.seed)
        self.marker, self.end_marker = marker, end_marker
        self.kills = kills
        self.runs: list[Run] = []

    def __str__(self) -> str:
        runs = "; ".join(
            f"run {i + 1} {r.describe()}" + ("" if self.interrupted(r) or not r.killed else " (after its work)")
            for i, r in enumerate(self.runs)
        )
        return f"kill seed {self.seed} (replay with {KILL_SEED_ENV}={self.seed}): {runs or 'no run yet'}"

    def reference(self, args: Sequence[str | Path], log: Path) -> Run:
        """The uninterrupted run whose work window the kills are drawn from."""
        run = run_to_end(args, log, self.marker, self.end_marker)
        assert run.returncode == 0 and run.work_seconds is not None, f"the reference run failed:\n{run.tail()}"
        return run

    def interrupted(self, run: Run) -> bool:
        return run.killed and (self.end_marker is None or not re.search(self.end_marker, run.output))

    def run(
        self,
        args: Sequence[str | Path],
        logs: Path,
        window: float,
        after_kill: Callable[[Run], None] | None = None,
    ) -> Run:
        """Kill the command up to ``kills`` times at random points of its remaining work window, calling
        ``after_kill`` after each kill; then let the same command run to the end and return that run.

        Killing stops once a run finishes by itself (nothing is left to interrupt). After each kill the
        processes the killed run had started must exit by themselves (no orphaned workers).
        """
        remaining = window
        for i in range(self.kills):
            # The first kill falls in the first FIRST_KILL_SHARE of the window, so that it lands even when
            # this run is somewhat faster than the reference; later ones anywhere in what is left.
            delay = self.rng.uniform(0.0, remaining * (FIRST_KILL_SHARE if i == 0 else 1.0))
            run = run_killed(args, logs / f"run{i + 1}.log", self.marker, delay)
            self.runs.append(run)
            if not run.killed:
                assert run.returncode == 0, f"{self}: run {i + 1} failed:\n{run.tail()}"
                break
            self.assert_no_orphans(run)
            if after_kill is not None:
                after_kill(run)
            remaining = max(
                remaining - delay, 0.0
            )  # at least this much work is left (progress since the last commit is lost)
        final = run_to_end(args, logs / f"run{len(self.runs) + 1}.log", self.marker)
        self.runs.append(final)
        assert final.returncode == 0, f"{self}: the re-run after the kills failed:\n{final.tail()}"
        return final

    def assert_no_orphans(self, run: Run) -> None:
        left = still_running(run.tree, session=run.session)
        assert not left, (
            f"{self}: processes {left} of the killed run are still running {SURVIVOR_GRACE:.0f} s after the "
            "kill (orphaned workers)"
        )

    def assert_interrupted(self) -> None:
        """At least one kill landed inside the work: the test exercised a resume, not only re-runs."""
        assert any(self.interrupted(r) for r in self.runs), (
            f"{self}: no kill landed inside the work; the work window is too short"
        )


def leftover_temps(*folders: Path) -> list[Path]:
    """Temp files (``*.tmp``, hidden ones included) anywhere under ``folders``: debris of killed writes."""
    return sorted(p for folder in folders if folder.exists() for p in folder.rglob("*.tmp"))
