"""What loading a catalogue skipped, merged or could not match, counted per reason with examples.

Batch readers never stop on one bad playlist, entry or file: they count it here, so the user sees
how much of their data made it in and why the rest did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Reasons, one constant each so readers and tests name them the same way.
SKIPPED_TRACK_ROW = "track rows skipped"
SKIPPED_FILE = "playlist files skipped (unreadable or malformed)"
SKIPPED_PLAYLIST = "playlists skipped (malformed)"
SKIPPED_ENTRY = "playlist entries skipped (malformed)"
DUPLICATE_PLAYLIST = "duplicate playlist ids (first occurrence kept)"
HELDOUT_OVERLAP = "training playlists also held out (training copy dropped)"
EMPTY_PLAYLIST = "empty playlists (dropped)"
SINGLE_TRACK_PLAYLIST = "playlists of one track (no pairs; dropped)"
FEW_AUDIO_PLAYLIST = "playlists with fewer than 2 tracks with audio (no pairs; dropped)"
DUPLICATE_ENTRY = "duplicate tracks within a playlist (counted once)"
UNMATCHED_ENTRY = "playlist entries matching no track"
UNMATCHED_KEY = "distinct unmatched playlist entries"
HELDOUT_ENTRY = "held-out track entries removed from training playlists"
UNKNOWN_HOLDOUT = "held-out track ids not in the tracks table"
UNKNOWN_MAPPING = "mapping rows naming an unknown track (ignored)"
NOT_UTF8_LINE = "M3U lines not UTF-8 (decoded as Windows-1252)"
TRACK_IN_NO_PLAYLIST = "tracks in no training playlist"


@dataclass
class CatalogReport:
    """Counts per reason, plus a few examples (file:line, ids) so a user can find the bad rows."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def add(self, reason: str, n: int = 1, examples: Iterable[str] = ()) -> None:
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        kept = self.examples.setdefault(reason, [])
        for ex in examples:
            if len(kept) >= self.max_examples:
                break
            kept.append(str(ex))

    def get(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    def merge(self, other: CatalogReport) -> None:
        for reason, n in other.counts.items():
            self.add(reason, n, other.examples.get(reason, ()))

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "examples": {k: list(v) for k, v in self.examples.items() if v}}

    def summary(self) -> str:
        if not self.counts:
            return "catalogue report: nothing skipped, merged or unmatched"
        lines = ["catalogue report:"]
        for reason, n in self.counts.items():
            ex = self.examples.get(reason)
            lines.append(f"  {n:>10,}  {reason}" + (f"  (e.g. {'; '.join(ex[:3])})" if ex else ""))
        return "\n".join(lines)
