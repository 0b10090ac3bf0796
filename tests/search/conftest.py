"""Fixtures of the search tests: an encoder, the tiny world's embeddings and index, built once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def search_encoder(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised narrow `small` encoder (64-d) exported with the tiny store's mel settings."""
    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("search-encoder") / "small"
    export_safetensors(
        Encoder("small", channels=(8, 16, 32, 64)),
        folder,
        metadata={"mel": tiny_store.mel_config.model_dump(mode="json"), "patch_frames": 128},
    )
    return folder


@pytest.fixture(scope="session")
def tiny_embeddings(tiny_world, tiny_store, search_encoder, tmp_path_factory: pytest.TempPathFactory):
    from mixtape.search import Embeddings, embed_collection

    out = tmp_path_factory.mktemp("search-emb") / "emb"
    embed_collection(search_encoder, out, features=tiny_store.path, tracks=tiny_world.tracks)
    return Embeddings.open(out)


@pytest.fixture(scope="session")
def tiny_index(tiny_embeddings, tmp_path_factory: pytest.TempPathFactory):
    """Exact index of the tiny world with mutual-proximity moments."""
    from mixtape.search import IndexSettings, SimilarIndex, build_index

    out = tmp_path_factory.mktemp("search-index") / "index"
    build_index(tiny_embeddings.path, out, IndexSettings(mutual_proximity=True))
    return SimilarIndex.open(out)
