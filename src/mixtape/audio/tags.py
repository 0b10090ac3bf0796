"""Reading the artist, album, composer and title tags of an audio file (with mutagen).

Grouping a user's recordings by a tag (``mixtape similarity --audio FOLDER --group-by artist``)
needs the tags of every file, whatever container holds them: Vorbis comments (FLAC, Ogg Vorbis,
Opus), ID3 (MP3, and WAV/AIFF with an ``id3`` chunk), MP4 atoms, ASF attributes, APEv2. A file
without tags is normal and reads as empty fields; a file mutagen cannot parse raises
:class:`TagReadError` naming it, which callers record per file instead of stopping a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mixtape.errors import MixtapeError

#: The fields ``read_tags`` returns, always all of them ("" when the file does not say).
TAG_FIELDS = ("artist", "album", "composer", "title")

# Where each field lives in the tag formats that do not use the plain names.
_ID3_FRAMES = {"artist": "TPE1", "album": "TALB", "composer": "TCOM", "title": "TIT2"}
_ASF_NAMES = {"artist": "Author", "album": "WM/AlbumTitle", "composer": "WM/Composer", "title": "Title"}
# RIFF INFO / AIFF text chunks, which mutagen does not read but libsndfile does (no composer there).
_SNDFILE_SUFFIXES = frozenset({".wav", ".aif", ".aiff", ".aifc", ".w64", ".caf"})


class TagReadError(MixtapeError):
    """A file whose tags cannot be read (not found, unreadable, or damaged so mutagen cannot parse it)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: cannot read its tags: {reason}")


def _first_text(values: Any) -> str:
    """The first non-empty value of a tag as clean text (tags may hold several values, or odd objects)."""
    if values is None:
        return ""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        text = str(getattr(value, "text", value) if not isinstance(value, str) else value)
        text = text.replace("\x00", " ").strip()
        if text:
            return text
    return ""


def _from_mapping(tags: Mapping[str, Any]) -> dict[str, str]:
    """Fields from a tag mapping keyed by plain names, case-insensitively (Vorbis comments, Easy*, APEv2)."""
    by_lower: dict[str, Any] = {}
    for key in tags.keys():
        by_lower.setdefault(str(key).lower(), key)
    return {f: _first_text(tags[by_lower[f]]) if f in by_lower else "" for f in TAG_FIELDS}


def _from_tags(tags: Any) -> dict[str, str]:
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3

    if isinstance(tags, ID3):  # WAV/AIFF/DSF are not wrapped by mutagen's "easy" interface
        out = {}
        for field, frame in _ID3_FRAMES.items():
            found = tags.getall(frame)
            out[field] = _first_text(found[0].text) if found else ""
        return out
    if isinstance(tags, ASFTags):
        return {f: _first_text([v.value for v in tags.get(name, [])]) for f, name in _ASF_NAMES.items()}
    return _from_mapping(tags)


def _sndfile_strings(path: Path) -> dict[str, str]:
    """Artist/album/title from RIFF INFO or AIFF chunks via libsndfile; empty when it cannot open the file."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            meta = f.copy_metadata()
    except Exception:  # not readable by libsndfile: decoding will report it; tags are simply absent
        return {}
    return {f: _first_text(meta.get(f)) for f in ("artist", "album", "title")}


def _reason(err: Exception) -> str:
    """What went wrong, in words; mutagen wraps the OS error of an unreadable file in a MutagenError."""
    inner = err.args[0] if err.args and isinstance(err.args[0], OSError) else err
    if isinstance(inner, FileNotFoundError):
        return "file not found"
    if isinstance(inner, PermissionError):
        return "permission denied"
    if isinstance(inner, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(inner, OSError):
        return f"unreadable ({inner.strerror or inner})"
    return f"damaged or not an audio file ({type(err).__name__}: {err})"


def read_tags(path: str | Path) -> dict[str, str]:
    """``{"artist", "album", "composer", "title"}`` of one audio file, "" for each field it lacks.

    Multi-valued tags give their first non-empty value (the primary artist). A file in a format
    mutagen does not know gives empty fields (its audio may still decode). Raises
    :class:`TagReadError` naming the file when it is missing, unreadable or too damaged to parse.
    """
    import mutagen

    path = Path(path)
    try:
        audio = mutagen.File(path, easy=True)
        fields = (
            _from_tags(audio.tags) if audio is not None and audio.tags is not None else dict.fromkeys(TAG_FIELDS, "")
        )
    except RecursionError:
        raise TagReadError(path, "tag structure nested too deeply") from None
    except (
        Exception
    ) as err:  # mutagen's parsers raise many kinds on damaged files (MutagenError, struct.error, ValueError, ...)
        raise TagReadError(path, _reason(err)) from None
    if path.suffix.lower() in _SNDFILE_SUFFIXES and not any(fields.values()):
        for field, value in _sndfile_strings(path).items():
            fields[field] = fields[field] or value
    return fields
