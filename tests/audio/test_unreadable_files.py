"""Files the process may not read (permissions): an audio file is skipped and listed, a tracks table
or a config is a one-line error with exit code 2, never a traceback.

``chmod 000`` does not stop root, and the tests may run as root; so the commands run in a child
process that cannot override file permissions: as root, its capability bounding set loses
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH before it starts (the same check any other user meets);
as another user, it simply runs.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from audio.audio_signals import noise, write_audio

from mixtape.audio.store import FAILURES_FILE

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
CANNOT_DROP = 97

CHILD = """
import sys
from mixtape.cli import main
codes = [main(["features", "--tracks", sys.argv[1], "--out", sys.argv[2], "--workers", "0"]),
         main(["features", "--tracks", sys.argv[3], "--out", sys.argv[4], "--workers", "0"]),
         main(["pretrain", "--config", sys.argv[5]])]
print("exit codes", *codes)
"""


def _drop_permission_override() -> Callable[[], None] | None:
    """For root: a preexec_fn that removes the capabilities that let root read any file."""
    if os.geteuid() != 0:
        return None

    def drop() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                os._exit(CANNOT_DROP)

    return drop


def test_unreadable_audio_table_and_config(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    write_audio(audio / "ok.wav", noise(2.5), 16000)
    locked = write_audio(audio / "locked.wav", noise(2.5, seed=1), 16000)
    (audio / "tracks.csv").write_text("track_id,path\nok,ok.wav\nlocked,locked.wav\n")
    locked_table = tmp_path / "locked.csv"
    locked_table.write_text("track_id,path\nok,audio/ok.wav\n")
    locked_config = tmp_path / "pretrain.yaml"
    locked_config.write_text("data: {store: s, positives: p}\n")
    for path in (locked, locked_table, locked_config):
        path.chmod(0)

    env = {**os.environ, "MIXTAPE_NO_PROGRESS": "1"}
    args = [
        str(audio / "tracks.csv"),
        str(tmp_path / "store"),
        str(locked_table),
        str(tmp_path / "store2"),
        str(locked_config),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=_drop_permission_override(),
    )
    if proc.returncode == CANNOT_DROP:
        pytest.skip("running as root without CAP_SETPCAP: cannot make a file unreadable to the child")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exit codes 0 2 2" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    # The locked audio file is skipped, listed with the reason, and the run completes the rest.
    rows = (tmp_path / "store" / FAILURES_FILE).read_text(encoding="utf-8").splitlines()[1:]
    assert rows == [
        f"locked\t{locked}\tpermission denied: this user may not read the file (check its permissions and owner)"
    ]
    assert "skipped locked" in proc.stderr and "failed 1" in proc.stdout
    # The locked table and config: one line each naming the file and the cause.
    assert f"mixtape features: error: {locked_table}: cannot read the tracks table (Permission denied)" in proc.stderr
    assert f"mixtape pretrain: error: {locked_config}: cannot read the config file (Permission denied)" in proc.stderr
