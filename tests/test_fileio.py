from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mixtape.fileio import atomic_open, atomic_write_text, file_checksum, temp_prefix


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_checksum_tracks_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"x" * 10)
    assert file_checksum(a) == file_checksum(b)
    b.write_bytes(b"x" * 9 + b"y")
    assert file_checksum(a) != file_checksum(b)


def test_atomic_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "text, match",
    [
        (None, "not found .*run the stage"),
        ("{oops", "not valid JSON"),
        ('{"format": "other"}', "not a mixtape thing .*'other'"),
        ('{"format": "mixtape-thing", "version": 9}', "version 9 is not supported .*reads version 1"),
        ('{"format": "mixtape-thing", "version": 1}', r"missing key\(s\) count"),
    ],
)
def test_json_header_refuses_missing_foreign_or_newer_files(tmp_path: Path, text: str | None, match: str) -> None:
    from mixtape.errors import MixtapeError
    from mixtape.fileio import read_json_header

    path = tmp_path / "meta.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MixtapeError, match=match):
        read_json_header(
            path,
            kind="thing",
            format_name="mixtape-thing",
            version=1,
            missing_hint="run the stage",
            required=("count",),
        )


def test_json_header_returns_the_document(tmp_path: Path) -> None:
    from mixtape.fileio import read_json_header

    path = atomic_write_text(tmp_path / "meta.json", '{"format": "mixtape-thing", "version": 1, "count": 3}')
    assert read_json_header(path, kind="thing", format_name="mixtape-thing", version=1, missing_hint="")["count"] == 3


def test_temp_name_carries_host_and_pid(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    with atomic_open(target, "w") as f:
        (tmp,) = [p.name for p in tmp_path.iterdir()]
        f.write("x")
    assert tmp.startswith(temp_prefix(target)) and tmp.endswith(".tmp") and f".{os.getpid()}." in tmp
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has this pid until the kernel reuses it


@pytest.mark.skipif(os.name != "posix", reason="stale temps are only swept where os.kill(pid, 0) is harmless")
def test_stale_temps_of_dead_writers_are_swept_and_others_kept(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f"{temp_prefix(target, pid=dead)}k3x9.tmp"
    keep = [
        tmp_path / f"{temp_prefix(target, pid=alive)}live.tmp",  # a writer that still runs
        tmp_path / f"{temp_prefix(target, host='otherbox', pid=dead)}far.tmp",  # another machine's, on a shared disk
        tmp_path / f"{temp_prefix(tmp_path / 'a.txt.1', pid=dead)}sib.tmp",  # the temp of another file, a.txt.1
        tmp_path / ".a.txt.x7k2.tmp",  # an old-style name without a pid: cannot tell, left alone
    ]
    for p in [stale, *keep]:
        p.write_text("half")
    atomic_write_text(target, "whole")
    assert not stale.exists()
    assert all(p.exists() for p in keep)
    assert target.read_text() == "whole"


KILLED_WRITER = """
import os, signal, sys
from mixtape.fileio import atomic_open
with atomic_open(sys.argv[1], "w") as f:
    f.write("half")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sigkilled_writer_leaves_a_temp_that_the_next_write_removes(tmp_path: Path) -> None:
    """kill -9 between writing the temp file and renaming it: the target keeps its old content, the
    temp stays behind, and the next write of that file (by any process) removes it."""
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(target)], check=False, capture_output=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    (debris,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert target.read_text() == "old" and debris.read_text() == "half"
    atomic_write_text(target, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"] and target.read_text() == "new"


ORPHANED_WRITER = """
import subprocess, sys, time
from mixtape.fileio import atomic_open
from mixtape.workers import exit_with_process
run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
exit_with_process(run.pid)  # this process now stands for a fork-server worker of `run`
with atomic_open(sys.argv[1], "w") as f:
    f.write("half")
    f.flush()
    run.kill()
    run.wait()  # the run is gone mid-write: the watcher ends this process
    time.sleep(60)
"""


def test_a_worker_whose_run_dies_mid_write_removes_its_temp(tmp_path: Path) -> None:
    """The worker's watcher exits with ``os._exit`` (no ``finally`` runs); its unfinished temp goes too,
    because a re-run that finds the file already complete would never write it again to sweep it."""
    target = tmp_path / "a.txt"
    proc = subprocess.run(
        [sys.executable, "-c", ORPHANED_WRITER, str(target)], check=False, capture_output=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_lock_admits_one_writer_and_dies_with_its_process(tmp_path: Path) -> None:
    from mixtape.errors import MixtapeError
    from mixtape.fileio import acquire_folder_lock, folder_lock

    with folder_lock(tmp_path / "f", "busy: first writer"):
        with pytest.raises(MixtapeError, match="busy: first writer"):
            acquire_folder_lock(tmp_path / "f", "busy: first writer")
    with folder_lock(tmp_path / "f", "x"):  # released by the with block
        pass
    code = (
        "import os, signal\nfrom pathlib import Path\nfrom mixtape.fileio import acquire_folder_lock\nlock = "
        f"acquire_folder_lock(Path({str(tmp_path / 'f')!r}), 'busy')\nprint('locked', "
        "flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and "locked" in proc.stdout, proc.stderr
    with folder_lock(tmp_path / "f", "a killed holder left its lock behind"):  # no stale lock after a SIGKILL
        pass


def test_a_folder_created_for_a_lock_and_left_empty_is_removed(tmp_path: Path) -> None:
    from mixtape.fileio import folder_lock

    with pytest.raises(RuntimeError), folder_lock(tmp_path / "refused", "busy"):
        raise RuntimeError("the run was refused before writing")
    assert not (tmp_path / "refused").exists()
    with folder_lock(tmp_path / "written", "busy"):
        (tmp_path / "written" / "data").write_text("x")
    assert sorted(p.name for p in (tmp_path / "written").iterdir()) == [".lock", "data"]
