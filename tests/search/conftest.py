"""Fixtures of the search tests: an encoder, the tiny world's embeddings and index, built once."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def search_encoder(tiny_encoder: Path) -> Path:
    """The encoder the search tests embed with: the session's `tiny_encoder` (tests/conftest.py)."""
    return tiny_encoder


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
