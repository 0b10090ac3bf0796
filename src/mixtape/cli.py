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
from mixtape.io import setup_logging


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
    p.add_argument("--audio-root", type=Path, default=None, help="folder that relative paths start from (default: the table's folder)")
    p.add_argument("--out", type=Path, required=True, help="feature store folder")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: compute only shard i of n (merge afterwards)")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="SHARD_STORE", help="merge shard stores into --out instead of extracting")
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
    report = extract_features(table.records, args.out, workers=args.workers, shard=args.shard)
    print(report.summary())
    return 0


# --- demo --------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the embedded default world and print its report")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mixtape.demo import run_demo

    print(run_demo(args.out, size=args.size, seed=args.seed).render())
    return 0


# -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtape", description="Contrastive pre-training of music embeddings from playlists.")
    parser.add_argument("--version", action="version", version=f"mixtape {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_synth, _add_features, _add_demo):
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
    except KeyboardInterrupt:
        print(f"mixtape {args.command}: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
