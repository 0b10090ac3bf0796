"""Every pair strategy's parameters, in one typed model per strategy.

These models are the single home of a parameter: the builders take them, `mixtape pairs` makes its
flags from them, the experiment YAML validates against them, and `mixtape doctor` writes its fix
command from them. This module is light on purpose (pydantic only): the command line imports it to
build `--help` without loading numpy, scipy or gensim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from mixtape.config import StrictConfig
from mixtape.errors import MixtapeError

#: Parameters that change how fast a build runs, never which positives it makes.
NOT_IN_FINGERPRINT = frozenset({"workers"})


class StrategyParams(StrictConfig):
    """A strategy without parameters (self, artist, album, playlist)."""


class CoocParams(StrategyParams):
    k: int = Field(10, ge=1, description="positives per anchor: the K best-scored tracks (most co-occurring; nearest)")
    norm: Literal["count", "pmi", "jaccard"] = Field(
        "count", description="co-occurrence score; pmi and jaccard temper popular tracks"
    )
    min_count: int = Field(1, ge=1, description="ignore pairs seen together in fewer playlists")
    workers: int = Field(2, ge=1, description="threads (the positives do not depend on it)")


class Track2VecParams(StrategyParams):
    k: int = Field(10, ge=1, description="positives per anchor: the K best-scored tracks (most co-occurring; nearest)")
    dim: int = Field(64, ge=1, description="skip-gram vector size")
    epochs: int = Field(5, ge=1, description="passes over the playlists")
    window: int | None = Field(
        None,
        ge=1,
        description="context window; default: the whole playlist while that fits pair_budget, else the widest that "
        "does, shuffled each epoch",
    )
    negative: int = Field(5, ge=0, description="negative samples per skip-gram pair")
    sample: float = Field(1e-3, ge=0.0, description="down-sampling threshold of very frequent tracks")
    pair_budget: float = Field(
        2e8,
        gt=0,
        description="skip-gram training pairs over all epochs: the window, then the epochs, are cut to fit it",
    )
    use_context: bool = Field(
        True, description="use playlist names and positions as extra context when the playlists carry them"
    )
    exact_limit: int = Field(50_000, ge=1, description="exact nearest neighbours up to this many tracks, IVF above")
    nprobe: int = Field(16, ge=1, description="IVF lists searched above exact_limit")
    seed: int = Field(0, description="training seed (the same positives for a seed with workers 1)")
    workers: int = Field(2, ge=1, description="threads (with more than one, gensim's order of updates varies)")


class PmiSvdParams(StrategyParams):
    k: int = Field(10, ge=1, description="positives per anchor: the K best-scored tracks (most co-occurring; nearest)")
    dim: int = Field(64, ge=1, description="track vector size (singular vectors kept)")
    candidates: int = Field(
        20,
        ge=1,
        description="co-occurring partners kept per track (the most co-occurring), weighted by PMI before the SVD",
    )
    shift: float = Field(
        1.0, ge=1.0, description="PMI shift: entries below log(shift) are dropped (skip-gram's negative count)"
    )
    min_count: int = Field(1, ge=1, description="ignore pairs seen together in fewer playlists")
    exact_limit: int = Field(50_000, ge=1, description="exact nearest neighbours up to this many tracks, IVF above")
    nprobe: int = Field(16, ge=1, description="IVF lists searched above exact_limit")
    seed: int = Field(0, description="seed of the randomised SVD (the same positives for a seed)")
    workers: int = Field(2, ge=1, description="threads (the positives do not depend on it)")


class ThemeParams(StrategyParams):
    world: str | None = Field(
        None, description="the world.json of a generated world, holding the latent genre and moods (required)"
    )


class MixParams(StrategyParams):
    mix: dict[str, float] = Field(
        default_factory=lambda: {"playlist": 0.5, "artist": 0.5},
        description="weights of the mixed strategies, e.g. 'playlist=0.5,artist=0.5'",
    )

    @field_validator("mix", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> dict[str, float]:
        return parse_mix(value)


#: Built-in strategies and their parameter models, in the order commands list them.
PARAMS: dict[str, type[StrategyParams]] = {
    "self": StrategyParams,
    "artist": StrategyParams,
    "album": StrategyParams,
    "playlist": StrategyParams,
    "cooc-topk": CoocParams,
    "track2vec": Track2VecParams,
    "pmi-svd": PmiSvdParams,
    "theme": ThemeParams,
    "mix": MixParams,
}

SUMMARIES: dict[str, str] = {
    "self": "the anchor itself (another random patch of it)",
    "artist": "a random other track by the same artist",
    "album": "a random other track on the same album",
    "playlist": "a random playlist holding the anchor, then a random other track of it",
    "cooc-topk": "one of its K most co-occurring tracks",
    "track2vec": "one of its K nearest neighbours in skip-gram embeddings learned over playlists",
    "pmi-svd": "one of its K nearest neighbours in a truncated SVD of the tracks' positive PMI matrix",
    "theme": "oracle, generated worlds only: a track sharing its latent genre and a mood",
    "mix": "a weighted mixture of the strategies above",
}

#: Where each built-in strategy's positives come from. The experiment's verdict compares the groups
#: (playlist-based against artist and self, oracles apart), so a new strategy must be placed here.
SOURCES: dict[str, Literal["self", "metadata", "playlists", "oracle", "mixture"]] = {
    "self": "self",
    "artist": "metadata",
    "album": "metadata",
    "playlist": "playlists",
    "cooc-topk": "playlists",
    "track2vec": "playlists",
    "pmi-svd": "playlists",
    "theme": "oracle",
    "mix": "mixture",
}


def parse_mix(spec: str | Mapping[str, float]) -> dict[str, float]:
    """``'playlist=0.5,artist=0.5'`` (or a mapping) → validated weights; they need not sum to 1."""
    if isinstance(spec, str):
        weights: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, sep, value = item.partition("=")
            try:
                weights[name.strip()] = float(value) if sep else float("nan")
            except ValueError:
                raise MixtapeError(f"mix weight {item!r}: {value!r} is not a number") from None
    elif isinstance(spec, Mapping):
        try:
            weights = {str(k): float(v) for k, v in spec.items()}
        except (TypeError, ValueError):
            raise MixtapeError(f"mix: weights must be numbers, got {dict(spec)!r}") from None
    else:
        raise MixtapeError(f"mix: expected weights like 'playlist=0.5,artist=0.5', got {spec!r}")
    if not weights:
        raise MixtapeError("mix: no strategies given (expected e.g. 'playlist=0.5,artist=0.5')")
    for name, w in weights.items():
        if name not in PARAMS or name == "mix":
            raise MixtapeError(
                f"mix: unknown strategy {name!r} (choose among {', '.join(s for s in PARAMS if s != 'mix')})"
            )
        if not w == w or w in (float("inf"), float("-inf")) or w <= 0:
            raise MixtapeError(f"mix: weight of {name!r} must be a positive number, got {w}")
    return weights


def params_model(strategy: str) -> type[StrategyParams]:
    try:
        return PARAMS[strategy]
    except KeyError:
        raise MixtapeError(f"unknown pair strategy {strategy!r} (choose among {', '.join(PARAMS)})") from None


def known_parameters() -> dict[str, list[str]]:
    """Every parameter name any strategy takes → the strategies that take it."""
    out: dict[str, list[str]] = {}
    for name, model in PARAMS.items():
        for field in model.model_fields:
            out.setdefault(field, []).append(name)
    return out


def resolve_params(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a build uses: the strategy's model filled from ``params`` (keys other strategies
    take are ignored, so one set of options serves a mix), validated; a mix adds its parts'."""
    known = known_parameters()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise MixtapeError(f"unknown pair-strategy parameter(s) {unknown} (known: {', '.join(sorted(known))})")
    model = params_model(strategy)
    given = {k: v for k, v in params.items() if k in model.model_fields}
    try:
        resolved = model.model_validate(given).model_dump(mode="json")
    except ValueError as err:
        raise MixtapeError(f"strategy {strategy}: {_first_error(err)}") from None
    if strategy == "mix":
        for part in resolved["mix"]:
            resolved.update(resolve_params(part, params))
    return resolved


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return f"{where}: {first.get('msg')} (got {first.get('input')!r})" if where else str(first.get("msg"))
    return str(err)


def fingerprint_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved parameters that decide the positives (what a folder's fingerprint covers)."""
    return {k: v for k, v in params.items() if k not in NOT_IN_FINGERPRINT}


def flag_name(param: str) -> str:
    return "--" + param.replace("_", "-")


def command_flags(params: Mapping[str, Any]) -> list[str]:
    """``mixtape pairs`` flags that rebuild a folder with these resolved parameters (doctor's fix command)."""
    words: list[str] = []
    known = known_parameters()
    for key, value in params.items():
        if key not in known or value is None or key in NOT_IN_FINGERPRINT:
            continue
        if key == "mix" and isinstance(value, Mapping):
            words += ["--mix", ",".join(f"{k}={v:g}" for k, v in value.items())]
        elif isinstance(value, bool):
            words.append(flag_name(key) if value else "--no-" + key.replace("_", "-"))
        else:
            words += [flag_name(key), str(value)]
    return words
