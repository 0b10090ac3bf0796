"""Saving and loading positives: same samples after a round trip, clear errors on bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pairs.pairs_catalogs import random_catalog

from mixtape.catalog import Catalog
from mixtape.errors import MixtapeError
from mixtape.pairs import Positives, build_positives, read_metadata


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return random_catalog(seed=5)


@pytest.mark.parametrize("strategy", ["self", "album", "playlist", "cooc-topk", "mix"])
def test_round_trip_samples_the_same(cat: Catalog, strategy: str, tmp_path: Path) -> None:
    pos = build_positives(cat, strategy, k=4, workers=1, mix="playlist=2,artist=1")
    pos.save(tmp_path / "p", extra={"note": "x"})
    back = Positives.load(tmp_path / "p")
    assert back.strategy == strategy and list(back.track_ids) == list(cat.track_ids)
    assert (back.anchors == pos.anchors).all() and back.params == json.loads(json.dumps(pos.params))
    assert back.stats["anchors"] == len(pos.anchors)
    anchors = np.repeat(pos.anchors, 5)
    a = pos.sample(anchors, np.random.default_rng(7))
    b = back.sample(anchors, np.random.default_rng(7))
    assert (a == b).all()
    assert read_metadata(tmp_path / "p")["note"] == "x"


def test_hops_are_plain_scipy_csr_files(cat: Catalog, tmp_path: Path) -> None:
    import scipy.sparse as sp

    build_positives(cat, "cooc-topk", k=3, workers=1).save(tmp_path)
    m = sp.load_npz(tmp_path / "hop0.npz")
    assert m.shape == (len(cat), len(cat)) and m.format == "csr"
    assert (np.diff(m.indptr) <= 3).all()


def test_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="no positives here"):
        Positives.load(tmp_path)
    (tmp_path / "positives.json").write_text('{"format": "something-else"}')
    with pytest.raises(MixtapeError, match="not a mixtape positives file"):
        Positives.load(tmp_path)
    (tmp_path / "positives.json").write_text('{"format": "mixtape-positives", "version": 99}')
    with pytest.raises(MixtapeError, match="version 99"):
        Positives.load(tmp_path)
    (tmp_path / "positives.json").write_text("{not json")
    with pytest.raises(MixtapeError, match="unreadable"):
        Positives.load(tmp_path)


def test_damaged_files_are_reported(cat: Catalog, tmp_path: Path) -> None:
    build_positives(cat, "artist").save(tmp_path)
    (tmp_path / "hop1.npz").write_bytes(b"garbage")
    with pytest.raises(MixtapeError, match=r"hop1\.npz: changed since it was written; re-run `mixtape pairs`"):
        Positives.load(tmp_path)
    meta = json.loads((tmp_path / "positives.json").read_text())
    del meta["files"]  # a folder written before checksums were recorded: the reader itself finds the damage
    (tmp_path / "positives.json").write_text(json.dumps(meta))
    with pytest.raises(MixtapeError, match="unreadable positives"):
        Positives.load(tmp_path)


def test_a_save_that_dies_leaves_no_metadata(cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pos = build_positives(cat, "artist")
    pos.save(tmp_path)
    import scipy.sparse as sp

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(sp, "save_npz", boom)
    with pytest.raises(OSError):
        pos.save(tmp_path)
    assert not (tmp_path / "positives.json").exists()  # the old complete folder is not mistaken for the new
