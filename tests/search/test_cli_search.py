"""The search commands end to end through `mixtape.cli.main`: embed, index, search, serve, tagger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtape.cli import main


@pytest.fixture(scope="module")
def cli_index(tiny_world, tiny_store, search_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    emb = tmp_path_factory.mktemp("cli") / "emb"
    assert (
        main(
            [
                "embed",
                "--checkpoint",
                str(search_encoder),
                "--features",
                str(tiny_store.path),
                "--tracks",
                str(tiny_world.tracks),
                "--out",
                str(emb),
            ]
        )
        == 0
    )
    assert main(["index", str(emb), "--mutual-proximity"]) == 0
    return emb / "index"


def test_embed_index_search_table_and_json(
    cli_index: Path, tiny_embeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    tid = tiny_embeddings.tracks.track_ids[6]
    artist = tiny_embeddings.tracks.artists[6]
    assert main(["search", "--index", str(cli_index), "--track", tid, "-k", "4"]) == 0
    table = capsys.readouterr().out
    assert f"neighbours of {tid}" in table and "score" in table and "artist" in table and "path" in table
    assert len([line for line in table.splitlines() if line[:1].isdigit()]) == 4
    assert (
        main(
            [
                "search",
                "--index",
                str(cli_index),
                "--track",
                tid,
                "-k",
                "6",
                "--exclude-same-artist",
                "--rerank",
                "mp",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["query"]["track_id"] == tid and len(data["neighbours"]) == 6
    assert all(n["track"]["artist_id"] != artist and "mp_score" in n for n in data["neighbours"])
    assert data["options"]["exclude_same_artist"] is True


def test_search_by_audio_file(cli_index: Path, tiny_embeddings, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    path = tiny_embeddings.tracks.paths[11]
    assert main(["search", "--index", str(cli_index), "--audio", path, "-k", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"]["name"] == Path(path).name
    assert data["neighbours"][0]["track"]["track_id"] == tiny_embeddings.tracks.track_ids[11]


def test_errors_exit_2_with_a_message(cli_index: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["search", "--index", str(cli_index), "--track", "nope"]) == 2
    assert "'nope' is not in the index" in capsys.readouterr().err
    assert main(["search", "--index", str(tmp_path / "missing"), "--track", "x"]) == 2
    assert "index folder not found" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["search", "--index", str(cli_index), "--audio", str(text)]) == 2
    assert "not a readable audio file" in capsys.readouterr().err
    assert main(["embed", "--audio", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "no-embeddings")]) == 2
    assert "embeddings folder not found" in capsys.readouterr().err


def test_embed_merge_via_cli(
    tiny_store, search_encoder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtape.search import Embeddings

    shards = [tmp_path / "s0", tmp_path / "s1"]
    for i, s in enumerate(shards):
        assert (
            main(
                [
                    "embed",
                    "--checkpoint",
                    str(search_encoder),
                    "--features",
                    str(tiny_store.path),
                    "--shard",
                    f"{i}/2",
                    "--out",
                    str(s),
                ]
            )
            == 0
        )
    assert main(["embed", "--merge", *map(str, shards), "--out", str(tmp_path / "all")]) == 0
    assert sorted(Embeddings.open(tmp_path / "all").tracks.track_ids) == sorted(tiny_store.track_ids)


def test_serve_passes_host_port_and_limits(
    cli_index: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    seen = {}

    def fake_run(app, host: str, port: int, log_level: str) -> None:
        seen.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    assert main(["serve", "--index", str(cli_index), "--port", "8123", "--max-upload-mb", "5"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.config.max_upload_mb == 5
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out


def test_tagger_command(tiny_world, tiny_embeddings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixtape.search import Tagger, TaggerError

    out = tmp_path / "tagger"
    assert (
        main(
            [
                "tagger",
                "--embeddings",
                str(tiny_embeddings.path),
                "--splits",
                str(tiny_world.splits),
                "--subset",
                "moodtheme",
                "--max-epochs",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "ROC-AUC" in capsys.readouterr().out
    tagger = Tagger.load(out)
    assert all(t.startswith("mood/theme") for t in tagger.tags)
    (out / "tagger.safetensors").write_bytes(b"x")
    with pytest.raises(TaggerError, match="checksum"):
        Tagger.load(out)
