"""Run mypy on src/ and fail only on errors that are not in the committed baseline.

The baseline, ``tools/mypy-baseline.txt``, lists the mypy errors accepted for now, one per line as
``path: error: message [code]``: without line numbers, so that editing a file does not invalidate
its entries. Each line stands for one error; an error that occurs twice in a file is listed twice.

    python tools/mypy_baseline.py            # exit 1 when mypy reports an error the baseline lacks
    python tools/mypy_baseline.py --update   # rewrite the baseline from the current errors

Entries that mypy no longer reports are listed too, so the file can shrink (``--update``); they do
not fail the check. The mypy settings are those of ``[tool.mypy]`` in pyproject.toml.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "tools" / "mypy-baseline.txt"
TARGETS = ("src",)
HEADER = (
    "# mypy errors accepted for now: `path: error: message [code]`, one line per error, no line numbers.\n"
    "# Checked by tools/mypy_baseline.py (`make check`); rewrite it with `python tools/mypy_baseline.py --update`.\n"
)

#: ``path:line: error: message  [code]`` (and ``path:line:column:`` when column numbers are on).
_ERROR = re.compile(r"^(?P<path>[^:\s][^:]*):\d+(?::\d+)?: error: (?P<message>.*?)(?:\s+\[(?P<code>[a-z0-9-]+)\])?$")
#: Line numbers quoted inside a message ("defined on line 12") move with every edit, too.
_LINE_REF = re.compile(r"\bline \d+\b")


def normalise(output: Iterable[str]) -> Counter[str]:
    """The errors of mypy's ``output`` as ``path: error: message [code]``, counted (notes are dropped)."""
    errors: Counter[str] = Counter()
    for line in output:
        m = _ERROR.match(line.rstrip())
        if m is None:
            continue
        message = _LINE_REF.sub("line N", m["message"])
        code = f" [{m['code']}]" if m["code"] else ""
        errors[f"{Path(m['path']).as_posix()}: error: {message}{code}"] += 1
    return errors


def read_baseline(path: Path) -> Counter[str]:
    if not path.is_file():
        return Counter()
    lines = path.read_text(encoding="utf-8").splitlines()
    return Counter(line for line in lines if line.strip() and not line.startswith("#"))


def write_baseline(path: Path, errors: Counter[str]) -> None:
    path.write_text(HEADER + "".join(f"{e}\n" for e in sorted(errors.elements())), encoding="utf-8")


def run_mypy(targets: Sequence[str]) -> tuple[str, int]:
    """mypy's report on ``targets`` (plain text, one error a line) and its exit status."""
    stdout, stderr, status = api.run(
        ["--no-pretty", "--no-color-output", "--no-error-summary", "--hide-error-context", *targets]
    )
    return stdout + stderr, status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite the baseline from mypy's current errors")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help=f"baseline file (default: {BASELINE})")
    args = parser.parse_args(argv)

    os.chdir(ROOT)  # paths in mypy's report, and so in the baseline, are relative to the repository
    output, status = run_mypy(TARGETS)
    current = normalise(output.splitlines())
    if status not in (0, 1) or (status == 1 and not current):
        print(output, end="", file=sys.stderr)
        print(f"mypy_baseline: mypy failed (exit status {status}) without a list of errors", file=sys.stderr)
        return 2
    if args.update:
        write_baseline(args.baseline, current)
        print(f"mypy_baseline: wrote {sum(current.values())} error(s) to {args.baseline}")
        return 0

    baseline = read_baseline(args.baseline)
    new = current - baseline
    gone = baseline - current
    if gone:
        print(
            f"mypy_baseline: {sum(gone.values())} baseline entry(ies) no longer reported; "
            "shrink the baseline with `python tools/mypy_baseline.py --update`:"
        )
        for e in sorted(gone.elements()):
            print(f"  {e}")
    if new:
        print(f"mypy_baseline: {sum(new.values())} mypy error(s) not in the baseline {args.baseline.name}:")
        for e in sorted(new.elements()):
            print(f"  {e}")
        print("Fix them; the full report, with line numbers, is `mypy src`.")
        return 1
    print(f"mypy_baseline: no new errors ({sum(current.values())} known, in {args.baseline.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
