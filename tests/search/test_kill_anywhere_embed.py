"""kill -9 `mixtape embed --audio` at random points of its work and re-run it.

The embeddings equal an uninterrupted run's.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from killing import KillSchedule, Run, leftover_temps

from mixtape.audio import FeatureStore
from mixtape.search import Embeddings
from mixtape.search.embed import FEATURES_DIR, PARTS_DIR
from mixtape.search.embeddings import EmbeddingsError

#: The tiny world's files listed 3 times under other ids (360 tracks) and embedded 40 at a time, so a
#: kill can fall while features are extracted (committed every 256 tracks), between saved chunks, or
#: while the folder is written.
REPEAT = 3
CHUNK = 40
MARKER = r"features: \d+ tracks"  # the first step: extracting the features into OUT/features
END_MARKER = r"embedded \d+ tracks into"


@pytest.fixture(scope="module")
def collection(tiny_world, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with open(tiny_world.tracks, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    table = tmp_path_factory.mktemp("kill-embed") / "tracks.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["track_id", "path", "artist_id", "album_id"])
        for k in range(REPEAT):
            w.writerows(
                [f"{r['track_id']}-{k}", str(Path(tiny_world.tracks).parent / r["path"]), r["artist_id"], r["album_id"]]
                for r in rows
            )
    return table


def _args(encoder: Path, table: Path, out: Path) -> list[str | Path]:
    return [
        "embed",
        "--checkpoint",
        encoder,
        "--audio",
        table,
        "--out",
        out,
        "--workers",
        "2",
        "--chunk-tracks",
        str(CHUNK),
    ]


@pytest.fixture(scope="module")
def reference(
    search_encoder: Path, collection: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Embeddings, Run]:
    folder = tmp_path_factory.mktemp("kill-embed-reference")
    run = KillSchedule(0, MARKER, END_MARKER).reference(
        _args(search_encoder, collection, folder / "emb"), folder / "run.log"
    )
    return Embeddings.open(folder / "emb"), run


def _vectors_by_id(emb: Embeddings) -> dict[str, np.ndarray]:
    return dict(zip(emb.tracks.track_ids, np.asarray(emb.vectors), strict=True))


@pytest.mark.slow
def test_kill_anywhere_embed(
    search_encoder: Path, collection: Path, reference: tuple[Embeddings, Run], tmp_path: Path
) -> None:
    ref, ref_run = reference
    want = _vectors_by_id(ref)
    ref_store = FeatureStore.open(ref.path / FEATURES_DIR)
    out = tmp_path / "emb"
    schedule = KillSchedule(4004, MARKER, END_MARKER)

    def after_kill(run: Run) -> None:
        # The feature store shows only complete tracks, equal to the uninterrupted run's.
        if (out / FEATURES_DIR / "store.json").exists():
            store = FeatureStore.open(out / FEATURES_DIR)
            for i, tid in enumerate(store.track_ids):
                assert np.array_equal(store.frames(i), ref_store.frames(ref_store.index(tid))), (
                    f"{schedule}: features of {tid} differ"
                )
        # Every saved chunk is whole and holds the vectors the uninterrupted run computed.
        for chunk in sorted((out / PARTS_DIR).glob("chunk-*.npz")):
            with np.load(chunk, allow_pickle=False) as z:
                for tid, vec in zip(z["track_ids"].tolist(), z["vectors"], strict=True):
                    np.testing.assert_allclose(
                        vec, want[tid], atol=1e-5, rtol=0, err_msg=f"{schedule}: {chunk.name}: {tid}"
                    )
        # The folder either says it is incomplete or opens whole and equal.
        try:
            emb = Embeddings.open(out)
        except EmbeddingsError as err:
            assert "incomplete" in str(err) or "not found" in str(err), f"{schedule}: {err}"
            return
        assert emb.tracks.track_ids == ref.tracks.track_ids, (
            f"{schedule}: a killed run left an embeddings folder of other tracks"
        )

    assert ref_run.work_seconds is not None
    schedule.run(_args(search_encoder, collection, out), tmp_path / "logs", ref_run.work_seconds, after_kill)
    print(schedule)
    schedule.assert_interrupted()

    emb = Embeddings.open(out)
    assert emb.tracks.track_ids == ref.tracks.track_ids and len(emb) == REPEAT * 120, (
        f"{schedule}: other tracks than the uninterrupted run"
    )
    assert emb.tracks.checksums == ref.tracks.checksums and emb.tracks.artists == ref.tracks.artists, str(schedule)
    np.testing.assert_allclose(
        np.asarray(emb.vectors), np.asarray(ref.vectors), atol=1e-5, rtol=0, err_msg=str(schedule)
    )
    assert emb.failures == ref.failures == [], str(schedule)
    assert not (out / PARTS_DIR).exists(), f"{schedule}: the saved chunks were not cleaned up"
    assert leftover_temps(out) == [], f"{schedule}: {leftover_temps(out)}"
