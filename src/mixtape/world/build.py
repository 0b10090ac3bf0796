"""`synth`: generate a whole world into a folder (resumable), and `World`, the handle to its files."""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, get_logger, progress
from mixtape.text import and_more
from mixtape.workers import exit_with_process
from mixtape.world.latent import build_catalogue, purpose_rng
from mixtape.world.playlists import make_playlists
from mixtape.world.render import TrackSpec, render_to_file, track_specs, wav_is_complete
from mixtape.world.sizes import SIZES
from mixtape.world.tags import FAMILIES, SPLITS, assign_splits
from mixtape.world.triplets import make_triplets
from mixtape.world.writers import (
    TRACKS_HEADER,
    WORLD_FOLDER,
    world_document,
    write_mpd_slices,
    write_splits,
    write_tags,
    write_tracks_csv,
    write_triplets,
    write_world_json,
)

log = get_logger("mixtape.world")
MARKER = ".mixtape-world.json"  # written first: says which (size, seed) a partly built folder belongs to


class WorldError(MixtapeError):
    """A world folder that cannot be used or built (wrong seed/size for the folder, missing files)."""


@dataclass(frozen=True)
class World:
    """Paths of a generated world; every later stage reads these files as it would a user's data."""

    root: Path
    tracks: Path  # tracks.csv (track_id,path,artist_id,album_id,duration,title,artist_name; paths relative to root)
    tags: Path  # tags/autotagging.tsv (MTG-Jamendo style, all tracks)
    splits: Path  # splits/autotagging_{family}-{split}.tsv
    playlists: Path  # playlists/mpd.slice.*.json (training playlists)
    heldout: Path  # heldout/mpd.slice.*.json (held-out playlists, for evaluation only)
    triplets: Path  # triplets.csv (anchor,candidate_a,candidate_b,votes_a,votes_b)
    world_json: Path  # world.json (latent attributes of every track and playlist)

    @classmethod
    def at(cls, root: str | Path) -> World:
        """The paths a world at ``root`` has (whether or not they exist yet)."""
        root = Path(root)
        return cls(
            root=root,
            tracks=root / "tracks.csv",
            tags=root / "tags" / "autotagging.tsv",
            splits=root / "splits",
            playlists=root / "playlists",
            heldout=root / "heldout",
            triplets=root / "triplets.csv",
            world_json=WORLD_FOLDER.header_path(root),
        )

    @classmethod
    def load(cls, root: str | Path) -> World:
        """Reopen a complete world folder; world.json is written last, so its presence means complete."""
        world = cls.at(root)
        if not world.world_json.is_file():
            raise WorldError(
                f"{world.root} is not a complete mixtape world ({world.world_json.name} missing); run "
                f"`mixtape synth --out {world.root}` to build or finish it"
            )
        missing = [
            p
            for p in (world.tracks, world.tags, world.splits, world.playlists, world.heldout, world.triplets)
            if not p.exists()
        ]
        if missing:
            raise WorldError(
                f"world at {world.root} lacks {', '.join(str(p.relative_to(world.root)) for p in missing)}; "
                f"re-run `mixtape synth --out {world.root}` to repair it"
            )
        return world

    def split_file(self, family: str, split: str) -> Path:
        """e.g. split_file("genre", "train") -> splits/autotagging_genre-train.tsv."""
        if family not in FAMILIES or split not in SPLITS:
            raise WorldError(
                f"no split file for family {family!r} / split {split!r}; families {FAMILIES}, splits {SPLITS}"
            )
        return self.splits / f"autotagging_{family}-{split}.tsv"

    def latent(self) -> dict[str, Any]:
        """world.json parsed: the latent attributes behind every file (for analysis and tests)."""
        with _reading(self, self.world_json):
            data = json.loads(self.world_json.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return data

    def summary(self) -> str:
        """What the world holds, counted from its files."""
        with _reading(self, self.tracks), open(self.tracks, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
            durations = np.array([float(r["duration"]) for r in rows])
            artists, albums = len({r["artist_id"] for r in rows}), len({r["album_id"] for r in rows})
        with _reading(self, self.tags), open(self.tags, encoding="utf-8") as f:
            tag_rows = [line.rstrip("\n").split("\t")[5:] for line in f.readlines()[1:]]
            families: dict[str, set[str]] = {"genre": set(), "mood/theme": set(), "instrument": set()}
            for tags in tag_rows:
                for tag in tags:
                    families[tag.split("---")[0]].add(tag)
        train, held = _count_playlists(self, self.playlists), _count_playlists(self, self.heldout)
        lengths = np.array(train[1] + held[1]) if train[1] or held[1] else np.zeros(1)
        split_sizes = [_count_lines(self, self.split_file("top50tags", s)) for s in SPLITS]
        meta = self.latent()
        triplets = meta.get("triplets")
        return "\n".join(
            [
                f"mixtape world at {self.root} (size {meta.get('size')}, seed {meta.get('seed')})",
                f"  tracks     {len(rows)} by {artists} artists on {albums} albums,"
                f" {durations.sum() / 3600:.2f} h of audio (22.05 kHz WAV)",
                f"  playlists  {train[0]} for training + {held[0]} held out (tracks per playlist: median "
                f"{np.median(lengths):.0f}, max {lengths.max():.0f})",
                "  tags       "
                + ", ".join(f"{fam} {len(tags)}" for fam, tags in families.items())
                + f" (mean {np.mean([len(t) for t in tag_rows]):.1f} per track)",
                f"  splits     train {split_sizes[0]} / validation {split_sizes[1]} / test {split_sizes[2]} "
                "tracks (artist-disjoint)",
                f"  triplets   {_count_lines(self, self.triplets)} (dim-sim style, "
                f"{triplets.get('votes_per_triplet', 0) if isinstance(triplets, dict) else 0} votes each)",
            ]
        )


@contextlib.contextmanager
def _reading(world: World, path: Path) -> Iterator[None]:
    """Turn any failure to read or parse one of the world's files into a WorldError naming it."""
    try:
        yield
    except WorldError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, csv.Error) as err:
        raise WorldError(
            f"{path}: unreadable ({type(err).__name__}: {err}); re-run `mixtape synth --out {world.root}` to "
            "rebuild the world"
        ) from None


def _count_lines(world: World, path: Path) -> int:
    """Data rows of a table with a header line."""
    with _reading(world, path), open(path, encoding="utf-8") as f:
        return max(0, sum(1 for _ in f) - 1)


def _count_playlists(world: World, folder: Path) -> tuple[int, list[int]]:
    lengths: list[int] = []
    for path in sorted(folder.glob("mpd.slice.*.json")):
        with _reading(world, path):
            counts = [p["num_tracks"] for p in json.loads(path.read_text(encoding="utf-8"))["playlists"]]
            if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
                raise TypeError("a num_tracks is not an integer")
            lengths.extend(counts)
    return len(lengths), lengths


def _tables_complete(world: World) -> bool:
    """Every table of a finished run is present (world.json last), so a re-run may leave the folder untouched."""
    try:
        World.load(world.root)
    except WorldError:
        return False
    splits = all(world.split_file(f, s).is_file() for f in FAMILIES for s in SPLITS)
    if not _tracks_header_current(world.tracks):
        return False  # written before tracks.csv named titles and artists: the tables are written again
    return splits and any(world.playlists.glob("mpd.slice.*.json")) and any(world.heldout.glob("mpd.slice.*.json"))


def _tracks_header_current(path: Path) -> bool:
    """Whether ``tracks.csv`` has today's header (``TRACKS_HEADER``)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return next(csv.reader(f), []) == list(TRACKS_HEADER)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def _claim(root: Path, size: str, seed: int) -> None:
    """Refuse to mix two worlds in one folder or to write into an unrelated non-empty folder."""
    marker = root / MARKER
    wanted = WORLD_FOLDER.header(size=size, seed=seed)
    if marker.is_file():
        try:
            found = json.loads(marker.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise WorldError(
                f"{marker}: unreadable world marker ({err}); delete the folder or choose another --out"
            ) from None
        if found != wanted:
            raise WorldError(
                f"{root} holds a world with size={found.get('size')} seed={found.get('seed')}, not size={size} "
                f"seed={seed}; choose another --out or delete that folder"
            )
        return
    if root.exists() and any(root.iterdir()):
        raise WorldError(f"{root} is not empty and holds no mixtape world; choose an empty or new folder for --out")
    atomic_write_text(marker, json.dumps(wanted, sort_keys=True) + "\n")


def _render(specs: list[TrackSpec], workers: int) -> list[str]:
    """Render tracks, in worker processes when asked (forkserver: safe even if the caller runs threads).

    Returns one line per failed track; the others are written regardless. On Ctrl-C queued tracks
    are cancelled at once (finished WAVs stay, so a re-run resumes).
    """
    if not specs:
        return []
    by_index = {s.index: s for s in specs}

    def collect(results: Iterable[tuple[int, str | None]]) -> list[str]:
        bar = progress(results, desc="rendering tracks", total=len(specs), unit="track")
        return [f"{by_index[i].path}: {err}" for i, err in bar if err]

    if workers <= 1 or len(specs) < 4:
        return collect(map(render_to_file, specs))
    # exit_with_process: a kill -9 of the run would otherwise leave the fork server and its workers idle forever
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("forkserver"),
        initializer=exit_with_process,
        initargs=(os.getpid(),),
    )
    try:
        failures = collect(pool.map(render_to_file, specs, chunksize=max(1, min(8, len(specs) // (4 * workers)))))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return failures


def synth(out_dir: str | Path, size: str = "tiny", seed: int = 0, workers: int | None = None) -> World:
    """Generate the world of ``size`` for ``seed`` into ``out_dir`` and return its paths.

    Deterministic: the same (size, seed) gives byte-identical files whatever ``workers`` is. Resumable:
    audio already on disk (complete WAVs; every write is atomic) is kept and the tables are rewritten;
    a folder that already holds the complete world is left untouched.
    """
    if size not in SIZES:
        raise WorldError(f"unknown world size {size!r}; choose one of {', '.join(SIZES)}")
    if workers is not None and workers < 1:
        raise WorldError(f"workers must be at least 1, got {workers}")
    workers = workers or os.cpu_count() or 1
    spec = SIZES[size]
    root = Path(out_dir)
    world = World.at(root)
    _claim(root, size, seed)
    t0 = time.perf_counter()

    cat = build_catalogue(spec, seed)
    specs = track_specs(cat, root)
    todo = [s for s in specs if not wav_is_complete(Path(s.path), s.n_samples)]
    if not todo and _tables_complete(world):
        log.info("world %s seed %d at %s is already complete; nothing to do", size, seed, root)
        return world
    log.info(
        "world %s seed %d: %d tracks, %d to render (%d already on disk), %d workers",
        size,
        seed,
        len(specs),
        len(todo),
        len(specs) - len(todo),
        workers,
    )
    failures = _render(todo, workers)
    if failures:
        listed = and_more(failures, 20, sep="\n  ")
        raise WorldError(f"{len(failures)} of {len(todo)} tracks failed to render (re-run to retry them):\n  {listed}")
    t_audio = time.perf_counter()

    artist_split = assign_splits(cat, purpose_rng(seed, "splits"))
    playlists = make_playlists(
        cat, spec.n_playlists, spec.heldout_fraction, purpose_rng(seed, "playlists"), spec.playlist_median
    )
    trip = make_triplets(cat, spec.n_triplets, purpose_rng(seed, "triplets"))
    write_tracks_csv(world.tracks, cat)
    write_tags(world.tags, cat)
    write_splits(world.splits, cat, artist_split)
    write_mpd_slices(world.playlists, cat, [p for p in playlists if not p.heldout])
    write_mpd_slices(world.heldout, cat, [p for p in playlists if p.heldout])
    write_triplets(world.triplets, cat, trip)
    write_world_json(world.world_json, world_document(cat, artist_split, playlists, trip))
    log.info(
        "world written to %s in %.1fs (audio %.1fs): %d tracks, %d playlists (%d held out), %d triplets",
        root,
        time.perf_counter() - t0,
        t_audio - t0,
        len(specs),
        len(playlists),
        sum(p.heldout for p in playlists),
        len(trip.anchor),
    )
    return World.load(root)
