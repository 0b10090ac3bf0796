"""The `mixtape pairs` stage: catalogue in, one strategy's positives and statistics out, resumably.

The output folder records the checksums of every input file and the resolved parameters; a re-run
whose output exists and matches does nothing, so a pipeline can call this stage unconditionally.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixtape.catalog import catalog_info, load_catalog, playlist_files
from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, file_checksum, get_logger, progress
from mixtape.pairs.params import PARAMS, fingerprint_params, resolve_params
from mixtape.pairs.positives import META_FILE, POSITIVES_FOLDER, Positives, changed_files, read_metadata
from mixtape.pairs.strategies import format_stats
from mixtape.stagefolder import fingerprint

log = get_logger(__name__)
CATALOG_FILE = "catalog.json"


@dataclass
class PairsRun:
    out: Path
    stats: dict[str, Any]
    up_to_date: bool  # the folder already held these positives: nothing was rebuilt

    def summary(self) -> str:
        head = (
            f"positives up to date in {self.out} (inputs unchanged)"
            if self.up_to_date
            else f"positives written to {self.out}"
        )
        return format_stats(self.stats) + "\n" + head


def input_checksums(groups: Mapping[str, Sequence[str | Path]]) -> dict[str, list[dict[str, str]]]:
    """Checksum of every input file, folders expanded to the playlist files they hold."""
    files: list[tuple[str, Path]] = []
    for role, paths in groups.items():
        for p in paths:
            p = Path(p)
            expanded = playlist_files(p) if role in ("playlists", "heldout") else [p]
            files.extend((role, f) for f in expanded)
    out: dict[str, list[dict[str, str]]] = {role: [] for role in groups}
    for role, f in progress(files, desc="checksumming inputs", unit="file"):
        try:
            out[role].append({"path": str(f.resolve()), "checksum": file_checksum(f)})
        except FileNotFoundError:
            raise MixtapeError(f"{role} input not found: {f}") from None
    return out


def _fingerprint(inputs: dict[str, Any], strategy: str, params: dict[str, Any], options: dict[str, Any]) -> str:
    return fingerprint(
        {
            "inputs": inputs,
            "strategy": strategy,
            "params": params,
            "options": options,
            "version": POSITIVES_FOLDER.version,
        }
    )


def run_pairs(
    tracks: str | Path | Sequence[str | Path],
    out: str | Path,
    strategy: str,
    playlists: Sequence[str | Path] = (),
    heldout: Sequence[str | Path] = (),
    holdout_tracks: str | Path | None = None,
    audio_root: str | Path | None = None,
    mapping: str | Path | None = None,
    match: str = "auto",
    force: bool = False,
    **params: Any,
) -> PairsRun:
    """Load the catalogue, build ``strategy``'s positives, write them with their statistics to ``out``."""
    from mixtape.pairs import build_positives

    if strategy not in PARAMS:
        raise MixtapeError(f"unknown pair strategy {strategy!r} (choose among {', '.join(PARAMS)})")
    out = Path(out)
    table_paths = [tracks] if isinstance(tracks, (str, Path)) else list(tracks)
    resolved = resolve_params(strategy, params)
    groups = {
        "tracks": table_paths,
        "playlists": list(playlists),
        "heldout": list(heldout),
        "holdout_tracks": [holdout_tracks] if holdout_tracks is not None else [],
        "mapping": [mapping] if mapping is not None else [],
        "world": [resolved["world"]] if resolved.get("world") else [],  # the theme oracle's latent truth
    }
    inputs = input_checksums(groups)
    options = {"audio_root": str(audio_root) if audio_root is not None else None, "match": match}
    key = _fingerprint(inputs, strategy, fingerprint_params(resolved), options)
    if not force and POSITIVES_FOLDER.is_current(out, key) and not changed_files(out, read_metadata(out)):
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        log.info("pairs: %s is up to date (same inputs and parameters); nothing to do", out)
        return PairsRun(out, stats, up_to_date=True)
    if not force and (out / META_FILE).exists():
        log.info("pairs: %s holds positives of other inputs or parameters, or its files changed; rebuilding", out)
    catalog = load_catalog(table_paths, playlists, heldout, holdout_tracks, audio_root, mapping=mapping, match=match)
    positives: Positives = build_positives(catalog, strategy, **params)
    (out / META_FILE).unlink(missing_ok=True)  # the folder is incomplete until save() rewrites it
    atomic_write_text(out / CATALOG_FILE, json.dumps(catalog_info(catalog), indent=2))
    positives.save(out, extra={"fingerprint": key, "inputs": inputs, "options": options})
    return PairsRun(out, positives.stats, up_to_date=False)
