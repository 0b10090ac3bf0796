"""Unicode and spaces in every path and id, end to end through the commands: tracks table, audio,
feature store, playlists (M3U8 and JSON Lines), pairs, embeddings, index and search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio.audio_signals import noise, write_audio

from mixtape.audio import FeatureStore
from mixtape.cli import main
from mixtape.pairs import Positives

# (track id, path under the collection folder): accents, CJK, emoji, spaces, a comma (quoted in the CSV).
TRACKS = [
    ("Ça va — 01", "Ar tïst/Albüm Ünö/01 Ça va.wav"),
    ("日本の歌", "Ar tïst/Albüm Ünö/02 日本の歌.flac"),
    ("🎵 emoji id", "Ar tïst/Albüm Ünö/03 🎵.ogg"),
    ("Dos, tres", "Otra Artista/Dos, tres.wav"),
    ("naïve  two spaces", "Otra Artista/naïve  two spaces.wav"),
    ("Ωmega", "Otra Artista/Ωmega.wav"),
]


def _collection(root: Path) -> Path:
    for i, (_, rel) in enumerate(TRACKS):
        write_audio(root / rel, noise(2.5 + 0.1 * i, seed=i), 16000)
    artists = ["Ar tïst"] * 3 + ["Otra Artista"] * 3
    lines = ["track_id,path,artist_id"] + [
        f'"{tid}","{rel}","{a}"' for (tid, rel), a in zip(TRACKS, artists, strict=True)
    ]
    (root / "trackś table.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lists = root / "listas de reproducción"
    lists.mkdir()
    # An M3U8 naming files relative to itself, and a JSON Lines file naming track ids.
    m3u = ["#EXTM3U", "#EXTINF:3,Ar tïst – Ça va", f"../{TRACKS[0][1]}", f"../{TRACKS[1][1]}", f"../{TRACKS[3][1]}"]
    (lists / "Été 2023 ☀.m3u8").write_text("\n".join(m3u) + "\n", encoding="utf-8")
    jsonl = [
        {"playlist_id": "nuit 🌙", "tracks": [TRACKS[2][0], TRACKS[4][0], TRACKS[5][0]]},
        {"playlist_id": "mix", "tracks": [TRACKS[1][0], TRACKS[5][0]]},
    ]
    (lists / "más listas.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in jsonl), encoding="utf-8"
    )
    return root


def test_unicode_and_spaces_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _collection(tmp_path / "Mú sica" / "🎵 x")
    table = root / "trackś table.csv"
    store_dir, pairs_dir, emb = root / "características", root / "pares playlist", root / "incrustaciones ü"

    assert main(["features", "--tracks", str(table), "--out", str(store_dir), "--workers", "0"]) == 0
    store = FeatureStore.open(store_dir)
    assert store.track_ids == [tid for tid, _ in TRACKS] and store.failures == []
    assert [p.relative_to(root).as_posix() for p in store.paths] == [rel for _, rel in TRACKS]

    assert (
        main(
            [
                "pairs",
                "--tracks",
                str(table),
                "--playlists",
                str(root / "listas de reproducción"),
                "--strategy",
                "playlist",
                "--out",
                str(pairs_dir),
            ]
        )
        == 0
    )
    positives = Positives.load(pairs_dir)
    assert sorted(positives.track_ids.tolist()) == sorted(tid for tid, _ in TRACKS)
    assert len(positives) == len(TRACKS)  # every track is in a playlist of at least two matched tracks
    catalog = json.loads((pairs_dir / "catalog.json").read_text(encoding="utf-8"))
    # every entry matched: the M3U8's unicode paths (one with a comma) and the JSON Lines' unicode ids
    assert (catalog["playlists"], catalog["playlist_entries"], catalog["report"]["counts"]) == (3, 8, {})

    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors

    torch.manual_seed(0)
    encoder = root / "codificador ñ"
    export_safetensors(
        Encoder("small", channels=(8, 16)), encoder, metadata={"mel": store.mel_config.model_dump(mode="json")}
    )
    argv = [
        "embed",
        "--checkpoint",
        str(encoder),
        "--features",
        str(store_dir),
        "--tracks",
        str(table),
        "--out",
        str(emb),
    ]
    assert main(argv) == 0
    assert main(["index", str(emb)]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(emb / "index"), "--track", "Dos, tres", "-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["query"]["track_id"] == "Dos, tres" and result["query"]["artist_id"] == "Otra Artista"
    assert len(result["neighbours"]) == 3
    assert all(Path(n["track"]["path"]).is_file() for n in result["neighbours"])
    assert np.isfinite([n["score"] for n in result["neighbours"]]).all()
