"""What each strategy pairs an anchor with, who it leaves out and why, and its statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from pairs.pairs_catalogs import playlists_matrix, random_catalog, write_world_json

from mixtape.catalog import Catalog, load_catalog
from mixtape.errors import MixtapeError
from mixtape.pairs import STRATEGIES, build_positives, format_stats, parse_mix, strategy_params

FAST = {"k": 3, "workers": 1, "dim": 8, "epochs": 3}  # track2vec kept small


def cooccur(cat: Catalog) -> np.ndarray:
    x = (cat.playlists > 0).astype(np.int64)
    return (x.T @ x).toarray() > 0


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return random_catalog(seed=0)


@pytest.fixture(scope="module")
def world_file(cat: Catalog, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_world_json(cat.track_ids, tmp_path_factory.mktemp("world") / "world.json"))


def latent(world_file: str, cat: Catalog) -> tuple[np.ndarray, list[set[str]]]:
    rows = {t["track_id"]: t for t in json.loads(Path(world_file).read_text())["tracks"]}
    return np.array([rows[str(t)]["genre"] for t in cat.track_ids]), [set(rows[str(t)]["moods"]) for t in cat.track_ids]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_positives_are_valid_and_never_held_out(cat: Catalog, strategy: str, world_file: str) -> None:
    pos = build_positives(cat, strategy, mix="playlist=1,artist=1,self=1", world=world_file, **FAST)
    assert len(pos.anchors) and not cat.heldout_track_mask[pos.anchors].any()
    rng = np.random.default_rng(1)
    anchors = np.repeat(pos.anchors, 20)
    got = pos.sample(anchors, rng)
    assert got.dtype == np.int64 and not cat.heldout_track_mask[got].any()
    co = cooccur(cat)
    if strategy == "self":
        assert (got == anchors).all()
    elif strategy != "mix":
        assert (got != anchors).all()
    if strategy == "artist":
        assert (cat.artist[got] == cat.artist[anchors]).all()
    if strategy == "album":
        assert (cat.album[got] == cat.album[anchors]).all()
    if strategy in ("playlist", "cooc-topk"):
        assert co[anchors, got].all()
    if strategy == "theme":
        genre, moods = latent(world_file, cat)
        assert (genre[got] == genre[anchors]).all()
        assert all(moods[a] & moods[p] for a, p in zip(anchors, got, strict=True))


def test_theme_covers_every_track_with_a_theme_mate(cat: Catalog, world_file: str) -> None:
    genre, moods = latent(world_file, cat)
    pos = build_positives(cat, "theme", world=world_file)
    ok = cat.trainable
    mates = np.array(
        [
            any(j != i and ok[j] and genre[j] == genre[i] and moods[i] & moods[j] for j in range(len(cat)))
            for i in range(len(cat))
        ]
    )
    assert set(pos.anchors.tolist()) == set(np.flatnonzero(ok & mates).tolist())
    st = pos.stats
    assert st["anchors"] + sum(st["no_positive"].values()) == len(cat)
    assert pos.params == {"world": world_file}


def test_theme_needs_a_readable_world(cat: Catalog, tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="needs the world"):
        build_positives(cat, "theme")
    with pytest.raises(MixtapeError, match="not found"):
        build_positives(cat, "theme", world=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text('{"tracks": [{"id": 1}]}')
    with pytest.raises(MixtapeError, match="not a mixtape world.json"):
        build_positives(cat, "theme", world=str(tmp_path / "bad.json"))


def test_coverage_reasons(cat: Catalog) -> None:
    art = build_positives(cat, "artist").stats
    pl = build_positives(cat, "playlist").stats
    n_held = int(cat.heldout_track_mask.sum())
    for st in (art, pl):
        assert st["anchors"] + sum(st["no_positive"].values()) == len(cat)
        assert st["no_positive"]["held out for evaluation"] == n_held
    assert art["no_positive"].get("only track of its artist", 0) > 0
    assert pl["no_positive"]["in no training playlist"] >= 1


def test_playlist_strategy_picks_a_playlist_then_a_track() -> None:
    # anchor 0 is in {0, 1} and {0, 2, 3, 4}: P(1) = 1/2, P(2) = P(3) = P(4) = 1/6
    cat = Catalog.from_arrays([f"t{i}" for i in range(5)], playlists_matrix([[0, 1], [0, 2, 3, 4]], 5))
    pos = build_positives(cat, "playlist")
    got = pos.sample(np.zeros(30000, np.int64), np.random.default_rng(0))
    freq = np.bincount(got, minlength=5) / len(got)
    assert freq[0] == 0 and abs(freq[1] - 0.5) < 0.02 and np.allclose(freq[2:], 1 / 6, atol=0.02)


def test_cooc_topk_keeps_the_most_co_occurring() -> None:
    lists = [[0, 1, 2], [0, 1], [0, 1, 3], [0, 2], [0, 4]]  # with 0: 1 ×3, 2 ×2, 3 and 4 ×1
    cat = Catalog.from_arrays([f"t{i}" for i in range(5)], playlists_matrix(lists, 5))
    pos = build_positives(cat, "cooc-topk", k=2)
    assert set(pos.sample(np.zeros(500, np.int64), np.random.default_rng(0))) == {1, 2}
    assert pos.stats["positives_per_anchor"]["max"] == 2 and pos.params["k"] == 2 and pos.params["norm"] == "count"


def test_same_artist_share_separates_playlist_from_artist_pairs(cat: Catalog) -> None:
    assert build_positives(cat, "artist").stats["same_artist_share"] == 1.0
    assert build_positives(cat, "playlist").stats["same_artist_share"] < 0.5


def test_mix_uses_the_parts_in_proportion() -> None:
    cat = random_catalog(seed=1)
    pos = build_positives(cat, "mix", mix="playlist=3,self=1")
    both = pos.anchors[pos.parts[0].covered[pos.anchors]]
    anchors = np.repeat(both, 200)
    got = pos.sample(anchors, np.random.default_rng(0))
    assert abs((got == anchors).mean() - 0.25) < 0.02
    only_self = pos.anchors[~pos.parts[0].covered[pos.anchors]]
    assert len(only_self) and (pos.sample(only_self, np.random.default_rng(0)) == only_self).all()
    assert set(pos.stats["parts"]) == {"playlist", "self"}
    assert "part playlist" in format_stats(pos.stats)


def test_track2vec_is_deterministic_and_finds_the_community() -> None:
    cat = random_catalog(seed=2, n_tracks=60, n_playlists=120, heldout_share=0.0)
    a = build_positives(cat, "track2vec", k=5, dim=16, epochs=10, workers=1, seed=3)
    b = build_positives(cat, "track2vec", k=5, dim=16, epochs=10, workers=1, seed=3)
    assert (a.hops[0].indices == b.hops[0].indices).all()
    anchors = np.repeat(a.anchors, 10)
    got = a.sample(anchors, np.random.default_rng(0))
    community = np.arange(60) >= 30
    assert (community[got] == community[anchors]).mean() > 0.8  # playlists never cross communities
    assert a.stats["training"]["whole_playlist"] is True


def test_track2vec_uses_entries_without_audio_as_context() -> None:
    # t0 and t1 never share a playlist, but both always sit with the same audio-less entry "x".
    base = [[0, 2], [1, 3], [2, 3], [4, 5]]
    x = playlists_matrix(base * 10, 6)
    ctx = sp.csr_matrix(
        (np.full(20, 3), (np.r_[np.arange(0, 40, 4), np.arange(1, 40, 4)], np.zeros(20, int))), shape=(40, 1)
    )
    cat = Catalog.from_arrays([f"t{i}" for i in range(6)], x, context=ctx, context_ids=["x"])
    pos = build_positives(cat, "track2vec", k=5, dim=8, epochs=2, workers=1)
    assert pos.hops[0].shape == (6, 6)  # neighbours are tracks with audio only
    assert pos.stats["training"]["vocabulary"] == 7


def test_track2vec_narrows_the_window_past_the_budget() -> None:
    cat = random_catalog(seed=3, heldout_share=0.0)
    pos = build_positives(cat, "track2vec", k=3, dim=8, epochs=2, workers=1, pair_budget=200)
    t = pos.stats["training"]
    assert t["shuffled"] and t["window_used"] < 8 and len(pos.anchors) > 0


def test_errors(cat: Catalog) -> None:
    with pytest.raises(MixtapeError, match="unknown pair strategy 'genre'"):
        build_positives(cat, "genre")
    with pytest.raises(MixtapeError, match=r"unknown pair-strategy parameter\(s\) \['kk'\]"):
        build_positives(cat, "cooc-topk", kk=3)
    with pytest.raises(
        MixtapeError, match=r"strategy cooc-topk: norm: Input should be 'count', 'pmi' or 'jaccard' \(got 'tf-idf'\)"
    ):
        build_positives(cat, "cooc-topk", norm="tf-idf")
    with pytest.raises(MixtapeError, match="has no positive"):
        pos = build_positives(cat, "artist")
        pos.sample(np.flatnonzero(~pos.covered)[:1], np.random.default_rng(0))
    for spec, msg in (
        ("playlist=x", "not a number"),
        ("genre=1", "unknown strategy"),
        ("self=-1", "positive number"),
        ("", "no strategies"),
    ):
        with pytest.raises(MixtapeError, match=msg):
            parse_mix(spec)


def test_params_of_other_strategies_are_ignored_and_recorded_ones_complete(cat: Catalog) -> None:
    pos = build_positives(cat, "artist", k=4, norm="pmi")
    assert pos.params == {}
    assert strategy_params("cooc-topk") == {"k": 10, "norm": "count", "min_count": 1, "workers": 2}
    assert build_positives(cat, "cooc-topk", k=4, workers=1).stats["params"]["k"] == 4


def test_nothing_held_out_feeds_any_strategy(tmp_path: Path) -> None:
    """End to end from files: pairs seen only in held-out playlists, and held-out tracks, never appear."""
    n = 12
    (tmp_path / "tracks.csv").write_text(
        "track_id,path,artist_id\n" + "".join(f"t{i},t{i}.wav,a{i // 2}\n" for i in range(n))
    )
    train = {
        "playlists": [
            {"pid": p, "tracks": [{"track_uri": f"t{t}", "pos": j} for j, t in enumerate(tr)]}
            for p, tr in enumerate([[0, 1, 2, 9], [2, 3, 4], [4, 5, 0, 9], [6, 7, 8]])
        ]
    }
    held = {
        "playlists": [
            {"pid": 100 + p, "tracks": [{"track_uri": f"t{t}", "pos": j} for j, t in enumerate(tr)]}
            for p, tr in enumerate([[0, 6, 10, 11], [3, 7, 11]])
        ]
    }
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "held.json").write_text(json.dumps(held))
    (tmp_path / "test.tsv").write_text("track_id\nt9\nt10\n")
    cat = load_catalog(
        tmp_path / "tracks.csv", [tmp_path / "train.json"], [tmp_path / "held.json"], tmp_path / "test.tsv"
    )
    heldout_only = {(0, 6), (6, 0), (3, 7), (7, 3), (0, 11), (11, 0)}
    world = str(write_world_json(cat.track_ids, tmp_path / "world.json", n_genres=1, n_moods=1))
    for strategy in STRATEGIES:
        pos = build_positives(cat, strategy, mix="playlist=1,cooc-topk=1,track2vec=1", world=world, **FAST)
        anchors = np.repeat(pos.anchors, 50)
        got = pos.sample(anchors, np.random.default_rng(0))
        used = set(anchors.tolist()) | set(got.tolist())
        assert not used & {9, 10}, strategy  # held-out tracks: neither anchor nor positive
        if strategy in ("playlist", "cooc-topk", "mix"):
            assert not set(zip(anchors.tolist(), got.tolist(), strict=True)) & heldout_only, strategy
        if strategy in ("playlist", "cooc-topk", "track2vec"):
            assert 11 not in used, strategy  # in held-out playlists only
