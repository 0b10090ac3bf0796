"""Reading artist/album/composer/title tags with mutagen: every container the tests can write,
files without tags (empty fields), and files that cannot be read (an error naming the file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from audio.audio_signals import tone
from audio.tagged_audio import write_garbage, write_tagged

from mixtape.audio import TAG_FIELDS, TagReadError, read_tags
from mixtape.errors import MixtapeError

TAGS = {"artist": "Ann Example", "album": "First Light", "composer": "J. S. Bach", "title": "Song één"}


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_tags_are_read_from_each_container(tmp_path: Path, suffix: str) -> None:
    path = write_tagged(tmp_path / f"track{suffix}", TAGS)
    assert read_tags(path) == TAGS


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_a_file_without_tags_gives_empty_fields(tmp_path: Path, suffix: str) -> None:
    path = write_tagged(tmp_path / f"plain{suffix}", {})
    assert read_tags(path) == dict.fromkeys(TAG_FIELDS, "")


def test_multi_valued_and_blank_tags(tmp_path: Path) -> None:
    """The first non-empty value is the primary one; blank values and padding are dropped."""
    path = write_tagged(tmp_path / "duo.flac", {"artist": ["", "  Bob  ", "Carl"], "album": "   "})
    assert read_tags(path) == {"artist": "Bob", "album": "", "composer": "", "title": ""}


def test_wav_info_chunk_is_read_when_there_is_no_id3(tmp_path: Path) -> None:
    """WAV files tagged by many tools carry RIFF INFO (which mutagen does not read): libsndfile does."""
    path = tmp_path / "info.wav"
    with sf.SoundFile(path, "w", 16000, 1) as f:
        f.artist, f.album = "Info Artist", "Info Album"
        f.write(tone(220, 1.0))
    assert read_tags(path) == {"artist": "Info Artist", "album": "Info Album", "composer": "", "title": ""}


def test_a_corrupt_file_raises_an_error_naming_it(tmp_path: Path) -> None:
    path = write_garbage(tmp_path / "broken.flac")
    with pytest.raises(TagReadError, match=r"broken\.flac: cannot read its tags: damaged or not an audio file") as info:
        read_tags(path)
    assert isinstance(info.value, MixtapeError) and info.value.path == path


def test_missing_file_and_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(TagReadError, match=r"gone\.ogg: cannot read its tags: file not found"):
        read_tags(tmp_path / "gone.ogg")
    (tmp_path / "dir.mp3").mkdir()
    with pytest.raises(TagReadError, match=r"dir\.mp3: cannot read its tags: is a folder"):
        read_tags(tmp_path / "dir.mp3")


def test_an_unknown_format_has_no_tags(tmp_path: Path) -> None:
    """A format mutagen does not parse (here Sun .au) has no readable tags, which is not an error."""
    path = tmp_path / "x.au"
    sf.write(path, tone(220, 1.0), 16000)
    assert read_tags(path) == dict.fromkeys(TAG_FIELDS, "")
