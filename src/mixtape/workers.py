"""Worker processes that die with the run that started them, and an ordered map over a pool of them.

``kill -9`` (or the OOM killer) reaches only the process it names. The pool workers of a killed run
would otherwise live on, idle forever: forked ones also keep every lock and file the run held (the
feature store's lock is shared with every fork, so re-running the command would be refused), and
forkserver ones keep their fork server alive. Pools install :func:`exit_with_process` as (part of)
their initializer.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from mixtape.errors import MixtapeError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

#: How often a worker checks that its run is still alive where the kernel cannot tell it.
POLL_SECONDS = 0.5
#: Tasks in flight per worker: enough to keep workers busy while the parent writes, bounded for memory.
TASKS_PER_WORKER = 4
#: Tasks that crash their worker alone, in a row, before the pool itself is declared unusable.
MAX_SOLO_CRASHES = 3
_PR_SET_PDEATHSIG = 1


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (another user's counts as alive)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _alive(pid: int, direct: bool) -> bool:
    return os.getppid() == pid if direct else process_alive(pid)


def exit_with_process(pid: int) -> None:
    """Make this process exit as soon as process ``pid`` (the run that started it) is gone.

    For a direct child on Linux the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG); a
    daemon thread also polls, which covers other systems and forkserver workers (whose parent is the
    fork server, not the run).
    """
    direct = os.getppid() == pid
    if direct and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl in this libc: the thread still works
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if not _alive(pid, direct):  # the run died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(pid, direct), name="mixtape-exit-with-run", daemon=True).start()


#: Called (in order, errors ignored) by a worker that exits because its run is gone: see on_orphan_exit.
_ORPHAN_EXIT_HOOKS: list[Callable[[], None]] = []


def on_orphan_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` before a worker exits because its run died (the poll below, not the kernel's SIGKILL):
    the worker may be half-way through a write whose temp file nobody else would remove."""
    _ORPHAN_EXIT_HOOKS.append(hook)


def _watch(pid: int, direct: bool) -> None:
    while _alive(pid, direct):
        time.sleep(POLL_SECONDS)
    for hook in _ORPHAN_EXIT_HOOKS:
        with contextlib.suppress(Exception):
            hook()
    os._exit(1)


@dataclass(frozen=True)
class WorkerCrashed:
    """Stands in for the result of a task whose worker process died (a native decoder crash)."""

    task: Any


def _mp_context(start: str | None) -> mp.context.BaseContext:
    """``fork`` by default on Linux: workers start instantly, and scripts or notebooks need no
    ``__main__`` guard; forking a process whose torch has used threads is safe for workers that run
    torch with one thread (no OpenMP region is entered), as PyTorch's DataLoader workers do.
    ``spawn`` elsewhere, and for work that trains models (Lightning, several threads) in the worker."""
    if start is None:
        start = "fork" if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(start)


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """Pool initializer: tie the worker's life to the run's (a kill -9 of the run must not leave it
    holding the store's lock), then run the caller's initializer."""
    exit_with_process(parent)
    if initializer is not None:
        initializer(*initargs)


def map_ordered(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    start: str | None = None,
    tasks_per_worker: int = TASKS_PER_WORKER,
) -> Iterator[R | WorkerCrashed]:
    """``map(fn, tasks)`` over worker processes, results in task order, at most ``TASKS_PER_WORKER``
    tasks per worker in flight (``tasks_per_worker``); ``start`` is the start method (see ``_mp_context``).

    If a worker process dies, the tasks that were in flight are re-run one at a time in a fresh
    pool; the one that kills its worker again yields :class:`WorkerCrashed` and the rest go on.
    Workers exit when this process dies, even by SIGKILL (see :mod:`mixtape.workers`).
    """
    ctx = _mp_context(start)
    window = max(1, workers * tasks_per_worker)
    source = iter(tasks)
    suspects: deque[T] = deque()  # in flight during a crash: each is re-run alone
    inflight: deque[tuple[T, Future[R], bool]] = deque()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(os.getpid(), initializer, initargs),
        )

    pool = new_pool()
    solo_crashes = 0
    try:
        exhausted = False
        while True:
            while len(inflight) < (1 if suspects else window):
                if suspects:
                    if inflight:
                        break
                    task, alone = suspects.popleft(), True
                else:
                    if exhausted:
                        break
                    try:
                        task = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    alone = False
                inflight.append((task, pool.submit(fn, task), alone))
            if not inflight:
                return
            task, future, alone = inflight.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                rest = [t for t, _, _ in inflight]
                inflight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
                if alone:
                    solo_crashes += 1
                    if solo_crashes >= MAX_SOLO_CRASHES:
                        raise MixtapeError(
                            f"worker processes died on {solo_crashes} tasks in a row, the last {task!r}: they "
                            "cannot start or run at all (out of memory? with the spawn start method, is the calling "
                            "script missing an `if __name__ == '__main__':` guard?); run with workers=0 to see the "
                            "error in this process"
                        ) from None  # the pool's own error says only that a process ended abruptly
                    log.error("a worker process died while processing %r; skipping it", task)
                    suspects.extendleft(reversed(rest))
                    yield WorkerCrashed(task)
                else:
                    log.warning(
                        "a worker process died; re-running the %d tasks that were in flight one at a time",
                        len(rest) + 1,
                    )
                    suspects.extendleft(reversed([task, *rest]))
                continue
            solo_crashes = 0
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
