"""Small file helpers used by every stage: atomic writes, checksums, progress bars, logging.

Everything a stage writes goes through a temp file and a rename, so a killed process never
leaves a half-written file where a reader would find it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm.auto import tqdm

from mixtape.errors import MixtapeError

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """A module logger; the CLI configures handlers once, libraries never do."""
    return logging.getLogger(name)


def setup_logging(level: int = logging.INFO, log_file: Path | None = None) -> None:
    """Configure the root logger for a command-line run (stderr, plus a file in the run folder)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the result should be as readable as a plain open()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def read_json_header(
    path: Path,
    *,
    kind: str,
    format_name: str,
    version: int | None,
    missing_hint: str,
    error: type[Exception] = MixtapeError,
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The JSON file that says what a stage's folder holds (its format and version), checked.

    Every folder a stage writes (feature store, positives, export, embeddings, index, tagger) carries
    one, written last; readers refuse a missing, foreign or newer one with the same kind of message.
    ``version=None`` skips the version check.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found ({missing_hint})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: unreadable, not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        got = data.get("format") if isinstance(data, dict) else None
        raise error(f"{path}: not a mixtape {kind} (format {got!r})")
    if version is not None and data.get("version") != version:
        raise error(f"{path}: {kind} format version {data.get('version')!r} is not supported (this mixtape reads version {version}); {missing_hint}")
    missing = [k for k in required if k not in data]
    if missing:
        raise error(f"{path}: missing key(s) {', '.join(missing)}")
    return data


def file_checksum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """blake2b of a file's bytes, hex; recorded by every index so stale references are detected."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it", **kwargs: Any) -> Iterable[T]:
    """A progress bar with rate and ETA on stderr; silent when MIXTAPE_NO_PROGRESS is set (tests, CI logs)."""
    disable = bool(os.environ.get("MIXTAPE_NO_PROGRESS"))
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
