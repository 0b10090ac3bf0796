from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mixtape.cli import build_parser, main


def _subcommands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: mixtape {command}" in capsys.readouterr().out


def test_user_error_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["features", "--tracks", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2
    assert "mixtape features: error: tracks table not found" in err and "Traceback" not in err


def test_entry_point_is_installed() -> None:
    out = subprocess.run([sys.executable, "-m", "mixtape.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mixtape ")
