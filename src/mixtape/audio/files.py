"""Finding the audio files of a folder: the one scanner `mixtape embed --audio` and
`mixtape similarity --audio` share, so both see the same files under the same track ids.
"""

from __future__ import annotations

from pathlib import Path

from mixtape.catalog.tracks import TrackRecord, TrackTable
from mixtape.errors import MixtapeError

#: File name endings taken as audio when a folder is scanned (anything libsndfile or ffmpeg may read).
AUDIO_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".m4a",
        ".aac",
        ".wma",
        ".caf",
        ".w64",
        ".mp4",
        ".webm",
    }
)


def scan_audio_folder(folder: str | Path) -> TrackTable:
    """Every audio file under ``folder`` (recursively, sorted), its track id the path relative to the folder."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise MixtapeError(f"no audio files under {folder} (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    return TrackTable([TrackRecord(p.relative_to(folder).as_posix(), p) for p in files], [])
