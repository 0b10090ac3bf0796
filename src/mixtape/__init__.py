"""mixtape: contrastive pre-training of music audio embeddings from playlists, artists, albums or the track itself.

``mixtape.load_encoder(path)`` gives a trained encoder that embeds waveforms and files
(:class:`mixtape.models.inference.AudioEncoder`); ``mixtape.hear`` is the HEAR 2021 API. Both are
imported on first use, so ``import mixtape`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_encoder"]

if TYPE_CHECKING:
    from mixtape.models.inference import load_encoder


def __getattr__(name: str) -> Any:
    if name == "load_encoder":
        from mixtape.models.inference import load_encoder

        return load_encoder
    raise AttributeError(f"module 'mixtape' has no attribute {name!r}")
