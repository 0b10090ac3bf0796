"""`mixtape embed`: vectors equal the shared embedding function, bad files are listed, runs resume,
unchanged tracks are reused, shards merge back into the whole, a query file embeds like a track."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mixtape.audio import PatchReader
from mixtape.catalog import read_tracks
from mixtape.errors import MixtapeError
from mixtape.models import embed_tracks
from mixtape.models.bundle import EncoderBundle
from mixtape.search import Embeddings, EmbeddingsError, embed_audio_file, embed_collection, merge_embeddings


def _by_id(emb: Embeddings) -> dict[str, np.ndarray]:
    return {t: np.asarray(emb.vectors[i]) for i, t in enumerate(emb.tracks.track_ids)}


def _write_tracks(path: Path, records: list, root: Path) -> Path:
    lines = ["track_id,path,artist_id,album_id"] + [
        f"{r.track_id},{r.path},{r.artist_id},{r.album_id}" for r in records
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_vectors_are_embed_tracks_of_the_store(
    tiny_world, tiny_store, search_encoder: Path, tiny_embeddings: Embeddings
) -> None:
    emb = tiny_embeddings
    assert emb.tracks.track_ids == tiny_store.track_ids
    want = embed_tracks(EncoderBundle.load(search_encoder).encoder, PatchReader(tiny_store), np.arange(len(tiny_store)))
    assert emb.vectors.dtype == np.float32 and np.allclose(emb.vectors, want, atol=1e-5)
    table = {r.track_id: r for r in read_tracks(tiny_world.tracks).records}
    assert [table[t].artist_id for t in emb.tracks.track_ids] == emb.tracks.artists
    assert [table[t].album_id for t in emb.tracks.track_ids] == emb.tracks.albums
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in emb.tracks.paths)
    assert emb.tracks.checksums == tiny_store.checksums
    enc = emb.encoder_info
    assert enc["fingerprint"] and enc["source"] == str(search_encoder) and emb.meta["store"]["fingerprint"]
    reopened = Embeddings.open(emb.path)
    assert reopened.checksum == emb.checksum


def test_audio_folder_with_bad_files(tiny_world, search_encoder: Path, tmp_path: Path) -> None:
    music = tmp_path / "music"
    (music / "a").mkdir(parents=True)
    records = read_tracks(tiny_world.tracks).records[:3]
    for r in records[:2]:
        shutil.copy(r.path, music / "a" / r.path.name)
    shutil.copy(records[2].path, music / records[2].path.name)
    (music / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (music / "notes.txt").write_text("not audio, not even looked at")
    report = embed_collection(search_encoder, tmp_path / "emb", audio=music, workers=0)
    emb = Embeddings.open(tmp_path / "emb")
    assert sorted(emb.tracks.track_ids) == sorted(
        [f"a/{records[0].path.name}", f"a/{records[1].path.name}", records[2].path.name]
    )
    assert emb.tracks.artists == [None, None, None]
    assert [f[0] for f in report.failed] == ["broken.wav"] and report.failed[0][2]
    assert [f[0] for f in emb.failures] == ["broken.wav"]
    assert "failed 1" in report.summary()


def test_interrupted_run_resumes_from_saved_chunks(
    tiny_store,
    tiny_world,
    search_encoder: Path,
    tiny_embeddings: Embeddings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mixtape.search.embed as embed_mod

    real = embed_mod._embed_chunk
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_mod, "_embed_chunk", dying)
    out = tmp_path / "emb"
    with pytest.raises(KeyboardInterrupt):
        embed_collection(search_encoder, out, features=tiny_store.path, tracks=tiny_world.tracks, chunk_tracks=50)
    with pytest.raises(EmbeddingsError, match="incomplete"):
        Embeddings.open(out)
    monkeypatch.setattr(embed_mod, "_embed_chunk", real)
    report = embed_collection(search_encoder, out, features=tiny_store.path, tracks=tiny_world.tracks, chunk_tracks=50)
    assert report.reused == 50 and report.computed == len(tiny_store) - 50
    emb = Embeddings.open(out)
    assert emb.tracks.track_ids == tiny_embeddings.tracks.track_ids
    assert np.allclose(emb.vectors, tiny_embeddings.vectors, atol=1e-6)
    assert not (out / ".parts").exists()
    again = embed_collection(search_encoder, out, features=tiny_store.path, tracks=tiny_world.tracks)
    assert again.up_to_date and "up to date" in again.summary()


def test_a_track_that_cannot_be_embedded_is_skipped_and_listed(
    tiny_store, search_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = PatchReader.track_patches

    def patches(self, i: int) -> np.ndarray:
        return np.zeros((0, 96, 128), dtype=np.float32) if i == 5 else real(self, i)

    monkeypatch.setattr(PatchReader, "track_patches", patches)
    report = embed_collection(search_encoder, tmp_path / "emb", features=tiny_store.path, chunk_tracks=8)
    emb = Embeddings.open(tmp_path / "emb")
    assert len(emb) == len(tiny_store) - 1 and tiny_store.track_ids[5] not in emb.tracks.track_ids
    assert [(f[0], "no patches" in f[2]) for f in report.failed] == [(tiny_store.track_ids[5], True)]
    assert emb.failures[0][0] == tiny_store.track_ids[5] and emb.failures[0][1] == str(tiny_store.paths[5])
    assert np.isfinite(emb.vectors).all() and np.abs(emb.vectors).sum(axis=1).min() > 0


def test_added_tracks_reuse_the_unchanged_ones(tiny_world, search_encoder: Path, tmp_path: Path) -> None:
    records = read_tracks(tiny_world.tracks).records[:6]
    table = _write_tracks(tmp_path / "tracks.csv", records[:4], tiny_world.root)
    first = embed_collection(search_encoder, tmp_path / "emb", audio=table, workers=0)
    assert first.computed == 4 and first.reused == 0
    table = _write_tracks(tmp_path / "tracks.csv", records, tiny_world.root)
    second = embed_collection(search_encoder, tmp_path / "emb", audio=table, workers=0)
    assert second.computed == 2 and second.reused == 4
    emb = Embeddings.open(tmp_path / "emb")
    assert emb.tracks.track_ids == [r.track_id for r in records]
    assert emb.tracks.artists == [r.artist_id for r in records]


def test_shards_merge_into_the_whole(
    tiny_store, tiny_world, search_encoder: Path, tiny_embeddings: Embeddings, tmp_path: Path
) -> None:
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, folder in enumerate(shards):
        embed_collection(search_encoder, folder, features=tiny_store.path, tracks=tiny_world.tracks, shard=(i, 2))
    sizes = [len(Embeddings.open(f)) for f in shards]
    assert all(s > 0 for s in sizes) and sum(sizes) == len(tiny_store)
    merged = merge_embeddings(shards, tmp_path / "merged")
    want, got = _by_id(tiny_embeddings), _by_id(merged)
    assert sorted(got) == sorted(want)
    assert all(np.allclose(got[t], want[t], atol=1e-6) for t in want)
    assert merged.encoder_info["fingerprint"] == tiny_embeddings.encoder_info["fingerprint"]


def test_another_encoder_needs_force(tiny_store, tiny_embeddings: Embeddings, tmp_path: Path) -> None:
    import torch

    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(1)
    other = tmp_path / "other"
    export_safetensors(
        Encoder("small", channels=(8, 16, 32, 64)),
        other,
        metadata={"mel": tiny_store.mel_config.model_dump(mode="json")},
    )
    out = tmp_path / "emb"
    shutil.copytree(tiny_embeddings.path, out)
    with pytest.raises(EmbeddingsError, match="another encoder"):
        embed_collection(other, out, features=tiny_store.path)
    with pytest.raises(EmbeddingsError, match="another encoder"):
        merge_embeddings(
            [tiny_embeddings.path, embed_collection(other, tmp_path / "o", features=tiny_store.path).out],
            tmp_path / "m",
        )


def test_bad_arguments_are_clear_errors(tiny_store, search_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match="exactly one"):
        embed_collection(search_encoder, tmp_path / "e", audio=tmp_path, features=tiny_store.path)
    with pytest.raises(MixtapeError, match="no audio files"):
        embed_collection(search_encoder, tmp_path / "e", audio=tmp_path)
    with pytest.raises(MixtapeError, match="no such folder"):
        embed_collection(search_encoder, tmp_path / "e", audio=tmp_path / "missing.csv")
    with pytest.raises(EmbeddingsError, match="not found"):
        Embeddings.open(tmp_path / "nothing")


def test_mismatched_mel_settings_are_refused(tiny_store, tmp_path: Path) -> None:
    import torch

    from mixtape.models import Encoder
    from mixtape.models.bundle import MelMismatchError
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    mel = tiny_store.mel_config.model_dump(mode="json") | {"hop_size": 512}
    export_safetensors(Encoder("small", channels=(8, 16)), tmp_path / "enc", metadata={"mel": mel})
    with pytest.raises(MelMismatchError, match="hop_size"):
        embed_collection(tmp_path / "enc", tmp_path / "e", features=tiny_store.path)


def test_a_query_file_embeds_like_its_collection_track(tiny_embeddings: Embeddings, search_encoder: Path) -> None:

    enc = EncoderBundle.load(search_encoder)
    for row in (0, 17):
        q = embed_audio_file(enc, tiny_embeddings.tracks.paths[row])
        assert np.allclose(q.vector, tiny_embeddings.vectors[row], atol=1e-4)
        assert q.duration == pytest.approx(tiny_embeddings.tracks.durations[row], abs=0.01)
    short = embed_audio_file(enc, tiny_embeddings.tracks.paths[0], max_seconds=3.0)
    assert short.seconds_used == pytest.approx(3.0) and short.duration > 3.0


def test_a_second_embed_into_a_folder_being_written_is_refused(
    tiny_store, tiny_embeddings: Embeddings, search_encoder: Path, tmp_path: Path
) -> None:
    from mixtape.fileio import folder_lock

    out = tmp_path / "emb"
    with folder_lock(out, "held by the first run"):  # what a running `mixtape embed` holds
        with pytest.raises(
            MixtapeError,
            match=r"embeddings folder .*emb is being written by another `mixtape embed`; wait for it or use another "
            r"--out",
        ):
            embed_collection(search_encoder, out, features=tiny_store.path)
        with pytest.raises(MixtapeError, match="is being written by another"):
            merge_embeddings([tiny_embeddings.path], out)
    assert not (out / "embeddings.json").exists()
    assert len(Embeddings.open(embed_collection(search_encoder, out, features=tiny_store.path).out)) == len(
        tiny_store
    )  # free again once released
