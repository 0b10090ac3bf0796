"""mixtape: contrastive pre-training of music audio embeddings from playlists, artists, albums or the track itself."""

__version__ = "0.1.0"
