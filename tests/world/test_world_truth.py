"""Reading a world's latent truth back from its world.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixtape.world.truth import LatentDataError, read_latent


def test_read_latent_from_a_world_file(tmp_path: Path) -> None:
    tracks = [
        {
            "track_id": f"t{i}",
            "genre": "rock" if i % 2 else "jazz",
            "moods": ["sad"] if i % 3 else ["happy", "calm"],
            "artist_id": f"a{i // 2}",
            "split": "test" if i < 2 else "train",
        }
        for i in range(6)
    ]
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"tracks": tracks}))
    t = read_latent(path, ["t5", "t0", "t3"])
    assert t.genre.tolist() == [1, 0, 1]  # jazz < rock
    assert t.moods.tolist() == [[False, False, True], [True, True, False], [True, True, False]]  # calm, happy, sad
    assert t.artist.tolist() == [2, 0, 1] and t.test.tolist() == [False, True, False]
    with pytest.raises(LatentDataError, match="not in the world, e.g. 'nope'"):
        read_latent(path, ["t1", "nope"])
    with pytest.raises(LatentDataError, match="not found"):
        read_latent(tmp_path / "missing.json", ["t1"])
    (tmp_path / "bad.json").write_text('{"tracks": [{"track_id": "t1"}]}')
    with pytest.raises(LatentDataError, match="lacks genre, moods or artist_id"):
        read_latent(tmp_path / "bad.json", ["t1"])


def test_absent_tracks_are_marked_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    path.write_text(json.dumps({"tracks": [{"track_id": "t1", "genre": "rock", "moods": ["sad"], "artist_id": "a1"}]}))
    t = read_latent(path, ["t1", "zz"], allow_missing=True)
    assert t.genre.tolist() == [0, -1] and t.artist.tolist() == [0, -1] and t.moods.tolist() == [[True], [False]]
    assert t.missing == ["zz"] and t.genres == ("rock",)


def test_the_tiny_world_reads_back(tiny_world) -> None:
    ids = [f"track_{i:06d}" for i in range(120)]
    t = read_latent(tiny_world.world_json, ids)
    assert (t.genre >= 0).all() and t.moods.any(axis=1).all() and len(np.unique(t.artist)) == 30
    assert 0 < t.test.sum() < 120
