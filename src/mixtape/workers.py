"""Worker processes that die with the run that started them.

``kill -9`` (or the OOM killer) reaches only the process it names. The pool workers of a killed run
would otherwise live on, idle forever: forked ones also keep every lock and file the run held (the
feature store's lock is shared with every fork, so re-running the command would be refused), and
forkserver ones keep their fork server alive. Pools install :func:`exit_with_process` as (part of)
their initializer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

#: How often a worker checks that its run is still alive where the kernel cannot tell it.
POLL_SECONDS = 0.5
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


def _watch(pid: int, direct: bool) -> None:
    while _alive(pid, direct):
        time.sleep(POLL_SECONDS)
    os._exit(1)
