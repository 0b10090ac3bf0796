"""Vectors that mixtape did not make (`--embeddings`): reading and checking them
(``mixtape.search.embeddings.read_track_vectors``), and indexing them so that `mixtape search` and
`mixtape serve` work on them by track id.

The vectors are random numbers named by the tiny world's track ids, saved as another model's user
would: an ``.npz`` of ``ids`` and ``embeddings``, or a folder of ``vectors.npy`` and ``tracks.tsv``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtape.catalog import read_tracks
from mixtape.cli import main
from mixtape.search.embeddings import (
    OUTSIDE_KEY,
    Embeddings,
    EmbeddingsError,
    TrackVectors,
    holds_outside_vectors,
    read_track_vectors,
)

DIM = 6


@pytest.fixture(scope="module")
def world_ids(tiny_world) -> list[str]:
    return [r.track_id for r in read_tracks(tiny_world.tracks).records]


@pytest.fixture(scope="module")
def vectors(world_ids: list[str]) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((len(world_ids), DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def npz(world_ids: list[str], vectors: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("outside") / "essentia.npz"
    np.savez(path, ids=np.array(world_ids), embeddings=vectors)
    return path


def _write_folder(folder: Path, header: str, rows: list[str], vectors: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", vectors)
    (folder / "tracks.tsv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


def _save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


# --- reading -----------------------------------------------------------------------------------------


def test_an_npz_and_a_folder_of_another_model_are_read_alike(
    npz: Path, world_ids: list[str], vectors: np.ndarray, tmp_path: Path
) -> None:
    from_npz = read_track_vectors(npz)
    assert from_npz.track_ids == world_ids and from_npz.vectors.dtype == np.float32
    assert np.array_equal(from_npz.vectors, vectors) and from_npz.dim == DIM and len(from_npz) == len(world_ids)
    assert from_npz.encoder[OUTSIDE_KEY] == str(npz.resolve()) and from_npz.source is None
    assert from_npz.embeddings is None and "vectors of an outside model" in from_npz.describe()
    # a folder: float64 vectors, a tracks.tsv with its columns in another order than mixtape's, a blank line
    rows = [f"/music/{t}.wav\t{t}\tartist-{i % 3}" for i, t in enumerate(world_ids)]
    folder = _write_folder(tmp_path / "mert", "path\ttrack_id\tartist_id", [*rows, ""], vectors.astype(np.float64))
    assert holds_outside_vectors(folder) and holds_outside_vectors(npz)
    from_folder = read_track_vectors(folder)
    assert from_folder.track_ids == world_ids and np.array_equal(from_folder.vectors, vectors)
    assert from_folder.vectors.dtype == np.float32 and from_folder.tracks.artists[4] == "artist-1"
    assert from_folder.tracks.paths[0] == f"/music/{world_ids[0]}.wav" and from_folder.tracks.albums[0] is None


def test_integer_and_byte_ids_are_read_as_text(tmp_path: Path) -> None:
    ints = read_track_vectors(_save_npz(tmp_path / "i.npz", ids=np.array([7, 8]), embeddings=np.eye(2)))
    assert ints.track_ids == ["7", "8"]
    raw = read_track_vectors(_save_npz(tmp_path / "b.npz", ids=np.array([b"a", b"b"]), embeddings=np.eye(2)))
    assert raw.track_ids == ["a", "b"]


def test_a_mixtape_embeddings_folder_is_read_with_its_encoder(tiny_embeddings: Embeddings) -> None:
    read = read_track_vectors(tiny_embeddings.path)
    assert read.track_ids == tiny_embeddings.tracks.track_ids and read.embeddings is not None
    assert np.array_equal(read.vectors, tiny_embeddings.vectors) and read.encoder["fingerprint"]
    assert read.source == tiny_embeddings.encoder_info["source"] and not holds_outside_vectors(read.path)
    assert read.as_embeddings(read.path / "unused").path == tiny_embeddings.path  # no copy of mixtape's own
    assert not (read.path / "unused").exists()


NAN_ROW = np.ones((3, 2), np.float32)
NAN_ROW[1, 0] = np.inf
BAD_NPZ = {
    "ids and vectors of different lengths": (
        {"ids": np.array(["a", "b", "c"]), "embeddings": np.ones((2, 4))},
        "3 track ids for 2 vectors; give one id per vector",
    ),
    "a duplicate id": (
        {"ids": np.array(["a", "b", "a", "c", "c"]), "embeddings": np.ones((5, 4))},
        "2 track id(s) appear more than once: 'a', 'c'",
    ),
    "an empty id": ({"ids": np.array(["a", " "]), "embeddings": np.ones((2, 4))}, "an empty track id for vector(s) 1"),
    "an Inf value": ({"ids": np.array(["a", "b", "c"]), "embeddings": NAN_ROW}, "vector(s) of 1 track(s): 'b'"),
    "beyond float32": (
        {"ids": np.array(["a", "b"]), "embeddings": np.array([[1.0, 1e300], [1.0, 2.0]])},
        "vector(s) of 1 track(s): 'a'",
    ),
    "3-D vectors": ({"ids": np.array(["a"]), "embeddings": np.ones((1, 2, 2))}, "vectors of shape [1, 2, 2]"),
    "1-D vectors": ({"ids": np.array(["a", "b"]), "embeddings": np.ones(2)}, "expected a 2-D array [tracks, dims]"),
    "text vectors": ({"ids": np.array(["a"]), "embeddings": np.array([["x"]])}, "expected numbers"),
    "no vectors": ({"ids": np.array([], dtype=str), "embeddings": np.ones((0, 3))}, "no vectors (an empty set)"),
    "zero dimensions": ({"ids": np.array(["a"]), "embeddings": np.ones((1, 0))}, "vectors of 0 dimensions"),
    "2-D ids": ({"ids": np.array([["a", "b"]]), "embeddings": np.ones((2, 2))}, "'ids' has shape [1, 2]"),
    "float ids": ({"ids": np.array([1.5]), "embeddings": np.ones((1, 2))}, "'ids' holds float64 values"),
    "no ids": ({"vectors": np.ones((1, 2))}, "no 'ids' and no 'embeddings' array (it holds 'vectors')"),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_a_bad_npz_is_refused_naming_the_file_and_the_problem(case: str, tmp_path: Path) -> None:
    arrays, message = BAD_NPZ[case]
    path = _save_npz(tmp_path / "v.npz", **arrays)
    with pytest.raises(EmbeddingsError) as err:
        read_track_vectors(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_npz_files_that_are_not_what_they_should_be(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingsError, match=r"missing\.npz: not found \(expected a folder holding vectors\.npy"):
        read_track_vectors(tmp_path / "missing.npz")
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, ids=np.array(["a", None], dtype=object), embeddings=np.ones((2, 2)))
    with pytest.raises(EmbeddingsError, match=r"stored as Python objects.*numpy\.array\(track_ids, dtype=str\)"):
        read_track_vectors(pickled)
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.ones((2, 2)))  # a .npy array under an .npz name
    with pytest.raises(EmbeddingsError, match="a single array, not an .npz archive"):
        read_track_vectors(single)
    text = tmp_path / "notes.txt"
    text.write_text("track_000001 0.1 0.2\n")
    with pytest.raises(EmbeddingsError, match=r"notes\.txt: not a readable \.npz file"):
        read_track_vectors(text)


def test_bad_folders_are_refused_naming_the_file(world_ids: list[str], tmp_path: Path) -> None:
    ids = world_ids[:3]
    cases = {
        "tracks.tsv: missing": lambda f: np.save(f / "vectors.npy", np.ones((3, 2))),
        "tracks.tsv: the first line must be a tab-separated header naming a track_id column": lambda f: _write_folder(
            f, "id", ids, np.ones((3, 2))
        ),
        "tracks.tsv: 3 track ids for 2 vectors in vectors.npy": lambda f: _write_folder(
            f, "track_id", ids, np.ones((2, 2))
        ),
        "tracks.tsv:3: expected 2 tab-separated fields, got 1": lambda f: _write_folder(
            f, "track_id\tartist_id", [f"{ids[0]}\tx", ids[1]], np.ones((2, 2))
        ),
        "vectors.npy: not a readable .npy array": lambda f: (
            _write_folder(f, "track_id", ids, np.ones((3, 2))),
            (f / "vectors.npy").write_bytes(b"not numpy"),
        ),
        "vectors.npy: NaN or Inf": lambda f: _write_folder(f, "track_id", ids, np.full((3, 2), np.nan)),
        "vectors.npy: no vectors (an empty set)": lambda f: _write_folder(f, "track_id", [], np.ones((0, 2))),
    }
    for i, (message, make) in enumerate(cases.items()):
        folder = tmp_path / f"f{i}"
        folder.mkdir()
        make(folder)
        file, what = message.split(": ", 1)
        with pytest.raises(EmbeddingsError) as err:
            read_track_vectors(folder)
        assert str(err.value).startswith(f"{folder / file.split(':')[0]}") and what in str(err.value), (message, err)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmbeddingsError, match="holds no vectors"):
        read_track_vectors(empty)


def test_an_unfinished_mixtape_embed_folder_is_not_taken_for_outside_vectors(
    world_ids: list[str], tmp_path: Path
) -> None:
    """`mixtape embed` killed before its embeddings.json leaves vectors.npy and tracks.tsv beside its
    lock and failures files: that folder is incomplete, not vectors of another model."""
    folder = _write_folder(tmp_path / "emb", "track_id", world_ids[:2], np.ones((2, 2)))
    (folder / ".lock").touch()
    (folder / "failures.tsv").write_text("track_id\tpath\treason\n")
    assert not holds_outside_vectors(folder)
    with pytest.raises(EmbeddingsError, match="embeddings.json.*re-run `mixtape embed`"):
        read_track_vectors(folder)


FUZZ = settings(
    max_examples=int(40 * float(os.environ.get("MIXTAPE_FUZZ_SCALE", "1"))),
    derandomize=not os.environ.get("MIXTAPE_FUZZ_RANDOM"),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("target", ["v.npz", "vectors.npy", "tracks.tsv"])
@FUZZ
@given(data=st.binary(max_size=400), cut=st.integers(min_value=0, max_value=2000))
def test_any_bytes_give_vectors_or_an_error_naming_the_file(target: str, data: bytes, cut: int, tmp_path: Path) -> None:
    """Whatever a file holds (random bytes, or a valid file cut short or with bytes appended), reading
    returns checked vectors or raises ``EmbeddingsError`` naming the file; nothing else escapes.
    (This reader is fuzzed here rather than in tests/test_file_readers.py: see its docstring.)"""
    root = tmp_path / f"case-{target}-{abs(hash((data, cut)))}"
    folder = _write_folder(root / "f", "track_id\tartist_id", ["a\tx", "b\ty"], np.ones((2, 3), np.float32))
    _save_npz(root / "v.npz", ids=np.array(["a", "b"]), embeddings=np.ones((2, 3), np.float32))
    file = root / "v.npz" if target == "v.npz" else folder / target
    valid = file.read_bytes()
    file.write_bytes(data if cut % 3 == 0 else valid[: cut % (len(valid) + 1)] + data)
    try:
        read = read_track_vectors(file if target == "v.npz" else folder)
    except EmbeddingsError as err:
        assert str(file) in str(err) or str(folder) in str(err), err
    else:
        assert isinstance(read, TrackVectors) and np.isfinite(read.vectors).all()
        assert read.vectors.ndim == 2 and len(read.vectors) == len(read.track_ids) > 0


# --- indexing and searching --------------------------------------------------------------------------


def _cosine_order(vectors: np.ndarray, row: int) -> list[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit[row]
    scores[row] = -np.inf
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def test_outside_vectors_are_indexed_and_searched_by_track_id(
    npz: Path, world_ids: list[str], vectors: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "index"
    assert main(["index", "--embeddings", str(npz), "--out", str(out), "--mutual-proximity"]) == 0
    assert f"{len(world_ids)} tracks x {DIM} dims" in capsys.readouterr().out
    copy = Embeddings.open(out / "embeddings")  # the vectors as an embeddings folder, inside the index folder
    assert copy.tracks.track_ids == world_ids and np.array_equal(copy.vectors, vectors)
    assert copy.encoder_info[OUTSIDE_KEY] == str(npz.resolve()) and not copy.encoder_info.get("fingerprint")
    assert json.loads((out / "index.json").read_text())["encoder"][OUTSIDE_KEY] == str(npz.resolve())
    query = world_ids[7]
    assert main(["search", "--index", str(out), "--track", query, "-k", "5", "--json"]) == 0
    found = [n["track"]["track_id"] for n in json.loads(capsys.readouterr().out)["neighbours"]]
    assert found == [world_ids[i] for i in _cosine_order(vectors, 7)[:5]]  # exact index: the cosine order
    assert main(["search", "--index", str(out), "--track", query, "--rerank", "mp"]) == 0
    capsys.readouterr()
    # a second run finds the copy and the index up to date and rewrites nothing
    stamp = (out / "embeddings" / "vectors.npy").stat().st_mtime_ns
    assert main(["index", "--embeddings", str(npz), "--out", str(out), "--mutual-proximity"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (out / "embeddings" / "vectors.npy").stat().st_mtime_ns == stamp
    # changed vectors: the copy and the index are rebuilt
    np.savez(npz.with_name("changed.npz"), ids=np.array(world_ids), embeddings=vectors[::-1].copy())
    assert main(["index", "--embeddings", str(npz.with_name("changed.npz")), "--out", str(out)]) == 0
    assert "up to date" not in capsys.readouterr().out
    assert np.array_equal(Embeddings.open(out / "embeddings").vectors, vectors[::-1])


def test_an_outside_folder_is_indexed_beside_it_and_checked_by_doctor(
    world_ids: list[str], vectors: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _write_folder(tmp_path / "clap", "track_id", world_ids, vectors)
    assert main(["index", str(folder)]) == 0  # as the positional EMBEDDINGS too; default --out FOLDER/index
    assert (folder / "index" / "index.json").is_file() and (
        folder / "index" / "embeddings" / "embeddings.json"
    ).is_file()
    assert main(["search", "--index", str(folder / "index"), "--track", world_ids[0], "-k", "3"]) == 0
    assert main(["doctor", str(folder)]) == 0
    assert "0 problems" in capsys.readouterr().out


def test_audio_queries_against_outside_vectors_are_refused_and_the_page_works(
    npz: Path, world_ids: list[str], tiny_embeddings: Embeddings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from mixtape.search import create_app

    out = tmp_path / "index"
    assert main(["index", "--embeddings", str(npz), "--out", str(out)]) == 0
    capsys.readouterr()
    audio = tiny_embeddings.tracks.paths[0]
    assert main(["search", "--index", str(out), "--audio", audio]) == 2
    err = capsys.readouterr().err
    # no mixtape encoder made these vectors: no audio file can be embedded into their space
    assert f"mixtape search: error: index {out}" in err and "outside model" in err and "Traceback" not in err
    client = TestClient(create_app(out))
    info = client.get("/api/info").json()
    assert info["tracks"] == len(world_ids) and info["query_by_audio"] is False
    similar = client.get(f"/api/similar/{world_ids[3]}", params={"k": 4})
    assert similar.status_code == 200 and len(similar.json()["neighbours"]) == 4
    found = client.get("/api/tracks", params={"query": world_ids[3]}).json()
    assert found["total"] == 1 and found["tracks"][0]["track_id"] == world_ids[3]
    assert client.get(f"/api/audio/{world_ids[3]}").status_code == 404  # an .npz names no audio file
    with open(audio, "rb") as f:
        upload = client.post("/api/similar", files={"file": ("q.wav", f.read(), "audio/wav")})
    assert upload.status_code == 503 and "query by audio is unavailable" in upload.json()["detail"]


def test_index_arguments_are_checked(npz: Path, world_ids: list[str], tmp_path: Path, capsys) -> None:
    folder = _write_folder(tmp_path / "clap", "track_id", world_ids[:4], np.ones((4, 2)))
    runs = [
        (["index", "--embeddings", str(npz)], f"index: give --out, the index folder to write for the vectors of {npz}"),
        (["index"], "index: give the vectors to index once: an embeddings folder as EMBEDDINGS, or --embeddings"),
        (["index", str(folder), "--embeddings", str(npz)], f"(got {folder} and {npz})"),
        (["index", str(folder), "--out", str(folder)], f"index: {folder} holds the vectors to index; write the index"),
    ]
    for argv, message in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
    assert sorted(p.name for p in folder.iterdir()) == ["tracks.tsv", "vectors.npy"]
