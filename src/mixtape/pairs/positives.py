"""The positives of one strategy: for each anchor track, where its positive comes from.

Every strategy is stored the same way, as a short walk over sparse CSR matrices ("hops"):

- ``self``: no hop (the positive is the anchor; the data loader reads another patch of it);
- ``cooc-topk``, ``track2vec``: one hop, track → its K candidate tracks;
- ``artist``, ``album``, ``playlist``: two hops, track → group (artist, album, playlist) → tracks,
  the last hop never returning the anchor itself;
- ``mix``: a weighted choice among other strategies' positives, per anchor.

Sampling a batch is then a few vectorised index operations, whatever the strategy, and a strategy's
positives save to and load from plain ``.npz`` CSR files plus a JSON metadata file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from mixtape.errors import MixtapeError
from mixtape.io import atomic_open, atomic_write_text, read_json_header

FORMAT = "mixtape-positives"
FORMAT_VERSION = 1
META_FILE = "positives.json"
STATS_FILE = "stats.json"
_MAX_REDRAWS = 1000


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
            raise MixtapeError(f"positives ({self.strategy}): hop shapes {[h.shape for h in self.hops]} do not fit {n} tracks")
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
            raise MixtapeError(f"positives ({self.strategy}): track index {int(bad[0])} has no positive under this strategy")
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
                    raise MixtapeError(f"positives ({self.strategy}): a group holds only its anchor (corrupt positives files?)")
        return current

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
        with atomic_open(folder / "anchors.npy", "wb") as f:
            np.save(f, self.anchors)
        hop_files = []
        for i, hop in enumerate(self.hops):
            name = f"hop{i}.npz"
            with atomic_open(folder / name, "wb") as f:
                sp.save_npz(f, hop.tocsr(), compressed=False)
            hop_files.append(name)
        part_meta = []
        for i, (part, w) in enumerate(zip(self.parts, self.weights if self.weights is not None else [])):
            sub = f"part{i}-{part.strategy}"
            part.save(folder / sub)
            part_meta.append({"folder": sub, "strategy": part.strategy, "weight": float(w)})
        if not self.parts:
            atomic_write_text(folder / "track_ids.json", json.dumps(self.track_ids.tolist()))
        atomic_write_text(folder / STATS_FILE, json.dumps(self.stats, indent=2, default=_json_default))
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "strategy": self.strategy,
            "params": self.params,
            "n_tracks": self.n_tracks,
            "n_anchors": len(self.anchors),
            "hops": hop_files,
            "parts": part_meta,
            **(extra or {}),
        }
        atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2, default=_json_default))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Positives:
        folder = Path(folder)
        meta = read_metadata(folder)
        try:
            parts = tuple(cls.load(folder / p["folder"]) for p in meta["parts"])
            weights = np.array([p["weight"] for p in meta["parts"]], dtype=np.float64) if parts else None
            if parts:
                track_ids = parts[0].track_ids
            else:
                track_ids = np.array(json.loads((folder / "track_ids.json").read_text(encoding="utf-8")), dtype=object)
            anchors = np.load(folder / "anchors.npy")
            hops = tuple(sp.load_npz(folder / name).tocsr() for name in meta["hops"])
            stats = json.loads((folder / STATS_FILE).read_text(encoding="utf-8")) if (folder / STATS_FILE).exists() else {}
        except (OSError, ValueError, KeyError) as err:
            raise MixtapeError(f"{folder}: unreadable positives ({type(err).__name__}: {err})") from None
        if len(track_ids) != meta["n_tracks"] or len(anchors) != meta["n_anchors"]:
            raise MixtapeError(f"{folder}: positives files disagree with {META_FILE} (tracks or anchors count)")
        return cls(meta["strategy"], track_ids, anchors, hops, dict(meta["params"]), stats, parts, weights)


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """The metadata of a saved positives folder; a clear error when it is missing or foreign."""
    return read_json_header(
        Path(folder) / META_FILE,
        kind="positives file",
        format_name=FORMAT,
        version=FORMAT_VERSION,
        missing_hint=f"no positives here in {folder}; run `mixtape pairs`",
    )


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
