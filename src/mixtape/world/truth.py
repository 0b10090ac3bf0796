"""The latent truth of a generated world, read back from its ``world.json``.

Stages that may use the truth — the `theme` oracle positives, the latent-attribute probes of the
evaluation — read it here, from the file, so that they work on any world folder and never on the
generator's in-memory objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtape.errors import MixtapeError


class LatentDataError(MixtapeError, ValueError):
    """A world.json that cannot give the latent attributes of the tracks asked for."""


@dataclass(frozen=True)
class LatentTruth:
    """Latent attributes of some tracks, row-aligned with the ids asked for (codes sorted by name)."""

    track_ids: tuple[str, ...]
    genre: np.ndarray  # (n,) int code, -1 where the track is not in the world
    moods: np.ndarray  # (n, moods) bool
    artist: np.ndarray  # (n,) int code, -1 where absent
    test: np.ndarray  # (n,) bool: in the world's tag test split
    genres: tuple[str, ...]
    mood_names: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        """Ids that the world does not hold."""
        return [t for t, g in zip(self.track_ids, self.genre, strict=True) if g < 0]


def read_latent(world_json: str | Path, track_ids: Sequence[str], allow_missing: bool = False) -> LatentTruth:
    """Genre, moods, artist and split of ``track_ids`` from a world's ``world.json``.

    An id the world does not hold is an error, or, with ``allow_missing``, a row of -1 codes and no
    mood (its caller reports it).
    """
    path = Path(world_json)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = {str(t["track_id"]): t for t in doc["tracks"]}
    except FileNotFoundError:
        raise LatentDataError(f"world file not found: {path} (the world.json that `mixtape synth` writes)") from None
    except (ValueError, KeyError, TypeError, RecursionError) as err:  # RecursionError: absurdly nested JSON
        raise LatentDataError(
            f"{path} is not a mixtape world.json (tracks with track_id, genre, moods, artist_id): {err!r}"
        ) from None
    ids = tuple(str(t) for t in track_ids)
    missing = [t for t in ids if t not in rows]
    if missing and not allow_missing:
        raise LatentDataError(f"{path}: {len(missing)} track(s) are not in the world, e.g. {missing[0]!r}")
    picked = [rows.get(t) for t in ids]
    try:
        genres = tuple(sorted({str(r["genre"]) for r in picked if r is not None}))
        moods = tuple(sorted({str(m) for r in picked if r is not None for m in r["moods"]}))
        artists = sorted({str(r["artist_id"]) for r in picked if r is not None})
        genre_code = {g: i for i, g in enumerate(genres)}
        artist_code = {a: i for i, a in enumerate(artists)}
        genre = np.array([genre_code[str(r["genre"])] if r is not None else -1 for r in picked], dtype=np.int64)
        mood = np.array([[r is not None and m in r["moods"] for m in moods] for r in picked], dtype=bool).reshape(
            len(ids), len(moods)
        )
        artist = np.array([artist_code[str(r["artist_id"])] if r is not None else -1 for r in picked], dtype=np.int64)
        test = np.array([r is not None and r.get("split") == "test" for r in picked], dtype=bool)
    except (KeyError, TypeError, AttributeError) as err:
        raise LatentDataError(f"{path}: a track lacks genre, moods or artist_id ({err!r})") from None
    return LatentTruth(ids, genre, mood, artist, test, genres, moods)
