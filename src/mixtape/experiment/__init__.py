"""Experiments: a grid of pair strategies × backbones × seeds × downstream tasks, run resumably, and
the comparison table it makes (``config``: the typed YAML; ``runner``: the stages; ``results``: the
long-format CSV, tables, verdict and claims; ``report``: the figures)."""

from mixtape.experiment.config import (
    BASELINE,
    BackboneSpec,
    DataSection,
    ExperimentConfig,
    StrategySpec,
    TasksSection,
    load_experiment_config,
)
from mixtape.experiment.results import (
    ResultRow,
    claims,
    claims_markdown,
    markdown_tables,
    read_results,
    results_markdown,
    summarize,
    verdict,
)
from mixtape.experiment.runner import (
    STAGES,
    DataPaths,
    Experiment,
    ExperimentResult,
    Unit,
    cpu_threads,
    report_only,
    run_experiment,
)

__all__ = [
    "BASELINE",
    "STAGES",
    "BackboneSpec",
    "DataPaths",
    "DataSection",
    "Experiment",
    "ExperimentConfig",
    "ExperimentResult",
    "ResultRow",
    "StrategySpec",
    "TasksSection",
    "Unit",
    "claims",
    "claims_markdown",
    "cpu_threads",
    "load_experiment_config",
    "markdown_tables",
    "read_results",
    "report_only",
    "results_markdown",
    "run_experiment",
    "summarize",
    "verdict",
]
