"""One call per evaluation task, from files to metrics (and output files): what the CLI and the
experiment runner use. Each takes the encoder as an export folder, a checkpoint, an ``EncoderBundle``
or a bare module, checks it against the feature store's mel settings, and returns a result whose
metrics are a flat dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn

from mixtape.evaluation.datasets import TagDataset, align_to_store
from mixtape.evaluation.finetune import FinetuneConfig, finetune
from mixtape.evaluation.probe import ProbeConfig, run_probe
from mixtape.evaluation.report import write_similarity_outputs, write_tagging_outputs
from mixtape.evaluation.similarity import SimilarityConfig, SimilarityResult, run_similarity
from mixtape.evaluation.tagging import TaggingResult
from mixtape.fileio import get_logger
from mixtape.models.bundle import EncoderBundle

log = get_logger(__name__)

EncoderLike = EncoderBundle | nn.Module | str | Path


def tagging_task(
    encoder: EncoderLike,
    features: str | Path,
    dataset: TagDataset,
    method: Literal["probe", "finetune"] = "probe",
    config: ProbeConfig | FinetuneConfig | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
) -> TaggingResult:
    """Probe or fine-tune ``encoder`` on ``dataset``'s tracks that have features in ``features``."""
    enc = EncoderBundle.of(encoder)
    store, reader = enc.open_store(features)
    aligned = align_to_store(dataset, store.track_ids, f"feature store {features}")
    log.info(
        "%s on %s: train %d, validation %d, test %d tracks, %d tags",
        method,
        aligned.name,
        *(len(aligned.splits[s]) for s in ("train", "validation", "test")),
        len(aligned.tags),
    )
    if method == "probe":
        result = run_probe(
            enc.encoder, reader, aligned, config if isinstance(config, ProbeConfig) else None, device=device
        )
    elif method == "finetune":
        result = finetune(
            enc.encoder, reader, aligned, config if isinstance(config, FinetuneConfig) else None, device=device
        )
    else:
        raise ValueError(f"unknown tagging method {method!r} (probe or finetune)")
    if out is not None:
        used = (
            config.model_dump(mode="json")
            if config is not None
            else (ProbeConfig() if method == "probe" else FinetuneConfig()).model_dump(mode="json")
        )
        write_tagging_outputs(result, out, {"encoder": enc.source, "features": str(features), "config": used})
    return result


def similarity_task(
    encoder: EncoderLike,
    features: str | Path,
    tracks: str | Path | None = None,
    heldout: Sequence[str | Path] = (),
    triplets: str | Path | None = None,
    config: SimilarityConfig | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    audio_root: str | Path | None = None,
    catalog: Any | None = None,
) -> SimilarityResult:
    """Triplet accuracy, held-out playlist retrieval and hubness of ``encoder`` on the store's tracks.

    The pool is the tracks table's tracks with features (all store tracks without a table); held-out
    playlists are read through ``mixtape.catalog.load_catalog`` unless a ``catalog`` is passed.
    """
    from mixtape.errors import MixtapeError

    enc = EncoderBundle.of(encoder)
    store, reader = enc.open_store(features)
    if catalog is None and tracks is not None:
        from mixtape.catalog.catalog import load_catalog

        catalog = load_catalog(tracks, playlists=(), heldout=list(heldout), audio_root=audio_root)
    elif catalog is None and heldout:
        raise MixtapeError("held-out playlists need the tracks table (--tracks) to match their entries to tracks")
    cfg = config or SimilarityConfig()
    result, pool = run_similarity(enc.encoder, reader, store.track_ids, catalog, triplets, cfg, device=device)
    if out is not None:
        write_similarity_outputs(
            result,
            pool.track_ids,
            out,
            {"encoder": enc.source, "features": str(features), "config": cfg.model_dump(mode="json")},
        )
    return result
