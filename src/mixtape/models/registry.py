"""The backbone registry: one name per architecture, so configs, checkpoints and exports refer to
an encoder by a string and adding an architecture never touches the training or export code.

A backbone factory takes ``n_mels`` (the height of the log-mel input) plus its own keyword options
and returns an ``nn.Module`` mapping ``[B, 1, n_mels, T]`` to ``[B, D]`` with an integer attribute
``embedding_dim == D``. Register one with::

    @register_backbone("mine")
    def mine(n_mels: int = 96, width: int = 64) -> nn.Module: ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from mixtape.errors import MixtapeError

BackboneFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=BackboneFactory)

BACKBONES: dict[str, BackboneFactory] = {}

# Modules whose import registers the built-in backbones; imported lazily so that this module can
# be imported on its own (e.g. by a user's plugin) without a cycle.
_BUILTIN_MODULES = (
    "mixtape.models.efficientnet",
    "mixtape.models.resnet",
    "mixtape.models.vggish",
    "mixtape.models.small",
)


class BackboneError(MixtapeError, ValueError):
    """An unknown backbone name, a bad backbone option, or a factory that broke the contract."""


def register_backbone(name: str) -> Callable[[F], F]:
    """Decorator: make ``factory`` buildable by ``name`` (a second factory under one name is an error)."""

    def decorate(factory: F) -> F:
        existing = BACKBONES.get(name)
        if existing is not None and existing is not factory:
            raise BackboneError(
                f"backbone name '{name}' is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        BACKBONES[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def backbone_names() -> list[str]:
    """The registered names, sorted (built-ins included)."""
    _load_builtins()
    return sorted(BACKBONES)


def build_backbone(name: str, n_mels: int = 96, **kwargs: Any) -> nn.Module:
    """Build a registered backbone; bad names and options fail here, before any training starts."""
    _load_builtins()
    factory = BACKBONES.get(name)
    if factory is None:
        raise BackboneError(f"unknown backbone '{name}'; registered backbones: {', '.join(sorted(BACKBONES))}")
    if not isinstance(n_mels, int) or n_mels < 1:
        raise BackboneError(f"backbone '{name}': n_mels must be a positive integer, got {n_mels!r}")
    signature = inspect.signature(factory)
    try:
        signature.bind(n_mels=n_mels, **kwargs)
    except TypeError as err:
        options = [p for p in signature.parameters if p != "n_mels"]
        raise BackboneError(f"backbone '{name}': {err}; its options are: {', '.join(options) or '(none)'}") from None
    module = factory(n_mels=n_mels, **kwargs)
    dim = getattr(module, "embedding_dim", None)
    if not isinstance(module, nn.Module) or not isinstance(dim, int) or dim < 1:
        raise BackboneError(
            f"backbone '{name}': its factory must return an nn.Module with a positive int .embedding_dim, got "
            f"{type(module).__name__} with embedding_dim={dim!r}"
        )
    return module
