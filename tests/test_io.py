from __future__ import annotations

from pathlib import Path

import pytest

from mixtape.io import atomic_open, atomic_write_text, file_checksum


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
    from mixtape.io import read_json_header

    path = tmp_path / "meta.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(MixtapeError, match=match):
        read_json_header(path, kind="thing", format_name="mixtape-thing", version=1, missing_hint="run the stage", required=("count",))


def test_json_header_returns_the_document(tmp_path: Path) -> None:
    from mixtape.io import read_json_header

    path = atomic_write_text(tmp_path / "meta.json", '{"format": "mixtape-thing", "version": 1, "count": 3}')
    assert read_json_header(path, kind="thing", format_name="mixtape-thing", version=1, missing_hint="")["count"] == 3
