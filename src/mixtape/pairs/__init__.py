"""Pair strategies: where each anchor track's positive comes from (self, artist, album, playlist,
cooc-topk, track2vec, mix), their statistics, and the batch sampler that keeps batches free of
repeated tracks."""

from mixtape.pairs.cooc import NORMS, cooc_topk
from mixtape.pairs.positives import Positives, read_metadata
from mixtape.pairs.run import PairsRun, resolve_params, run_pairs
from mixtape.pairs.sampler import PairBatchSampler, conflicting_pairs
from mixtape.pairs.strategies import STRATEGIES, build_positives, format_stats, parse_mix, strategy_params
from mixtape.pairs.track2vec import nearest_neighbours, train_track2vec

__all__ = [
    "NORMS",
    "STRATEGIES",
    "PairBatchSampler",
    "PairsRun",
    "Positives",
    "build_positives",
    "conflicting_pairs",
    "cooc_topk",
    "format_stats",
    "nearest_neighbours",
    "parse_mix",
    "read_metadata",
    "resolve_params",
    "run_pairs",
    "strategy_params",
    "train_track2vec",
]
