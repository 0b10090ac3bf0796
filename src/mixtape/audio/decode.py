"""Audio decoding: any file libsndfile (or, failing that, ffmpeg) reads, to 16 kHz mono float32.

Every failure is an :class:`AudioDecodeError` whose message starts with the file's path and says
what is wrong with it, because in a batch of a million files the message is all the user gets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from mixtape.errors import MixtapeError

#: Frames read per block: bounds the multi-channel buffer (~8 MB for 8 channels) while downmixing.
BLOCK_FRAMES = 1 << 18
#: A file that decodes to less than this share of the length its header declares is truncated...
TRUNCATED_SHARE = 0.95
#: ...provided at least this much is missing (header estimates for VBR mp3 without a Xing tag are rough).
TRUNCATED_MIN_MISSING_S = 1.0
#: Most samples allocated before any is decoded: a damaged header (a FLAC declaring 2^36 samples at
#: 655 kHz) must not reserve gigabytes up front; longer audio grows the buffer as it is read.
MAX_INITIAL_FRAMES = 1 << 25
#: Seconds the ffmpeg fallback may take for one file before it is given up as hung.
FFMPEG_TIMEOUT_S = 600
#: libsndfile's log line for a WAV/AIFF whose data chunk declares more bytes than the file holds.
_SHORT_DATA_CHUNK = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: Data sizes that streaming writers leave in a header they cannot go back to: unknown, not truncated.
_STREAMING_SIZES = (0, 0x7FFFFFFF, 0xFFFFFFFF)


class AudioDecodeError(MixtapeError):
    """An audio file that cannot be turned into samples; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[AudioDecodeError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


def downmix(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``[n, channels]`` samples.

    A running sum over columns: ~7x faster than ``mean(axis=1)`` and, unlike a matrix product, it
    never starts BLAS threads that would fight the worker processes for cores.
    """
    if samples.ndim == 1:
        return samples
    mono = samples[:, 0].copy()
    for c in range(1, samples.shape[1]):
        mono += samples[:, c]
    if samples.shape[1] > 1:
        mono *= np.float32(1.0 / samples.shape[1])
    return mono


def _declared_frames(f: sf.SoundFile) -> int:
    """Frames the header declares. libsndfile trims a WAV/AIFF's frame count to the bytes present,
    which hides a truncated file; its log still says how many bytes the data chunk declared."""
    m = _SHORT_DATA_CHUNK.search(f.extra_info)
    if m is None:
        return f.frames
    declared, present = int(m[1]), int(m[2])
    if declared in _STREAMING_SIZES or present <= 0 or declared <= present:
        return f.frames
    return f.frames * declared // present


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Decode with libsndfile block by block into one reused buffer, downmixing as it goes (~15% less
    CPU than fresh blocks). Raises sf.LibsndfileError/RuntimeError when libsndfile cannot read it."""
    with sf.SoundFile(path) as f:
        rate, declared, channels = f.samplerate, _declared_frames(f), f.channels
        block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
        # The declared length is only an estimate for some formats: start there (capped), grow if needed.
        mono = np.empty(min(max(f.frames, 0), rate * 3600, MAX_INITIAL_FRAMES), dtype=np.float32)
        n = 0
        # Not f.blocks(): it zero-fills a short read up to the declared length, hiding truncation.
        while len(got := f.read(BLOCK_FRAMES, dtype="float32", always_2d=True, out=block)):
            if n + len(got) > len(mono):
                mono = np.resize(mono, max(2 * len(mono), n + len(got)))
            mono[n : n + len(got)] = downmix(got)
            n += len(got)
    mono = mono[:n]
    missing = declared - n
    if declared > 0 and n < TRUNCATED_SHARE * declared and missing > TRUNCATED_MIN_MISSING_S * rate:
        raise AudioDecodeError(
            path, f"truncated: decoded {n / rate:.2f} s of the {declared / rate:.2f} s its header declares"
        )
    return mono, rate


def _read_ffmpeg(path: Path, ffmpeg: str, sample_rate: int) -> np.ndarray:
    """Decode with an ffmpeg subprocess straight to mono float32 at ``sample_rate`` (ffmpeg's own resampler)."""
    cmd = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(path),
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AudioDecodeError(path, f"ffmpeg did not finish within {FFMPEG_TIMEOUT_S} s") from None
    except OSError as err:
        raise AudioDecodeError(path, f"could not run ffmpeg ({err})") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioDecodeError(
            path,
            "not readable by libsndfile nor ffmpeg (ffmpeg: "
            f"{detail[-1] if detail else f'exit code {proc.returncode}'})",
        )
    usable = len(proc.stdout) - len(proc.stdout) % 4
    return np.frombuffer(proc.stdout[:usable], dtype="<f4").astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = 16000, quality: str = "HQ") -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``: channels averaged, resampled with soxr.

    Tries libsndfile (wav, flac, ogg, mp3, ...), then ffmpeg when it is on PATH. Raises
    :class:`AudioDecodeError` for a missing, empty, unreadable or truncated file and for NaN/Inf samples.
    Short or silent audio is returned as it is: whether it is usable is the caller's rule.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioDecodeError(path, "file not found") from None
    except OSError as err:
        raise AudioDecodeError(path, f"cannot access file ({err.strerror or err})") from None
    if not path.is_file():
        raise AudioDecodeError(path, "not a regular file")
    if size == 0:
        raise AudioDecodeError(path, "empty file (0 bytes)")
    try:
        open(path, "rb").close()  # libsndfile would only say "System error"
    except PermissionError:
        raise AudioDecodeError(
            path, "permission denied: this user may not read the file (check its permissions and owner)"
        ) from None
    try:
        mono, rate = _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        ffmpeg = shutil.which("ffmpeg")
        message = str(err).replace(f"Error opening {str(path)!r}: ", "").rstrip(".")
        if ffmpeg is None:
            raise AudioDecodeError(
                path, f"not a readable audio file (libsndfile: {message}; ffmpeg is not on PATH to try other formats)"
            ) from None
        mono, rate = _read_ffmpeg(path, ffmpeg, sample_rate), sample_rate
    bad = np.count_nonzero(~np.isfinite(mono))
    if bad:
        raise AudioDecodeError(path, f"{bad} of {len(mono)} samples are NaN or infinite")
    if rate != sample_rate and len(mono):
        mono = soxr.resample(mono, rate, sample_rate, quality=quality)
    return np.ascontiguousarray(mono, dtype=np.float32)
