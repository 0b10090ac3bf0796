"""The rules every stage's output folder follows, in one place.

A stage (features, positives, export, embeddings, index, tagger, world) writes its data files first
and a small JSON *header* last: the header says what the folder holds (``format``), in which layout
(``version``), and records what the folder was made from, so a complete header always describes
complete data and a re-run can tell "already up to date" from "inputs changed". Each stage declares
its folder once as a ``StageFolder`` and registers it; readers, writers and ``mixtape doctor`` all go
through that declaration instead of repeating file and format names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, read_json_header


def fingerprint(value: Any) -> str:
    """blake2b of ``value`` as canonical JSON (sorted keys; paths and other objects as text): what a
    header records to say which inputs and settings made the folder."""
    blob = json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()


class StageHeader(BaseModel):
    """The typed part of a stage's header: every header has a format and a version; a stage subclasses
    this with the fields its readers use (strict types: a damaged header is refused, never coerced).
    Fields it does not declare are kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: str
    version: int


def _validation_problems(err: ValidationError) -> str:
    """``field: what is wrong (got value)`` for each problem, in the order pydantic found them."""
    out = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "header"
        got = f" (got {e['input']!r})" if e["type"] != "missing" else ""
        out.append(f"{where}: {e['msg'].lower()}{got}")
    return "; ".join(out)


@dataclass(frozen=True)
class StageFolder:
    """One stage's output folder: its header file, and the format name and version the header carries.

    ``check_version`` False: the version is written but not checked on reading (a format that has
    only ever had one layout and tolerates additions). ``make`` says in a reader's words how such a
    folder is made (it ends every "not found" and "unsupported version" error).
    """

    kind: str
    header_file: str
    format: str
    version: int
    make: str
    check_version: bool = True
    model: type[StageHeader] = StageHeader

    def header_path(self, folder: str | Path) -> Path:
        return Path(folder) / self.header_file

    def header(self, **fields: Any) -> dict[str, Any]:
        """A new header: ``format`` and ``version`` first, then ``fields``."""
        return {"format": self.format, "version": self.version, **fields}

    def write_header(
        self,
        folder: str | Path,
        fields: Mapping[str, Any],
        indent: int | None = 2,
        default: Callable[[Any], Any] | None = None,
        error: type[Exception] = MixtapeError,
    ) -> Path:
        """Write the header atomically; call it after every data file is in place. ``default`` turns
        values JSON does not know (numpy scalars, ...) into ones it does."""
        header = self.header(**{k: v for k, v in fields.items() if k not in ("format", "version")})
        try:
            text = json.dumps(header, indent=indent, default=default)
        except (TypeError, ValueError) as err:
            raise error(f"{self.header_path(folder)}: header is not JSON-serialisable: {err}") from None
        return atomic_write_text(self.header_path(folder), text + "\n")

    def read_header(
        self,
        folder: str | Path,
        error: type[Exception] = MixtapeError,
        required: tuple[str, ...] = (),
        hint: str | None = None,
    ) -> dict[str, Any]:
        """The folder's header, checked: present, JSON, this format, a version this mixtape reads, and
        holding ``required`` and what the stage's header ``model`` types; otherwise ``error`` naming the
        file (``hint`` replaces ``make`` in it). The JSON as written: fields the model defaults stay absent."""
        return self._read(folder, error, required, hint)[0]

    def read(self, folder: str | Path, error: type[Exception] = MixtapeError, hint: str | None = None) -> StageHeader:
        """The folder's header as the stage's typed model (checked as ``read_header`` checks it)."""
        return self._read(folder, error, (), hint)[1]

    def _read(
        self, folder: str | Path, error: type[Exception], required: tuple[str, ...], hint: str | None
    ) -> tuple[dict[str, Any], StageHeader]:
        """The header as written and as typed, read and validated once."""
        data = read_json_header(
            self.header_path(folder),
            kind=self.kind,
            format_name=self.format,
            version=self.version if self.check_version else None,
            missing_hint=hint or self.make,
            error=error,
            required=required,
        )
        try:
            return data, self.model.model_validate(data)
        except ValidationError as err:
            raise error(
                f"{self.header_path(folder)}: damaged ({_validation_problems(err)}); {hint or self.make}"
            ) from None

    def check(self, folder: str | Path, required: tuple[str, ...] = ()) -> list[str]:
        """What is wrong with the folder's header, each finding naming the file and how to make the
        folder again; empty when the header is sound (the data files are the stage's own to check)."""
        try:
            self.read_header(folder, required=required)
        except MixtapeError as err:
            return [str(err)]
        return []

    def holds(self, folder: str | Path) -> bool:
        """The folder has this stage's header file and it is ours: its format matches, or it is
        unreadable (a damaged header is a finding for ``mixtape doctor``, so it counts as ours)."""
        file = self.header_path(folder)
        if not file.is_file():
            return False
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return True
        return not isinstance(data, dict) or data.get("format") in (self.format, None)

    def is_current(self, folder: str | Path, fingerprint: str, key: str = "fingerprint") -> bool:
        """Whether the folder already holds what ``fingerprint`` describes: its header is readable, of
        this format and version, and records the same fingerprint under ``key``."""
        try:
            header = self.read_header(folder)
        except MixtapeError:
            return False
        return header.get(key) == fingerprint


#: Every registered stage folder by kind, in pipeline order (``mixtape doctor`` walks this).
STAGE_FOLDERS: dict[str, StageFolder] = {}


def register_stage_folder(folder: StageFolder) -> StageFolder:
    """Declare a stage's folder; a second declaration of the same kind must be identical."""
    known = STAGE_FOLDERS.get(folder.kind)
    if known is not None and known != folder:
        raise MixtapeError(f"stage folder kind {folder.kind!r} is already registered as {known}")
    STAGE_FOLDERS[folder.kind] = folder
    return folder
