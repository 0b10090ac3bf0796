"""mixtape.search: similar-track search over a user's collection with a trained encoder.

Stage 'search' of the pipeline: ``embed_collection`` (audio or a feature store -> an embeddings
folder, resumable, shardable), ``build_index`` (embeddings -> a FAISS index folder, exact, IVF or
IVF-PQ with exact re-ranking by size, or HNSW; recall@10 measured), ``add_to_index`` (new tracks join an
index without a rebuild), ``SimilarIndex`` (neighbours of a track or a vector, with artist/album
exclusion, a score cut and mutual-proximity re-ranking), ``similar_to_audio`` (query by a file),
``create_app``/``serve`` (the JSON API and the listening page), ``Tagger`` (predicted tags of a probe
trained by ``mixtape.evaluation.tagger.train_tagger``), ``read_track_vectors`` (precomputed vectors of any
model, or an embeddings folder, checked: what ``--embeddings`` reads for evaluation and indexing).
"""

from .app import ServeConfig, create_app, serve
from .embed import EmbedReport, embed_audio_file, embed_collection, merge_embeddings, scan_audio_folder
from .embeddings import Embeddings, EmbeddingsError, TrackMeta, TrackVectors, read_track_vectors
from .index import IndexReport, IndexSettings, SearchIndexError, add_to_index, build_index
from .neighbours import Neighbour, SearchResult, SimilarIndex, TrackInfo, TrackNotIndexedError
from .query import load_query_encoder, similar_to_audio
from .tagger import Tagger, TaggerError

__all__ = [
    "EmbedReport",
    "Embeddings",
    "EmbeddingsError",
    "IndexReport",
    "IndexSettings",
    "Neighbour",
    "SearchIndexError",
    "SearchResult",
    "ServeConfig",
    "SimilarIndex",
    "Tagger",
    "TaggerError",
    "TrackInfo",
    "TrackMeta",
    "TrackNotIndexedError",
    "TrackVectors",
    "add_to_index",
    "build_index",
    "create_app",
    "embed_audio_file",
    "embed_collection",
    "load_query_encoder",
    "merge_embeddings",
    "scan_audio_folder",
    "serve",
    "similar_to_audio",
    "read_track_vectors",
]
