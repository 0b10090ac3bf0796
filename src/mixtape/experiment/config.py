"""The experiment's typed config: a grid of strategies × backbones × seeds × tasks, and its data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mixtape.config import StrictConfig, load_config
from mixtape.errors import MixtapeError
from mixtape.evaluation.finetune import FinetuneConfig
from mixtape.evaluation.latent import LatentConfig
from mixtape.evaluation.probe import ProbeConfig
from mixtape.evaluation.similarity import SimilarityConfig
from mixtape.training.config import ModelConfig, OptimConfig, TrainerConfig

#: The label of the randomly initialised encoder's rows (never a strategy's label: it names folders).
BASELINE = "random-init"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class WorldSource(StrictConfig):
    """The embedded world as the data: its folder, generated there first when ``size`` is given."""

    path: Path
    size: Literal["tiny", "small", "medium", "large"] | None = Field(
        None, description="generate the world when the folder holds none"
    )
    seed: int = 0


class DataSection(StrictConfig):
    """Where the tracks, playlists, tags and triplets are: a world folder, or a user's own files.

    Paths given here win over the world's; relative paths start from the working directory.
    """

    world: WorldSource | None = None
    tracks: list[Path] = Field(
        default_factory=list,
        description="tracks table(s) whose audio is extracted (CSV/TSV track_id,path[,artist_id,album_id]; MTG-Jamendo "
        "TSVs)",
    )
    pretrain_tracks: list[Path] = Field(
        default_factory=list,
        description="the table(s) pair strategies and the similarity pool draw from (default: tracks)",
    )
    audio_root: Path | None = None
    playlists: list[Path] = Field(default_factory=list, description="training playlists (files or folders)")
    heldout: list[Path] = Field(
        default_factory=list, description="held-out playlists: retrieval ground truth, never a positive"
    )
    mapping: Path | None = None
    match: Literal["auto", "id", "path"] = "auto"
    holdout_tracks: Path | None = Field(None, description="track list kept out of pre-training")
    holdout_test_split: bool = Field(True, description="also keep the tag test split's tracks out of pre-training")
    tag_dataset: Literal["mtg-jamendo", "magnatagatune", "csv"] = "mtg-jamendo"
    splits: Path | None = Field(
        None, description="mtg-jamendo: splits folder; csv: folder of train/validation/test lists"
    )
    tags: Path | None = Field(None, description="magnatagatune: annotations_final.csv; csv: track_id,tags file")
    split_index: int = 0
    triplets: Path | None = None
    features: Path | None = Field(
        None, description="feature store (extracted here from the tracks when incomplete); default OUT/features"
    )
    workers: int | None = Field(
        None, ge=1, description="processes for world rendering and feature extraction (default: all cores)"
    )

    @field_validator("tracks", "pretrain_tracks", "playlists", "heldout", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value


class StrategySpec(StrictConfig):
    """One row of the table: a pair strategy with its parameters (``label`` tells two variants apart)."""

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    @model_validator(mode="after")
    def _check(self) -> StrategySpec:
        from mixtape.pairs.params import PARAMS, resolve_params

        if self.name not in PARAMS:
            raise ValueError(f"unknown pair strategy {self.name!r} (choose among {', '.join(PARAMS)})")
        if "seed" in self.params:
            raise ValueError(f"strategy {self.key}: 'seed' comes from the experiment's `seeds`, not from params")
        try:
            accepted = resolve_params(self.name, dict(self.params))
        except MixtapeError as err:
            raise ValueError(f"strategy {self.key}: {err}") from None
        unknown = sorted(set(self.params) - set(accepted))
        if unknown:
            raise ValueError(
                f"strategy {self.key}: {self.name} takes no parameter(s) {unknown} (it takes: "
                f"{', '.join(sorted(accepted)) or 'none'})"
            )
        if not _LABEL.match(self.key) or self.key == BASELINE:
            raise ValueError(
                f"strategy label {self.key!r} must be letters, digits, '.', '_', '+', '-' (and not "
                f"{BASELINE!r}): it names folders"
            )
        return self


class BackboneSpec(StrictConfig):
    """An encoder architecture of the registry, with its options."""

    name: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.label or self.name

    @model_validator(mode="after")
    def _check(self) -> BackboneSpec:
        from mixtape.models.registry import backbone_names

        names = backbone_names()
        if self.name not in names:
            raise ValueError(f"unknown backbone {self.name!r}; registered backbones: {', '.join(names)}")
        if not _LABEL.match(self.key):
            raise ValueError(
                f"backbone label {self.key!r} must be letters, digits, '.', '_', '+', '-': it names folders"
            )
        return self


class PretrainData(StrictConfig):
    """The data-loading part of the pre-training config (store and positives come from the grid)."""

    patch_frames: int = Field(128, ge=8)
    batch_size: int = Field(256, ge=2)
    workers: int = Field(4, ge=0)
    prefetch: int = Field(4, ge=1)


class PretrainSection(StrictConfig):
    """Pre-training settings shared by every run; backbone and seed come from the grid."""

    data: PretrainData = Field(default_factory=PretrainData)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)

    @model_validator(mode="after")
    def _grid_keys(self) -> PretrainSection:
        set_here = [f"model.{k}" for k in ("backbone", "backbone_options") if k in self.model.model_fields_set]
        set_here += ["trainer.seed"] if "seed" in self.trainer.model_fields_set else []
        if set_here:
            raise ValueError(f"{', '.join(set_here)} come(s) from the grid (`backbones`, `seeds`), not from `pretrain`")
        return self


class TasksSection(StrictConfig):
    """The downstream tasks of every run, and the t-SNE maps."""

    probe: list[str] = Field(
        default_factory=lambda: ["genre", "moodtheme", "instrument"],
        description="tag subsets probed on frozen embeddings",
    )
    finetune: list[str] = Field(default_factory=list, description="tag subsets fine-tuned on (the whole encoder; slow)")
    similarity: bool = True
    latent: bool = Field(
        True,
        description="on a generated world: linear probes of each embedding on the latent genre, moods and artist (what "
        "it encodes)",
    )
    maps: list[str] = Field(
        default_factory=lambda: ["genre", "moodtheme"],
        description="tag subsets that colour the t-SNE maps of test embeddings",
    )
    baseline: bool = Field(True, description="evaluate a randomly initialised encoder too (the no-pre-training row)")
    probe_config: ProbeConfig = Field(default_factory=ProbeConfig)
    finetune_config: FinetuneConfig = Field(default_factory=FinetuneConfig)
    similarity_config: SimilarityConfig = Field(default_factory=SimilarityConfig)
    latent_config: LatentConfig = Field(default_factory=LatentConfig)
    embed_batch_size: int = Field(64, ge=1, description="patches per forward pass when embedding tracks")
    device: str = "cpu"

    @model_validator(mode="after")
    def _grid_seed(self) -> TasksSection:
        for name in ("probe_config", "finetune_config", "latent_config"):
            if "seed" in getattr(self, name).model_fields_set:
                raise ValueError(f"{name}.seed comes from the experiment's `seeds`")
        return self


def _as_specs(value: Any) -> Any:
    """``[self, {name: cooc-topk, params: {k: 5}}]``: a bare name stands for ``{name: ...}``."""
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class ExperimentConfig(StrictConfig):
    """A grid of strategies × backbones × seeds × tasks, and where its data and results are."""

    name: str = "experiment"
    out: Path = Path("runs/experiment")
    data: DataSection
    strategies: list[StrategySpec] = Field(min_length=1)
    backbones: list[BackboneSpec] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    pretrain: PretrainSection = Field(default_factory=PretrainSection)
    tasks: TasksSection = Field(default_factory=TasksSection)
    threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads during the experiment (1 is fastest for small models on a busy machine)",
    )
    parallel: int = Field(
        1,
        ge=1,
        description="grid cells pre-trained and evaluated at once, each in its own process with `threads` threads (on "
        "2 cores, 2 x 1 thread nearly doubles the throughput of the small CNN)",
    )

    @field_validator("strategies", "backbones", mode="before")
    @classmethod
    def _names_as_specs(cls, value: Any) -> Any:
        return _as_specs(value)

    def dump(self) -> dict[str, Any]:
        """The config as plain data that loads back: without the keys the grid sets (backbone, seeds)."""
        grid_set = {
            "pretrain": {"model": {"backbone", "backbone_options"}, "trainer": {"seed"}},
            "tasks": {"probe_config": {"seed"}, "finetune_config": {"seed"}, "latent_config": {"seed"}},
        }
        return self.model_dump(mode="json", exclude=grid_set)

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        listed: tuple[tuple[str, Sequence[object]], ...] = (
            ("strategy", [s.key for s in self.strategies]),
            ("backbone", [b.key for b in self.backbones]),
            ("seed", self.seeds),
        )
        for what, keys in listed:
            repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
            if repeated:
                raise ValueError(f"{what} {', '.join(repeated)} listed twice (give variants a distinct `label`)")
        return self


def load_experiment_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Load an experiment YAML; ``overrides`` (dotted keys, e.g. ``pretrain.trainer.max_steps``) win."""
    return load_config(ExperimentConfig, path, overrides)
