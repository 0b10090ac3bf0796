"""Pair strategies: where each anchor track's positive comes from (self, artist, album, playlist,
cooc-topk, track2vec, pmi-svd, theme, mix), their typed parameters, their statistics, and the batch sampler
that keeps batches free of repeated tracks.

Names are imported on first use, so that ``mixtape.pairs.params`` (what the command line needs for
its flags) loads without numpy, scipy or gensim.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from mixtape.pairs.cooc import NORMS, cooc_topk
    from mixtape.pairs.params import PARAMS, StrategyParams, parse_mix, resolve_params
    from mixtape.pairs.pmisvd import train_pmi_svd
    from mixtape.pairs.positives import Positives, read_metadata
    from mixtape.pairs.run import PairsRun, run_pairs
    from mixtape.pairs.sampler import PairBatchSampler, conflicting_pairs
    from mixtape.pairs.strategies import (
        REGISTRY,
        STRATEGIES,
        Strategy,
        build_positives,
        format_stats,
        register_strategy,
        strategy_params,
    )
    from mixtape.pairs.track2vec import nearest_neighbours, train_track2vec

_WHERE = {
    "NORMS": "mixtape.pairs.cooc",
    "cooc_topk": "mixtape.pairs.cooc",
    "Positives": "mixtape.pairs.positives",
    "read_metadata": "mixtape.pairs.positives",
    "PairsRun": "mixtape.pairs.run",
    "run_pairs": "mixtape.pairs.run",
    "PairBatchSampler": "mixtape.pairs.sampler",
    "conflicting_pairs": "mixtape.pairs.sampler",
    "REGISTRY": "mixtape.pairs.strategies",
    "STRATEGIES": "mixtape.pairs.strategies",
    "Strategy": "mixtape.pairs.strategies",
    "build_positives": "mixtape.pairs.strategies",
    "format_stats": "mixtape.pairs.strategies",
    "register_strategy": "mixtape.pairs.strategies",
    "strategy_params": "mixtape.pairs.strategies",
    "nearest_neighbours": "mixtape.pairs.track2vec",
    "train_track2vec": "mixtape.pairs.track2vec",
    "train_pmi_svd": "mixtape.pairs.pmisvd",
    "PARAMS": "mixtape.pairs.params",
    "StrategyParams": "mixtape.pairs.params",
    "parse_mix": "mixtape.pairs.params",
    "resolve_params": "mixtape.pairs.params",
}

__all__ = [
    "NORMS",
    "PARAMS",
    "PairBatchSampler",
    "PairsRun",
    "Positives",
    "REGISTRY",
    "STRATEGIES",
    "Strategy",
    "StrategyParams",
    "build_positives",
    "conflicting_pairs",
    "cooc_topk",
    "format_stats",
    "nearest_neighbours",
    "parse_mix",
    "read_metadata",
    "register_strategy",
    "resolve_params",
    "run_pairs",
    "strategy_params",
    "train_pmi_svd",
    "train_track2vec",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mixtape.pairs' has no attribute {name!r}")
