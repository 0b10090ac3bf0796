"""Typed configuration shared by every stage: strict models loaded from and saved to YAML.

Strictness matters more than convenience here: a misspelt key in a 3-hour training config must
fail at load time with the key's name, not be silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mixtape.errors import MixtapeError
from mixtape.fileio import atomic_write_text, read_text_file

T = TypeVar("T", bound="StrictConfig")


class ConfigError(MixtapeError, ValueError):
    """A configuration file or value that cannot be used; the message names the key and the file."""


class StrictConfig(BaseModel):
    """Base of all configs: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}'")
        else:
            lines.append(f"  key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def config_from_dict(cls: type[T], data: dict[str, Any], source: str = "<dict>") -> T:
    """Validate a plain mapping into ``cls``, turning pydantic's errors into one readable ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def _yaml_where(err: yaml.YAMLError) -> str:
    """' at line L, column C: problem (context)' with 1-based positions, instead of PyYAML's multi-line dump."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or problem is None:
        return f": {err}"
    text = f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context:
        text += f" ({context}" + (f" at line {context_mark.line + 1}" if context_mark is not None else "") + ")"
    return text


#: More values than any real config holds (the paper's grid has a few hundred): a YAML file whose
#: anchors and aliases expand beyond this (a "billion laughs" file) is refused before validation,
#: which would otherwise walk every expanded copy.
MAX_CONFIG_VALUES = 100_000


def _expanded_size(data: Any, limit: int) -> int:
    """How many values ``data`` holds once aliases are expanded, counted without expanding them
    (a node shared by several aliases is counted once per use via its memoised size); stops past ``limit``."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[key] = total
        return total

    return size(data)


def load_config(cls: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Load a YAML file into ``cls``; ``overrides`` (dotted keys allowed) win over the file."""
    path = Path(path)
    text = read_text_file(path, "config file", ConfigError, encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML{_yaml_where(err)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply to be a mixtape config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    if _expanded_size(data, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{path}: its YAML aliases expand to more than {MAX_CONFIG_VALUES:,} values; a mixtape config "
            "holds a few hundred (write the values out, or use fewer nested aliases)"
        )
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for i, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"override {dotted}={value!r}: '{'.'.join(parents[: i + 1])}' in {path} is a value, not a "
                    "section with keys"
                )
        node[leaf] = value
    return config_from_dict(cls, data, str(path))


def save_config(config: StrictConfig, path: str | Path) -> Path:
    """Write the resolved config beside a run's outputs, so every result says how it was made."""
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return atomic_write_text(Path(path), text)
