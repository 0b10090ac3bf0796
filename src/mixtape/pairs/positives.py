"""The positives of one strategy: for each anchor track, where its positive comes from.

Every strategy is stored the same way, as a short walk over sparse CSR matrices ("hops"):

- ``self``: no hop (the positive is the anchor; the data loader reads another patch of it);
- ``cooc-topk``, ``track2vec``: one hop, track → its K candidate tracks;
- ``artist``, ``album``, ``playlist``: two hops, track → group (artist, album, playlist) → tracks,
  the last hop never returning the anchor itself;
- ``mix``: a weighted choice among other strategies' positives, per anchor.

Sampling a batch is then a few vectorised index operations, whatever the strategy, and a strategy's
positives save to and load from plain ``.npz`` CSR files plus a JSON metadata file. The metadata
records the checksum of every file it refers to (``files``), and loading refuses a file that changed
since it was written (folders written before checksums were recorded load unchecked).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.errors import MixtapeError
from mixtape.fileio import ARRAY_FILE_ERRORS, atomic_open, atomic_write_text, file_checksum
from mixtape.stagefolder import StageFolder, register_stage_folder

POSITIVES_FOLDER = register_stage_folder(
    StageFolder("positives file", "positives.json", "mixtape-positives", 1, "run `mixtape pairs`")
)
META_FILE = POSITIVES_FOLDER.header_file
STATS_FILE = "stats.json"
ANCHORS_FILE = "anchors.npy"
TRACK_IDS_FILE = "track_ids.json"
_MAX_REDRAWS = 1000


def _without_columns(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with the entries of the columns ``keep`` does not mark removed."""
    m = sp.csr_matrix(matrix)
    kept = np.asarray(keep, dtype=bool)[m.indices]
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[kept]
    indptr = np.zeros(m.shape[0] + 1, dtype=m.indptr.dtype)
    np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=indptr[1:])
    return sp.csr_matrix((m.data[kept], m.indices[kept], indptr), shape=m.shape)


def pick_in_rows(hop: sp.csr_matrix, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random column per requested row (each row must be non-empty)."""
    start = hop.indptr[rows].astype(np.int64)
    count = hop.indptr[rows + 1].astype(np.int64) - start
    offset = np.minimum((rng.random(len(rows)) * count).astype(np.int64), count - 1)
    return hop.indices[start + offset].astype(np.int64)


@dataclass
class Positives:
    """Positives of one strategy over the catalogue's tracks (indices into ``track_ids``)."""

    strategy: str
    track_ids: np.ndarray
    anchors: np.ndarray
    hops: tuple[sp.csr_matrix, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    parts: tuple[Positives, ...] = ()
    weights: np.ndarray | None = None
    _covered: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.anchors = np.asarray(self.anchors, dtype=np.int64)
        n = len(self.track_ids)
        if len(self.anchors) and (self.anchors.min() < 0 or self.anchors.max() >= n):
            raise MixtapeError(f"positives ({self.strategy}): anchor indices outside [0, {n})")
        if self.hops and (self.hops[0].shape[0] != n or self.hops[-1].shape[1] != n):
            raise MixtapeError(
                f"positives ({self.strategy}): hop shapes {[h.shape for h in self.hops]} do not fit {n} tracks"
            )
        if self.parts and (self.weights is None or len(self.weights) != len(self.parts)):
            raise MixtapeError(f"positives ({self.strategy}): {len(self.parts)} parts need as many weights")

    def __len__(self) -> int:
        return len(self.anchors)

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)

    @property
    def covered(self) -> np.ndarray:
        """Boolean mask over tracks: which have a positive (the anchors)."""
        if self._covered is None:
            mask = np.zeros(self.n_tracks, dtype=bool)
            mask[self.anchors] = True
            self._covered = mask
        return self._covered

    def sample(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One positive per anchor (int64); every anchor must be covered (``self.anchors``)."""
        anchors = np.asarray(anchors, dtype=np.int64)
        if len(anchors) and (anchors.min() < 0 or anchors.max() >= self.n_tracks or not self.covered[anchors].all()):
            bad = anchors[(anchors < 0) | (anchors >= self.n_tracks)]
            bad = bad if len(bad) else anchors[~self.covered[anchors]]
            raise MixtapeError(
                f"positives ({self.strategy}): track index {int(bad[0])} has no positive under this strategy"
            )
        if self.parts:
            return self._sample_mix(anchors, rng)
        if not self.hops:
            return anchors.copy()
        current = anchors
        for i, hop in enumerate(self.hops):
            rows = current
            current = pick_in_rows(hop, rows, rng)
            if i == len(self.hops) - 1 and len(self.hops) > 1:
                # "another track of the group": redraw within the same group until it is not the anchor.
                for _ in range(_MAX_REDRAWS):
                    same = np.flatnonzero(current == anchors)
                    if not len(same):
                        break
                    current[same] = pick_in_rows(hop, rows[same], rng)
                else:
                    raise MixtapeError(
                        f"positives ({self.strategy}): a group holds only its anchor (corrupt positives files?)"
                    )
        return current

    def among(self, keep: np.ndarray) -> Positives:
        """These positives restricted to the tracks ``keep`` marks (a boolean mask over ``track_ids``):
        no anchor and no positive outside it. A group (playlist, artist, album) must keep two tracks to
        give a positive; an anchor left with none is dropped. Used when some tracks have no features
        (their audio failed extraction), so training never draws them."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_tracks,):
            raise MixtapeError(f"positives ({self.strategy}): a mask of {keep.shape} for {self.n_tracks} tracks")
        if self.parts:
            parts = tuple(part.among(keep) for part in self.parts)
            anchors = np.unique(np.concatenate([part.anchors for part in parts]))
            return replace(self, anchors=anchors, parts=parts, _covered=None)
        anchors = self.anchors[keep[self.anchors]]
        if not self.hops:
            return replace(self, anchors=anchors, _covered=None)
        last = _without_columns(self.hops[-1], keep)
        if len(self.hops) == 1:
            hops: tuple[sp.csr_matrix, ...] = (last,)
        elif len(self.hops) == 2:
            hops = (_without_columns(self.hops[0], np.diff(last.indptr) >= 2), last)
        else:
            raise MixtapeError(f"positives ({self.strategy}): cannot restrict a walk of {len(self.hops)} hops")
        anchors = anchors[np.diff(hops[0].indptr)[anchors] > 0]
        return replace(self, anchors=anchors, hops=hops, _covered=None)

    def _sample_mix(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Pick a part per anchor, in proportion to the weights of the parts that cover it."""
        assert self.weights is not None
        w = self.weights[:, None] * np.stack([p.covered[anchors] for p in self.parts])
        cum = np.cumsum(w, axis=0)
        u = rng.random(len(anchors)) * cum[-1]
        choice = np.minimum((cum <= u[None, :]).sum(axis=0), len(self.parts) - 1)
        out = np.empty(len(anchors), dtype=np.int64)
        for k, part in enumerate(self.parts):
            sel = np.flatnonzero(choice == k)
            if len(sel):
                out[sel] = part.sample(anchors[sel], rng)
        return out

    # --- files ---------------------------------------------------------------------------------

    def save(self, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the positives into ``folder``; the metadata file is written last, so its presence
        means the folder is complete. ``extra`` goes into the metadata (e.g. input checksums)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / META_FILE).unlink(missing_ok=True)
        with atomic_open(folder / ANCHORS_FILE, "wb") as f:
            np.save(f, self.anchors)
        hop_files = []
        for i, hop in enumerate(self.hops):
            name = f"hop{i}.npz"
            with atomic_open(folder / name, "wb") as f:
                sp.save_npz(f, hop.tocsr(), compressed=False)
            hop_files.append(name)
        part_meta = []
        for i, (part, w) in enumerate(zip(self.parts, self.weights if self.weights is not None else [], strict=True)):
            sub = f"part{i}-{part.strategy}"
            part.save(folder / sub)
            part_meta.append({"folder": sub, "strategy": part.strategy, "weight": float(w)})
        if not self.parts:
            atomic_write_text(folder / TRACK_IDS_FILE, json.dumps(self.track_ids.tolist()))
        atomic_write_text(folder / STATS_FILE, json.dumps(self.stats, indent=2, default=_json_default))
        referred = [
            ANCHORS_FILE,
            *hop_files,
            *([] if self.parts else [TRACK_IDS_FILE]),
            *(f"{p['folder']}/{META_FILE}" for p in part_meta),
        ]
        meta = {
            "strategy": self.strategy,
            "params": self.params,
            "n_tracks": self.n_tracks,
            "n_anchors": len(self.anchors),
            "hops": hop_files,
            "parts": part_meta,
            **(extra or {}),
            "files": {name: file_checksum(folder / name) for name in referred},
        }
        POSITIVES_FOLDER.write_header(folder, meta, default=_json_default)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Positives:
        folder = Path(folder)
        meta = read_metadata(folder)
        changed = changed_files(folder, meta, recursive=False)  # each part checks its own files as it loads
        if changed:
            file, what = changed[0]
            raise MixtapeError(f"{file}: {what}; re-run `mixtape pairs` to rebuild the positives in {folder}")
        problem = _metadata_problem(meta)
        if problem:
            raise MixtapeError(
                f"{folder / META_FILE}: damaged ({problem}); re-run `mixtape pairs` to rebuild the positives "
                f"in {folder}"
            )
        parts = tuple(cls.load(folder / p["folder"]) for p in meta["parts"])
        weights = np.array([p["weight"] for p in meta["parts"]], dtype=np.float64) if parts else None
        if parts:
            track_ids = parts[0].track_ids
        else:
            ids = _read_part(folder / TRACK_IDS_FILE, lambda f: json.loads(f.read_text(encoding="utf-8")))
            if not isinstance(ids, list) or not all(isinstance(t, str) for t in ids):
                raise MixtapeError(f"{folder / TRACK_IDS_FILE}: not a JSON list of track ids; re-run `mixtape pairs`")
            track_ids = np.array(ids, dtype=object)
        anchors = _read_part(
            folder / ANCHORS_FILE, lambda file: _with_handle(file, lambda f: np.load(f, allow_pickle=False))
        )
        if anchors.ndim != 1 or anchors.dtype.kind not in "iu":
            raise MixtapeError(
                f"{folder / ANCHORS_FILE}: expected a 1-D integer array, got {anchors.dtype} "
                f"{list(anchors.shape)}; re-run `mixtape pairs`"
            )
        hops = tuple(
            _read_part(folder / name, lambda file: _with_handle(file, lambda f: sp.load_npz(f).tocsr()))
            for name in meta["hops"]
        )
        stats = (
            _read_part(folder / STATS_FILE, lambda f: json.loads(f.read_text(encoding="utf-8")))
            if (folder / STATS_FILE).exists()
            else {}
        )
        if (
            len(track_ids) != meta["n_tracks"]
            or len(anchors) != meta["n_anchors"]
            or any(list(p.track_ids) != list(track_ids) for p in parts[1:])
        ):
            raise MixtapeError(
                f"{folder}: positives files disagree with {META_FILE} (tracks or anchors count, or the parts' tracks)"
            )
        try:
            positives = cls(meta["strategy"], track_ids, anchors, hops, dict(meta["params"]), stats, parts, weights)
        except MixtapeError as err:
            raise MixtapeError(f"{folder}: {err}; re-run `mixtape pairs`") from None
        problem = _walk_problem(positives)
        if problem:
            raise MixtapeError(f"{folder}: damaged positives ({problem}); re-run `mixtape pairs`")
        return positives


def _read_part(file: Path, read: Callable[[Path], Any]) -> Any:
    """``read(file)``, with any error of a torn or damaged file (numpy, scipy, zip, JSON) as one naming it."""
    try:
        return read(file)
    except ARRAY_FILE_ERRORS + (RecursionError,) as err:
        raise MixtapeError(
            f"{file}: unreadable positives file ({type(err).__name__}: {err}); re-run `mixtape pairs`"
        ) from None


def _with_handle(file: Path, read: Callable[[Any], Any]) -> Any:
    """``read`` on our own open handle of ``file``: numpy and scipy leak theirs when the file is damaged."""
    with open(file, "rb") as f:
        return read(f)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_name(value: Any) -> bool:
    """A plain file or folder name inside the positives folder (no path, not '.' or '..': a part that
    named its own folder would load itself forever)."""
    return isinstance(value, str) and value not in ("", ".", "..") and Path(value).name == value


def _metadata_problem(meta: dict[str, Any]) -> str | None:
    """What in a positives.json does not have the type the loader uses it as (None when all is well)."""
    parts, hops = meta.get("parts"), meta.get("hops")
    if not isinstance(meta.get("strategy"), str) or not isinstance(meta.get("params"), dict):
        return "strategy must be a name and params an object"
    if not _is_count(meta.get("n_tracks")) or not _is_count(meta.get("n_anchors")):
        return f"n_tracks {meta.get('n_tracks')!r} and n_anchors {meta.get('n_anchors')!r} must be counts"
    if not isinstance(hops, list) or not all(_is_name(h) for h in hops):
        return f"hops {hops!r} must be a list of file names"
    if not isinstance(parts, list) or not all(isinstance(p, dict) and _is_name(p.get("folder")) for p in parts):
        return "parts must be a list of objects naming a subfolder each"
    if not all(
        isinstance(p.get("weight"), (int, float)) and not isinstance(p.get("weight"), bool) and p["weight"] >= 0
        for p in parts
    ):
        return "every part needs a non-negative weight"
    return None


def _walk_problem(pos: Positives) -> str | None:
    """Whether sampling can walk the hops from every anchor: indices in range, shapes that chain, and no
    empty row on the way (a damaged hop would otherwise give wrong tracks or an IndexError mid-training)."""
    rows = pos.anchors
    for i, hop in enumerate(pos.hops):
        try:
            hop.check_format(full_check=True)
        except ValueError as err:
            return f"hop {i}: {err}"
        if i and pos.hops[i - 1].shape[1] != hop.shape[0]:
            return f"hop {i - 1} leads to {pos.hops[i - 1].shape[1]} rows, hop {i} has {hop.shape[0]}"
        if (np.diff(hop.indptr)[rows] == 0).any():
            return f"hop {i} has an empty row that sampling must walk through"
        rows = np.unique(hop[rows].indices)
    if len(pos.hops) > 1 and len(pos.anchors):
        # the last hop must offer each anchor another track than itself in every group it can reach
        first, last = pos.hops[0][pos.anchors], pos.hops[-1]
        groups = first.indices
        owners = np.repeat(pos.anchors, np.diff(first.indptr))
        sizes = np.diff(last.indptr)[groups]
        alone = (sizes == 1) & (last.indices[last.indptr[groups]] == owners)
        if len(pos.hops) == 2 and alone.any():
            return f"track {int(owners[alone][0])} reaches a group that holds only itself"
    return None


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """The metadata of a saved positives folder; a clear error when it is missing or foreign."""
    return POSITIVES_FOLDER.read_header(folder, hint=f"no positives here in {folder}; run `mixtape pairs`")


def changed_files(folder: str | Path, meta: dict[str, Any], recursive: bool = True) -> list[tuple[Path, str]]:
    """The files the metadata refers to that are missing or no longer have their recorded checksum,
    each with what is wrong in words (a mixture's parts too, when ``recursive``); empty for a folder
    written before checksums were recorded."""
    folder = Path(folder)
    recorded = meta.get("files")
    out: list[tuple[Path, str]] = []
    if recursive:
        parts = meta.get("parts")
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict) or not part.get("folder"):
                continue  # a malformed entry is the loader's to report
            sub = folder / str(part["folder"])
            if folder.resolve() not in sub.resolve().parents:
                continue  # parts live in subfolders; anything else is malformed (and could loop)
            try:
                out += changed_files(sub, read_metadata(sub))
            except MixtapeError as err:
                out.append((sub / META_FILE, f"unreadable ({err})"))
    if not isinstance(recorded, dict):
        return out
    for name, checksum in recorded.items():
        path = folder / str(name)
        try:
            if file_checksum(path) != checksum:
                out.append((path, "changed since it was written"))
        except FileNotFoundError:
            out.append((path, "missing (it was written with the positives)"))
        except OSError as err:
            out.append((path, f"unreadable ({err.strerror or err})"))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
