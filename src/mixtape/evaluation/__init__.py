"""Downstream evaluation of an encoder: multi-label tagging (probe, fine-tuning) and music similarity.

Everything is a plain function returning metrics, so the CLI and the experiment runner call the
same code: ``run_probe``/``finetune`` → ``TaggingResult`` (``.metrics()``: ``roc_auc``, ``pr_auc``),
``run_similarity``/``evaluate_similarity`` → ``SimilarityResult`` (``.metrics``: ``triplet_acc``,
``ndcg@10``, ``map@10``, ``p@10``, ``ndcg@10_artist_filtered``, ``artist_p@10``, ``hubness`` …).
``tagging_task``/``similarity_task`` score an encoder on a feature store, or precomputed vectors of any
model (``embeddings=``); ``probe_embeddings`` and ``score_pool`` are what both paths share.
"""

from mixtape.evaluation.datasets import (
    DATASET_KINDS,
    MTG_SUBSETS,
    AlignedTagDataset,
    TagDataError,
    TagDataset,
    TagSplit,
    align_to_store,
    load_tag_dataset,
    read_magnatagatune,
    read_mtg_jamendo,
    read_tag_csv,
)
from mixtape.evaluation.finetune import FinetuneConfig, finetune
from mixtape.evaluation.metrics import (
    MetricError,
    TagScores,
    hubness,
    k_occurrence,
    retrieval_scores,
    tag_scores,
    triplet_accuracy,
)
from mixtape.evaluation.probe import ProbeConfig, probe_embeddings, run_probe, train_probe
from mixtape.evaluation.report import tagging_table, write_similarity_outputs, write_tagging_outputs
from mixtape.evaluation.similarity import (
    SimilarityConfig,
    SimilarityDataError,
    SimilarityResult,
    Triplets,
    build_pool,
    evaluate_similarity,
    heldout_relevance,
    read_triplets,
    run_similarity,
    score_pool,
)
from mixtape.evaluation.tagging import TaggingResult
from mixtape.evaluation.tasks import similarity_task, tagging_task

__all__ = [
    "DATASET_KINDS",
    "MTG_SUBSETS",
    "AlignedTagDataset",
    "FinetuneConfig",
    "MetricError",
    "ProbeConfig",
    "SimilarityConfig",
    "SimilarityDataError",
    "SimilarityResult",
    "TagDataError",
    "TagDataset",
    "TagScores",
    "TagSplit",
    "TaggingResult",
    "Triplets",
    "align_to_store",
    "build_pool",
    "evaluate_similarity",
    "finetune",
    "heldout_relevance",
    "hubness",
    "k_occurrence",
    "load_tag_dataset",
    "probe_embeddings",
    "read_magnatagatune",
    "read_mtg_jamendo",
    "read_tag_csv",
    "read_triplets",
    "retrieval_scores",
    "run_probe",
    "run_similarity",
    "score_pool",
    "similarity_task",
    "tag_scores",
    "tagging_task",
    "tagging_table",
    "train_probe",
    "triplet_accuracy",
    "write_similarity_outputs",
    "write_tagging_outputs",
]
