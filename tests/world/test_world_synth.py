"""synth as a whole: deterministic whatever the worker count, resumable, refuses to mix worlds; the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixtape.cli import main
from mixtape.fileio import file_checksum
from mixtape.world import SIZES, World, WorldError, synth
from mixtape.world.latent import build_catalogue
from mixtape.world.writers import write_tracks_csv


def _files(world: World) -> dict[str, Path]:
    """Every file of a world except the audio, by path relative to the root."""
    return {str(p.relative_to(world.root)): p for p in world.root.rglob("*") if p.is_file() and "audio" not in p.parts}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The tiny world again, rendered in one process (the session fixture used two)."""
    return synth(tmp_path_factory.mktemp("again") / "tiny", size="tiny", seed=0, workers=1)


def test_same_seed_gives_identical_files_whatever_the_worker_count(tiny_world: World, rebuilt: World) -> None:
    mine, theirs = _files(rebuilt), _files(tiny_world)
    assert set(mine) == set(theirs) and {"tracks.csv", "triplets.csv", "world.json", "tags/autotagging.tsv"} <= set(
        mine
    )
    for rel in mine:
        assert mine[rel].read_bytes() == theirs[rel].read_bytes(), rel
    wavs = sorted(p.relative_to(rebuilt.root) for p in (rebuilt.root / "audio").rglob("*.wav"))
    assert len(wavs) == SIZES["tiny"].n_tracks
    for rel in wavs[::7]:
        assert file_checksum(rebuilt.root / rel) == file_checksum(tiny_world.root / rel)


def test_another_seed_gives_another_world(tiny_world: World, tmp_path: Path) -> None:
    write_tracks_csv(tmp_path / "tracks.csv", build_catalogue(SIZES["tiny"], seed=1))
    assert (tmp_path / "tracks.csv").read_bytes() != tiny_world.tracks.read_bytes()


def test_rerun_renders_only_what_is_missing(rebuilt: World) -> None:
    wavs = sorted((rebuilt.root / "audio").rglob("*.wav"))
    gone, kept = wavs[:2], wavs[5]
    sums = {p: file_checksum(p) for p in gone}
    for p in gone:
        p.unlink()
    stamp = kept.stat().st_mtime_ns
    world = synth(rebuilt.root, size="tiny", seed=0, workers=1)
    assert world == rebuilt
    assert all(file_checksum(p) == sums[p] for p in gone)  # re-rendered, byte for byte
    assert kept.stat().st_mtime_ns == stamp  # untouched


def test_rerun_of_a_complete_world_writes_nothing(rebuilt: World) -> None:
    before = {p: p.stat().st_mtime_ns for p in rebuilt.root.rglob("*") if p.is_file()}
    synth(rebuilt.root, size="tiny", seed=0, workers=2)
    assert {p: p.stat().st_mtime_ns for p in rebuilt.root.rglob("*") if p.is_file()} == before


def test_a_missing_table_is_rewritten(rebuilt: World) -> None:
    expected = rebuilt.triplets.read_bytes()
    rebuilt.triplets.unlink()
    synth(rebuilt.root, size="tiny", seed=0, workers=1)
    assert rebuilt.triplets.read_bytes() == expected


def test_refuses_to_mix_worlds_or_write_into_foreign_folders(tiny_world: World, tmp_path: Path) -> None:
    with pytest.raises(WorldError, match="seed=0, not size=tiny seed=1"):
        synth(tiny_world.root, size="tiny", seed=1)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(WorldError, match="not empty"):
        synth(foreign, size="tiny")
    with pytest.raises(WorldError, match="unknown world size 'huge'"):
        synth(tmp_path / "w", size="huge")
    with pytest.raises(WorldError, match="workers"):
        synth(tmp_path / "w", workers=0)
    assert os.listdir(foreign) == ["notes.txt"]


def test_cli_synth_prints_the_summary(rebuilt: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--size", "tiny", "--seed", "0", "--out", str(rebuilt.root), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "120 by 30 artists" in out and "held out" in out


def test_cli_synth_reports_a_clean_error(rebuilt: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--size", "small", "--out", str(rebuilt.root)]) == 2
    assert "holds a world with size=tiny" in capsys.readouterr().err
