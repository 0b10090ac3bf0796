"""The catalogue and the strategies on the embedded tiny world, as `mixtape demo` runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixtape.catalog import load_catalog
from mixtape.cli import main
from mixtape.pairs import PairBatchSampler, Positives, build_positives


def test_tiny_world_catalogue_and_strategies(tiny_world, tmp_path: Path) -> None:
    test_split = tiny_world.splits / "autotagging_genre-test.tsv"
    cat = load_catalog(tiny_world.tracks, [tiny_world.playlists], [tiny_world.heldout], holdout_tracks=test_split)
    assert len(cat) > 0 and cat.n_playlists > 0 and cat.heldout_playlists.shape[0] > 0
    assert cat.report.get("playlist entries matching no track") == 0  # every world URI names a track
    assert cat.heldout_track_mask.any()
    assert not set(cat.playlist_ids) & set(cat.heldout_playlist_ids)
    assert (cat.artist >= 0).all() and (cat.album >= 0).all()
    held = np.flatnonzero(cat.heldout_track_mask)
    assert cat.playlists[:, held].nnz == 0

    playlist = build_positives(cat, "playlist")
    artist = build_positives(cat, "artist")
    # the world's playlists are themed across artists: playlist pairs share the artist far less often
    assert playlist.stats["same_artist_share"] < artist.stats["same_artist_share"] == 1.0
    for pos in (playlist, artist, build_positives(cat, "cooc-topk", k=5, workers=1)):
        assert not cat.heldout_track_mask[pos.anchors].any()
        batch = min(16, len(pos.anchors) // 2)
        for a, p in PairBatchSampler(pos, batch, seed=0):
            assert not cat.heldout_track_mask[p].any()
            assert len(np.unique(np.concatenate([a, p]))) == 2 * batch


def test_tiny_world_from_the_command_line(tiny_world, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    args = [
        "pairs",
        "--tracks",
        str(tiny_world.tracks),
        "--playlists",
        str(tiny_world.playlists),
        "--heldout",
        str(tiny_world.heldout),
        "--strategy",
        "track2vec",
        "--k",
        "5",
        "--dim",
        "16",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    pos = Positives.load(out)
    assert pos.strategy == "track2vec" and len(pos.anchors) > 0


def test_positives_among_a_subset_never_draw_a_track_outside_it(tiny_world) -> None:
    """Tracks whose audio failed extraction are left out of training: restricted positives never give
    them as anchor or positive, a group keeps an anchor only with another kept track, and a mix restricts
    each part."""
    cat = load_catalog(tiny_world.tracks, [tiny_world.playlists], [tiny_world.heldout])
    rng = np.random.default_rng(0)
    keep = rng.random(len(cat)) > 0.3
    for name, params in (
        ("self", {}),
        ("artist", {}),
        ("playlist", {}),
        ("cooc-topk", {"k": 5}),
        ("mix", {"mix": {"artist": 1.0, "playlist": 1.0}}),
    ):
        full = build_positives(cat, name, **params)
        kept = full.among(keep)
        assert set(kept.anchors) <= set(full.anchors) and keep[kept.anchors].all(), name
        assert 0 < len(kept.anchors) < len(full.anchors), name
        drawn = np.concatenate([kept.sample(kept.anchors, np.random.default_rng(s)) for s in range(20)])
        assert keep[drawn].all(), name
    artist = build_positives(cat, "artist")
    lonely = np.ones(len(cat), dtype=bool)
    members = np.flatnonzero(cat.artist == cat.artist[artist.anchors[0]])
    lonely[members[1:]] = False  # the artist keeps one track: it can no longer be an anchor
    assert artist.anchors[0] == members[0] and members[0] not in artist.among(lonely).anchors
