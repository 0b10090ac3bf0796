"""Rebuilding a network from a recorded architecture and a weights file, safely.

The architecture (backbone options, layer sizes) comes from a JSON file or a checkpoint's
hyper-parameters, which a damaged or hand-edited file can set to anything: a width of 10^9 would
allocate terabytes before the weights are even looked at. So the network is first built on torch's
``meta`` device (shapes only, no memory), its parameter shapes are compared with the tensors of the
weights file, and only a network that fits the weights, whose size is therefore bounded by the
file's, is built for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from mixtape.errors import MixtapeError
from mixtape.fileio import file_checksum

#: What a module constructor raises for options it cannot build (negative sizes, wrong types, ...).
BUILD_ERRORS: tuple[type[BaseException], ...] = (
    TypeError,
    ValueError,
    OverflowError,
    RuntimeError,
    AttributeError,
    KeyError,
    IndexError,
    ZeroDivisionError,
)


def shape_differences(expected: Mapping[str, Any], state: Mapping[str, Any], limit: int = 3) -> list[str]:
    """Human-readable differences between a module's state dict and loaded weights (missing, unexpected,
    wrong shape or not a tensor), at most ``limit`` of each kind."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: file {list(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k]).__name__}, "
        f"architecture {list(v.shape)}"
        for k, v in expected.items()
        if k in state and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape))
    ]
    out = []
    if missing:
        out.append(f"missing {', '.join(missing[:limit])}{' …' if len(missing) > limit else ''}")
    if unexpected:
        out.append(f"unexpected {', '.join(unexpected[:limit])}{' …' if len(unexpected) > limit else ''}")
    if wrong:
        out.append(f"shapes {'; '.join(wrong[:limit])}{' …' if len(wrong) > limit else ''}")
    return out


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def build_for_weights(
    factory: Callable[[], ModuleT],
    state: Mapping[str, Any],
    source: str,
    error: type[MixtapeError],
    mismatch: str = "the weights do not fit the recorded architecture",
) -> ModuleT:
    """``factory()`` with ``state`` loaded, or ``error`` naming ``source`` when the recorded architecture
    cannot be built or does not fit the weights (``mismatch`` says so in the reader's words); memory is
    only allocated for a network that fits."""
    try:
        with torch.device("meta"):
            skeleton = factory()
    except MixtapeError as err:
        raise error(f"{source}: {err}") from None
    except BUILD_ERRORS as err:
        raise error(f"{source}: the recorded architecture cannot be built ({type(err).__name__}: {err})") from None
    problems = shape_differences(skeleton.state_dict(), state)
    if problems:
        raise error(f"{source}: {mismatch} ({'; '.join(problems)})")
    module = factory()
    try:
        module.load_state_dict(dict(state), strict=True)
    except (RuntimeError, TypeError) as err:  # a dtype torch cannot copy into the parameter
        raise error(f"{source}: {mismatch} ({err})") from None
    return module


def read_safetensors(
    path: Path, checksum: str | None, header_name: str, error: type[MixtapeError]
) -> dict[str, torch.Tensor]:
    """The tensors of a weights file whose checksum ``header_name`` recorded (None: not checked), or
    ``error`` saying whether it is missing, replaced, or not safetensors at all."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors_bytes

    if not path.is_file():
        raise error(f"{path}: weights file named in {header_name} is missing")
    if checksum is not None and file_checksum(path) != checksum:
        raise error(
            f"{path}: checksum differs from the one in {header_name} (weights replaced or truncated after export)"
        )
    try:
        return load_safetensors_bytes(path.read_bytes())
    except SafetensorError as err:
        raise error(f"{path}: not a readable safetensors file: {err}") from None
