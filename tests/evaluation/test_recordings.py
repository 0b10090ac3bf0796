"""`mixtape similarity --audio FOLDER --group-by TAG` on a handful of generated, tagged files:
grouping by each tag, what is skipped and counted, a corrupt file, and the CLI end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio.tagged_audio import write_garbage, write_tagged

from mixtape.audio import MelConfig
from mixtape.cli import main
from mixtape.evaluation.recordings import (
    BASELINE,
    BASELINE_RAW,
    GroupSimilarityError,
    folder_group_similarity,
    score_groups,
)
from mixtape.models import Encoder
from mixtape.models.export import export_safetensors

# file -> tags; Ann's tracks are low tones, Bob's high ones, so same-artist tracks sound alike.
FILES: dict[str, tuple[dict[str, str], float]] = {
    "ann/a1.wav": ({"artist": "Ann", "album": "One", "composer": "Bach", "title": "a1"}, 220.0),
    "ann/a2.flac": ({"artist": "Ann", "album": "One"}, 247.0),
    "ann/a3.ogg": ({"artist": "Ann", "album": "Two", "composer": "Bach"}, 262.0),
    "bob/b1.flac": ({"artist": "Bob", "album": "Two"}, 1760.0),
    "bob/b2.ogg": ({"artist": "Bob", "album": "Three", "composer": "Bach"}, 1980.0),
    "cleo.flac": ({"artist": "Cleo", "album": "Three"}, 880.0),  # the only track by Cleo
    "untagged.wav": ({}, 660.0),
}
BROKEN = "broken.flac"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recordings") / "music"
    for rel, (tags, freq) in FILES.items():
        write_tagged(folder / rel, tags, freq=freq)
    write_garbage(folder / BROKEN)
    (folder / "notes.txt").write_text("not audio: not scanned")
    return folder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("enc") / "small"
    export_safetensors(
        Encoder("small", channels=(4, 8, 8, 16)),
        folder,
        metadata={"mel": MelConfig().model_dump(mode="json"), "patch_frames": 128},
    )
    return folder


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.parametrize(
    ("group_by", "queries", "groups", "no_value", "singletons"),
    [
        ("artist", 5, 2, 1, 1),  # Ann (3), Bob (2); untagged.wav has no artist; Cleo has one track
        ("album", 6, 3, 1, 0),  # One, Two, Three: two tracks each
        ("composer", 3, 1, 4, 0),  # Bach (3); four files name no composer
    ],
)
def test_grouping_by_each_tag(
    recordings: Path, tmp_path: Path, group_by: str, queries: int, groups: int, no_value: int, singletons: int
) -> None:
    result = folder_group_similarity(recordings, group_by, tmp_path / "out", workers=0)
    c = result.counts
    assert (c["queries"], c["groups"], c["no_group_value"], c["singleton_groups"]) == (
        queries,
        groups,
        no_value,
        singletons,
    )
    assert (c["files"], c["tracks_scored"], c["failed_features"], c["tag_errors"]) == (8, 7, 1, 1)
    assert list(result.scores) == [BASELINE, BASELINE_RAW]
    for s in result.scores.values():
        assert 0.0 <= s.precision <= 1.0 and 0.0 <= s.ndcg <= 1.0 and s.queries == queries
    assert result.verdicts == ["no encoder given: only the mel-statistics baselines were scored"]
    per_query = _tsv(tmp_path / "out" / "per_query.tsv")
    assert len(per_query) == queries and {r[group_by] for r in per_query} <= {
        "Ann",
        "Bob",
        "One",
        "Two",
        "Three",
        "Bach",
    }


def test_skipped_files_are_counted_and_listed_never_dropped(recordings: Path, tmp_path: Path) -> None:
    """Untagged, single-track and corrupt files: each counted in the notes and listed in tracks.tsv with why."""
    result = folder_group_similarity(recordings, "artist", tmp_path / "out", workers=0)
    notes = "\n".join(result.notes)
    assert "1 track(s) have no artist tag" in notes
    assert "1 artist(s) have a single track" in notes
    assert (
        "1 file(s) gave no features and were left out (listed in "
        f"{tmp_path / 'out' / 'features' / 'failures.tsv'}), e.g. {BROKEN}" in notes
    )
    assert f"1 file(s) had unreadable tags (treated as untagged), e.g. {BROKEN}: damaged or not an audio file" in notes
    rows = {r["track_id"]: r for r in _tsv(tmp_path / "out" / "tracks.tsv")}
    assert set(rows) == {*FILES, BROKEN}  # every audio file, nothing else (notes.txt is not audio)
    assert (
        rows["ann/a1.wav"]["status"] == "query"
        and rows["ann/a1.wav"]["composer"] == "Bach"
        and rows["ann/a1.wav"]["title"] == "a1"
    )
    assert rows["untagged.wav"]["status"] == "candidate only: no artist tag"
    assert rows["cleo.flac"]["status"] == "candidate only: the only track of its artist"
    assert (
        rows[BROKEN]["status"].startswith("failed: ")
        and "tags unreadable: damaged or not an audio file" in rows[BROKEN]["status"]
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert (
        metrics["counts"]["failed_features"] == 1
        and metrics["group_by"] == "artist"
        and metrics["notes"] == result.notes
    )


def test_candidates_include_untagged_and_single_tracks(recordings: Path, tmp_path: Path) -> None:
    """Each of the 5 queries ranks the 6 other scored tracks (distractors included), so chance P@5 is known."""
    result = folder_group_similarity(recordings, "artist", tmp_path / "out", workers=0)
    # Ann's 3 queries: 2 relevant of 6 candidates; Bob's 2 queries: 1 of 6.
    assert result.chance["p@5"] == pytest.approx((3 * 2 / 6 + 2 * 1 / 6) / 5)


def test_no_group_of_two_is_a_clear_error(recordings: Path, tmp_path: Path) -> None:
    records_groups = {"ann/a1.wav": "x", "bob/b1.flac": "y"}
    from mixtape.audio import scan_audio_folder

    records = [r for r in scan_audio_folder(recordings).records if r.track_id in FILES]
    with pytest.raises(
        GroupSimilarityError,
        match=r"no group holds two of the 7 tracks with features \(5 have no group tag, 2 groups have one track",
    ):
        score_groups(records, records_groups, tmp_path / "out", workers=0)
    assert (tmp_path / "out" / "tracks.tsv").exists()  # what was found is still listed


def test_several_encoders_share_one_feature_store(recordings: Path, encoder_dir: Path, tmp_path: Path) -> None:
    """score_groups (the benchmark's entry) takes several encoders and an existing store.

    Names may not clash with a baseline.
    """
    from mixtape.audio import scan_audio_folder

    records = scan_audio_folder(recordings).records
    groups = {rel: tags.get("artist") for rel, (tags, _) in FILES.items()}
    first = score_groups(
        records,
        groups,
        tmp_path / "a",
        {"one": encoder_dir, "two": encoder_dir},
        features=tmp_path / "store",
        workers=0,
    )
    assert list(first.scores) == ["one", "two", BASELINE, BASELINE_RAW]
    assert first.scores["one"].ndcg == pytest.approx(first.scores["two"].ndcg)
    assert len(first.verdicts) == 2
    again = score_groups(records, groups, tmp_path / "b", {"one": encoder_dir}, features=tmp_path / "store", workers=0)
    assert again.scores["one"].ndcg == pytest.approx(first.scores["one"].ndcg)
    assert not (tmp_path / "b" / "features").exists()
    with pytest.raises(GroupSimilarityError, match="taken by a baseline"):
        score_groups(records, groups, tmp_path / "c", {BASELINE: encoder_dir}, features=tmp_path / "store", workers=0)


def test_cli_end_to_end(
    recordings: Path, encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    argv = [
        "similarity",
        "--audio",
        str(recordings),
        "--group-by",
        "artist",
        "--encoder",
        str(encoder_dir),
        "--out",
        str(out),
        "--workers",
        "0",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        "group retrieval by artist: 5 queries in 2 groups, 7 tracks ranked (1 with no artist tag, 1 artist(s) "
        "with a single track)" in printed
    )
    for row in ("encoder", BASELINE, BASELINE_RAW, "chance"):
        assert any(line.startswith(row + " ") for line in printed.splitlines()), row
    verdict = next(line for line in printed.splitlines() if "the mel-statistics baseline" in line)
    assert verdict.startswith(("encoder BEATS", "encoder does NOT beat", "encoder is mixed against"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["metrics"]) == {"encoder", BASELINE, BASELINE_RAW}
    assert metrics["encoders"] == {"encoder": str(encoder_dir)} and metrics["verdict"] == [verdict]
    per_query = _tsv(out / "per_query.tsv")
    assert len(per_query) == 5 and "encoder:ndcg@10" in per_query[0]
    assert all(np.isfinite(float(r["encoder:p@5"])) for r in per_query)
    # re-running resumes the feature store instead of extracting again
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[:7] == printed.splitlines()[:7]


def test_cli_refuses_incomplete_or_mixed_modes(
    recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["similarity", "--audio", str(recordings), "--out", str(tmp_path / "o")]) == 2
    assert "--audio needs --group-by" in capsys.readouterr().err
    assert main(["similarity", "--group-by", "artist", "--out", str(tmp_path / "o")]) == 2
    assert "--group-by needs --audio" in capsys.readouterr().err
    assert main(["similarity", "--out", str(tmp_path / "o")]) == 2
    assert "give --encoder and --features" in capsys.readouterr().err
    assert (
        main(
            [
                "similarity",
                "--audio",
                str(recordings),
                "--group-by",
                "artist",
                "--features",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "--features cannot be combined with --audio" in capsys.readouterr().err
    assert (
        main(["similarity", "--audio", str(tmp_path / "nowhere"), "--group-by", "album", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "no such folder" in capsys.readouterr().err
