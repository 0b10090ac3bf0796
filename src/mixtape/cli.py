"""The `mixtape` command: parses arguments and calls the stage packages, nothing more.

Stage packages are imported inside each command so that `mixtape --help` stays instant
(torch and friends load only when a command needs them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mixtape import __version__
from mixtape.errors import MixtapeError
from mixtape.fileio import setup_logging


def _shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (0-based shard i of n)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like i/n, got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= i < n")
    return i, n


# --- world -------------------------------------------------------------------------------------


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate the embedded music world (audio, tracks, tags, playlists, triplets)")
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "medium", "large"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: all cores)")
    p.set_defaults(func=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from mixtape.world import synth

    world = synth(args.out, size=args.size, seed=args.seed, workers=args.workers)
    print(world.summary())
    return 0


# --- features ----------------------------------------------------------------------------------


def _add_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="decode audio and write the log-mel feature store (resumable, shardable)")
    p.add_argument("--tracks", type=Path, help="tracks table (CSV/TSV with track_id,path)")
    p.add_argument(
        "--audio-root",
        type=Path,
        default=None,
        help="folder that relative paths start from (default: the table's folder)",
    )
    p.add_argument("--out", type=Path, required=True, help="feature store folder")
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all cores; 0: in this process)"
    )
    p.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: compute only shard i of n (merge afterwards)")
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        metavar="SHARD_STORE",
        help="merge shard stores into --out instead of extracting",
    )
    p.add_argument(
        "--device", default="cpu", help="where log-mel is computed: cpu (in the workers) or cuda (workers only decode)"
    )
    p.set_defaults(func=_cmd_features)


def _cmd_features(args: argparse.Namespace) -> int:
    from mixtape.audio import extract_features, merge_stores
    from mixtape.catalog import read_tracks

    if args.merge:
        store = merge_stores(args.merge, args.out)
        print(store.summary())
        return 0
    if args.tracks is None:
        raise MixtapeError("features: --tracks is required unless --merge is given")
    table = read_tracks(args.tracks, args.audio_root)
    for reason in table.skipped:
        logging.getLogger("mixtape.features").warning("skipped row: %s", reason)
    report = extract_features(table.records, args.out, workers=args.workers, shard=args.shard, device=args.device)
    print(report.summary())
    return 0


# --- pairs -------------------------------------------------------------------------------------


def _add_pairs(sub: argparse._SubParsersAction) -> None:
    from mixtape.pairs.params import PARAMS, SUMMARIES, known_parameters, params_model

    listing = "; ".join(f"{name}: {text}" for name, text in SUMMARIES.items())
    p = sub.add_parser(
        "pairs",
        help="build the positives of one pair strategy from tracks + playlists (resumable)",
        description=f"Strategies — {listing}.",
    )
    p.add_argument(
        "--tracks",
        type=Path,
        nargs="+",
        required=True,
        help="tracks table(s) (CSV/TSV with track_id,path[,artist_id,album_id]; MTG-Jamendo TSVs)",
    )
    p.add_argument(
        "--playlists",
        type=Path,
        nargs="+",
        default=[],
        help="training playlists: files or folders (MPD slices, .m3u/.m3u8, .jsonl, .csv)",
    )
    p.add_argument(
        "--heldout", type=Path, nargs="+", default=[], help="held-out (evaluation) playlists: never feed a strategy"
    )
    p.add_argument(
        "--holdout-tracks",
        type=Path,
        default=None,
        help="split file of tracks that are neither anchors nor positives (e.g. a test split TSV)",
    )
    p.add_argument(
        "--audio-root",
        type=Path,
        default=None,
        help="folder that relative track paths start from (default: the table's folder)",
    )
    p.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="CSV 'entry,track_id' mapping playlist entries (URIs, paths) to track ids",
    )
    p.add_argument(
        "--match",
        default="auto",
        choices=["auto", "id", "path"],
        help="how playlist entries are matched to tracks (default: auto)",
    )
    p.add_argument("--strategy", required=True, choices=list(PARAMS), help="where positives come from (see README)")
    # One flag per strategy parameter, made from the parameter models (mixtape.pairs.params).
    for name, strategies in known_parameters().items():
        field = params_model(strategies[0]).model_fields[name]
        default = field.get_default(call_default_factory=True)
        shown = ",".join(f"{k}={v:g}" for k, v in default.items()) if isinstance(default, dict) else default
        text = f"{'/'.join(strategies)}: {field.description} (default {shown})"
        flag = "--" + name.replace("_", "-")
        if field.annotation is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            choices = (
                list(getattr(field.annotation, "__args__", ()))
                if str(field.annotation).startswith("typing.Literal")
                else None
            )
            p.add_argument(
                flag, dest=name, default=None, choices=choices, metavar=name.upper() if not choices else None, help=text
            )
    p.add_argument("--force", action="store_true", help="rebuild even if --out is up to date")
    p.add_argument("--out", type=Path, required=True, help="output folder (positives CSR .npz + metadata + stats.json)")
    p.set_defaults(func=_cmd_pairs, strategy_parameters=list(known_parameters()))


def _cmd_pairs(args: argparse.Namespace) -> int:
    from mixtape.pairs import run_pairs

    # Only the flags given: each strategy's model fills in (and type-checks) the rest.
    params = {name: getattr(args, name) for name in args.strategy_parameters if getattr(args, name) is not None}
    unused = sorted(
        k for k in params if k != "mix" and args.strategy != "mix" and k not in _strategy_fields(args.strategy)
    )
    if "mix" in params and args.strategy != "mix":
        raise MixtapeError(f"pairs: --mix needs --strategy mix (got --strategy {args.strategy})")
    if unused:
        logging.getLogger("mixtape.pairs").warning(
            "pairs: %s do(es) not apply to --strategy %s and is ignored",
            ", ".join("--" + k.replace("_", "-") for k in unused),
            args.strategy,
        )
    run = run_pairs(
        args.tracks,
        args.out,
        args.strategy,
        args.playlists,
        args.heldout,
        args.holdout_tracks,
        args.audio_root,
        mapping=args.mapping,
        match=args.match,
        force=args.force,
        **params,
    )
    print(run.summary())
    return 0


def _strategy_fields(strategy: str) -> set[str]:
    from mixtape.pairs.params import params_model

    return set(params_model(strategy).model_fields)


# --- pretrain / export -------------------------------------------------------------------------


def _devices(text: str) -> int | str:
    """``auto`` or a positive device count."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"devices must be 'auto' or a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"devices must be positive, got {n}")
    return n


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="contrastive pre-training of an audio encoder on one pair strategy (resumable, multi-GPU)"
    )
    p.add_argument("--config", type=Path, required=True, help="pre-training YAML (see configs/pretrain_*.yaml)")
    p.add_argument("--out", type=Path, default=None, help="run folder (overrides the config's `out`)")
    p.add_argument(
        "--resume", action="store_true", help="continue from the run folder's last checkpoint, with the same data order"
    )
    p.add_argument(
        "--devices", type=_devices, default=None, help="devices per node: a count or 'auto' (overrides trainer.devices)"
    )
    p.add_argument(
        "--num-nodes",
        type=int,
        default=None,
        help="nodes for multi-node DDP under torchrun or SLURM (overrides trainer.num_nodes)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set trainer.max_steps=500 (repeatable)",
    )
    p.set_defaults(func=_cmd_pretrain)


def _global_rank() -> int:
    """This process's rank as Lightning records it: an attribute it sets on ``rank_zero_only`` (0 until then)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0))


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from mixtape.training import load_pretrain_config, parse_overrides
    from mixtape.training.run import pretrain

    overrides = parse_overrides(args.set)
    for key, value in (("out", args.out), ("trainer.devices", args.devices), ("trainer.num_nodes", args.num_nodes)):
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    config = load_pretrain_config(args.config, overrides)
    if _global_rank() == 0:
        setup_logging(logging.DEBUG if args.verbose else logging.INFO, log_file=config.out / "pretrain.log")
    result = pretrain(config, resume=args.resume)
    if _global_rank() == 0:
        print(result.summary())
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a checkpoint's encoder as a model folder (config.json, model.safetensors, README.md card) and ONNX",
    )
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="pre-training checkpoint (e.g. RUN/checkpoints/last.ckpt)"
    )
    p.add_argument("--out", type=Path, required=True, help="export folder")
    p.add_argument("--onnx", action="store_true", help="also write encoder.onnx (its input: --onnx-input)")
    p.add_argument(
        "--onnx-input",
        default="mel",
        choices=["mel", "essentia", "waveform"],
        help="mel: log-mel patches [N, 96, 128] (bands, frames); essentia: [N, 128, 96] (frames, bands), Essentia's "
        "layout; waveform: [N, samples] mono audio at the encoder's rate, the log-mel front end in the graph",
    )
    p.add_argument("--license", default="unknown", help="licence field of the model card (e.g. cc-by-nc-sa-4.0)")
    p.add_argument("--name", default=None, help="model name in the card (default: the folder's name)")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from mixtape.training.export import export_checkpoint

    result = export_checkpoint(
        args.checkpoint, args.out, onnx=args.onnx, onnx_input=args.onnx_input, license=args.license, name=args.name
    )
    print(result.summary())
    return 0


# --- evaluation --------------------------------------------------------------------------------


_EMBEDDINGS_HELP = (
    "precomputed track vectors of any model instead of --encoder/--features: a folder holding vectors.npy and "
    "tracks.tsv (as `mixtape embed` writes them; for another model's vectors tracks.tsv needs only a track_id "
    "header), or an .npz holding 'ids' (track ids) and 'embeddings' ([tracks, dims])"
)


def _add_encoder_and_store(p: argparse.ArgumentParser, embeddings: bool = False) -> None:
    """--encoder and --features (required unless ``embeddings``: then --embeddings may replace them;
    without it --embeddings is hidden, and refused with the reason by the command)."""
    either = "; or --embeddings instead" if embeddings else " (required)"
    p.add_argument(
        "--encoder",
        "--checkpoint",
        dest="encoder",
        type=Path,
        default=None,
        help="encoder to evaluate: an export folder (mixtape export) or a pre-training checkpoint" + either,
    )
    p.add_argument(
        "--features",
        type=Path,
        default=None,
        help="feature store of the evaluation tracks (same mel settings as the encoder's)" + either,
    )
    p.add_argument(
        "--embeddings",
        type=Path,
        default=None,
        metavar="PATH",
        help=_EMBEDDINGS_HELP if embeddings else argparse.SUPPRESS,
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (metrics.json and tables)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")


def _encoder_or_embeddings(args: argparse.Namespace, alternatives: str = "") -> None:
    """Exactly one of --embeddings and --encoder with --features, or an error naming the flags."""
    if args.embeddings is not None:
        given = [flag for flag, value in (("--encoder", args.encoder), ("--features", args.features)) if value]
        if given:
            raise MixtapeError(
                f"{args.command}: --embeddings cannot be combined with {' and '.join(given)}: score either "
                "precomputed vectors (--embeddings PATH) or an encoder on a feature store (--encoder and --features)"
            )
    elif args.encoder is None or args.features is None:
        raise MixtapeError(
            f"{args.command}: give --encoder and --features (a mixtape encoder on a feature store), or --embeddings "
            f"PATH (precomputed vectors of any model){alternatives}"
        )


def _add_tag_dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", default="mtg-jamendo", choices=["mtg-jamendo", "magnatagatune", "csv"], help="tag file format"
    )
    p.add_argument(
        "--tags",
        type=Path,
        default=None,
        help="magnatagatune: annotations_final.csv; csv: track_id,tags file ('|'-separated tags)",
    )
    p.add_argument(
        "--splits",
        type=Path,
        default=None,
        help="mtg-jamendo: splits folder (holding split-N/ or the autotagging_<subset>-<split>.tsv files); csv: "
        "folder with train/validation/test lists",
    )
    p.add_argument(
        "--subset",
        default="genre",
        choices=["genre", "moodtheme", "instrument", "top50tags"],
        help="MTG-Jamendo subset",
    )
    p.add_argument("--split-index", type=int, default=0, help="MTG-Jamendo split number (split-N)")
    p.add_argument("--seed", type=int, default=0)


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="tagging with a frozen encoder, or precomputed vectors of any model: MLP probe on track embeddings "
        "(ROC-AUC, PR-AUC)",
    )
    _add_encoder_and_store(p, embeddings=True)
    _add_tag_dataset(p)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10, help="epochs without a validation PR-AUC gain before stopping")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=_cmd_probe)


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="tagging by fine-tuning the whole encoder with a new output layer (ROC-AUC, PR-AUC)"
    )
    _add_encoder_and_store(p)
    _add_tag_dataset(p)
    p.add_argument("--max-epochs", type=int, default=30, help="an epoch is one random patch of every training track")
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of the new output layer")
    p.add_argument("--encoder-lr", type=float, default=1e-4, help="learning rate of the pre-trained encoder")
    p.set_defaults(func=_cmd_finetune)


def _cmd_tagging(args: argparse.Namespace, method: str, config: object) -> int:
    from mixtape.evaluation import FinetuneConfig, ProbeConfig, load_tag_dataset, tagging_table, tagging_task

    assert isinstance(config, (ProbeConfig, FinetuneConfig))  # _cmd_probe and _cmd_finetune build one
    if method != "finetune":
        _encoder_or_embeddings(args)
    elif args.embeddings is not None:
        raise MixtapeError(
            "finetune: --embeddings cannot be fine-tuned: fine-tuning trains the encoder itself, so it needs "
            "--encoder and --features; score precomputed vectors with `mixtape probe --embeddings PATH`"
        )
    elif args.encoder is None or args.features is None:
        raise MixtapeError("finetune: give --encoder and --features (the encoder to fine-tune, the tracks' features)")
    dataset = load_tag_dataset(args.dataset, args.tags, args.splits, args.subset, args.split_index)
    for note in dataset.notes:
        logging.getLogger("mixtape.evaluation").warning("%s", note)
    result = tagging_task(
        args.encoder,
        args.features,
        dataset,
        "finetune" if method == "finetune" else "probe",
        config,
        out=args.out,
        device=args.device,
        embeddings=args.embeddings,
    )
    print(tagging_table(result))
    print(f"results written to {args.out}")
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.evaluation import ProbeConfig

    cfg = config_from_dict(
        ProbeConfig,
        {"max_epochs": args.max_epochs, "patience": args.patience, "batch_size": args.batch_size, "seed": args.seed},
        "the command line",
    )
    return _cmd_tagging(args, "probe", cfg)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.evaluation import FinetuneConfig

    values = {
        "max_epochs": args.max_epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "encoder_lr": args.encoder_lr,
        "seed": args.seed,
    }
    cfg = config_from_dict(FinetuneConfig, values, "the command line")
    return _cmd_tagging(args, "finetune", cfg)


def _add_similarity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "similarity",
        help="music similarity of frozen embeddings: triplet accuracy, held-out playlist retrieval, hubness; or, "
        "with --audio, retrieval of same-artist/album/composer recordings against a mel-statistics baseline",
    )
    p.add_argument(
        "--encoder",
        "--checkpoint",
        dest="encoder",
        type=Path,
        default=None,
        help="encoder to evaluate: an export folder (mixtape export) or a pre-training checkpoint (optional with "
        "--audio: then only the baselines are scored)",
    )
    p.add_argument(
        "--features",
        type=Path,
        default=None,
        help="feature store of the evaluation tracks (same mel settings as the encoder's); not with --audio",
    )
    p.add_argument(
        "--embeddings", type=Path, default=None, metavar="PATH", help=_EMBEDDINGS_HELP + "; not with --audio"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (metrics.json and tables)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument(
        "--audio",
        type=Path,
        default=None,
        help="a folder of your recordings (scanned recursively): score retrieval of tracks sharing the --group-by tag",
    )
    p.add_argument(
        "--group-by",
        default=None,
        choices=["artist", "album", "composer"],
        help="with --audio: the file tag that defines a group (relevant = same group)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --audio: decoding processes for feature extraction (default: all cores; 0: in this process)",
    )
    p.add_argument(
        "--tracks",
        type=Path,
        default=None,
        help="tracks table (artists, and the ids held-out playlists refer to); default: every store track",
    )
    p.add_argument(
        "--audio-root", type=Path, default=None, help="folder that the tracks table's relative paths start from"
    )
    p.add_argument("--triplets", type=Path, default=None, help="CSV anchor,candidate_a,candidate_b,votes_a,votes_b")
    p.add_argument(
        "--heldout",
        type=Path,
        nargs="+",
        default=[],
        help="held-out playlist files or folders (MPD JSON, M3U, JSONL, CSV)",
    )
    p.add_argument("--k", type=int, default=10, help="cut-off of nDCG/mAP/P and of the k-occurrence (hubness)")
    p.add_argument(
        "--mutual-proximity",
        default="gaussian",
        choices=["gaussian", "empirical", "none"],
        help="also re-rank with mutual proximity and report hubness and retrieval after it",
    )
    p.set_defaults(func=_cmd_similarity)


def _cmd_similarity(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.evaluation import SimilarityConfig, similarity_task

    if args.audio is not None:
        if args.embeddings is not None:
            raise MixtapeError(
                "similarity: --embeddings cannot be combined with --audio (with --audio, the recordings are "
                "embedded by --encoder)"
            )
        return _cmd_similarity_audio(args)
    if args.group_by is not None:
        raise MixtapeError("similarity: --group-by needs --audio FOLDER (the recordings whose tags define the groups)")
    _encoder_or_embeddings(args, ", or --audio FOLDER --group-by TAG to score your own recordings")
    if args.triplets is None and not args.heldout:
        logging.getLogger("mixtape.evaluation").warning("no --triplets and no --heldout: only hubness will be measured")
    cfg = config_from_dict(
        SimilarityConfig, {"k": args.k, "mutual_proximity": args.mutual_proximity}, "the command line"
    )
    result = similarity_task(
        args.encoder,
        args.features,
        args.tracks,
        args.heldout,
        args.triplets,
        cfg,
        out=args.out,
        device=args.device,
        audio_root=args.audio_root,
        embeddings=args.embeddings,
    )
    print(result.summary())
    print(f"results written to {args.out}")
    return 0


def _cmd_similarity_audio(args: argparse.Namespace) -> int:
    from mixtape.evaluation.recordings import folder_group_similarity

    if args.group_by is None:
        raise MixtapeError(
            "similarity: --audio needs --group-by artist|album|composer (the tag whose shared value makes "
            "tracks relevant to each other)"
        )
    unused = [
        flag
        for flag, value in (
            ("--features", args.features),
            ("--tracks", args.tracks),
            ("--triplets", args.triplets),
            ("--heldout", args.heldout),
        )
        if value
    ]
    if unused:
        raise MixtapeError(
            f"similarity: {', '.join(unused)} cannot be combined with --audio (features are extracted into "
            "--out/features)"
        )
    result = folder_group_similarity(
        args.audio, args.group_by, args.out, args.encoder, workers=args.workers, device=args.device, k=args.k
    )
    print(result.summary())
    print(f"results written to {args.out} (metrics.json, per_query.tsv, tracks.tsv)")
    return 0


# --- search ------------------------------------------------------------------------------------


def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="track embeddings of a collection (audio folder, tracks table or feature store); resumable, shardable",
    )
    p.add_argument(
        "--checkpoint",
        "--encoder",
        dest="encoder",
        type=Path,
        default=None,
        help="the trained encoder: a pre-training checkpoint or an export folder",
    )
    p.add_argument(
        "--audio",
        type=Path,
        default=None,
        help="a folder of audio files (scanned recursively) or a tracks table (CSV/TSV "
        "track_id,path[,artist_id,album_id])",
    )
    p.add_argument("--features", type=Path, default=None, help="embed an existing feature store instead of audio")
    p.add_argument("--tracks", type=Path, default=None, help="with --features: tracks table giving artists and albums")
    p.add_argument(
        "--audio-root", type=Path, default=None, help="folder that the tracks table's relative paths start from"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="embeddings folder (with --audio it also holds the feature store)"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all cores; 0: in this process)"
    )
    p.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: embed only shard i of n (join with --merge)")
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        metavar="SHARD_EMBEDDINGS",
        help="merge shard embeddings folders into --out instead of embedding",
    )
    p.add_argument("--batch-size", type=int, default=64, help="patches per forward pass")
    p.add_argument(
        "--chunk-tracks",
        type=int,
        default=1024,
        help="tracks embedded between two saves: what an interruption can lose at most (default 1024)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument(
        "--force", action="store_true", help="replace embeddings made by another encoder / recompute every track"
    )
    p.set_defaults(func=_cmd_embed)


def _cmd_embed(args: argparse.Namespace) -> int:
    from mixtape.search import embed_collection, merge_embeddings

    if args.merge:
        print(merge_embeddings(args.merge, args.out).summary())
        return 0
    if args.encoder is None:
        raise MixtapeError("embed: --checkpoint is required unless --merge is given")
    report = embed_collection(
        args.encoder,
        args.out,
        audio=args.audio,
        features=args.features,
        tracks=args.tracks,
        audio_root=args.audio_root,
        shard=args.shard,
        workers=args.workers,
        batch_size=args.batch_size,
        chunk_tracks=args.chunk_tracks,
        device=args.device,
        force=args.force,
    )
    print(report.summary())
    return 0


def _add_index(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="FAISS nearest-neighbour index of an embeddings folder (exact, IVF or IVF-PQ by size); prints recall@10",
    )
    p.add_argument(
        "embeddings",
        type=Path,
        nargs="?",
        default=None,
        help="embeddings folder (mixtape embed), or precomputed vectors of any model (see --embeddings)",
    )
    p.add_argument(
        "--embeddings",
        dest="vectors",
        type=Path,
        default=None,
        metavar="PATH",
        help="instead of EMBEDDINGS: "
        + _EMBEDDINGS_HELP.replace(" instead of --encoder/--features", "")
        + "; an outside model's vectors are copied as an embeddings folder into OUT/embeddings (search by --track "
        "only: audio files cannot be embedded like them)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="index folder (default: EMBEDDINGS/index; required for an .npz)"
    )
    p.add_argument(
        "--add",
        type=Path,
        action="append",
        default=[],
        metavar="NEW",
        help="also add the tracks of NEW (an embeddings folder of the same encoder, or vectors of the same model as "
        "--embeddings takes them) to the index without rebuilding it; repeatable; a source the index already holds "
        "is skipped",
    )
    p.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "flat", "ivf", "ivfpq", "hnsw"],
        help="auto: exact up to --exact-max tracks, IVF above, IVF-PQ (compressed, exact re-ranking) when the "
        "vectors take more than --ivf-max-gib",
    )
    p.add_argument("--exact-max", type=int, default=100_000, help="largest collection indexed exactly (default 100000)")
    p.add_argument(
        "--ivf-max-gib",
        type=float,
        default=2.0,
        help="with --kind auto: largest float32 vectors (GiB) an IVF index holds in memory; IVF-PQ above (default 2)",
    )
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default: power of two nearest sqrt(n))")
    p.add_argument(
        "--pq-m",
        type=int,
        default=None,
        help="IVF-PQ sub-quantizers of 4 bits (default: one per 4 dimensions; must divide the dimensions)",
    )
    p.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="recall@10 the search parameter is tuned to reach (default 0.95)",
    )
    p.add_argument("--recall-queries", type=int, default=200, help="sample queries for the recall measurement")
    p.add_argument(
        "--mutual-proximity",
        action="store_true",
        help="also store what query-time mutual-proximity re-ranking needs (search --rerank mp)",
    )
    p.add_argument(
        "--layout",
        default="auto",
        choices=["auto", "umap", "pca", "none"],
        help="the 2-D map of the collection the listening page draws (layout.npy): auto = UMAP where umap-learn is "
        "installed (pip install 'mixtape[map]'), else PCA; none: no map (default auto)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the index is up to date")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_index)


def _cmd_index(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.search import IndexSettings, build_index

    values = {
        "kind": args.kind,
        "exact_max": args.exact_max,
        "ivf_max_gib": args.ivf_max_gib,
        "nlist": args.nlist,
        "pq_m": args.pq_m,
        "target_recall": args.target_recall,
        "recall_queries": args.recall_queries,
        "mutual_proximity": args.mutual_proximity,
        "layout": args.layout,
        "seed": args.seed,
    }
    settings = config_from_dict(IndexSettings, values, "the command line")
    if (args.embeddings is None) == (args.vectors is None):
        raise MixtapeError(
            "index: give the vectors to index once: an embeddings folder as EMBEDDINGS, or --embeddings PATH"
            + (f" (got {args.embeddings} and {args.vectors})" if args.embeddings is not None else "")
        )
    source: Path = args.embeddings if args.embeddings is not None else args.vectors
    if args.out is None and source.suffix == ".npz":
        raise MixtapeError(f"index: give --out, the index folder to write for the vectors of {source}")
    out = args.out or source / "index"
    print(build_index(source, out, settings, force=args.force, add=args.add).summary())
    return 0


def _add_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="nearest neighbours of a collection track or an audio file")
    p.add_argument("--index", type=Path, required=True, help="index folder (mixtape index)")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--track", default=None, help="a track id of the collection")
    q.add_argument("--audio", type=Path, default=None, help="an audio file (embedded with the collection's encoder)")
    p.add_argument("-k", type=int, default=10, help="neighbours to show (default 10)")
    p.add_argument("--exclude-same-artist", action="store_true", help="leave out tracks by the query's artist")
    p.add_argument("--exclude-same-album", action="store_true", help="leave out tracks from the query's album")
    p.add_argument("--min-score", type=float, default=None, help="leave out neighbours below this cosine similarity")
    p.add_argument(
        "--rerank",
        default="none",
        choices=["none", "mp"],
        help="mp: re-rank by mutual proximity (index built with --mutual-proximity)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="with --audio: the collection's encoder, if it moved since the index was built",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_search)


def _cmd_search(args: argparse.Namespace) -> int:
    import json

    from mixtape.search import SimilarIndex, load_query_encoder, similar_to_audio

    index = SimilarIndex.open(args.index)
    options = {
        "exclude_same_artist": args.exclude_same_artist,
        "exclude_same_album": args.exclude_same_album,
        "min_score": args.min_score,
        "rerank": args.rerank,
    }
    if args.track is not None:
        result = index.similar_to_track(args.track, args.k, **options)
    else:
        from mixtape.audio import AudioDecodeError

        encoder = load_query_encoder(index, args.checkpoint)
        try:
            result = similar_to_audio(index, encoder, args.audio, args.k, **options)
        except AudioDecodeError as err:
            raise MixtapeError(f"--audio {args.audio}: {err.reason}") from None
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.table())
    return 0


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web page + JSON API to browse, play and query the collection by similarity")
    p.add_argument("--index", type=Path, required=True, help="index folder (mixtape index)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only; there is no login)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the collection's encoder for uploads, if it moved since the index was built",
    )
    p.add_argument(
        "--tagger", type=Path, default=None, help="tagging model folder (mixtape tagger) to show predicted tags"
    )
    p.add_argument(
        "--tags",
        type=Path,
        default=None,
        metavar="TABLE.tsv",
        help="tags to show, filter by and colour the map with: a TSV whose header is track_id then tag columns "
        "(every other cell a tag; one tag a row works too), or an MTG-Jamendo autotagging TSV",
    )
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload (default 50 MB)")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.search import ServeConfig, serve

    values = {
        "max_upload_mb": args.max_upload_mb,
        "encoder": str(args.checkpoint) if args.checkpoint else None,
        "tagger": str(args.tagger) if args.tagger else None,
        "tags_table": str(args.tags) if args.tags else None,
    }
    serve(args.index, host=args.host, port=args.port, config=config_from_dict(ServeConfig, values, "the command line"))
    return 0


def _add_tagger(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tagger", help="train a tag predictor (MLP probe) on a collection's embeddings, for the search page"
    )
    p.add_argument(
        "--embeddings", type=Path, required=True, help="embeddings folder (mixtape embed) holding the tagged tracks"
    )
    p.add_argument("--out", type=Path, required=True, help="tagging model folder")
    _add_tag_dataset(p)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.set_defaults(func=_cmd_tagger)


def _cmd_tagger(args: argparse.Namespace) -> int:
    from mixtape.config import config_from_dict
    from mixtape.evaluation import ProbeConfig, load_tag_dataset
    from mixtape.evaluation.tagger import train_tagger

    dataset = load_tag_dataset(args.dataset, args.tags, args.splits, args.subset, args.split_index)
    cfg = config_from_dict(
        ProbeConfig, {"max_epochs": args.max_epochs, "patience": args.patience, "seed": args.seed}, "the command line"
    )
    print(train_tagger(args.embeddings, dataset, args.out, cfg).summary())
    return 0


# --- experiment / demo -------------------------------------------------------------------------


def _add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="run a grid of strategies x backbones x seeds x tasks (resumable) and write the comparison table",
    )
    p.add_argument("config", type=Path, help="experiment YAML (see configs/demo.yaml, configs/paper.yaml)")
    p.add_argument("--out", type=Path, default=None, help="run folder (overrides the config's `out`)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set seeds=[0] --set pretrain.trainer.max_steps=50 (repeatable)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="only regenerate results.md and the plots from the finished evaluations",
    )
    p.set_defaults(func=_cmd_experiment)


def _cmd_experiment(args: argparse.Namespace) -> int:
    from mixtape.experiment import Experiment, load_experiment_config, report_only
    from mixtape.training.config import parse_overrides

    config = load_experiment_config(args.config, parse_overrides(args.set))
    exp = Experiment(config, args.out)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO, log_file=exp.out / "experiment.log")
    result = report_only(config, exp.out) if args.report_only else exp.run()
    print(result.summary())
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on the embedded default world (world to comparison table) and print its report",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large"])
    p.add_argument("--seed", type=int, default=0, help="seed of the generated world")
    p.add_argument(
        "--workers", type=int, default=None, help="processes for rendering and feature extraction (default: all cores)"
    )
    p.add_argument("--config", type=Path, default=None, help="the grid (default: the repository's configs/demo.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a grid key, e.g. --set seeds=[0] (repeatable)",
    )
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mixtape.demo import run_demo
    from mixtape.training.config import parse_overrides

    setup_logging(logging.DEBUG if args.verbose else logging.INFO, log_file=args.out / "demo.log")
    report = run_demo(
        args.out,
        size=args.size,
        seed=args.seed,
        workers=args.workers,
        config=args.config,
        overrides=parse_overrides(args.set),
    )
    print(report.console())
    return 0


# --- doctor ------------------------------------------------------------------------------------


def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check run folders (store vs index, positives vs catalogue, checkpoint vs config, ...) and say how to "
        "fix what is wrong",
    )
    p.add_argument(
        "run_dirs",
        type=Path,
        nargs="+",
        metavar="RUN_DIR",
        help="folders to check; every stage folder under them is recognised by its header file",
    )
    p.add_argument("--quick", action="store_true", help="skip hashing every track's frames and every embedding vector")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from mixtape.doctor import doctor

    report = doctor(args.run_dirs, quick=args.quick)
    print(report.render())
    return report.exit_code


# -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixtape", description="Contrastive pre-training of music embeddings from playlists."
    )
    parser.add_argument("--version", action="version", version=f"mixtape {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_synth,
        _add_features,
        _add_pairs,
        _add_pretrain,
        _add_export,
        _add_probe,
        _add_finetune,
        _add_similarity,
        _add_embed,
        _add_index,
        _add_search,
        _add_serve,
        _add_tagger,
        _add_experiment,
        _add_demo,
        _add_doctor,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except MixtapeError as err:
        print(f"mixtape {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system refused (permissions, disk full, read-only folder): not a bug
        logging.getLogger("mixtape").debug("%s", err, exc_info=True)
        where = f"{err.filename}: " if err.filename else ""
        print(f"mixtape {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mixtape {args.command}: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
