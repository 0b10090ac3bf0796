"""Queries by audio: embed a file with the collection's own encoder, then search the index with it.

A query embedded by another model than the collection's lands in another space and its
"neighbours" mean nothing, so the encoder is checked against the fingerprint the index recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixtape.models.bundle import EncoderBundle

from .embed import embed_audio_file
from .embeddings import outside_model
from .index import SearchIndexError, unit_rows
from .neighbours import SearchResult, SimilarIndex


def load_query_encoder(index: SimilarIndex, override: str | Path | None = None) -> EncoderBundle:
    """The encoder that made the index's embeddings (its recorded source, or ``override``), verified by fingerprint."""
    info = index.encoder_info
    why = outside_model(info)
    if why:
        raise SearchIndexError(
            f"index {index.path} holds {why}, not a mixtape encoder's: an audio file cannot be embedded into their "
            "space; search by a collection track (--track) instead"
        )
    source = override or info.get("source")
    if not source:
        raise SearchIndexError(f"index {index.path} does not record its encoder; pass --checkpoint to query by audio")
    if override is None and not Path(source).exists():
        raise SearchIndexError(
            f"the encoder the index {index.path} was built with is no longer at {source}; pass --checkpoint with the "
            "same model to query by audio"
        )
    enc = EncoderBundle.load(source)
    fp = enc.fingerprint()
    if info.get("fingerprint") and fp != info["fingerprint"]:
        raise SearchIndexError(
            f"encoder {source} has other weights than the one the index {index.path} was built with "
            f"({info.get('source')}); "
            "a query embedded by another model cannot be compared with the collection. Use the same model, or "
            "re-embed the collection"
        )
    return enc


def similar_to_audio(
    index: SimilarIndex,
    encoder: Any,
    path: str | Path,
    k: int = 10,
    max_seconds: float | None = None,
    name: str | None = None,
    tagger: Any | None = None,
    **options: Any,
) -> SearchResult:
    """Neighbours of an audio file (decoded, cut to ``max_seconds``, embedded like a collection track)."""
    q = embed_audio_file(encoder, path, max_seconds=max_seconds)
    neighbours = index.search_vector(q.vector, k, **options)
    query: dict[str, Any] = {
        "name": name or Path(path).name,
        "duration": round(q.duration, 3),
        "seconds_used": round(q.seconds_used, 3),
    }
    if tagger is not None:
        query["tags"] = tagger.top(unit_rows(q.vector[None]))
    return SearchResult(query, neighbours, {"k": k, **options})
