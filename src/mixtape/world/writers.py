"""Writers: the world in the formats a user's data comes in (CSV, MTG-Jamendo TSV, MPD JSON), atomically.

Output is a pure function of its inputs (no timestamps, stable key order, fixed float rounding), so
two runs with the same seed write byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixtape.fileio import atomic_write_text
from mixtape.stagefolder import StageFolder, register_stage_folder
from mixtape.world.latent import Catalogue
from mixtape.world.playlists import Playlist
from mixtape.world.tags import FAMILIES, SPLITS, track_tags
from mixtape.world.triplets import ASPECTS, Triplets
from mixtape.world.vocab import ACTIVITIES, GENRES, INSTRUMENTS, MOODS

#: world.json, written last: the latent truth behind every file, and the mark of a complete world.
WORLD_FOLDER = register_stage_folder(StageFolder("world", "world.json", "mixtape-world", 1, "run `mixtape synth`"))
MTG_HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
SLICE_SIZE = 1000  # playlists per MPD slice file, as in the Million Playlist Dataset


def _csv_text(header: list[str] | tuple[str, ...], rows: list[list[Any]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


#: tracks.csv's header: the table every stage reads, with the names a person reads last.
TRACKS_HEADER = ("track_id", "path", "artist_id", "album_id", "duration", "title", "artist_name")


def write_tracks_csv(path: Path, cat: Catalogue) -> Path:
    """tracks.csv: track_id,path,artist_id,album_id,duration,title,artist_name with paths relative to the
    world root (title and artist_name: the names world.json gives the track and its artist)."""
    t = cat.tracks
    rows = [
        [
            cat.track_id(i),
            cat.track_path(i),
            cat.artist_id(int(t.artist[i])),
            cat.album_id(int(t.album[i])),
            f"{t.duration[i]:.1f}",
            t.name[i],
            cat.artists.name[int(t.artist[i])],
        ]
        for i in range(len(t))
    ]
    return atomic_write_text(path, _csv_text(TRACKS_HEADER, rows))


def _mtg_text(cat: Catalogue, tracks: np.ndarray, tags: list[list[str]]) -> str:
    """MTG-Jamendo TSV: five fixed columns, then one tag per extra field; tracks with no tag of the family left out."""
    t = cat.tracks
    lines = ["\t".join(MTG_HEADER)]
    for i in tracks:
        if tags[i]:
            fixed = [
                cat.track_id(i),
                cat.artist_id(int(t.artist[i])),
                cat.album_id(int(t.album[i])),
                cat.track_path(i),
                f"{t.duration[i]:.1f}",
            ]
            lines.append("\t".join(fixed + tags[i]))
    return "\n".join(lines) + "\n"


def write_tags(path: Path, cat: Catalogue) -> Path:
    """tags/autotagging.tsv: every track with all its tags."""
    return atomic_write_text(path, _mtg_text(cat, np.arange(len(cat.tracks)), track_tags(cat)))


def write_splits(folder: Path, cat: Catalogue, artist_split: np.ndarray) -> list[Path]:
    """splits/autotagging_{family}-{split}.tsv, artist-disjoint, as MTG-Jamendo's split-0 folder."""
    track_split = artist_split[cat.tracks.artist]
    out = []
    for family in FAMILIES:
        tags = track_tags(cat, family)
        for s, split in enumerate(SPLITS):
            path = folder / f"autotagging_{family}-{split}.tsv"
            out.append(atomic_write_text(path, _mtg_text(cat, np.flatnonzero(track_split == s), tags)))
    return out


def _mpd_playlist(cat: Catalogue, p: Playlist) -> dict[str, Any]:
    t, a, b = cat.tracks, cat.artists, cat.albums
    entries = []
    for pos, i in enumerate(p.tracks):
        i = int(i)
        ar, al = int(t.artist[i]), int(t.album[i])
        entries.append(
            {
                "pos": pos,
                "artist_name": a.name[ar],
                "track_uri": f"mixtape:track:{cat.track_id(i)}",
                "artist_uri": f"mixtape:artist:{cat.artist_id(ar)}",
                "track_name": t.name[i],
                "album_uri": f"mixtape:album:{cat.album_id(al)}",
                "duration_ms": int(round(float(t.duration[i]) * 1000)),
                "album_name": b.name[al],
            }
        )
    return {
        "name": p.name,
        "collaborative": "true" if p.collaborative else "false",
        "pid": p.pid,
        "modified_at": p.modified_at,
        "num_tracks": len(p.tracks),
        "num_albums": len(np.unique(t.album[p.tracks])),
        "num_followers": p.num_followers,
        "tracks": entries,
        "num_edits": 1 + len(p.tracks) // 4,
        "duration_ms": sum(e["duration_ms"] for e in entries),
        "num_artists": len(np.unique(t.artist[p.tracks])),
    }


def write_mpd_slices(folder: Path, cat: Catalogue, playlists: list[Playlist]) -> list[Path]:
    """mpd.slice.<first pid>-<last pid>.json files of up to 1000 playlists (pids are consecutive per folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for start in range(0, len(playlists), SLICE_SIZE):
        chunk = playlists[start : start + SLICE_SIZE]
        span = f"{chunk[0].pid}-{chunk[-1].pid}"
        doc = {
            "info": {
                "generated_on": "mixtape synth",
                "slice": span,
                "version": "v1",
                "world": f"size={cat.size.name} seed={cat.seed}",
            },
            "playlists": [_mpd_playlist(cat, p) for p in chunk],
        }
        out.append(
            atomic_write_text(
                folder / f"mpd.slice.{span}.json", json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
            )
        )
    return out


def write_triplets(path: Path, cat: Catalogue, trip: Triplets) -> Path:
    """triplets.csv: anchor,candidate_a,candidate_b,votes_a,votes_b with track ids (dim-sim style)."""
    rows = [
        [cat.track_id(int(x)), cat.track_id(int(y)), cat.track_id(int(z)), int(va), int(vb)]
        for x, y, z, va, vb in zip(trip.anchor, trip.a, trip.b, trip.votes_a, trip.votes_b, strict=True)
    ]
    return atomic_write_text(path, _csv_text(["anchor", "candidate_a", "candidate_b", "votes_a", "votes_b"], rows))


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def world_document(
    cat: Catalogue, artist_split: np.ndarray, playlists: list[Playlist], trip: Triplets
) -> dict[str, Any]:
    """The latent truth of the world, for analysis and tests (what generated every file)."""
    a, b, t = cat.artists, cat.albums, cat.tracks

    def names(vocab: Sequence[str], mask: np.ndarray) -> list[str]:
        return [vocab[j] for j in np.flatnonzero(mask).tolist()]

    return {
        **WORLD_FOLDER.header(),
        "size": cat.size.name,
        "seed": cat.seed,
        "sample_rate": 22_050,
        "vocabulary": {
            "genres": list(GENRES),
            "moods": list(MOODS),
            "instruments": list(INSTRUMENTS),
            "activities": list(ACTIVITIES),
        },
        "artists": [
            {
                "artist_id": cat.artist_id(i),
                "name": a.name[i],
                "genre": GENRES[a.genre[i]],
                "second_genre": GENRES[a.second_genre[i]] if a.second_genre[i] >= 0 else None,
                "palette": names(INSTRUMENTS, a.palette[i]),
                "mood_pref": {m: _r(p) for m, p in zip(MOODS, a.mood_pref[i], strict=True)},
                "tempo_habit": _r(a.tempo_habit[i]),
                "brightness": _r(a.brightness[i]),
                "reverb_time": _r(a.reverb_time[i]),
                "reverb_wet": _r(a.reverb_wet[i]),
                "lowpass_hz": _r(a.lowpass_hz[i], 1),
                "highpass_hz": _r(a.highpass_hz[i], 1),
                "drive": _r(a.drive[i]),
                "popularity": _r(a.popularity[i], 6),
                "split": ("train", "validation", "test")[int(artist_split[i])],
            }
            for i in range(len(a))
        ],
        "albums": [
            {
                "album_id": cat.album_id(i),
                "artist_id": cat.artist_id(int(b.artist[i])),
                "name": b.name[i],
                "mood_focus": MOODS[b.mood_focus[i]],
            }
            for i in range(len(b))
        ],
        "tracks": [
            {
                "track_id": cat.track_id(i),
                "artist_id": cat.artist_id(int(t.artist[i])),
                "album_id": cat.album_id(int(t.album[i])),
                "name": t.name[i],
                "genre": GENRES[t.genre[i]],
                "moods": names(MOODS, t.moods[i]),
                "instruments": names(INSTRUMENTS, t.instruments[i]),
                "tempo": _r(t.tempo[i], 1),
                "key": int(t.key[i]),
                "mode": "major" if t.major[i] else "minor",
                "energy": _r(t.energy[i]),
                "brightness": _r(t.brightness[i]),
                "duration": _r(t.duration[i], 1),
                "popularity": _r(t.popularity[i], 8),
                "split": ("train", "validation", "test")[int(artist_split[t.artist[i]])],
            }
            for i in range(len(t))
        ],
        "playlists": [
            {
                "pid": p.pid,
                "name": p.name,
                "theme_kind": p.kind,
                "theme": p.theme,
                "heldout": p.heldout,
                "num_tracks": len(p.tracks),
                "off_theme": [cat.track_id(int(i)) for i in p.tracks[p.off_theme]],
                "album_run": list(p.album_run) if p.album_run else None,
            }
            for p in playlists
        ],
        "triplets": {
            "votes_per_triplet": int(trip.votes_a[0] + trip.votes_b[0]) if len(trip.anchor) else 0,
            "aspects": list(ASPECTS),
            "annotators": [
                {
                    "weights": [_r(w) for w in trip.annotators.weights[j]],
                    "temperature": _r(trip.annotators.temperature[j]),
                    "lapse": _r(trip.annotators.lapse[j]),
                }
                for j in range(len(trip.annotators.weights))
            ],
        },
    }


def write_world_json(path: Path, doc: dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
