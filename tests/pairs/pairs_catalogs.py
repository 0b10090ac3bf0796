"""Small catalogues with known structure for the pair-strategy tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mixtape.catalog import Catalog


def playlists_matrix(playlists: list[list[int]], n_tracks: int) -> sp.csr_matrix:
    """Rows of track indices → playlist matrix with 1-based positions as values."""
    rows = np.repeat(np.arange(len(playlists)), [len(p) for p in playlists])
    cols = np.concatenate([np.asarray(p, dtype=np.int64) for p in playlists]) if playlists else np.zeros(0, np.int64)
    pos = np.concatenate([np.arange(1, len(p) + 1) for p in playlists]) if playlists else np.zeros(0, np.int64)
    return sp.csr_matrix((pos, (rows, cols)), shape=(len(playlists), n_tracks))


def random_catalog(seed: int = 0, n_tracks: int = 60, n_playlists: int = 40, heldout_share: float = 0.15) -> Catalog:
    """Two "communities" of tracks (playlists stay within one), artists of 1-5 tracks, albums of 1-3,
    a few held-out tracks and a few tracks in no playlist."""
    rng = np.random.default_rng(seed)
    artist = np.repeat(np.arange(n_tracks), rng.integers(1, 6, n_tracks))[:n_tracks].astype(np.int32)
    album = np.repeat(np.arange(n_tracks), rng.integers(1, 4, n_tracks))[:n_tracks].astype(np.int32)
    community = (np.arange(n_tracks) >= n_tracks // 2).astype(int)
    lonely = rng.choice(n_tracks, 3, replace=False)  # in no playlist
    playlists = []
    for _ in range(n_playlists):
        c = rng.integers(0, 2)
        members = np.flatnonzero((community == c) & ~np.isin(np.arange(n_tracks), lonely))
        playlists.append(rng.choice(members, size=rng.integers(2, 9), replace=False).tolist())
    held = rng.random(n_tracks) < heldout_share
    heldout_lists = [rng.choice(n_tracks, 4, replace=False).tolist() for _ in range(5)]
    return Catalog.from_arrays(
        [f"t{i:03d}" for i in range(n_tracks)],
        playlists_matrix(playlists, n_tracks),
        artist=artist,
        album=album,
        heldout_track_mask=held,
        heldout_playlists=playlists_matrix(heldout_lists, n_tracks),
    )


def write_world_json(
    track_ids: list[str] | np.ndarray, path: Path, seed: int = 0, n_genres: int = 3, n_moods: int = 4
) -> Path:
    """A minimal world.json (track_id, genre, moods, artist_id) for the theme oracle over arbitrary track ids."""
    import json

    rng = np.random.default_rng(seed)
    tracks = [
        {
            "track_id": str(t),
            "genre": f"g{rng.integers(n_genres)}",
            "moods": sorted({f"m{rng.integers(n_moods)}" for _ in range(int(rng.integers(1, 3)))}),
            "artist_id": f"a{i % 7}",
        }
        for i, t in enumerate(track_ids)
    ]
    path.write_text(json.dumps({"tracks": tracks}), encoding="utf-8")
    return path
