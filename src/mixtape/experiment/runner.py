"""The experiment runner: `mixtape experiment CONFIG`, the comparison table of pre-training strategies.

A config lists pair strategies × backbones × seeds × downstream tasks. The runner builds what is
missing, in an explicit list of stages (``STAGES``) that each call the project's own functions
(never the CLI):

    world / features   the embedded world (when configured) and the feature store
    pairs              one positives folder per strategy (per seed for strategies that take one)
    pretrain           one run per (strategy, backbone, seed)
    evaluate           probe / fine-tune / similarity of every run, and of a randomly initialised
                       encoder (the baseline row: what the table would say without pre-training)
    report             results.csv (long format), results.md (mean ± std over seeds, best in bold,
                       a generated verdict), bar charts, t-SNE maps of test embeddings

Every step is skipped when its output exists and was made from the same inputs (pairs: input
checksums; pre-training: the resolved config and the final step; evaluation: the checkpoint's
checksum, the task config and the data files' checksums), so a killed experiment continues where it
stopped when re-run. One run that fails is recorded and reported, and the others go on.

The run folder::

    experiment.yaml                       the resolved config
    features/                             feature store (unless data.features names one)
    holdout_tracks.txt                    tracks kept out of pre-training (the tag test split)
    pairs/<strategy>[/seed<k>]/           positives (mixtape pairs)
    runs/<strategy>/<backbone>/seed<k>/pretrain/   checkpoints, logs, training_curve.png
    runs/<strategy>/<backbone>/seed<k>/eval/<task>/ metrics.json, per-tag / per-query tables
    runs/random-init/<backbone>/seed<k>/eval/      the baseline
    results.csv, results.md, plots/*.png, failures.json
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import yaml

from mixtape.audio import FeatureStore, extract_features
from mixtape.catalog import load_catalog, playlist_files, read_track_list, read_tracks
from mixtape.config import ConfigError, StrictConfig
from mixtape.errors import MixtapeError
from mixtape.evaluation.datasets import align_to_store, load_tag_dataset
from mixtape.evaluation.latent import latent_probe
from mixtape.evaluation.plots import EmbeddingMap, embedding_maps
from mixtape.evaluation.probe import probe_embeddings
from mixtape.evaluation.report import write_json, write_similarity_outputs, write_tagging_outputs
from mixtape.evaluation.similarity import build_pool, evaluate_similarity, read_triplets
from mixtape.evaluation.tasks import tagging_task
from mixtape.experiment.config import BASELINE, BackboneSpec, ExperimentConfig, StrategySpec, load_experiment_config
from mixtape.experiment.report import PLOTS, metric_bar_charts, tsne_coordinates
from mixtape.experiment.results import (
    BASELINE_TITLE,
    LATENT_METRICS,
    TAGGING_METRICS,
    ResultRow,
    claims_markdown,
    markdown_tables,
    read_results,
    results_csv_text,
    results_markdown,
    similarity_metric_names,
    summarize,
    verdict,
)
from mixtape.fileio import atomic_open, atomic_write_text, file_checksum, get_logger, progress
from mixtape.models import Encoder
from mixtape.models.bundle import EncoderBundle
from mixtape.models.embedding import embed_tracks
from mixtape.pairs.params import resolve_params
from mixtape.pairs.run import run_pairs
from mixtape.stagefolder import fingerprint
from mixtape.training.config import DataConfig, ModelConfig, PretrainConfig, TrainerConfig
from mixtape.training.run import last_checkpoint, pretrain
from mixtape.workers import WorkerCrashed, map_ordered
from mixtape.world import World, synth
from mixtape.world.truth import read_latent

log = get_logger(__name__)
T = TypeVar("T")

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
#: The stages of a run, in order; ``Experiment.run`` calls each method of this name.
STAGES = ("world", "features", "pairs", "pretrain", "evaluate", "report")


@dataclass(frozen=True)
class DataPaths:
    """The data files of a run: the config's, the world's filling in what the config leaves out."""

    tracks: list[Path]  # tables whose audio is extracted
    pretrain_tracks: list[Path]  # tables the strategies and the similarity pool draw from
    playlists: list[Path]
    heldout: list[Path]
    splits: Path | None
    tags: Path | None
    triplets: Path | None
    features: Path
    world_json: Path | None  # the latent truth, when the data are a generated world


@dataclass
class WorkLog:
    """What a run of the experiment did, found up to date, or could not do."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Unit:
    """One (strategy, backbone, seed) cell of the grid; ``strategy`` None is the random-init baseline."""

    strategy: StrategySpec | None
    backbone: BackboneSpec
    seed: int

    @property
    def label(self) -> str:
        return self.strategy.key if self.strategy is not None else BASELINE

    @property
    def key(self) -> tuple[str, str, int]:
        return self.label, self.backbone.key, self.seed

    def folder(self, root: Path) -> Path:
        return root / "runs" / self.label / self.backbone.key / f"seed{self.seed}"

    def describe(self) -> str:
        return f"{self.label} · {self.backbone.key} · seed {self.seed}"


@dataclass
class ExperimentResult:
    out: Path
    results_csv: Path
    results_md: Path
    table: str
    figures: list[Path]
    curves: dict[str, Path]
    work: WorkLog

    def summary(self) -> str:
        w = self.work
        lines = [
            self.table,
            "",
            f"work: {len(w.ran)} step(s) run, {len(w.skipped)} up to date, {len(w.failed)} failed",
            *[f"  failed: {f}" for f in w.failed],
            f"results: {self.results_csv}",
            f"table:   {self.results_md}",
        ]
        return "\n".join(lines)


@dataclass
class _EvalData:
    """What every evaluation shares: the store, the tag datasets on it, the similarity pool."""

    store: Any
    tag_sets: dict[str, Any]  # subset → TagDataset (as read)
    aligned: dict[str, Any]  # subset → AlignedTagDataset (on the store)
    pool: Any | None
    triplets: Any | None
    rows: np.ndarray  # store rows every task needs an embedding for
    fingerprint: str  # checksums of the data files the metrics depend on


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` CPU threads in torch and in the BLAS/OpenMP pools (t-SNE, matrix products).

    On a busy 2-core machine, threads of small kernels spin-wait on each other: measured there, one
    thread embedded tracks 10x faster than two, pre-trained the small CNN 3x faster, and ran t-SNE of
    166 tracks in 0.6 s instead of 7.9 s. ``None`` leaves the libraries' defaults.
    """
    from threadpoolctl import threadpool_limits

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


class Experiment:
    """The runner: each stage is a method (the demo times them one by one); ``run`` does them all."""

    def __init__(self, config: ExperimentConfig, out: str | Path | None = None) -> None:
        self.config = config
        self.out = Path(out) if out is not None else Path(config.out)
        self.work = WorkLog()
        self._world: Any = None
        self._eval: _EvalData | None = None
        self._pairs: dict[tuple[str, int], Path] = {}
        self._checkpoints: dict[tuple[str, str, int], Path] = {}
        self._done: set[str] = set()  # stages run in this process (a later stage runs the earlier ones it needs)
        self._unevaluated: set[tuple[str, str, int]] = set()

    # -- the grid --

    def units(self, baseline: bool = False) -> list[Unit]:
        """Every (strategy, backbone, seed) to pre-train; with ``baseline``, the random-init ones first."""
        c = self.config
        grid = [Unit(s, b, seed) for s in c.strategies for b in c.backbones for seed in c.seeds]
        if baseline and c.tasks.baseline:
            grid = [Unit(None, b, seed) for b in c.backbones for seed in c.seeds] + grid
        return grid

    def _attempt(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one step of the batch; a failure is logged and recorded, and the batch goes on."""
        try:
            return fn()
        except KeyboardInterrupt:
            raise
        except Exception as err:  # one bad run must not cost the others
            log.error("%s failed: %s", what, err, exc_info=not isinstance(err, MixtapeError))
            self.work.failed.append(f"{what}: {type(err).__name__}: {err}")
            return None

    # -- data --

    def world(self) -> Any:
        """Generate (or reopen) the configured world; None when the data are a user's own files."""
        src = self.config.data.world
        if src is None:
            return None
        if self._world is None:
            if src.size is not None:
                self._world = synth(src.path, size=src.size, seed=src.seed, workers=self.config.data.workers)
            else:
                self._world = World.load(src.path)
        return self._world

    @property
    def paths(self) -> DataPaths:
        """The data files, the world's filling in what the config leaves out."""
        d, w = self.config.data, self.world()
        tracks = [Path(t) for t in d.tracks] or ([w.tracks] if w else [])
        if not tracks:
            raise ConfigError("data: give `tracks` (tracks tables) or `world` (a world folder)")
        return DataPaths(
            tracks=tracks,
            pretrain_tracks=[Path(t) for t in d.pretrain_tracks] or tracks,
            playlists=[Path(p) for p in d.playlists] or ([w.playlists] if w else []),
            heldout=[Path(h) for h in d.heldout] or ([w.heldout] if w else []),
            splits=d.splits or (w.splits if w else None),
            tags=d.tags,
            triplets=d.triplets or (w.triplets if w else None),
            features=Path(d.features) if d.features else self.out / "features",
            world_json=w.world_json if w else None,
        )

    def features(self) -> Any:
        """Extract the feature store of the tracks table (resumable: present tracks are kept)."""
        paths = self.paths
        records: dict[str, Any] = {}
        for path in paths.tracks:
            table = read_tracks(path, self.config.data.audio_root)
            for reason in table.skipped:
                log.warning("tracks table %s: skipped row: %s", path, reason)
            repeated = [r.track_id for r in table.records if r.track_id in records]
            if repeated:
                log.warning(
                    "tracks table %s: %d track(s) already listed by an earlier table kept from there, e.g. %s",
                    path,
                    len(repeated),
                    repeated[0],
                )
            records.update({r.track_id: r for r in table.records if r.track_id not in records})
        report = extract_features(list(records.values()), paths.features, workers=self.config.data.workers)
        (self.work.ran if report.done else self.work.skipped).append("features")
        if report.failed:
            self.work.failed.append(
                f"features: {len(report.failed)} track(s) could not be decoded (left out of every stage), "
                f"e.g. {report.failed[0][0]}: {report.failed[0][2]}"
            )
        return FeatureStore.open(paths.features)

    def _tag_dataset(self, subset: str) -> Any:

        d, p = self.config.data, self.paths
        return load_tag_dataset(d.tag_dataset, p.tags, p.splits, subset, d.split_index)

    def _holdout_file(self) -> Path | None:
        """Tracks that neither anchor nor serve as positives: the listed ones and the tag test split's."""
        d = self.config.data
        subsets = list(dict.fromkeys(self.config.tasks.probe + self.config.tasks.finetune))
        if not d.holdout_test_split or not subsets:
            return d.holdout_tracks
        ids: list[str] = list(read_track_list(d.holdout_tracks)) if d.holdout_tracks else []
        for subset in subsets:
            ids += self._tag_dataset(subset).splits["test"].track_ids
        text = "track_id\n" + "".join(f"{t}\n" for t in dict.fromkeys(ids))
        path = self.out / "holdout_tracks.txt"
        if (
            not path.is_file() or path.read_text(encoding="utf-8") != text
        ):  # unchanged content keeps the pairs' checksums
            atomic_write_text(path, text)
        return path

    # -- pairs --

    def pairs_key(self, spec: StrategySpec, seed: int) -> tuple[str, int]:
        """Strategies that take a seed (track2vec) get positives per seed; the others share one folder."""
        seeded = "seed" in resolve_params(spec.name, {**spec.params, "seed": seed})
        return spec.key, (seed if seeded else -1)

    def pairs(self) -> dict[tuple[str, int], Path]:
        """Build (or find up to date) the positives of every strategy."""
        p = self.paths
        holdout = self._holdout_file()
        todo = {self.pairs_key(s, seed): (s, seed) for s in self.config.strategies for seed in self.config.seeds}
        for (key, seed_key), (spec, seed) in progress(list(todo.items()), desc="pairs", unit="strategy"):
            out = self.out / "pairs" / key / (f"seed{seed_key}" if seed_key >= 0 else "")
            what = f"pairs {key}" + (f" seed {seed}" if seed_key >= 0 else "")

            def build(spec: StrategySpec = spec, seed: int = seed, out: Path = out) -> Any:
                return run_pairs(
                    p.pretrain_tracks,
                    out,
                    spec.name,
                    p.playlists,
                    p.heldout,
                    holdout,
                    self.config.data.audio_root,
                    mapping=self.config.data.mapping,
                    match=self.config.data.match,
                    **{**self._world_params(spec), **spec.params, "seed": seed},
                )

            run = self._attempt(what, build)
            if run is not None:
                self._pairs[(key, seed_key)] = out
                (self.work.skipped if run.up_to_date else self.work.ran).append(what)
        self._done.add("pairs")
        return self._pairs

    def _world_params(self, spec: StrategySpec) -> dict[str, Any]:
        """The theme oracle reads the latent truth of the experiment's own world unless told otherwise."""
        world = self.world()
        return {"world": str(world.world_json)} if spec.name == "theme" and world is not None else {}

    # -- pre-training --

    def pretrain_config(self, unit: Unit, positives: Path) -> PretrainConfig:
        """The resolved pre-training config of one grid cell."""
        assert unit.strategy is not None
        p = self.config.pretrain
        return PretrainConfig(
            data=DataConfig(store=self.paths.features, positives=positives, **p.data.model_dump()),
            model=ModelConfig(
                **{
                    **p.model.model_dump(),
                    "backbone": unit.backbone.name,
                    "backbone_options": dict(unit.backbone.options),
                }
            ),
            optim=p.optim,
            trainer=TrainerConfig(**{**p.trainer.model_dump(), "seed": unit.seed}),
            out=unit.folder(self.out) / "pretrain",
        )

    @staticmethod
    def pretrain_done(config: PretrainConfig) -> bool:
        """A finished run of this very config: result.json, the same config.yaml, last.ckpt at max_steps."""
        result, saved = _read_json(config.out / "result.json"), config.out / "config.yaml"
        if result is None or not saved.is_file() or not last_checkpoint(config.out).is_file():
            return False
        same = yaml.safe_load(saved.read_text(encoding="utf-8")) == json.loads(
            json.dumps(config.model_dump(mode="json"))
        )
        return same and int(result.get("steps", -1)) >= config.trainer.max_steps

    def pretrain(self) -> dict[tuple[str, str, int], Path]:
        """Pre-train every grid cell whose positives exist; finished runs are kept, interrupted ones resumed."""
        self._require("pairs")
        todo: list[tuple[Unit, PretrainConfig]] = []
        for unit in self.units():
            assert unit.strategy is not None
            positives = self._pairs.get(self.pairs_key(unit.strategy, unit.seed))
            what = f"pretrain {unit.describe()}"
            if positives is None:
                self.work.failed.append(f"{what}: not run, its positives could not be built")
                continue
            config = self.pretrain_config(unit, positives)
            if self.pretrain_done(config):
                self.work.skipped.append(what)
                self._checkpoints[unit.key] = last_checkpoint(config.out)
                continue
            todo.append((unit, config))
        if self.config.parallel > 1 and len(todo) > 1:
            tasks = [(config.model_dump(mode="json"), self.config.threads) for _, config in todo]
            results = map_ordered(
                _pretrain_task,
                tasks,
                min(self.config.parallel, len(todo)),
                _quiet_worker,
                start="spawn",
                tasks_per_worker=1,
            )
            for (unit, _), outcome in progress(
                zip(todo, results, strict=True), desc="pretraining", unit="run", total=len(todo)
            ):
                checkpoint = self._outcome(f"pretrain {unit.describe()}", outcome)
                if checkpoint is not None:
                    self._checkpoints[unit.key] = Path(checkpoint)
        else:
            with cpu_threads(self.config.threads):
                for unit, config in progress(todo, desc="pretraining", unit="run"):
                    result = self._attempt(
                        f"pretrain {unit.describe()}", functools.partial(pretrain, config, resume=True)
                    )
                    if result is not None:
                        self.work.ran.append(f"pretrain {unit.describe()}")
                        self._checkpoints[unit.key] = result.checkpoint
        self._done.add("pretrain")
        return self._checkpoints

    def _outcome(self, what: str, outcome: Any) -> Any:
        """Record a worker's (result, error) or crash the way ``_attempt`` records an in-process run."""
        if isinstance(outcome, WorkerCrashed):
            log.error("%s failed: its worker process died", what)
            self.work.failed.append(f"{what}: its worker process died (out of memory?)")
            return None
        result, error, work = outcome
        self.work.ran += work.get("ran", [])
        self.work.skipped += work.get("skipped", [])
        self.work.failed += work.get("failed", [])
        if error is not None:
            log.error("%s failed: %s", what, error)
            self.work.failed.append(f"{what}: {error}")
            return None
        if result is not None:
            self.work.ran.append(what)
        return result

    # -- evaluation --

    def eval_data(self) -> _EvalData:
        """Read the tag datasets and the similarity data once, aligned to the feature store."""
        if self._eval is not None:
            return self._eval

        p, t, d = self.paths, self.config.tasks, self.config.data
        store = FeatureStore.open(p.features)
        ids = list(store.track_ids)
        subsets = list(dict.fromkeys(t.probe + t.finetune + t.maps))
        tag_sets = {s: self._tag_dataset(s) for s in subsets}
        aligned = {s: align_to_store(ds, ids, f"feature store {p.features}") for s, ds in tag_sets.items()}
        for s, a in aligned.items():
            for note in a.notes:
                log.warning("%s: %s", s, note)
        pool = triplets = None
        files: list[Path] = list(p.pretrain_tracks)
        if t.similarity:
            catalog = load_catalog(
                p.pretrain_tracks,
                playlists=(),
                heldout=p.heldout,
                audio_root=d.audio_root,
                mapping=d.mapping,
                match=d.match,
            )
            pool = build_pool(ids, catalog)
            for note in pool.notes:
                log.warning("similarity pool: %s", note)
            if p.triplets is not None:
                triplets = read_triplets(p.triplets, {tid: i for i, tid in enumerate(pool.track_ids)})
                files.append(p.triplets)
            files += [f for h in p.heldout for f in playlist_files(h)]
        files += sorted(
            {
                Path(split.source)
                for ds in tag_sets.values()
                for split in ds.splits.values()
                if Path(split.source).is_file()
            }
        )
        rows = [s.rows for a in aligned.values() for s in a.splits.values()] + (
            [pool.store_rows] if pool is not None else []
        )
        if any(kind == "latent" for _, kind, _ in self.task_list()):
            rows.append(np.arange(len(ids), dtype=np.int64))  # the latent probes look at every track of the world
            files.append(Path(self.world().world_json))
        needed = np.unique(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)
        key = fingerprint({"store_tracks": ids, "files": [(str(f), file_checksum(f)) for f in dict.fromkeys(files)]})
        self._eval = _EvalData(store, tag_sets, aligned, pool, triplets, needed, key)
        return self._eval

    def _encoder(self, unit: Unit) -> tuple[Callable[[], Any], str]:
        """A loader of the unit's encoder (only called when some task is not up to date) and its fingerprint."""
        if unit.strategy is not None:
            ckpt = self._checkpoints[unit.key]
            return (lambda: EncoderBundle.load(ckpt)), fingerprint({"checkpoint": file_checksum(ckpt)})
        store = self.eval_data().store
        mel = store.mel_config.model_dump(mode="json")
        patch = self.config.pretrain.data.patch_frames

        def random_init() -> EncoderBundle:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(unit.seed)
                encoder = Encoder(unit.backbone.name, int(store.mel_config.n_mels), **unit.backbone.options)
            return EncoderBundle(
                encoder.eval(), mel, patch, f"{unit.backbone.key} with random initial weights (seed {unit.seed})"
            )

        return random_init, fingerprint(
            {"random_init": unit.backbone.model_dump(mode="json"), "seed": unit.seed, "mel": mel, "patch_frames": patch}
        )

    def _embeddings(
        self, unit: Unit, load: Callable[[], Any], encoder_fp: str
    ) -> tuple[np.ndarray, dict[int, int], Any]:
        """Track embeddings of every store row some task needs, computed once per encoder and cached."""
        data, t = self.eval_data(), self.config.tasks
        path = unit.folder(self.out) / "eval" / "embeddings.npz"
        key = fingerprint({"encoder": encoder_fp, "rows": data.rows.tolist(), "batch": t.embed_batch_size})
        encoder = None
        try:
            with np.load(path) as cached:
                ok = str(cached["key"]) == key
                emb = cached["embeddings"] if ok else None
        except (FileNotFoundError, KeyError, ValueError, OSError):
            emb = None
        if emb is None:
            encoder = load()
            _, reader = encoder.open_store(self.paths.features)
            emb = embed_tracks(
                encoder.encoder,
                reader,
                data.rows,
                batch_size=t.embed_batch_size,
                device=t.device,
                desc=f"embedding ({unit.describe()})",
            )
            with atomic_open(path, "wb") as f:
                np.savez(f, key=np.array(key), rows=data.rows, embeddings=emb)
        return emb, {int(r): i for i, r in enumerate(data.rows)}, encoder

    def task_list(self) -> list[tuple[str, str, str]]:
        """(task name, kind, subset) in table order."""
        t = self.config.tasks
        tasks = [(f"probe-{s}", "probe", s) for s in t.probe] + [(f"finetune-{s}", "finetune", s) for s in t.finetune]
        tasks += [("similarity", "similarity", "")] if t.similarity else []
        return tasks + ([("latent", "latent", "")] if t.latent and self.config.data.world is not None else [])

    def _task_config(self, kind: str, seed: int) -> StrictConfig:
        t = self.config.tasks
        if kind == "probe":
            return t.probe_config.model_copy(update={"seed": seed})
        if kind == "finetune":
            return t.finetune_config.model_copy(update={"seed": seed})
        if kind == "latent":
            return t.latent_config.model_copy(update={"seed": seed})
        return t.similarity_config

    def evaluate_unit(self, unit: Unit) -> None:
        """Every task of one encoder; each is skipped when its done.json matches encoder, config and data."""
        data, t = self.eval_data(), self.config.tasks
        load, encoder_fp = self._encoder(unit)
        cache: dict[str, Any] = {}

        def embeddings() -> tuple[np.ndarray, dict[int, int]]:
            if "emb" not in cache:
                cache["emb"], cache["pos"], cache["encoder"] = self._embeddings(unit, load, encoder_fp)
            return cache["emb"], cache["pos"]

        def encoder() -> Any:
            if cache.get("encoder") is None:
                cache["encoder"] = load()
            return cache["encoder"]

        for task, kind, subset in self.task_list():
            folder = unit.folder(self.out) / "eval" / task
            cfg = self._task_config(kind, unit.seed)
            fp = fingerprint(
                {
                    "encoder": encoder_fp,
                    "task": task,
                    "config": cfg.model_dump(mode="json"),
                    "data": data.fingerprint,
                    "batch": t.embed_batch_size,
                }
            )
            what = f"evaluate {task} of {unit.describe()}"
            done = _read_json(folder / "done.json")
            if done is not None and done.get("fingerprint") == fp and (folder / "metrics.json").is_file():
                self.work.skipped.append(what)
                continue
            # stale results must not reach the table if this attempt fails
            (folder / "done.json").unlink(missing_ok=True)
            extra = {
                "encoder": f"{unit.describe()}",
                "features": str(self.paths.features),
                "config": cfg.model_dump(mode="json"),
            }

            def run(
                task: str = task,
                kind: str = kind,
                subset: str = subset,
                cfg: Any = cfg,
                folder: Path = folder,
                extra: dict = extra,
                fp: str = fp,
            ) -> bool:
                if kind == "probe":
                    emb, pos = embeddings()
                    ds = data.aligned[subset]
                    split_emb = {name: emb[[pos[int(r)] for r in split.rows]] for name, split in ds.splits.items()}
                    write_tagging_outputs(probe_embeddings(split_emb, ds, cfg), folder, extra)
                elif kind == "finetune":
                    tagging_task(
                        encoder(),
                        self.paths.features,
                        data.tag_sets[subset],
                        "finetune",
                        cfg,
                        out=folder,
                        device=t.device,
                    )
                elif kind == "latent":
                    emb, pos = embeddings()
                    ids = data.store.track_ids
                    rows = [int(r) for r in data.rows]
                    truth = read_latent(self.world().world_json, [ids[r] for r in rows])
                    metrics = latent_probe(emb[[pos[r] for r in rows]], truth, cfg)
                    write_json(folder / "metrics.json", {"metrics": metrics, **extra, "tracks": len(rows)})
                else:
                    emb, pos = embeddings()
                    pool = data.pool
                    assert pool is not None  # built whenever the similarity task is on
                    sc = self.config.tasks.similarity_config
                    result = evaluate_similarity(
                        emb[[pos[int(r)] for r in pool.store_rows]],
                        artist=pool.artist,
                        heldout=pool.heldout,
                        triplets=data.triplets,
                        k=sc.k,
                        mutual_proximity=sc.mutual_proximity,
                    )
                    result.notes[:0] = pool.notes
                    write_similarity_outputs(result, pool.track_ids, folder, extra)
                atomic_write_text(folder / "done.json", json.dumps({"fingerprint": fp, "task": task}) + "\n")
                return True

            if self._attempt(what, run):
                self.work.ran.append(what)

    def evaluate(self) -> None:
        """Evaluate the baseline and every pre-trained run; results.csv is rewritten after each encoder."""
        self._require("pretrain")
        self.eval_data()
        units = []
        for unit in self.units(baseline=True):
            if unit.strategy is not None and unit.key not in self._checkpoints:
                self.work.failed.append(f"evaluate {unit.describe()}: not run, it has no pre-trained checkpoint")
                self._unevaluated.add(unit.key)
                continue
            units.append(unit)
        if self.config.parallel > 1 and len(units) > 1:
            world = self.world()
            init = (self.config, str(self.out), str(world.root) if world is not None else None, dict(self._checkpoints))
            results = map_ordered(
                _evaluate_task,
                units,
                min(self.config.parallel, len(units)),
                _init_evaluator,
                init,
                start="spawn",
                tasks_per_worker=1,
            )
            for unit, outcome in progress(
                zip(units, results, strict=True), desc="evaluating", unit="encoder", total=len(units)
            ):
                self._outcome(f"evaluate {unit.describe()}", outcome)
                self.write_results_csv()
            return
        with cpu_threads(self.config.threads):
            for unit in progress(units, desc="evaluating", unit="encoder"):
                self.evaluate_unit(unit)
                self.write_results_csv()

    # -- results --

    def collect(self) -> list[ResultRow]:
        """The table's metrics of every finished evaluation of the grid, in grid order."""
        k = self.config.tasks.similarity_config.k
        wanted = {
            "probe": TAGGING_METRICS,
            "finetune": TAGGING_METRICS,
            "similarity": similarity_metric_names(k),
            "latent": LATENT_METRICS,
        }
        rows: list[ResultRow] = []
        for unit in self.units(baseline=True):
            if unit.key in self._unevaluated:  # results of an older checkpoint would not be this config's
                continue
            for task, kind, _ in self.task_list():
                folder = unit.folder(self.out) / "eval" / task
                if _read_json(folder / "done.json") is None:
                    continue
                metrics = (_read_json(folder / "metrics.json") or {}).get("metrics", {})
                for metric in wanted[kind]:
                    if metric in metrics:
                        value = metrics[metric]
                        rows.append(
                            ResultRow(
                                unit.label,
                                unit.backbone.key,
                                unit.seed,
                                task,
                                metric,
                                math.nan if value is None else float(value),
                            )
                        )
        return rows

    def write_results_csv(self) -> Path:
        return atomic_write_text(self.out / RESULTS_CSV, results_csv_text(self.collect()))

    def _maps(self) -> list[Path]:
        """t-SNE of the test tracks' embeddings (first seed of each row), coloured by each map subset's tags."""
        t = self.config.tasks
        if not t.maps:
            return []
        data = self.eval_data()
        test_rows = np.unique(np.concatenate([data.aligned[s].splits["test"].rows for s in t.maps]))
        if len(test_rows) < 5:
            log.warning("t-SNE maps skipped: only %d test tracks", len(test_rows))
            return []
        labels: dict[str, list[str]] = {}
        for s in t.maps:
            split = data.aligned[s].splits["test"]
            first = {
                int(r): data.aligned[s].tags[int(np.flatnonzero(y)[0])].split("---")[-1]
                for r, y in zip(split.rows, split.labels, strict=True)
                if y.any()
            }
            labels[s] = [first.get(int(r), "") for r in test_rows]
        figures: list[Path] = []
        for backbone in self.config.backbones:
            maps: list[EmbeddingMap] = []
            for unit in self.units(baseline=True):
                if unit.backbone != backbone or unit.seed != self.config.seeds[0] or unit.key in self._unevaluated:
                    continue
                coords = self._tsne(unit, test_rows)
                if coords is not None:
                    title = BASELINE_TITLE if unit.strategy is None else unit.label
                    maps.append(EmbeddingMap(title, coords, labels))
            if maps:
                out = self.out / PLOTS / f"tsne-{backbone.key}.png"
                figures.append(
                    embedding_maps(
                        maps,
                        t.maps,
                        out,
                        f"t-SNE of test-track embeddings ({backbone.key}, seed {self.config.seeds[0]})",
                    )
                )
        return figures

    def _tsne(self, unit: Unit, test_rows: np.ndarray) -> np.ndarray | None:
        """2-D t-SNE coordinates of ``test_rows``, cached beside the embeddings they come from."""
        path = unit.folder(self.out) / "eval" / "embeddings.npz"
        cache = unit.folder(self.out) / "eval" / "tsne.npz"
        try:
            with np.load(path) as saved:
                key, rows, emb = str(saved["key"]), saved["rows"], saved["embeddings"]
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None
        want = fingerprint({"embeddings": key, "rows": test_rows.tolist(), "seed": unit.seed})
        try:
            with np.load(cache) as saved:
                if str(saved["key"]) == want:
                    return np.asarray(saved["coords"])
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass
        pos = {int(r): i for i, r in enumerate(rows)}
        coords = tsne_coordinates(emb[[pos[int(r)] for r in test_rows]], unit.seed)
        with atomic_open(cache, "wb") as f:
            np.savez(f, key=np.array(want), coords=coords)
        self.work.ran.append(f"t-SNE of {unit.describe()}")
        return coords

    def curves(self) -> dict[str, Path]:
        """The training curve of each strategy's first-seed run (per backbone), where it was drawn."""
        out: dict[str, Path] = {}
        for unit in self.units():
            png = unit.folder(self.out) / "pretrain" / "training_curve.png"
            if unit.seed == self.config.seeds[0] and png.is_file():
                out[f"{unit.label} · {unit.backbone.key}"] = png
        return out

    def report(self) -> ExperimentResult:
        """results.csv, the plots, results.md (regenerated from the CSV) and failures.json."""
        csv_path = self.write_results_csv()
        rows = read_results(csv_path)
        with cpu_threads(self.config.threads):
            figures = (metric_bar_charts(rows, self.out / PLOTS) if rows else []) + (self._maps() if rows else [])
        kinds = {s.key: s.name for s in self.config.strategies}
        captions = [(f.stem, f.relative_to(self.out).as_posix()) for f in figures]
        md = results_markdown(rows, self.config.name, captions, self.work.failed, kinds)
        md_path = atomic_write_text(self.out / RESULTS_MD, md)
        atomic_write_text(self.out / "failures.json", json.dumps(self.work.failed, indent=2) + "\n")
        summary = summarize(rows)
        claim_table = claims_markdown(rows, kinds)
        table = (
            (
                markdown_tables(summary)
                + "\n\n"
                + verdict(summary, kinds)
                + ("\n\n" + claim_table if claim_table else "")
            )
            if rows
            else "no result yet"
        )
        return ExperimentResult(self.out, csv_path, md_path, table, figures, self.curves(), self.work)

    def save_config(self) -> Path:
        """experiment.yaml in the run folder: the resolved config, loadable by `mixtape experiment`."""
        data = {**self.config.dump(), "out": str(self.out)}
        return atomic_write_text(
            self.out / "experiment.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        )

    def run(self) -> ExperimentResult:
        """Every stage of ``STAGES`` in order, each skipping what is already done."""
        self.save_config()
        result: Any = None
        for stage in STAGES:
            result = getattr(self, stage)()
        return result

    def _require(self, stage: str) -> None:
        """Run ``stage`` first unless this process already did (its outputs are what the caller needs)."""
        if stage not in self._done:
            getattr(self, stage)()


# --- worker processes (``parallel`` > 1): one grid cell per task ------------------------------------

_EVALUATOR: Experiment | None = None


def _quiet_worker() -> None:
    """Workers draw no progress bars and print no Lightning banners: the parent's bar counts finished runs."""

    os.environ["MIXTAPE_NO_PROGRESS"] = "1"
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _pretrain_task(task: tuple[dict[str, Any], int | None]) -> tuple[str | None, str | None, dict[str, list[str]]]:
    """Pre-train one grid cell in a worker: (checkpoint, None, {}) or (None, the error, {})."""
    from mixtape.training.run import pretrain

    config, threads = task
    try:
        with cpu_threads(threads):
            return str(pretrain(PretrainConfig.model_validate(config), resume=True).checkpoint), None, {}
    except Exception as err:  # reported by the parent exactly as an in-process failure would be
        return None, f"{type(err).__name__}: {err}", {}


def _init_evaluator(
    config: ExperimentConfig, out: str, world: str | None, checkpoints: dict[tuple[str, str, int], Path]
) -> None:
    """Each evaluation worker opens the experiment once (data, pool, triplets) and reuses it for its tasks."""
    global _EVALUATOR
    from mixtape.world import World

    _quiet_worker()
    exp = Experiment(config, out)
    exp._world = World.load(world) if world is not None else None
    exp._checkpoints = dict(checkpoints)
    exp._done |= {"pairs", "pretrain"}
    _EVALUATOR = exp


def _evaluate_task(unit: Unit) -> tuple[None, str | None, dict[str, list[str]]]:
    """Every task of one encoder in a worker; what it ran, skipped or failed goes back to the parent's log."""
    exp = _EVALUATOR
    assert exp is not None, "evaluation worker started without _init_evaluator"
    exp.work = WorkLog()
    try:
        with cpu_threads(exp.config.threads):
            exp.evaluate_unit(unit)
    except Exception as err:
        return None, f"{type(err).__name__}: {err}", exp.work.__dict__
    return None, None, exp.work.__dict__


def run_experiment(
    config: ExperimentConfig | str | Path, out: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ExperimentResult:
    """Run (or continue) an experiment from a config object or a YAML file."""
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config, overrides)
    return Experiment(config, out).run()


def report_only(config: ExperimentConfig | str | Path, out: str | Path | None = None) -> ExperimentResult:
    """Regenerate results.md and the plots from the run folder's finished evaluations, running nothing."""
    if not isinstance(config, ExperimentConfig):
        config = load_experiment_config(config)
    exp = Experiment(config, out)
    previous = _read_json_list(exp.out / "failures.json")
    exp.work.failed.extend(previous)  # the last run's failures stay listed in the regenerated table
    return exp.report()


def _read_json_list(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []
