"""Property-based tests of every file reader: whatever bytes a file holds, reading it ends normally
or in the documented error, a ``MixtapeError`` whose message names the file (or the folder).

Two properties, over a declared table of readers:

1. a single file of arbitrary bytes, printable text, format-shaped lines, or a valid file truncated
   or with bytes flipped, inserted or deleted -> the reader returns (lenient readers skip bad rows
   and list them in their report) or raises ``MixtapeError`` naming the file;
2. a valid folder (feature store, positives, export, embeddings, index, tagger, ...) with ONE file
   replaced, truncated, damaged or deleted -> opening it AND reading all of its content (every
   track's frames, every vector, a search per track) returns or raises ``MixtapeError`` naming the folder.

Any other exception (IndexError, UnicodeDecodeError, BadZipFile, a torch or FAISS error, ...) fails
the test. A walk over the package checks that every public ``read_*``/``load_*``/``open`` is in the
table or listed, with the reason, in ``NOT_FILE_READERS``, so a new reader cannot arrive unfuzzed.
Examples are derandomised, so CI sees the same ones on every run.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import pkgutil
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mixtape
from mixtape.errors import MixtapeError

# --- damage: what a file may hold instead of what its reader expects --------------------------------

#: Byte strings that break parsers in known ways: huge or negative counts, NaN, NUL, bad UTF-8,
#: quotes, brackets, line ends of other systems, a BOM.
NASTY = (
    b"9999999999999999999",
    b"-1",
    b"1e999",
    b"NaN",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b'"',
    b"\n",
    b"\r",
    b"\t",
    b",",
    b"[",
    b"{",
    b"}",
    b":",
    b"#",
    b"\xef\xbb\xbf",
    b"null",
    b"true",
    b"[]",
    b"{}",
)
_NEWLINES = ("\n", "\r\n", "\r")
_SEPARATORS = (",", "\t", "|", " ", ":", "", ";")


def _tokens(valid: bytes, limit: int = 60) -> list[str]:
    """Distinct words of a valid sample (names, numbers, keys), for lines that look like the format."""
    text = valid[:20_000].decode("utf-8", "replace")
    words = list(dict.fromkeys(w for w in re.split(r'[\s,\t|:"{}\[\]]+', text) if w))[:limit]
    return words + [
        "",
        "-1",
        "0",
        "1e999",
        "NaN",
        "null",
        "#EXTM3U",
        "#EXTINF:1,x",
        "{",
        "}",
        "[",
        "]",
        '"',
        "\x00",
        "\ufeff",
        "é",
    ]


def _shaped_lines(valid: bytes) -> st.SearchStrategy[bytes]:
    """Lines of the format's own words joined by separators a reader may split on."""
    tokens = _tokens(valid)
    line = st.lists(st.sampled_from(tokens), max_size=8).flatmap(
        lambda ws: st.sampled_from(_SEPARATORS).map(lambda sep: sep.join(ws))
    )
    return st.tuples(st.lists(line, max_size=12), st.sampled_from(_NEWLINES)).map(
        lambda t: t[1].join(t[0]).encode("utf-8")
    )


def _truncated(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, max(len(valid) - 1, 0)).map(lambda n: valid[:n])


def _apply_edits(valid: bytes, edits: list[tuple[int, str, bytes]]) -> bytes:
    data = bytearray(valid)
    for pos, op, payload in edits:
        at = pos % (len(data) + 1)
        if op == "flip" and at < len(data):
            data[at] ^= payload[0] or 0xFF
        elif op == "insert":
            data[at:at] = payload
        elif op == "delete":
            del data[at : at + len(payload)]
        else:  # overwrite
            data[at : at + len(payload)] = payload
    return bytes(data)


def _edited(valid: bytes) -> st.SearchStrategy[bytes]:
    """The valid file with a few bytes flipped, inserted, deleted or overwritten (by nasty tokens too)."""
    payload = st.one_of(st.binary(min_size=1, max_size=4), st.sampled_from(NASTY))
    edit = st.tuples(
        st.integers(0, max(len(valid), 1) * 4), st.sampled_from(("flip", "insert", "delete", "overwrite")), payload
    )
    return st.lists(edit, min_size=1, max_size=4).map(lambda edits: _apply_edits(valid, edits))


def damaged(valid: bytes) -> st.SearchStrategy[bytes]:
    """Everything a reader of ``valid``'s format may meet instead of it."""
    return st.one_of(
        st.binary(max_size=1024),
        st.text(max_size=300).map(lambda s: s.encode("utf-8")),
        _shaped_lines(valid),
        _truncated(valid),
        _edited(valid),
        _edited(valid),  # the most interesting: nearly valid files reach deepest into a reader
    )


def check_outcome(call: Callable[[], object], names: Path) -> None:
    """``call`` returns, or raises MixtapeError naming ``names``; anything else propagates and fails."""
    try:
        call()
    except MixtapeError as err:
        assert str(names) in str(err), f"MixtapeError does not name {names}: {err}"


#: MIXTAPE_FUZZ_SCALE=10 runs ten times the examples (a deeper search before a release; CI runs 1);
#: MIXTAPE_FUZZ_RANDOM=1 draws new examples each run instead of CI's fixed ones.
SCALE = float(os.environ.get("MIXTAPE_FUZZ_SCALE", "1"))
FUZZ = settings(
    deadline=None,
    derandomize=not os.environ.get("MIXTAPE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# --- valid samples and folders, built once ------------------------------------------------------------


def _trim_lines(path: Path, n: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:n])


def _wav_bytes(seconds: float = 0.3, rate: int = 16000) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _checkpoint_bytes(mel: dict[str, Any]) -> bytes:
    """A pre-training checkpoint as Lightning writes it: hyper-parameters and the module's state dict."""
    from mixtape.models import Encoder
    from mixtape.training.config import ModelConfig

    torch.manual_seed(0)
    model = ModelConfig(backbone="small", backbone_options={"channels": [8, 16, 32, 64]})
    encoder = Encoder("small", 96, channels=[8, 16, 32, 64])
    ckpt = {
        "epoch": 0,
        "global_step": 3,
        "state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
        "hyper_parameters": {
            "model": model.model_dump(mode="json"),
            "n_mels": 96,
            "patch_frames": 128,
            "data_info": {"mel": mel, "strategy": "self"},
        },
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _tagged_flac_bytes() -> bytes:
    """A short FLAC file with Vorbis-comment tags, as the tag reader meets them in a music folder."""
    import soundfile as sf
    from mutagen.flac import FLAC

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.flac"
        sf.write(path, (0.3 * np.sin(np.arange(4000) / 5)).astype(np.float32), 16000)
        audio = FLAC(path)
        audio.update({"artist": "Ann", "album": "One", "composer": "Bach", "title": "Song"})
        audio.save()
        return path.read_bytes()


def _metrics_csv() -> bytes:
    rows = ["epoch,step,train/acc,train/loss,train/lr"] + [
        f"0,{s},{0.1 * s:.2f},{2.0 - 0.1 * s:.3f},0.001" for s in range(6)
    ]
    return ("\n".join(rows) + "\n").encode()


def _chunk_bytes() -> bytes:
    from mixtape.search.embed import _PartStore

    with tempfile.TemporaryDirectory() as tmp:
        parts = _PartStore(Path(tmp), "fp")
        parts.save(
            0, CHUNK_IDS, CHUNK_CHECKSUMS, np.ones((3, 4), np.float32), np.array([False, True, False]), ["too short"]
        )
        return parts.path(0).read_bytes()


def _moments_bytes() -> bytes:
    from mixtape.search.rerank import compute_moments, save_moments

    vectors = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        return save_moments(Path(tmp) / "mp.npz", compute_moments(lambda block: iter([vectors]), 6, 4)).read_bytes()


CHUNK_IDS = ["a", "b", "c"]
CHUNK_CHECKSUMS = ["1", "2", "3"]


@pytest.fixture(scope="module")
def samples(tiny_world, tiny_store, folders: dict[str, Path]) -> dict[str, bytes]:
    """One valid file per format, small (a few kB) so that every example is cheap."""
    w = tiny_world
    slice_path = min(w.playlists.glob("mpd.slice.*.json"))
    mpd = json.loads(slice_path.read_text(encoding="utf-8"))
    mpd["playlists"] = mpd["playlists"][:3]
    ids = [line.split(",")[0] for line in w.tracks.read_text(encoding="utf-8").splitlines()[1:21]]
    mtt_header = "clip_id\tguitar\tclassical\tslow\tmp3_path"
    mtt_rows = [f"{i}\t{i % 2}\t{(i // 2) % 2}\t0\t{'0123456789abcdef'[i % 16]}/clip-{i}.mp3" for i in range(20)]
    store = tiny_store.path
    snapshot = tiny_store.path / "index.npz"
    return {
        "tracks.csv": _trim_lines(w.tracks, 21),
        "mapping.csv": ("entry,track_id\n" + "".join(f"spotify:track:{i},{t}\n" for i, t in enumerate(ids))).encode(),
        "mpd.json": json.dumps(mpd).encode(),
        "playlist.m3u": ("#EXTM3U\n" + "".join(f"#EXTINF:8,{t}\naudio/{t}.wav\n" for t in ids[:6])).encode(),
        "playlists.jsonl": "".join(
            json.dumps({"playlist_id": f"p{i}", "tracks": ids[i : i + 4]}) + "\n" for i in range(0, 16, 4)
        ).encode(),
        "playlists.csv": ("playlist_id,track_id\n" + "".join(f"p{i // 4},{t}\n" for i, t in enumerate(ids))).encode(),
        "track_list.csv": ("track_id\n" + "".join(f"{t}\n" for t in ids)).encode(),
        "tags_table.tsv": (
            "track_id\tgenre\tmood\n"
            + "".join(f"{t}\t{('rock', 'jazz')[i % 2]}\tcalm,sad\n" for i, t in enumerate(ids))
        ).encode(),
        "mtg.tsv": _trim_lines(w.split_file("genre", "train"), 21),
        "mtt.csv": ("\n".join([mtt_header, *mtt_rows]) + "\n").encode(),
        "tags.csv": (
            "track_id,tags,split\n"
            + "".join(
                f"{t},genre---{'rock' if i % 2 else 'jazz'}|mood---calm,{('train', 'validation', 'test')[i % 3]}\n"
                for i, t in enumerate(ids)
            )
        ).encode(),
        "triplets.csv": _trim_lines(w.triplets, 21),
        "world.json": json.dumps(
            {"tracks": json.loads(w.world_json.read_text(encoding="utf-8"))["tracks"][:6]}
        ).encode(),
        "experiment.yaml": (Path(__file__).resolve().parents[1] / "configs" / "demo.yaml").read_bytes(),
        "pretrain.yaml": (Path(__file__).resolve().parents[1] / "configs" / "pretrain_small.yaml").read_bytes(),
        "settings.yaml": b"kind: hnsw\nexact_max: 100\nnlist: 8\ntarget_recall: 0.9\nmutual_proximity: true\n",
        "results.csv": (
            b"strategy,backbone,seed,task,metric,value\n"
            b"self,small,0,probe,roc_auc,0.71\n"
            b"self,small,1,probe,roc_auc,nan\n"
        ),
        "checkpoint.ckpt": _checkpoint_bytes(tiny_store.mel_config.model_dump(mode="json")),
        "metrics.csv": _metrics_csv(),
        "audio.wav": _wav_bytes(),
        "tagged.flac": _tagged_flac_bytes(),
        "store.json": (store / "store.json").read_bytes(),
        "index.jsonl": _trim_lines(store / "index.jsonl", 4),
        "index.npz": snapshot.read_bytes(),
        "failures.tsv": b"track_id\tpath\treason\nt1\t/a/t1.wav\ttoo short\nt2\t/a/t2.wav\tnot a readable audio file\n",
        "embeddings-tracks.tsv": (
            b"track_id\tartist_id\talbum_id\tpath\tduration\tchecksum\n"
            b"t1\ta1\t\t/m/t1.wav\t30.000\tabc\n"
            b"t2\t\tb2\t/m/t2.wav\t\t\n"
        ),
        "chunk.npz": _chunk_bytes(),
        "moments.npz": _moments_bytes(),
        "header.json": json.dumps({"format": "mixtape-thing", "version": 1, "count": 3}).encode(),
        "positives.json": (folders["positives"] / "positives.json").read_bytes(),
        "config.json": (folders["export"] / "config.json").read_bytes(),
        "embeddings.json": (folders["embeddings"] / "embeddings.json").read_bytes(),
        "index.json": (folders["index"] / "index.json").read_bytes(),
        "index.faiss": (folders["index"] / "index.faiss").read_bytes(),
    }


# --- single-file readers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    """A reader of one file: ``read(path)`` calls it on the damaged file written at ``name`` (beside it,
    ``side`` files hold valid samples it also needs); ``sample`` is the valid file damage starts from."""

    covers: tuple[str, ...]  # qualified names of the readers this case exercises
    sample: str
    read: Callable[[Path], object]
    name: str = ""  # file name (relative; suffix matters for some readers); default: the sample's key
    side: dict[str, str] = field(default_factory=dict)  # relative name -> sample key
    examples: int = 150


def _tiny_ids() -> dict[str, int]:
    """The tiny world's track index (track id -> row), the side argument of mapping and triplet readers."""
    return {f"track_{i:06d}": i for i in range(120)}


def _read_playlist_any(path: Path) -> object:
    from mixtape.catalog import read_playlist_file

    return read_playlist_file(path)


def _read_metrics(path: Path) -> object:
    from mixtape.training.callbacks import read_metrics

    return read_metrics(path.parents[1])


def _read_chunk(path: Path) -> object:
    from mixtape.search.embed import _PartStore

    got = _PartStore(path.parents[1], "fp").load(0, CHUNK_IDS, CHUNK_CHECKSUMS)
    if got is not None:  # a chunk it hands back must fit the tracks it was asked for
        vectors, failed, reasons = got
        assert vectors.shape[0] == len(failed) == len(CHUNK_IDS) and len(reasons) == int(failed.sum())
    return got


def _load_audio(path: Path) -> object:
    from mixtape.audio import load_audio

    return load_audio(path)


def _file_cases() -> dict[str, FileCase]:
    from mixtape import experiment
    from mixtape.audio import store
    from mixtape.catalog import catalog, matching, playlists, tracks
    from mixtape.config import load_config
    from mixtape.evaluation import datasets, similarity
    from mixtape.fileio import read_json_header, read_text_file
    from mixtape.models import checkpoint as model_checkpoint
    from mixtape.models import export as model_export
    from mixtape.models.bundle import EncoderBundle
    from mixtape.pairs import positives
    from mixtape.search import embeddings, index, rerank
    from mixtape.search.index import IndexSettings
    from mixtape.training import config as train_config

    def q(fn: Any) -> str:
        return f"{fn.__module__}.{fn.__qualname__}"

    return {
        "read_table_lines": FileCase(
            (q(tracks.read_table_lines),),
            "tracks.csv",
            lambda p: tracks.read_table_lines(p, "tracks table", "a header"),
        ),
        "read_tracks": FileCase((q(tracks.read_tracks),), "tracks.csv", tracks.read_tracks),
        "read_mapping": FileCase(
            (q(matching.read_mapping),), "mapping.csv", lambda p: matching.read_mapping(p, _tiny_ids())
        ),
        "read_mpd_slice": FileCase((q(playlists.read_mpd_slice),), "mpd.json", playlists.read_mpd_slice),
        "read_tags_table": FileCase(
            (q(_import("mixtape.search.app").read_tags_table),),
            "tags_table.tsv",
            lambda p: _import("mixtape.search.app").read_tags_table(p, _tiny_ids()),
        ),
        "read_m3u": FileCase((q(playlists.read_m3u),), "playlist.m3u", playlists.read_m3u),
        "read_playlists_jsonl": FileCase(
            (q(playlists.read_playlists_jsonl),), "playlists.jsonl", playlists.read_playlists_jsonl
        ),
        "read_playlists_csv": FileCase(
            (q(playlists.read_playlists_csv),), "playlists.csv", playlists.read_playlists_csv
        ),
        "read_playlist_file[.json]": FileCase(
            (q(playlists.read_playlist_file),), "mpd.json", _read_playlist_any, name="slice.json", examples=80
        ),
        "read_playlist_file[.m3u8]": FileCase(
            (q(playlists.read_playlist_file),), "playlist.m3u", _read_playlist_any, name="mix.m3u8", examples=80
        ),
        "read_playlist_file[.ndjson]": FileCase(
            (q(playlists.read_playlist_file),), "playlists.jsonl", _read_playlist_any, name="lists.ndjson", examples=80
        ),
        "read_playlist_file[.tsv]": FileCase(
            (q(playlists.read_playlist_file),), "playlists.csv", _read_playlist_any, name="lists.tsv", examples=80
        ),
        "read_track_list": FileCase((q(catalog.read_track_list),), "track_list.csv", catalog.read_track_list),
        "load_catalog[tracks]": FileCase(
            (q(catalog.load_catalog),),
            "tracks.csv",
            lambda p: catalog.load_catalog(p, [p.parent / "slice.json"]),
            side={"slice.json": "mpd.json"},
            examples=120,
        ),
        "load_catalog[playlists]": FileCase(
            (q(catalog.load_catalog),),
            "mpd.json",
            lambda p: catalog.load_catalog(p.parent / "tracks.csv", [p]),
            side={"tracks.csv": "tracks.csv"},
            examples=120,
        ),
        "load_catalog[heldout]": FileCase(
            (q(catalog.load_catalog),),
            "playlists.jsonl",
            lambda p: catalog.load_catalog(p.parent / "tracks.csv", [p.parent / "train.json"], heldout=[p]),
            side={"tracks.csv": "tracks.csv", "train.json": "mpd.json"},
            examples=80,
        ),
        "load_catalog[holdout_tracks]": FileCase(
            (q(catalog.load_catalog),),
            "track_list.csv",
            lambda p: catalog.load_catalog(p.parent / "tracks.csv", holdout_tracks=p),
            side={"tracks.csv": "tracks.csv"},
            examples=80,
        ),
        "load_catalog[mapping]": FileCase(
            (q(catalog.load_catalog),),
            "mapping.csv",
            lambda p: catalog.load_catalog(p.parent / "tracks.csv", [p.parent / "pl.csv"], mapping=p),
            side={"tracks.csv": "tracks.csv", "pl.csv": "playlists.csv"},
            examples=80,
        ),
        "read_mtg_tsv": FileCase((q(datasets.read_mtg_tsv),), "mtg.tsv", datasets.read_mtg_tsv),
        "read_magnatagatune": FileCase((q(datasets.read_magnatagatune),), "mtt.csv", datasets.read_magnatagatune),
        "read_tag_csv": FileCase((q(datasets.read_tag_csv),), "tags.csv", datasets.read_tag_csv),
        "load_tag_dataset[csv]": FileCase(
            (q(datasets.load_tag_dataset),), "tags.csv", lambda p: datasets.load_tag_dataset("csv", p), examples=80
        ),
        "load_tag_dataset[magnatagatune]": FileCase(
            (q(datasets.load_tag_dataset),),
            "mtt.csv",
            lambda p: datasets.load_tag_dataset("magnatagatune", p),
            examples=80,
        ),
        "read_triplets": FileCase(
            (q(similarity.read_triplets),), "triplets.csv", lambda p: similarity.read_triplets(p, _tiny_ids())
        ),
        "load_experiment_config": FileCase(
            (q(experiment.load_experiment_config),), "experiment.yaml", experiment.load_experiment_config, examples=120
        ),
        "read_results": FileCase((q(experiment.read_results),), "results.csv", experiment.read_results),
        "load_config": FileCase(
            (q(load_config),), "settings.yaml", lambda p: load_config(IndexSettings, p), examples=120
        ),
        "load_pretrain_config": FileCase(
            (q(train_config.load_pretrain_config),), "pretrain.yaml", train_config.load_pretrain_config, examples=120
        ),
        "read_checkpoint": FileCase(
            (q(model_checkpoint.read_checkpoint),), "checkpoint.ckpt", model_checkpoint.read_checkpoint, examples=80
        ),
        "read_checkpoint_encoder": FileCase(
            (q(model_checkpoint.read_checkpoint_encoder),),
            "checkpoint.ckpt",
            model_checkpoint.read_checkpoint_encoder,
            examples=80,
        ),
        "EncoderBundle.load[checkpoint]": FileCase(
            (q(EncoderBundle.load),), "checkpoint.ckpt", EncoderBundle.load, examples=40
        ),
        "read_metrics": FileCase(
            (q(_import("mixtape.training.callbacks").read_metrics),),
            "metrics.csv",
            _read_metrics,
            name="logs/version_0/metrics.csv",
        ),
        "load_audio": FileCase(
            (q(_import("mixtape.audio.decode").load_audio),), "audio.wav", _load_audio, examples=120
        ),
        "read_latent": FileCase(
            (q(_import("mixtape.world.truth").read_latent),),
            "world.json",
            lambda p: _import("mixtape.world.truth").read_latent(p, ["track_000000", "track_000003"]),
        ),
        "read_tags": FileCase(
            (q(_import("mixtape.audio.tags").read_tags),),
            "tagged.flac",
            _import("mixtape.audio.tags").read_tags,
            examples=150,
        ),
        "read_settings": FileCase(
            (q(store.read_settings),), "store.json", lambda p: store.read_settings(p.parent), name="store.json"
        ),
        "read_journal": FileCase(
            (q(store.read_journal),), "index.jsonl", lambda p: store.read_journal(p.parent), name="index.jsonl"
        ),
        "read_index[snapshot]": FileCase(
            (q(store.read_index),),
            "index.npz",
            lambda p: store.read_index(p.parent),
            name="index.npz",
            side={"index.jsonl": "index.jsonl"},
            examples=120,
        ),
        "read_index[journal]": FileCase(
            (q(store.read_index),),
            "index.jsonl",
            lambda p: store.read_index(p.parent),
            name="index.jsonl",
            examples=120,
        ),
        "store.read_failures": FileCase(
            (q(store.read_failures),), "failures.tsv", lambda p: store.read_failures(p.parent), name="failures.tsv"
        ),
        "read_metadata": FileCase(
            (q(positives.read_metadata),),
            "positives.json",
            lambda p: positives.read_metadata(p.parent),
            name="positives.json",
        ),
        "read_export_config": FileCase(
            (q(model_export.read_export_config),),
            "config.json",
            lambda p: model_export.read_export_config(p.parent),
            name="config.json",
        ),
        "read_track_meta": FileCase(
            (q(embeddings.read_track_meta),), "embeddings-tracks.tsv", embeddings.read_track_meta, name="tracks.tsv"
        ),
        "embeddings.read_failures": FileCase((q(embeddings.read_failures),), "failures.tsv", embeddings.read_failures),
        "read_meta": FileCase(
            (q(embeddings.read_meta),),
            "embeddings.json",
            lambda p: embeddings.read_meta(p.parent),
            name="embeddings.json",
        ),
        "read_index_meta": FileCase(
            (q(index.read_index_meta),), "index.json", lambda p: index.read_index_meta(p.parent), name="index.json"
        ),
        "read_faiss": FileCase((q(index.read_faiss),), "index.faiss", index.read_faiss, examples=120),
        "load_moments": FileCase(
            (q(rerank.load_moments),), "moments.npz", rerank.load_moments, name="mutual_proximity.npz", examples=120
        ),
        "embed chunk loader": FileCase(
            ("mixtape.search.embed._PartStore.load",),
            "chunk.npz",
            _read_chunk,
            name="emb/.parts/chunk-00000.npz",
            side={"emb/.parts/encoder.json": "fingerprint.json"},
            examples=120,
        ),
        "read_json_header": FileCase(
            (q(read_json_header),),
            "header.json",
            lambda p: read_json_header(
                p, kind="thing", format_name="mixtape-thing", version=1, missing_hint="run it", required=("count",)
            ),
        ),
        "read_text_file": FileCase((q(read_text_file),), "track_list.csv", lambda p: read_text_file(p, "text file")),
    }


def _import(name: str) -> Any:
    return importlib.import_module(name)


FILE_CASES = _file_cases()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_damaged_file_is_read_or_refused_naming_it(name: str, samples: dict[str, bytes]) -> None:
    case = FILE_CASES[name]
    valid = samples[case.sample]
    side = {**samples, "fingerprint.json": b'{"fingerprint": "fp"}'}

    @settings(FUZZ, max_examples=max(1, int(case.examples * SCALE)))
    @given(data=damaged(valid))
    @example(data=b"")
    @example(data=b"[" * 100_000)  # nesting deeper than Python's recursion limit
    @example(data=b"- " * 20_000 + b"x")  # the same in YAML
    @example(data=b"a,b\n" + b"x" * 200_000 + b"\n")  # a field longer than the csv module's limit
    @example(data=b'a,b\n"' + b"x" * 200_000 + b'"\n')
    @example(data=valid[: len(valid) // 2] + b"\xff\xfe" + valid[len(valid) // 2 :])  # one bad UTF-8 sequence mid-file
    @example(
        data=valid[:625] + b"9" * 19 + valid[625:]
    )  # a size field turned huge: FAISS's reader tried to allocate it (std::bad_alloc)
    def check(data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for rel, key in case.side.items():
                _write(Path(tmp) / rel, side[key])
            path = _write(Path(tmp) / (case.name or case.sample), data)
            check_outcome(lambda: case.read(path), path)

    check()


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_valid_sample_is_read(name: str, samples: dict[str, bytes]) -> None:
    """The undamaged sample reads without error: the damage above starts from a file the reader accepts."""
    case = FILE_CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        side = {**samples, "fingerprint.json": b'{"fingerprint": "fp"}'}
        for rel, key in case.side.items():
            _write(Path(tmp) / rel, side[key])
        path = _write(Path(tmp) / (case.name or case.sample), samples[case.sample])
        assert case.read(path) is not None


# --- folder readers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tiny_world, tiny_store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small valid folder per folder format, built through the library as the stages build them."""
    from pairs.pairs_catalogs import random_catalog

    from mixtape.audio import extract_features
    from mixtape.catalog import read_tracks
    from mixtape.evaluation import ProbeConfig, load_tag_dataset
    from mixtape.evaluation.tagger import train_tagger
    from mixtape.models import Encoder
    from mixtape.models.export import export_safetensors
    from mixtape.pairs import build_positives
    from mixtape.search import Embeddings, IndexSettings, build_index, embed_collection
    from mixtape.search.embeddings import write_embeddings

    root = tmp_path_factory.mktemp("readers")
    out = {
        name: root / name
        for name in (
            "store",
            "positives",
            "positives-mix",
            "export",
            "embeddings",
            "index",
            "index-ivfpq",
            "tagger",
            "splits",
            "tag-csv",
            "world",
        )
    }
    extract_features(read_tracks(tiny_world.tracks).records[:3], out["store"], workers=1)
    cat = random_catalog(seed=3, n_tracks=24, n_playlists=12)
    build_positives(cat, "playlist").save(out["positives"])
    build_positives(cat, "mix", k=3, workers=1, mix="playlist=2,cooc-topk=1").save(out["positives-mix"])
    torch.manual_seed(0)
    mel = tiny_store.mel_config.model_dump(mode="json")
    export_safetensors(
        Encoder("small", channels=(4, 8, 8, 16)), out["export"], metadata={"mel": mel, "patch_frames": 128}
    )
    embed_collection(out["export"], out["embeddings"], features=tiny_store.path, tracks=tiny_world.tracks)
    build_index(out["embeddings"], out["index"], IndexSettings(kind="hnsw", mutual_proximity=True, recall_queries=10))
    # a compressed index (its float16 vectors file) whose header lists tracks added after the build
    emb = Embeddings.open(out["embeddings"])
    made_by = {"encoder": emb.encoder_info}
    parts = [
        write_embeddings(root / name, [emb.vectors[rows]], len(rows), emb.dim, emb.tracks.take(rows), [], made_by)
        for name, rows in (("emb-a", np.arange(100)), ("emb-b", np.arange(100, len(emb))))
    ]
    pq = IndexSettings(kind="ivfpq", mutual_proximity=True, recall_queries=10)
    build_index(parts[0].path, out["index-ivfpq"], pq, add=[parts[1].path])
    dataset = load_tag_dataset("mtg-jamendo", splits=tiny_world.splits, subset="genre")
    train_tagger(out["embeddings"], dataset, out["tagger"], ProbeConfig(hidden=8, max_epochs=2, patience=1))
    out["splits"].mkdir()
    for s in ("train", "validation", "test"):
        (out["splits"] / f"autotagging_genre-{s}.tsv").write_bytes(_trim_lines(tiny_world.split_file("genre", s), 12))
    ids = [f"track_{i:06d}" for i in range(12)]
    out["tag-csv"].mkdir()
    (out["tag-csv"] / "tags.csv").write_text(
        "track_id,tags\n"
        + "".join(f"{t},genre---{'rock' if i % 2 else 'jazz'}|mood---calm\n" for i, t in enumerate(ids))
    )
    for j, s in enumerate(("train", "validation", "test")):
        (out["tag-csv"] / f"{s}.txt").write_text("".join(f"{t}\n" for i, t in enumerate(ids) if i % 3 == j))
    out["world"].mkdir()
    for rel in (
        "tracks.csv",
        "triplets.csv",
        "world.json",
        ".mixtape-world.json",
        "tags",
        "splits",
        "playlists",
        "heldout",
    ):
        src = tiny_world.root / rel
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, out["world"] / rel)
    return out


def _touch_store(path: Path) -> object:
    from mixtape.audio import FeatureStore

    store = FeatureStore.open(path)
    total = sum(int(np.isfinite(store.frames(i)).sum()) for i in range(len(store)))
    return store.summary(), total, store.failures


def _touch_positives(path: Path) -> object:
    from mixtape.pairs import Positives

    pos = Positives.load(path)
    return pos.sample(np.repeat(pos.anchors, 3), np.random.default_rng(0))


def _touch_export(path: Path) -> object:
    from mixtape.models.export import load_export_folder

    encoder, _ = load_export_folder(path)
    with torch.no_grad():
        return encoder(torch.zeros(2, encoder.n_mels, 32))


def _touch_bundle(path: Path) -> object:
    from mixtape.models.bundle import EncoderBundle

    return EncoderBundle.load(path)


def _touch_embeddings(path: Path) -> object:
    from mixtape.search import Embeddings

    emb = Embeddings.open(path)
    return int(np.isfinite(emb.vectors).sum()), [b.shape for b in emb.blocks(16)], emb.summary(), emb.failures


def _touch_index(path: Path) -> object:
    from mixtape.search import SimilarIndex

    index = SimilarIndex.open(path)
    rerank = "mp" if index.moments is not None else "none"
    results = [index.similar_to_track(t, k=3, rerank=rerank, exclude_same_artist=True) for t in index.tracks.track_ids]
    return results, index.find("track 00"), index.info(0), index.layout


def _touch_tagger(path: Path) -> object:
    from mixtape.search import Tagger

    tagger = Tagger.load(path)
    return tagger.top(np.ones(int(tagger.meta["dim"]), dtype=np.float32)), tagger.encoder_fingerprint


def _touch_mtg(path: Path) -> object:
    from mixtape.evaluation.datasets import read_mtg_jamendo

    return read_mtg_jamendo(path, "genre")


def _touch_tag_csv(path: Path) -> object:
    from mixtape.evaluation.datasets import load_tag_dataset

    return load_tag_dataset("csv", path / "tags.csv", path)


def _touch_world(path: Path) -> object:
    from mixtape.world.build import World

    return World.load(path).summary()


@dataclass(frozen=True)
class FolderCase:
    """A reader of a folder: ``touch(path)`` opens it and reads all of its content."""

    covers: tuple[str, ...]
    folder: str  # key into the ``folders`` fixture
    touch: Callable[[Path], object]
    examples: int = 60


FOLDER_CASES: dict[str, FolderCase] = {
    "FeatureStore.open": FolderCase(("mixtape.audio.store.FeatureStore.open",), "store", _touch_store, examples=80),
    "Positives.load": FolderCase(("mixtape.pairs.positives.Positives.load",), "positives", _touch_positives),
    "Positives.load[mix]": FolderCase(("mixtape.pairs.positives.Positives.load",), "positives-mix", _touch_positives),
    "load_export_folder": FolderCase(
        ("mixtape.models.export.load_export_folder",), "export", _touch_export, examples=40
    ),
    "EncoderBundle.load[export]": FolderCase(
        ("mixtape.models.bundle.EncoderBundle.load",), "export", _touch_bundle, examples=30
    ),
    "Embeddings.open": FolderCase(("mixtape.search.embeddings.Embeddings.open",), "embeddings", _touch_embeddings),
    "SimilarIndex.open": FolderCase(
        ("mixtape.search.neighbours.SimilarIndex.open", "mixtape.search.layout.read_layout"), "index", _touch_index
    ),
    "SimilarIndex.open[ivfpq, added]": FolderCase(
        ("mixtape.search.neighbours.SimilarIndex.open",), "index-ivfpq", _touch_index
    ),
    "Tagger.load": FolderCase(("mixtape.search.tagger.Tagger.load",), "tagger", _touch_tagger),
    "read_mtg_jamendo": FolderCase(("mixtape.evaluation.datasets.read_mtg_jamendo",), "splits", _touch_mtg),
    "load_tag_dataset[splits folder]": FolderCase(
        ("mixtape.evaluation.datasets.load_tag_dataset", "mixtape.evaluation.datasets.read_tag_csv"),
        "tag-csv",
        _touch_tag_csv,
    ),
    "World.load": FolderCase(("mixtape.world.build.World.load",), "world", _touch_world, examples=50),
}


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", sorted(FOLDER_CASES))
def test_folder_with_one_damaged_file_is_read_or_refused_naming_it(name: str, folders: dict[str, Path]) -> None:
    case = FOLDER_CASES[name]
    valid = folders[case.folder]
    files = _files(valid)
    originals = {rel: (valid / rel).read_bytes() for rel in files}

    @settings(FUZZ, max_examples=max(1, int(case.examples * SCALE)))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        rel = data.draw(st.sampled_from(files), label="file")
        content = data.draw(st.one_of(st.none(), damaged(originals[rel])), label="content (None: deleted)")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / valid.name
            shutil.copytree(valid, folder)
            if content is None:
                (folder / rel).unlink()
            else:
                (folder / rel).write_bytes(content)
            check_outcome(lambda: case.touch(folder), folder)

    check()


@pytest.mark.parametrize("name", sorted(FOLDER_CASES))
def test_valid_folder_is_read(name: str, folders: dict[str, Path]) -> None:
    case = FOLDER_CASES[name]
    assert case.touch(folders[case.folder]) is not None


# --- every reader is in the tables above ---------------------------------------------------------------

#: Public functions named like readers that read no file themselves, with the reason.
NOT_FILE_READERS: dict[str, str] = {
    "mixtape.models.weights.read_safetensors": (
        "the weights file of a folder whose header names it: fuzzed through load_export_folder and Tagger.load "
        "(both go through it)"
    ),
    "mixtape.stagefolder.StageFolder.read_header": (
        "every stage folder's header is read through it: fuzzed through FeatureStore.open, Positives.load, "
        "load_export_folder, Embeddings.open, SimilarIndex.open and Tagger.load"
    ),
    "mixtape.training.data.PairLoader.load_state_dict": (
        "restores the data order from a dict Lightning already loaded "
        "(the checkpoint is fuzzed through read_checkpoint)"
    ),
    "mixtape.search.query.load_query_encoder": (
        "takes an opened SimilarIndex; the encoder file is read by EncoderBundle.load (fuzzed)"
    ),
    "mixtape.models.inference.load_encoder": "wraps EncoderBundle.load (fuzzed for exports and checkpoints)",
    "mixtape.hear.load_model": "wraps mixtape.models.inference.load_encoder, i.e. EncoderBundle.load (fuzzed)",
    "mixtape.search.embeddings.read_track_vectors": (
        "an outside model's .npz or vectors.npy + tracks.tsv: fuzzed with hypothesis (random, truncated and "
        "mismatched files) in tests/search/test_outside_vectors.py"
    ),
}

_READER_NAME = re.compile(r"^(read_\w+|load(_\w+)?|open)$")


def _defined_readers() -> set[str]:
    """Qualified names of every public read_*/load/load_*/open function and method defined in the package."""
    found: set[str] = set()
    for info in pkgutil.walk_packages(mixtape.__path__, "mixtape."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and _READER_NAME.match(name):
                found.add(f"{module.__name__}.{name}")
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                for attr, member in vars(obj).items():
                    fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if inspect.isfunction(fn) and _READER_NAME.match(attr):
                        found.add(f"{module.__name__}.{name}.{attr}")
    return found


def _covered() -> Iterator[str]:
    for case in (*FILE_CASES.values(), *FOLDER_CASES.values()):
        yield from case.covers


def test_every_reader_is_fuzzed_or_listed_with_a_reason() -> None:
    defined = _defined_readers()
    covered = set(_covered())
    missing = sorted(defined - covered - NOT_FILE_READERS.keys())
    assert not missing, (
        f"readers without a fuzz case: {missing}; add them to FILE_CASES/FOLDER_CASES (or to NOT_FILE_READERS "
        "with the reason)"
    )
    stale = sorted((covered | NOT_FILE_READERS.keys()) - defined - {"mixtape.search.embed._PartStore.load"})
    assert not stale, f"listed readers that no longer exist: {stale}"


# --- the faults the properties above are most likely to miss, checked directly ------------------------


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _edit_json(file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(file.read_text(encoding="utf-8"))
    change(data)
    file.write_text(json.dumps(data), encoding="utf-8")


def test_truncated_frames_file_is_refused_at_open_not_at_read(folders: dict[str, Path], tmp_path: Path) -> None:
    """A frames file shorter than the index needs would SIGBUS the memory map on read: refused at open."""
    from mixtape.audio import FeatureStore, StoreError

    store = _copy(folders["store"], tmp_path)
    frames = store / "frames.f16"
    os.truncate(frames, frames.stat().st_size - 2 * 96)
    with pytest.raises(StoreError, match="frames.f16: frames file is .* but the index needs"):
        FeatureStore.open(store)


def test_impossible_frame_extents_in_the_index_are_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    """A negative or absurd offset from a damaged index line is refused before any memory map is made
    (offset + n_frames near 2^63 would overflow int64 and pass the size check as a negative number)."""
    from mixtape.audio import FeatureStore, StoreError

    for offset, n_frames in ((-5, 10), (2**62, 2**62), (0, -1)):
        store = tmp_path / f"s{offset}_{n_frames}"
        shutil.copytree(folders["store"], store)
        (store / "index.npz").unlink()
        lines = (store / "index.jsonl").read_text(encoding="utf-8").splitlines()
        row = json.loads(lines[0]) | {"offset": offset, "n_frames": n_frames}
        (store / "index.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n", encoding="utf-8")
        with pytest.raises(StoreError, match=rf"index.jsonl: track '{row['track_id']}' has frame offset"):
            FeatureStore.open(store)


def _npy_claiming(shape: tuple[int, ...], dtype: str = "<i8") -> bytes:
    """An .npy file whose header declares ``shape`` but which holds 16 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(16)


def test_a_huge_count_in_a_header_is_refused_not_allocated(folders: dict[str, Path], tmp_path: Path) -> None:
    """Sizes read from a damaged header (an array shape, a layer width) never reach an allocation:
    each would ask for terabytes; each is refused with the reader's error naming the file."""
    from mixtape.models.checkpoint import CheckpointMismatchError, read_checkpoint_encoder
    from mixtape.models.export import ExportError, load_export_folder
    from mixtape.pairs import Positives
    from mixtape.search import Tagger
    from mixtape.search.tagger import TaggerError

    tagger = _copy(folders["tagger"], tmp_path)
    _edit_json(tagger / "tagger.json", lambda m: m.update(dim=10**12))
    with pytest.raises(TaggerError, match=r"tagger.safetensors: weights do not fit the model in tagger.json \(shapes"):
        Tagger.load(tagger)

    export = _copy(folders["export"], tmp_path)
    _edit_json(export / "config.json", lambda m: m.update(backbone_kwargs={"channels": [4, 8, 8, 10**9]}))
    with pytest.raises(
        ExportError,
        match=r"model.safetensors: weights do not fit backbone 'small' as config.json records it \(shapes",
    ):
        load_export_folder(export)

    ckpt = torch.load(io.BytesIO(_checkpoint_bytes({})), weights_only=True)
    ckpt["hyper_parameters"]["model"]["backbone_options"] = {"channels": [8, 16, 32, 10**9]}
    torch.save(ckpt, tmp_path / "huge.ckpt")
    with pytest.raises(
        CheckpointMismatchError, match=r"huge.ckpt: encoder weights do not fit backbone 'small' \(shapes backbone"
    ):
        read_checkpoint_encoder(tmp_path / "huge.ckpt")

    positives = _copy(folders["positives"], tmp_path)
    _edit_json(
        positives / "positives.json", lambda m: m.pop("files", None)
    )  # as written before checksums were recorded
    (positives / "anchors.npy").write_bytes(_npy_claiming((10**15,)))
    with pytest.raises(MixtapeError, match=r"anchors.npy: unreadable positives file"):
        Positives.load(positives)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_damaged_snapshot_falls_back_to_the_journal(
    folders: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """index.npz is a cache: one that cannot be read (here: a member claiming 10^15 rows) is ignored
    and the store opens from index.jsonl with the same tracks."""
    import zipfile

    from mixtape.audio import FeatureStore

    store = _copy(folders["store"], tmp_path)
    want = FeatureStore.open(store).track_ids
    with zipfile.ZipFile(store / "index.npz", "a") as z:
        z.writestr("offset.npy", _npy_claiming((10**15,)))  # a second member of the same name: numpy reads the last
    assert FeatureStore.open(store).track_ids == want
    assert "index.npz is unreadable" in caplog.text


def test_a_mixture_part_naming_its_own_folder_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    """A part folder '.' would make loading recurse forever; '..' or a path would leave the folder."""
    from mixtape.pairs import Positives

    for i, name in enumerate((".", "..", "../x", "/tmp")):
        mix = tmp_path / f"mix{i}"
        shutil.copytree(folders["positives-mix"], mix)
        _edit_json(
            mix / "positives.json", lambda m, name=name: (m["parts"][0].update(folder=name), m.pop("files", None))
        )
        with pytest.raises(
            MixtapeError, match=r"positives.json: damaged \(parts must be a list of objects naming a subfolder"
        ):
            Positives.load(mix)


def test_an_index_kind_that_does_not_fit_the_faiss_index_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    from mixtape.search import SearchIndexError, SimilarIndex

    index = _copy(folders["index"], tmp_path)
    _edit_json(index / "index.json", lambda m: m.update(kind="ivf", params={"nprobe": 4}))
    with pytest.raises(SearchIndexError, match=r"index.json: nprobe=4 does not fit the ivf index"):
        SimilarIndex.open(index)
    _edit_json(index / "index.json", lambda m: m.update(kind="tree", n="many"))
    with pytest.raises(
        SearchIndexError,
        match=r"index.json: damaged \(kind: .*'flat', 'ivf', 'ivfpq' or 'hnsw' \(got 'tree'\); n: .*\(got 'many'\)",
    ):
        SimilarIndex.open(index)


@pytest.mark.parametrize(
    "reader, text, where",
    [
        ("tracks", 'track_id,path\nt1,a.wav\n"t2,b.wav\nt3,c.wav\n', "skipped"),
        ("jsonl", '{"playlist_id": "p", "tracks": ["t1", "t2"]}\n' + "[" * 100_000 + "\n", "report"),
        (
            "tag csv",
            'track_id,tags,split\nt1,rock,train\nt2,"' + "x" * 200_000 + '",test\n',
            "notes",
        ),  # longer than the csv module allows
        (
            "triplets",
            'anchor,candidate_a,candidate_b,votes_a,votes_b\nt1,t2,t3,1,2\nt1,t2,t3,"' + "9" * 200_000 + '",1\n',
            "skipped",
        ),
    ],
)
def test_lenient_readers_list_the_rows_they_skip(reader: str, text: str, where: str, tmp_path: Path) -> None:
    """Readers that skip bad rows keep the good ones and say which lines they skipped."""
    from mixtape.catalog import CatalogReport, read_playlists_jsonl, read_tracks
    from mixtape.evaluation.datasets import read_tag_csv
    from mixtape.evaluation.similarity import read_triplets

    path = tmp_path / "table.csv"
    path.write_text(text, encoding="utf-8")
    if reader == "tracks":
        table = read_tracks(path)
        assert [r.track_id for r in table.records] == ["t1", "t3"] and f"{path}:3" in table.skipped[0]
    elif reader == "jsonl":
        report = CatalogReport()
        assert (
            read_playlists_jsonl(path, report).ids == ["p"]
            and report.examples
            and f"{path}:2" in next(iter(report.examples.values()))[0]
        )
    elif reader == "tag csv":
        dataset = read_tag_csv(path)
        assert dataset.splits["train"].track_ids == ["t1"] and any("line 3" in n for n in dataset.notes)
    else:
        triplets = read_triplets(path, {"t1": 0, "t2": 1, "t3": 2})
        assert len(triplets) == 1 and f"{path}:3" in triplets.skipped["bad row"][0]


def test_damaged_training_log_lines_are_left_out_of_the_curve(tmp_path: Path) -> None:
    from mixtape.training.callbacks import read_metrics

    log_file = tmp_path / "version_0" / "metrics.csv"
    log_file.parent.mkdir()
    log_file.write_bytes(b"step,train/loss\n0,2.0\ninf,1.9\n\xff\xfe,1.8\n3,nan\n4,1.5,extra\n5,1.4\n")
    assert read_metrics(tmp_path) == {"train/loss": {0: 2.0, 5: 1.4}}


def test_a_damaged_saved_chunk_is_embedded_again(tmp_path: Path) -> None:
    """The embed run's saved chunks are a cache: one that is torn, or whose arrays do not fit its
    tracks, loads as None (the tracks are embedded again), never as wrong vectors."""
    from mixtape.search.embed import _PartStore

    parts = _PartStore(tmp_path, "fp")
    parts.save(0, CHUNK_IDS, CHUNK_CHECKSUMS, np.ones((2, 4), np.float32), np.zeros(3, bool), [])
    assert parts.load(0, CHUNK_IDS, CHUNK_CHECKSUMS) is None
    parts.path(0).write_bytes(_chunk_bytes()[:100])
    assert parts.load(0, CHUNK_IDS, CHUNK_CHECKSUMS) is None
    parts.path(0).write_bytes(_chunk_bytes())
    vectors, failed, reasons = parts.load(0, CHUNK_IDS, CHUNK_CHECKSUMS)
    assert vectors.shape == (3, 4) and failed.tolist() == [False, True, False] and reasons == ["too short"]


def _flac_declaring(total_samples: int, rate: int) -> bytes:
    """A short FLAC whose STREAMINFO claims ``total_samples`` at ``rate`` (what a damaged header says)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, np.float32), 16000, format="FLAC")
    data = bytearray(buf.getvalue())
    info = int.from_bytes(
        data[18:26], "big"
    )  # STREAMINFO bytes 10-17: rate (20 bits), channels, bits, total samples (36 bits)
    data[18:26] = ((rate << 44) | (info & (0xFF << 36)) | total_samples).to_bytes(8, "big")
    return bytes(data)


def test_audio_whose_header_declares_days_of_samples_is_not_preallocated(tmp_path: Path) -> None:
    """Decoding starts from a bounded buffer: 2^36 declared samples (256 GiB of float32) are not reserved."""
    import tracemalloc

    from mixtape.audio import AudioDecodeError, load_audio

    path = tmp_path / "huge.flac"
    path.write_bytes(_flac_declaring((1 << 36) - 1, 655_350))
    tracemalloc.start()  # numpy reports its array allocations to tracemalloc
    try:
        with pytest.raises(AudioDecodeError, match="huge.flac: "):
            load_audio(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 30
