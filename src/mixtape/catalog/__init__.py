"""The catalogue: tracks (with artist/album), playlists, and the splits held out for evaluation."""

from mixtape.catalog.tracks import TrackRecord, TrackTable, read_tracks

__all__ = ["TrackRecord", "TrackTable", "read_tracks"]
