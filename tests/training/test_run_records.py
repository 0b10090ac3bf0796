"""What a run and an export record about their inputs, and the trace journal's repair after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtape.doctor import check_export
from mixtape.fileio import file_checksum
from mixtape.training.callbacks import cut_torn_line
from mixtape.training.export import export_checkpoint


def test_an_export_records_its_checkpoint_and_onnx_checksums(reference_run, tmp_path: Path) -> None:
    ckpt = reference_run.run_dir / "checkpoints" / "last.ckpt"
    export_checkpoint(ckpt, tmp_path, onnx=True)
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["checkpoint_checksum"] == file_checksum(ckpt)
    assert info["onnx"] == "encoder.onnx" and info["onnx_checksum"] == file_checksum(tmp_path / "encoder.onnx")
    assert check_export(tmp_path).findings == []
    onnx = tmp_path / "encoder.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    (finding,) = check_export(tmp_path).findings
    assert (finding.level, finding.path, finding.what) == (
        "PROBLEM",
        onnx,
        "changed since it was exported (its checksum differs from config.json)",
    )
    assert finding.fix == f"export again: `mixtape export --checkpoint {ckpt} --out {tmp_path} --onnx`"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b"", b""),
        (b"1\ta\n2\tb\n", b"1\ta\n2\tb\n"),  # complete: untouched
        (b"1\ta\n2\tb", b"1\ta\n"),  # a torn last line is cut
        (b"# start at step 0\n" + b"7" * 200_000, b"# start at step 0\n"),  # a torn line longer than one read block
        (b"no newline at all", b""),
    ],
)
def test_cut_torn_line(tmp_path: Path, before: bytes, after: bytes) -> None:
    trace = tmp_path / "batches-rank0.tsv"
    trace.write_bytes(before)
    cut_torn_line(trace)
    assert trace.read_bytes() == after


def test_cut_torn_line_of_a_missing_file_is_a_no_op(tmp_path: Path) -> None:
    cut_torn_line(tmp_path / "absent.tsv")
    assert not (tmp_path / "absent.tsv").exists()
