"""Short audio files with artist/album/composer tags written by mutagen, for the tag and
group-similarity tests. Imported as ``audio.tagged_audio`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from audio.audio_signals import tone


def write_tagged(
    path: Path, tags: dict[str, str | list[str]], freq: float = 440.0, seconds: float = 2.2, sample_rate: int = 16000
) -> Path:
    """A tone saved as WAV, FLAC or Ogg Vorbis (by suffix), then tagged in that format's own way:
    ID3 frames in a WAV ``id3`` chunk, Vorbis comments in FLAC and Ogg."""
    from mutagen.flac import FLAC
    from mutagen.id3 import TALB, TCOM, TIT2, TPE1
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    path.parent.mkdir(parents=True, exist_ok=True)
    x = tone(freq, seconds, sample_rate) + 0.05 * np.random.default_rng(int(freq)).standard_normal(
        int(round(seconds * sample_rate))
    ).astype(np.float32)
    suffix = path.suffix.lower()
    if suffix == ".ogg":
        sf.write(path, x, sample_rate, format="OGG", subtype="VORBIS")
    else:
        sf.write(path, x, sample_rate)
    if not tags:
        return path
    values = {k: [v] if isinstance(v, str) else list(v) for k, v in tags.items()}
    if suffix == ".wav":
        audio = WAVE(path)
        audio.add_tags()
        frames = {"artist": TPE1, "album": TALB, "composer": TCOM, "title": TIT2}
        for key, text in values.items():
            audio.tags.add(frames[key](encoding=3, text=text))
    else:
        audio = FLAC(path) if suffix == ".flac" else OggVorbis(path)
        for key, text in values.items():
            audio[key] = text
    audio.save()
    return path


def write_garbage(path: Path, size: int = 4000) -> Path:
    """Bytes that are no audio at all, under an audio suffix: a corrupt file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path
