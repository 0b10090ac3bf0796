"""The catalogue: tracks (with artist/album), playlists, and the splits held out for evaluation."""

from mixtape.catalog.catalog import (
    Catalog,
    UnknownTrackError,
    catalog_info,
    load_catalog,
    ordered_rows,
    read_track_list,
)
from mixtape.catalog.matching import TrackMatcher, read_mapping, resolve_entry_path
from mixtape.catalog.playlists import (
    RawPlaylists,
    playlist_files,
    read_m3u,
    read_mpd_slice,
    read_playlist_file,
    read_playlists_csv,
    read_playlists_jsonl,
)
from mixtape.catalog.report import CatalogReport
from mixtape.catalog.splits import artist_disjoint_split, artists_shared, hold_out_playlists, write_track_split
from mixtape.catalog.tracks import TrackRecord, TrackTable, read_tracks

__all__ = [
    "Catalog",
    "CatalogReport",
    "RawPlaylists",
    "TrackMatcher",
    "TrackRecord",
    "TrackTable",
    "UnknownTrackError",
    "artist_disjoint_split",
    "artists_shared",
    "catalog_info",
    "hold_out_playlists",
    "load_catalog",
    "ordered_rows",
    "playlist_files",
    "read_m3u",
    "read_mapping",
    "read_mpd_slice",
    "read_playlist_file",
    "read_playlists_csv",
    "read_playlists_jsonl",
    "read_track_list",
    "read_tracks",
    "resolve_entry_path",
    "write_track_split",
]
