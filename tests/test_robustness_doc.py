"""docs/robustness.md cannot rot: its fault table has at least 30 rows, every row cites a test, and
every cited test exists (the file is there and defines the function)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "robustness.md"
HEADER = ["#", "stage", "fault", "what the user sees", "proven by"]
NODE_ID = re.compile(r"(tests/[\w/.-]+\.py)::(test_\w+)")


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row; `|` inside backticks is text, not a separator."""
    cells, cell, in_code = [], "", False
    for ch in line.strip()[1:]:
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    return cells


def fault_rows(text: str) -> list[list[str]]:
    """Rows of the fault table (the one whose header is HEADER), in order."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and _cells(line) == HEADER)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


def cited_tests(cell: str) -> list[tuple[str, str]]:
    return NODE_ID.findall(cell)


def test_the_table_has_at_least_30_numbered_rows_each_with_a_test() -> None:
    rows = fault_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) >= 30
    assert all(len(r) == len(HEADER) for r in rows), [r for r in rows if len(r) != len(HEADER)]
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert all(r[2] and r[3] for r in rows)
    assert [r[0] for r in rows if not cited_tests(r[4])] == []


def test_every_cited_test_exists() -> None:
    missing = []
    for row in fault_rows(DOC.read_text(encoding="utf-8")):
        for path, name in cited_tests(row[4]):
            file = REPO / path
            if not file.is_file() or not re.search(
                rf"^(async )?def {name}\(", file.read_text(encoding="utf-8"), re.MULTILINE
            ):
                missing.append(f"row {row[0]}: {path}::{name}")
    assert missing == []


def test_the_parser_reads_cells_and_node_ids() -> None:
    row = "| 3 | configs | a `a|b` key | exit 2, `x` | `tests/x/test_a.py::test_one`, `tests/test_b.py::test_two` |"
    assert _cells(row) == [
        "3",
        "configs",
        "a `a|b` key",
        "exit 2, `x`",
        "`tests/x/test_a.py::test_one`, `tests/test_b.py::test_two`",
    ]
    assert cited_tests(_cells(row)[4]) == [("tests/x/test_a.py", "test_one"), ("tests/test_b.py", "test_two")]
