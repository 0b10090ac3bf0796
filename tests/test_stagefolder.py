"""Stage folders: one declaration per stage gives the header's writing, reading, recognising and up-to-date test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtape.errors import MixtapeError
from mixtape.stagefolder import STAGE_FOLDERS, StageFolder, StageHeader, fingerprint, register_stage_folder

DEMO = StageFolder("demo folder", "demo.json", "mixtape-demo", 2, "make one with `mixtape demo-stage`")


def test_a_header_round_trips_with_its_format_and_version_first(tmp_path: Path) -> None:
    DEMO.write_header(tmp_path, {"format": "ignored", "n": 3, "fingerprint": "abc"})
    text = (tmp_path / "demo.json").read_text(encoding="utf-8")
    assert list(json.loads(text)) == ["format", "version", "n", "fingerprint"]
    assert DEMO.read_header(tmp_path, required=("n",)) == {
        "format": "mixtape-demo",
        "version": 2,
        "n": 3,
        "fingerprint": "abc",
    }


def test_foreign_missing_newer_or_incomplete_headers_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(MixtapeError, match=r"demo.json: not found \(make one with `mixtape demo-stage`\)"):
        DEMO.read_header(tmp_path)
    (tmp_path / "demo.json").write_text('{"format": "something-else"}')
    with pytest.raises(MixtapeError, match=r"demo.json: not a mixtape demo folder \(format 'something-else'\)"):
        DEMO.read_header(tmp_path)
    (tmp_path / "demo.json").write_text('{"format": "mixtape-demo", "version": 3}')
    with pytest.raises(MixtapeError, match="format version 3 is not supported .* reads version 2"):
        DEMO.read_header(tmp_path)
    (tmp_path / "demo.json").write_text('{"format": "mixtape-demo", "version": 2}')
    with pytest.raises(ValueError, match=r"missing key\(s\) n"):
        DEMO.read_header(tmp_path, error=ValueError, required=("n",))


def test_is_current_compares_the_recorded_fingerprint(tmp_path: Path) -> None:
    key = fingerprint({"inputs": [tmp_path / "a.csv"], "k": 10})
    assert not DEMO.is_current(tmp_path, key)  # nothing written yet
    DEMO.write_header(tmp_path, {"fingerprint": key})
    assert DEMO.is_current(tmp_path, key)
    assert not DEMO.is_current(tmp_path, fingerprint({"inputs": [tmp_path / "a.csv"], "k": 5}))
    (tmp_path / "demo.json").write_text("{torn")
    assert not DEMO.is_current(tmp_path, key)


def test_check_words_each_header_problem_and_passes_a_sound_one(tmp_path: Path) -> None:
    assert DEMO.check(tmp_path) == [f"{tmp_path / 'demo.json'}: not found (make one with `mixtape demo-stage`)"]
    DEMO.write_header(tmp_path, {"n": 1})
    assert DEMO.check(tmp_path, required=("n",)) == []
    assert DEMO.check(tmp_path, required=("m",)) == [f"{tmp_path / 'demo.json'}: missing key(s) m"]


class CountHeader(StageHeader):
    n: int


TYPED = StageFolder("typed folder", "typed.json", "mixtape-typed", 1, "make one", model=CountHeader)


def test_a_typed_header_is_refused_when_damaged_never_coerced(tmp_path: Path) -> None:
    TYPED.write_header(tmp_path, {"n": 3, "extra": [1]})
    header = TYPED.read(tmp_path)
    assert isinstance(header, CountHeader) and header.n == 3 and header.model_extra == {"extra": [1]}
    for bad, why in (("3", "valid integer"), (True, "valid integer"), (None, "valid integer")):
        TYPED.write_header(tmp_path, {"n": bad})
        with pytest.raises(MixtapeError, match=rf"typed.json: damaged \(n: .*{why}.*\); make one"):
            TYPED.read_header(tmp_path)
    TYPED.write_header(tmp_path, {})
    assert TYPED.check(tmp_path) == [f"{tmp_path / 'typed.json'}: damaged (n: field required); make one"]


def test_fingerprint_is_canonical() -> None:
    assert fingerprint({"a": 1, "b": [Path("x")]}) == fingerprint({"b": ["x"], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_holds_recognises_its_own_and_damaged_headers_only(tmp_path: Path) -> None:
    assert not DEMO.holds(tmp_path)
    (tmp_path / "demo.json").write_text('{"format": "mixtape-other"}')
    assert not DEMO.holds(tmp_path)
    (tmp_path / "demo.json").write_text("not json")
    assert DEMO.holds(tmp_path)  # a damaged header is ours: doctor reports it


def test_a_kind_is_registered_once(tmp_path: Path) -> None:
    import mixtape.audio.store  # noqa: F401  (registers the feature store)

    store = STAGE_FOLDERS["feature store"]
    assert register_stage_folder(store) is store
    with pytest.raises(MixtapeError, match="already registered"):
        register_stage_folder(StageFolder("feature store", "other.json", "x", 1, "y"))


def test_doctor_checks_every_registered_stage_folder() -> None:
    from mixtape.doctor import UNCHECKED_STAGE_FOLDERS, _kinds

    labels = [k[0] for k in _kinds()]
    assert set(STAGE_FOLDERS) - UNCHECKED_STAGE_FOLDERS
    assert len(labels) == len(set(STAGE_FOLDERS) - UNCHECKED_STAGE_FOLDERS) + 2  # + pretrain runs, experiments
