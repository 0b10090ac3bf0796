"""One call per evaluation task, from files to metrics (and output files): what the CLI and the
experiment runner use. Each scores either an encoder (an export folder, a checkpoint, an
``EncoderBundle`` or a bare module) on a feature store, checked against the store's mel settings, or
precomputed track vectors (``embeddings=``: a mixtape embeddings folder, or vectors of any other model,
read by ``mixtape.search.embeddings.read_track_vectors``), and returns a result whose metrics are a flat dict.
Both paths share everything after "the embeddings of the tracks": which tracks are scored, what is
reported missing, the metrics and the output files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from mixtape.errors import MixtapeError
from mixtape.evaluation.datasets import AlignedTagDataset, TagDataError, TagDataset, align_to_store
from mixtape.evaluation.finetune import FinetuneConfig, finetune
from mixtape.evaluation.probe import ProbeConfig, probe_embeddings, run_probe
from mixtape.evaluation.report import write_similarity_outputs, write_tagging_outputs
from mixtape.evaluation.similarity import (
    SimilarityConfig,
    SimilarityResult,
    build_pool,
    run_similarity,
    score_pool,
)
from mixtape.evaluation.tagging import TaggingResult
from mixtape.fileio import get_logger
from mixtape.models.bundle import EncoderBundle

if TYPE_CHECKING:  # imported where used: `mixtape.search` loads the web server's modules
    from mixtape.search.embeddings import TrackVectors

log = get_logger(__name__)

EncoderLike = EncoderBundle | nn.Module | str | Path


def _one_source(task: str, encoder: Any, features: Any, embeddings: Any) -> TrackVectors | None:
    """The vectors to score when ``embeddings`` is given (read and checked), None for an encoder on a
    store; refuses both at once, or neither."""
    from mixtape.search.embeddings import TrackVectors, read_track_vectors

    if embeddings is not None:
        if encoder is not None or features is not None:
            raise MixtapeError(
                f"{task}: give precomputed embeddings or an encoder with a feature store, not both (the embeddings "
                "are already the encoder's output)"
            )
        vectors = embeddings if isinstance(embeddings, TrackVectors) else read_track_vectors(embeddings)
        log.info("%s of %s", task, vectors.describe())
        return vectors
    if encoder is None or features is None:
        raise MixtapeError(f"{task}: give an encoder and a feature store, or precomputed embeddings")
    return None


def _provenance(vectors: TrackVectors) -> dict[str, Any]:
    """What ``metrics.json`` records of scored vectors (the encoder path records its encoder and store)."""
    return {"embeddings": str(vectors.path), "encoder": vectors.source}


def _aligned(dataset: TagDataset, ids: Sequence[str], where: str, method: str) -> AlignedTagDataset:
    aligned = align_to_store(dataset, ids, where)
    log.info(
        "%s on %s: train %d, validation %d, test %d tracks, %d tags",
        method,
        aligned.name,
        *(len(aligned.splits[s]) for s in ("train", "validation", "test")),
        len(aligned.tags),
    )
    return aligned


def _vectors_match(vectors: TrackVectors, dataset: TagDataset) -> None:
    """Refuse vectors of which no track is in the tag dataset (ids of another vocabulary): said here in
    terms of vectors, where ``align_to_store`` would speak of features to extract."""
    wanted = [t for split in dataset.splits.values() for t in split.track_ids]
    have = set(vectors.track_ids)
    if wanted and not any(t in have for t in wanted):
        sources = ", ".join(dict.fromkeys(s.source for s in dataset.splits.values()))
        raise TagDataError(
            f"{vectors.path}: none of its {len(vectors)} track ids is one of the {len(wanted)} tracks of "
            f"{dataset.name} ({sources}); 0 matched: the vectors name tracks like {vectors.track_ids[0]!r}, the tag "
            f"file like {wanted[0]!r}. Compute the vectors for this dataset's tracks, named by its track ids"
        )


def tagging_task(
    encoder: EncoderLike | None,
    features: str | Path | None,
    dataset: TagDataset,
    method: Literal["probe", "finetune"] = "probe",
    config: ProbeConfig | FinetuneConfig | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    *,
    embeddings: TrackVectors | str | Path | None = None,
) -> TaggingResult:
    """Probe or fine-tune ``encoder`` on ``dataset``'s tracks that have features in ``features``; or, with
    ``embeddings`` instead of an encoder and a store, probe those vectors on the dataset's tracks that
    have one (fine-tuning needs the encoder). Tracks without features or vectors are reported missing."""
    if method not in ("probe", "finetune"):
        raise ValueError(f"unknown tagging method {method!r} (probe or finetune)")
    if method == "finetune" and embeddings is not None:
        raise MixtapeError(
            "finetune trains the encoder itself, so it needs the encoder and a feature store; precomputed "
            "embeddings can be scored with the probe"
        )
    vectors = _one_source(method, encoder, features, embeddings)
    if vectors is not None:
        _vectors_match(vectors, dataset)
        aligned = _aligned(dataset, vectors.track_ids, f"the embeddings {vectors.path}", method)
        split_vectors = {name: vectors.vectors[split.rows] for name, split in aligned.splits.items()}
        result = probe_embeddings(split_vectors, aligned, config if isinstance(config, ProbeConfig) else None)
        provenance = _provenance(vectors)
    else:
        assert encoder is not None and features is not None  # _one_source refuses them missing
        enc = EncoderBundle.of(encoder)
        store, reader = enc.open_store(features)
        aligned = _aligned(dataset, store.track_ids, f"feature store {features}", method)
        if method == "probe":
            result = run_probe(
                enc.encoder, reader, aligned, config if isinstance(config, ProbeConfig) else None, device=device
            )
        else:
            result = finetune(
                enc.encoder, reader, aligned, config if isinstance(config, FinetuneConfig) else None, device=device
            )
        provenance = {"encoder": enc.source, "features": str(features)}
    if out is not None:
        used = (
            config.model_dump(mode="json")
            if config is not None
            else (ProbeConfig() if method == "probe" else FinetuneConfig()).model_dump(mode="json")
        )
        write_tagging_outputs(result, out, {**provenance, "config": used})
    return result


def similarity_task(
    encoder: EncoderLike | None = None,
    features: str | Path | None = None,
    tracks: str | Path | None = None,
    heldout: Sequence[str | Path] = (),
    triplets: str | Path | None = None,
    config: SimilarityConfig | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
    audio_root: str | Path | None = None,
    catalog: Any | None = None,
    *,
    embeddings: TrackVectors | str | Path | None = None,
) -> SimilarityResult:
    """Triplet accuracy, held-out playlist retrieval and hubness of ``encoder`` on the store's tracks, or
    of precomputed ``embeddings`` (instead of an encoder and a store) on the tracks that have a vector.

    The pool is the tracks table's tracks with features or vectors (all of them without a table);
    held-out playlists are read through ``mixtape.catalog.load_catalog`` unless a ``catalog`` is passed.
    """
    vectors = _one_source("similarity", encoder, features, embeddings)
    if catalog is None and tracks is not None:
        from mixtape.catalog.catalog import load_catalog

        catalog = load_catalog(tracks, playlists=(), heldout=list(heldout), audio_root=audio_root)
    elif catalog is None and heldout:
        raise MixtapeError("held-out playlists need the tracks table (--tracks) to match their entries to tracks")
    cfg = config or SimilarityConfig()
    if vectors is not None:
        pool = build_pool(vectors.track_ids, catalog, f"the embeddings {vectors.path}", "vectors")
        result = score_pool(vectors.vectors[pool.store_rows], pool, triplets, cfg)
        provenance = _provenance(vectors)
    else:
        assert encoder is not None and features is not None  # _one_source refuses them missing
        enc = EncoderBundle.of(encoder)
        store, reader = enc.open_store(features)
        result, pool = run_similarity(enc.encoder, reader, store.track_ids, catalog, triplets, cfg, device=device)
        provenance = {"encoder": enc.source, "features": str(features)}
    if out is not None:
        write_similarity_outputs(result, pool.track_ids, out, {**provenance, "config": cfg.model_dump(mode="json")})
    return result
