"""Training throughput: is the data pipeline keeping up with the model?

Measures samples/s (pairs per second) of
  (a) the bare model: forward + backward + optimiser step on random patches already on the device;
  (b) the full pipeline: feature store → pair sampler → loader workers → Lightning → the same model,
      same batch, same precision;
and prints ``RESULT backbone=... device=... bare_sps=X pipeline_sps=Y ratio=Y/X`` as its last line.
A ratio near 1 means the loader hides behind the model; the target is >= 0.7.

    # self-contained (builds a world, its features and cooc-topk pairs under --workdir, once):
    python benchmarks/train_throughput.py --world tiny --backbone small --batch-size 16
    # on a GPU, the paper's setting:
    python benchmarks/train_throughput.py --world medium --backbone efficientnet_b0 --batch-size 256 \\
        --precision bf16-mixed --workers 8
    # on your own data:
    python benchmarks/train_throughput.py --store runs/features --positives runs/pairs/cooc-topk
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def build_inputs(world_size: str, workdir: Path, workers: int) -> tuple[Path, Path]:
    """World → feature store → cooc-topk positives under ``workdir`` (each stage skipped when done)."""
    from mixtape.audio import extract_features
    from mixtape.catalog import read_tracks
    from mixtape.pairs import run_pairs
    from mixtape.world import synth

    world = synth(workdir / "world", size=world_size, seed=0, workers=workers)
    store = workdir / "features"
    extract_features(read_tracks(world.tracks).records, store, workers=workers)
    positives = workdir / "pairs" / "cooc-topk"
    run_pairs(world.tracks, positives, "cooc-topk", playlists=[world.playlists], heldout=[world.heldout])
    return store, positives


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_throughput(
    module: torch.nn.Module,
    batch: int,
    frames: int,
    n_mels: int,
    precision: str,
    device: torch.device,
    warmup: int,
    steps: int,
) -> float:
    """Pairs per second of forward + backward + step on random patches already on ``device``."""
    from mixtape.models import contrastive_loss

    module = module.to(device).train()
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    anchors = torch.randn(batch, n_mels, frames, device=device)
    positives = torch.randn(batch, n_mels, frames, device=device)
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    autocast = precision.endswith("-mixed")
    start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=autocast):
            loss = contrastive_loss(module.scores(anchors, positives))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return batch * steps / (time.perf_counter() - start)


def pipeline_throughput(config, warmup: int, steps: int) -> float:
    """Pairs per second of the real training loop (store → sampler → workers → Lightning → model)."""
    import lightning.pytorch as pl

    from mixtape.training.data import PairDataModule, prepare_pair_data
    from mixtape.training.module import ContrastivePretrainer
    from mixtape.training.run import resolve_precision

    class Clock(pl.Callback):
        def __init__(self) -> None:
            self.start = self.end = 0.0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step in (warmup, warmup + steps):
                _sync(pl_module.device)
                now = time.perf_counter()
                self.start, self.end = (now, self.end) if trainer.global_step == warmup else (self.start, now)

    t = config.trainer
    data = prepare_pair_data(config.data)
    module = ContrastivePretrainer(
        config.model.model_dump(mode="json"),
        config.optim.model_dump(mode="json"),
        warmup + steps,
        n_mels=data.n_mels,
        patch_frames=config.data.patch_frames,
    )
    clock = Clock()
    trainer = pl.Trainer(
        accelerator=t.accelerator,
        devices=1,
        precision=resolve_precision(t.precision, t.accelerator),  # type: ignore[arg-type]
        max_steps=warmup + steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
        use_distributed_sampler=False,
        benchmark=torch.cuda.is_available(),
    )
    trainer.fit(module, datamodule=PairDataModule(data, config.data, seed=t.seed))
    return config.data.batch_size * steps / (clock.end - clock.start)


def main() -> None:
    from mixtape.fileio import setup_logging
    from mixtape.training.config import DataConfig, ModelConfig, PretrainConfig, TrainerConfig
    from mixtape.training.module import ContrastivePretrainer
    from mixtape.training.run import resolve_precision

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", type=Path, help="feature store (with --positives); otherwise --world builds one")
    p.add_argument("--positives", type=Path)
    p.add_argument("--world", default="tiny", choices=["tiny", "small", "medium", "large"])
    p.add_argument("--workdir", type=Path, default=Path("runs/bench"))
    p.add_argument("--backbone", default="small")
    p.add_argument(
        "--batch-size", type=int, default=16, help="pairs per step (the tiny world fits at most ~16 cooc-topk pairs)"
    )
    p.add_argument("--patch-frames", type=int, default=128)
    p.add_argument("--precision", default="auto", help="auto (bf16-mixed on GPU), 32-true, bf16-mixed, 16-mixed")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--workers", type=int, default=2, help="loader workers of the pipeline run")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    setup_logging()

    if (args.store is None) != (args.positives is None):
        p.error("--store and --positives go together")
    store, positives = (
        (args.store, args.positives)
        if args.store
        else build_inputs(args.world, args.workdir / args.world, args.workers or 1)
    )
    precision = resolve_precision(args.precision, args.accelerator)
    config = PretrainConfig(
        data=DataConfig(
            store=store,
            positives=positives,
            batch_size=args.batch_size,
            patch_frames=args.patch_frames,
            workers=args.workers,
        ),
        model=ModelConfig(backbone=args.backbone),
        trainer=TrainerConfig(precision=precision, accelerator=args.accelerator, devices=1),
    )
    device = torch.device(
        "cuda" if args.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"
    )
    name = torch.cuda.get_device_name(device).replace(" ", "_") if device.type == "cuda" else "cpu"

    torch.manual_seed(0)
    n_mels = 96
    module = ContrastivePretrainer(
        config.model.model_dump(mode="json"),
        config.optim.model_dump(mode="json"),
        args.warmup + args.steps,
        n_mels=n_mels,
    )
    bare = bare_throughput(
        module, args.batch_size, args.patch_frames, n_mels, precision, device, args.warmup, args.steps
    )
    print(f"bare model: {bare:.1f} pairs/s ({args.backbone}, batch {args.batch_size}, {precision}, {name})", flush=True)
    pipeline = pipeline_throughput(config, args.warmup, args.steps)
    print(f"full pipeline: {pipeline:.1f} pairs/s ({args.workers} loader workers)", flush=True)
    print(
        f"RESULT backbone={args.backbone} device={name} bare_sps={bare:.1f} pipeline_sps={pipeline:.1f} "
        f"ratio={pipeline / bare:.3f}"
    )


if __name__ == "__main__":
    main()
