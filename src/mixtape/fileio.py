"""Small file helpers used by every stage: atomic writes, checksums, progress bars, logging.

Everything a stage writes goes through a temp file and a rename, so a killed process never
leaves a half-written file where a reader would find it. A temp file is named
``.<name>.<host>.<pid>.<random>.tmp``; what a killed writer leaves behind is removed by the next
write of the same file on the same machine once that pid is gone, so debris never piles up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm.auto import tqdm

from mixtape.errors import MixtapeError
from mixtape.workers import on_orphan_exit, process_alive

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


TEMP_SUFFIX = ".tmp"


def _host_tag() -> str:
    """This machine's name as one dot-free token: temp names carry it, so a sweep on a shared
    filesystem only judges the pids of its own machine."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:24] or "host"


def temp_prefix(path: Path, host: str | None = None, pid: int | None = None) -> str:
    """``.<name>.<host>.<pid>.``: the start of the temp files atomic_open makes for ``path``."""
    return f".{path.name}.{host or _host_tag()}.{os.getpid() if pid is None else pid}."


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files of ``path`` left by writers of this machine that no longer run
    (a SIGKILL or power loss between mkstemp and the rename); returns what was removed.

    Only names of exactly the form ``.<name>.<host>.<pid>.<random>.tmp`` with this host count,
    so a temp of ``<name>.1`` or one written from another machine on a shared disk is never touched.
    """
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return []
    host, start = _host_tag(), f".{path.name}."
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(start) and p.name.endswith(TEMP_SUFFIX)]
    except OSError:  # sweeping is housekeeping: it never stops the write itself
        return []
    for tmp in candidates:
        fields = tmp.name[len(start) : -len(TEMP_SUFFIX)].split(".")
        if len(fields) != 3 or fields[0] != host or not fields[1].isdigit():
            continue
        pid = int(fields[1])
        if pid == os.getpid() or process_alive(pid):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or another user's in a shared folder
            tmp.unlink()
            removed.append(tmp)
    return removed


#: Temp files this process is writing (pid, path): removed if it exits as an orphan mid-write.
_UNFINISHED: set[tuple[int, str]] = set()


def _remove_unfinished_temps() -> None:
    """A worker whose run died exits from a watcher thread (``os._exit``), skipping every ``finally``:
    its temp would stay until the same file is written again, and a re-run that finds the file already
    complete never writes it again."""
    for pid, tmp in list(_UNFINISHED):
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(tmp)


on_orphan_exit(_remove_unfinished_temps)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    Stale temps of ``path`` from killed writers are swept first (see :func:`sweep_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    entry = (os.getpid(), tmp)
    _UNFINISHED.add(entry)
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
    finally:
        _UNFINISHED.discard(entry)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


LOCK_FILE = ".lock"


def acquire_folder_lock(folder: Path, busy: str, error: type[Exception] = MixtapeError) -> IO[bytes] | None:
    """An exclusive advisory lock on ``folder/.lock`` for one writer of the folder, held until the
    returned handle is closed or the process dies (a SIGKILL frees it: no stale lock to remove).

    ``busy`` is the message raised (as ``error``) when another process holds it. Returns None where
    the OS has no advisory locks (one writer per folder is then the user's job).
    """
    try:
        import fcntl
    except ImportError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / LOCK_FILE, "a+b")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise error(busy) from None
    return lock


@contextlib.contextmanager
def folder_lock(folder: Path, busy: str, error: type[Exception] = MixtapeError) -> Iterator[None]:
    """:func:`acquire_folder_lock` for the duration of a ``with`` block. A folder the lock had to
    create is removed again when the block wrote nothing into it (a refused run leaves no trace)."""
    created = not folder.exists()
    lock = acquire_folder_lock(folder, busy, error)
    try:
        yield
    finally:
        if lock is not None:
            lock.close()
        if created:
            with contextlib.suppress(OSError):
                if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
                    (folder / LOCK_FILE).unlink()
                    folder.rmdir()


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
    except RecursionError:
        raise error(f"{path}: unreadable, JSON nested too deeply to be a mixtape file") from None
    except OSError as err:  # a folder in its place, permissions, an I/O error
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        got = data.get("format") if isinstance(data, dict) else None
        raise error(f"{path}: not a mixtape {kind} (format {got!r})")
    if version is not None and data.get("version") != version:
        raise error(
            f"{path}: {kind} format version {data.get('version')!r} is not supported (this mixtape reads "
            f"version {version}); {missing_hint}"
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise error(f"{path}: missing key(s) {', '.join(missing)}")
    return data


#: What numpy and scipy raise for a damaged ``.npy``/``.npz`` file (a torn zip, a bad CRC, a header
#: with a wrong shape or dtype, a huge count that cannot be allocated, a missing member): a reader
#: turns any of these into its own MixtapeError naming the file.
ARRAY_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    OverflowError,
    MemoryError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
    SyntaxError,  # numpy parses an old-format header with the tokenizer: a damaged one raises these two
    tokenize.TokenError,
)


def read_text_file(
    path: str | Path, what: str, error: type[Exception] = MixtapeError, encoding: str = "utf-8-sig"
) -> str:
    """The text of an input file the user named, with the errors they can act on raised as ``error``.

    A missing file is ``{what} not found: {path}``; one that cannot be read (permissions, a folder given
    for a file, an I/O error) or is not UTF-8 names the file and says why. ``utf-8-sig`` drops the byte
    order mark spreadsheet programs write.
    """
    try:
        return Path(path).read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as err:  # permissions, a folder given for a file, an I/O error
        raise error(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text ({err})") from None


def file_checksum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """blake2b of a file's bytes, hex; recorded by every index so stale references are detected."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def progress(
    iterable: Iterable[T] | None, *, desc: str, total: int | None = None, unit: str = "it", **kwargs: Any
) -> Iterable[T]:
    """A progress bar with rate and ETA on stderr; silent when MIXTAPE_NO_PROGRESS is set (tests, CI logs).

    ``iterable=None`` makes a bar updated by hand (``.update(n)``), as the pretraining callback does.
    """
    disable = bool(os.environ.get("MIXTAPE_NO_PROGRESS"))
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
