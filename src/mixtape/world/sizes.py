"""World sizes: from `tiny` (built in seconds for every test session) to `large` (benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 22_050  # written at 22.05 kHz so that every reader exercises resampling to 16 kHz


@dataclass(frozen=True)
class WorldSize:
    """How much world to generate; playlists scale with tracks (about 0.9 per track)."""

    name: str
    n_tracks: int
    duration: float  # mean track length in seconds (each track varies by +-15 %)
    n_artists: int
    n_playlists: int  # training + held-out
    n_triplets: int
    playlist_median: float = 18.0  # median tracks per playlist (log-normal, clipped to 5..100)
    heldout_fraction: float = 0.1


SIZES: dict[str, WorldSize] = {
    s.name: s
    for s in (
        WorldSize(
            "tiny", n_tracks=120, duration=8.0, n_artists=30, n_playlists=110, n_triplets=240, playlist_median=10.0
        ),
        WorldSize("small", n_tracks=1_000, duration=15.0, n_artists=110, n_playlists=880, n_triplets=1_000),
        WorldSize("medium", n_tracks=10_000, duration=20.0, n_artists=900, n_playlists=8_800, n_triplets=5_000),
        WorldSize("large", n_tracks=40_000, duration=30.0, n_artists=3_200, n_playlists=35_000, n_triplets=10_000),
    )
}
