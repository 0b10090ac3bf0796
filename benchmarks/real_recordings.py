"""Real recordings: do pre-trained encoders beat mel statistics at finding a composer's other tracks?

    .venv/bin/python benchmarks/real_recordings.py                          # 300 steps, seeds 0 1 2
    .venv/bin/python benchmarks/real_recordings.py --steps 50 --seeds 0 --workers 1 --threads 1   # a quick look

The set is built from six of Debian's game-soundtrack packages (free music, real composers):
``apt-get download`` into ``--cache`` (default ``~/.cache/mixtape/debian-music``; never inside the
repository), ``dpkg-deb -x``, and the ``.pk3`` (zip) archives two of them ship are unpacked too.
Only music is kept: audio files under a ``music`` or ``cdtracks`` folder (HyperRogue's ``sounds/``
are effects). Each file gets a composer and an album (see ``attribute``; what the packages hold is
described there), then:

(a) ``tracks.csv`` ``track_id,path,artist_id,album_id`` (artist_id = composer, album_id = album or
    package) and ``attribution.tsv`` (every file, where its composer came from, its part);
(b) composers are split, seeded, into a pre-training part and an evaluation part that share no
    composer (``--eval-fraction`` of the attributed tracks go to evaluation);
(c) log-mel features of every attributed track (``extract_features``, resumable);
(d) for strategies self, album and artist: positives on the pre-training part (``mixtape.pairs``)
    and the ``small`` backbone pre-trained on them (``cpu_config`` + ``pretrain``), per seed;
(e) every encoder, a randomly initialised one per seed, and the mel-statistics baselines are scored
    on the evaluation part by leave-one-out composer retrieval
    (``mixtape.evaluation.recordings.score_groups``: P@5, nDCG@10, chance).

It prints the attribution per package, a table (mean ± std over seeds) and a last line

    RESULT eval_tracks=N queries=Q composers=C steps=S seeds=K best=STRATEGY best_ndcg10=X mel_stats_ndcg10=Y
           mel_stats_raw_ndcg10=Y2 random_init_ndcg10=Z chance_ndcg10=W best_beats_mel_stats=yes|no

(best = the strategy with the highest mean nDCG@10; it beats mel statistics when it is above both variants.)

Every stage resumes: downloads, unpacking, features, positives and finished pre-training runs are
reused by a re-run; only the scoring is recomputed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mixtape.audio import AUDIO_SUFFIXES, TAG_FIELDS, FeatureStore, TagReadError, extract_features, read_tags  # noqa: E402
from mixtape.catalog.tracks import TrackRecord  # noqa: E402
from mixtape.errors import MixtapeError  # noqa: E402
from mixtape.evaluation.recordings import BASELINE, BASELINE_RAW, score_groups  # noqa: E402
from mixtape.evaluation.report import write_table  # noqa: E402
from mixtape.fileio import atomic_write_text  # noqa: E402

PACKAGES = (
    "warzone2100-music",
    "ufoai-music",
    "hyperrogue-music",
    "nexuiz-music",
    "planetblupi-music-ogg",
    "singularity-music",
)
STRATEGIES = ("self", "album", "artist")
RANDOM = "random-init"
MUSIC_DIRS = frozenset({"music", "cdtracks"})

# --- attribution: what the packages really hold (Debian bookworm, checked by hand) -------------------
#
# Composer tags: only one file of all six packages has one (ufoai's karlmacklin_geoscape.ogg, and
# it holds a URL, "www.karlmacklin.com"). So the composer comes, in this order, from:
#   1. a composer tag that is a name (not a URL);
#   2. the package's /usr/share/doc/<pkg>/copyright file:
#      - a machine-readable (DEP-5) stanza naming the file with ONE copyright holder: HyperRogue's
#        music/hr3-* (Shawn Parrotte), hr-domina-* (Lincoln Domina), hr-savino-* (Will Savino);
#      - a DEP-5 stanza naming the file with SEVERAL holders (UFO:AI lists its 62 tracks in four
#        stanzas of 5-9 holders each): the holder the file name points to, from the table below,
#        used only when that holder is really listed in the file's stanza;
#      - "Upstream Authors:" with a single name (Endgame: Singularity: Max McCracken);
#      "Files: *" stanzas are never used: they name the game's copyright holders (Eidos, the UFO:AI
#      Team, Zeno Rogue, EPSITEC), not composers;
#   3. Warzone 2100's albums/*/album.json (shipped in the package) gives each track's "author"
#      (LupusMechanicus, Martin Severn); its copyright file names only Eidos and the project;
#   4. the artist tag, cleaned (URLs dropped) and de-aliased (Nexuiz's files spell Gerd Raudenbusch
#      three ways); Nexuiz's copyright file (old format) names no musician at all;
#   5. otherwise the file is unattributed: listed in attribution.tsv, used nowhere. That is
#      all of Planet Blupi (no tags; its copyright names only the 1997 game's and the 2017 port's
#      holders), Warzone's menu.opus (in no album.json), two Nexuiz tracks without tags, and the
#      UFO:AI files no holder of their stanza can be matched to.
# Albums: album.json titles (Warzone), the album tag for Singularity (its two soundtrack releases),
# the package otherwise (HyperRogue's tag is the game's name and missing on two files; Nexuiz's and
# UFO:AI's hold URLs, "(c) by ..." or other releases' names).
STANZA_HOLDER_BY_PREFIX: dict[str, list[tuple[str, str]]] = {
    "ufoai-music": [
        ("Crystan-", "Christian Hoffmann"),
        ("Marine", '"Marine" Baklund'),
        ("David0", "David Reeves (Destructavator)"),
        ("van_", 'Manuel "Vanethian" Marino'),
        ("Psymong", "Simon Green (Psymong)"),
        ("karlmacklin", "Karl Macklin"),
        ("azrael", "azrael1322"),
        ("TheThings-Slippycurb", "Slippycurb"),
        ("AlexFightmare", "Alex Parker"),
        ("ufo1", "Paul Bee"),
        ("ufo2", "Paul Bee"),
    ],
}
ARTIST_ALIASES = {
    "gerd (elysis) raudenbusch": "Gerd Raudenbusch",
    "elysis": "Gerd Raudenbusch",
    "www.elysis.de": "Gerd Raudenbusch",
    'braden "meoblast001" walters': "Braden Walters",
    'christian "crystan" hoffmann': "Christian Hoffmann",
    "www.indiedb.com/members/crystan": "Christian Hoffmann",
    "manuel 'vanethian' marino": 'Manuel "Vanethian" Marino',
    "paulb": "Paul Bee",
}
NOT_A_NAME = {"", "<unknown>", "unknown", "(none)"}
ALBUM_FROM_TAG = frozenset({"singularity-music"})

log = logging.getLogger("real_recordings")


def run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"{cmd[0]} not found: this benchmark needs Debian's apt-get and dpkg-deb")
    except subprocess.CalledProcessError as err:
        sys.exit(f"{' '.join(cmd)} failed (exit {err.returncode}): {err.stderr.strip()[-500:]}")


def download(cache: Path) -> dict[str, Path]:
    """Each package's .deb, downloaded once into cache/debs."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        print(f"downloading {' '.join(missing)} into {debs}", flush=True)
        run(["apt-get", "download", *missing], debs)
    return {p: sorted(debs.glob(f"{p}_*.deb"))[-1] for p in PACKAGES}


def unpack(cache: Path, debs: dict[str, Path]) -> dict[str, Path]:
    """``dpkg-deb -x`` of each package, then its .pk3 (zip) archives beside their contents."""
    roots = {}
    for pkg, deb in debs.items():
        root = cache / "unpacked" / pkg
        done = root / ".unpacked"
        if not done.exists() or done.read_text(encoding="utf-8") != deb.name:
            root.mkdir(parents=True, exist_ok=True)
            run(["dpkg-deb", "-x", str(deb), str(root)], cache)
            for pk3 in sorted(root.rglob("*.pk3")):
                with zipfile.ZipFile(pk3) as z:  # extractall drops absolute and ".." member paths
                    z.extractall(root / "pk3" / pk3.stem)
            done.write_text(deb.name, encoding="utf-8")
        roots[pkg] = root
    return roots


# --- attribution ---------------------------------------------------------------------------------


def clean_name(text: str) -> str:
    """A person's name from a tag or a copyright line: years, e-mails and URLs removed."""
    text = re.sub(r"\([^)]*(?:www\.|https?:|@)[^)]*\)", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(w for w in text.split() if "@" not in w)
    text = re.sub(r"^[\d\s,\-–]+(?=\D)", "", text)
    return " ".join(text.split()).strip(" ,;")


def is_url(text: str) -> bool:
    return bool(re.search(r"https?:|www\.|\.(com|de|net|org)\b", text.lower()))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def dep5_stanzas(text: str) -> list[tuple[list[str], list[str]]]:
    """(file patterns, copyright holders) of each ``Files:`` stanza of a DEP-5 copyright file."""
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current is not None:
                fields[current].append(line.strip())
            elif ":" in line and not line.startswith((" ", "\t")):
                key, _, value = line.partition(":")
                current = key.strip().lower()
                fields[current] = [value.strip()] if value.strip() else []
        if "files" in fields:
            patterns = [p for v in fields["files"] for p in v.split()]
            holders = [clean_name(h) for h in fields.get("copyright", []) if h.strip() not in ("", ".", "․")]
            stanzas.append((patterns, [h for h in holders if h]))
    return stanzas


def upstream_authors(text: str) -> list[str]:
    """The names under an old-format ``Upstream Authors:`` field."""
    m = re.search(r"Upstream Authors?:[ \t]*(.*)\n((?:[ \t]+\S.*\n?)*)", text)
    if not m:
        return []
    names = [m.group(1), *m.group(2).splitlines()]
    return [clean_name(n) for n in names if clean_name(n)]


@dataclass
class Track:
    package: str
    path: Path
    rel: str  # path inside the package (pk3 members under pk3/<archive>/)
    tags: dict[str, str]
    tag_error: str = ""
    composer: str = ""
    composer_source: str = "unattributed"
    album: str = ""
    part: str = ""

    @property
    def track_id(self) -> str:
        return f"{self.package}/{self.rel}"


def copyright_composer(track: Track, stanzas: list[tuple[list[str], list[str]]], authors: list[str]) -> tuple[str, str]:
    """(composer, source) from the package's copyright file, or ("", "") when it names none for this file."""
    tail = Path(track.rel).parts[-2:]
    for patterns, holders in stanzas:
        if not any("*" not in p and Path(p).parts[-2:] == tail for p in patterns):
            continue
        if len(holders) == 1:
            return holders[0], "copyright (DEP-5 stanza, one holder)"
        for prefix, holder in STANZA_HOLDER_BY_PREFIX.get(track.package, []):
            if Path(track.rel).name.startswith(prefix) and clean_name(holder) in holders:
                return clean_name(holder), "copyright (DEP-5 stanza, holder named by the file)"
        return "", ""
    if len(authors) == 1:
        return authors[0], "copyright (Upstream Authors)"
    return "", ""


def album_json_authors(root: Path) -> dict[str, tuple[str, str]]:
    """Warzone 2100's album.json: file path -> (author, album title)."""
    out = {}
    for meta in root.rglob("album.json"):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for t in data.get("tracks", []):
            if isinstance(t, dict) and t.get("filename"):
                out[str(meta.parent / t["filename"])] = (
                    str(t.get("author") or data.get("author") or ""),
                    str(data.get("title") or ""),
                )
    return out


def attribute(
    track: Track, stanzas: list[tuple[list[str], list[str]]], authors: list[str], albums: dict[str, tuple[str, str]]
) -> None:
    """Set the track's composer (and where it came from) and album: see the comment at the top."""
    tag_composer = track.tags.get("composer", "")
    author, album_title = albums.get(str(track.path), ("", ""))
    composer, source = "", ""
    if tag_composer and not is_url(tag_composer):
        composer, source = clean_name(tag_composer), "composer tag"
    if not composer:
        composer, source = copyright_composer(track, stanzas, authors)
    if not composer and author:
        composer, source = author, "album.json"
    if not composer:
        artist = track.tags.get("artist", "").strip()
        artist = ARTIST_ALIASES.get(artist.lower(), artist)
        if artist.lower() not in NOT_A_NAME and not is_url(artist):
            composer, source = clean_name(artist), "artist tag"
    track.composer, track.composer_source = composer, source or "unattributed"
    if album_title:
        track.album = album_title
    elif track.package in ALBUM_FROM_TAG and track.tags.get("album"):
        track.album = track.tags["album"]
    else:
        track.album = track.package


def list_music(roots: dict[str, Path]) -> list[Track]:
    """Every music file of every package, with its tags and attribution."""
    tracks = []
    for pkg, root in roots.items():
        copyright_file = root / "usr" / "share" / "doc" / pkg / "copyright"
        text = copyright_file.read_text(encoding="utf-8", errors="replace") if copyright_file.exists() else ""
        stanzas, authors, albums = dep5_stanzas(text), upstream_authors(text), album_json_authors(root)
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file() or not MUSIC_DIRS & set(rel.parts[:-1]):
                continue
            try:
                tags, error = read_tags(path), ""
            except TagReadError as err:
                tags, error = dict.fromkeys(TAG_FIELDS, ""), err.reason
            track = Track(pkg, path, rel.as_posix(), tags, error)
            attribute(track, stanzas, authors, albums)
            tracks.append(track)
    return tracks


def split_composers(tracks: list[Track], eval_fraction: float, seed: int) -> None:
    """Composers shuffled (seeded) and moved to evaluation until it holds ``eval_fraction`` of the attributed tracks."""
    sizes = Counter(t.composer for t in tracks if t.composer)
    order = sorted(sizes)
    np.random.default_rng(seed).shuffle(order)
    target, taken, evaluation = eval_fraction * sum(sizes.values()), 0, set()
    for c in order:
        if taken >= target:
            break
        evaluation.add(c)
        taken += sizes[c]
    for t in tracks:
        t.part = "" if not t.composer else ("evaluation" if t.composer in evaluation else "pretraining")


def print_attribution(tracks: list[Track]) -> None:
    print(f"\n{'package':<24} {'files':>5} {'attributed':>10} {'composers':>9} {'albums':>6}  composer from")
    for pkg in PACKAGES:
        ts = [t for t in tracks if t.package == pkg]
        named = [t for t in ts if t.composer]
        sources = Counter(t.composer_source for t in ts)
        print(
            f"{pkg:<24} {len(ts):>5} {len(named):>10} {len({t.composer for t in named}):>9} "
            f"{len({t.album for t in named}):>6}  " + ", ".join(f"{s} {n}" for s, n in sources.most_common())
        )
    composers = Counter(t.composer for t in tracks if t.composer)
    print("composers: " + ", ".join(f"{c} ({n})" for c, n in composers.most_common()))


def write_tables(out: Path, tracks: list[Track]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    named = [t for t in tracks if t.composer]
    rows = [[t.track_id, str(t.path), slug(t.composer), slug(t.album)] for t in named]
    write_table(out / "tracks.csv", ["track_id", "path", "artist_id", "album_id"], rows)
    cols = ["track_id", "package", "path", *TAG_FIELDS, "tag_error", "composer", "composer_source", "album", "part"]
    every = [
        [
            t.track_id,
            t.package,
            str(t.path),
            *(t.tags.get(f, "") for f in TAG_FIELDS),
            t.tag_error,
            t.composer,
            t.composer_source,
            t.album,
            t.part or "excluded (no composer)",
        ]
        for t in tracks
    ]
    write_table(out / "attribution.tsv", cols, every, delimiter="\t")
    return out / "tracks.csv"


# --- pre-training --------------------------------------------------------------------------------


def fitting_batch(positives: Any, wanted: int, steps: int, seeds: list[int]) -> int:
    """The largest batch size up to ``wanted`` whose every batch of the run can be drawn without a
    track twice: with a few dozen pre-training tracks, album and artist pairs (two distinct tracks
    each, a few albums) cannot fill the batches ``self`` pairs can. Checked on the sampler's own plan."""
    from mixtape.pairs import PairBatchSampler

    for batch in range(min(wanted, len(positives.anchors)), 1, -1):
        try:
            for seed in seeds:
                sampler = PairBatchSampler(positives, batch, seed)
                for epoch in range(-(-steps // len(sampler))):
                    sampler.plan(epoch)
        except MixtapeError:
            continue
        return batch
    sys.exit(f"positives {positives.strategy}: no batch of 2 pairs can be formed without repeating a track")


def pretrain_encoders(
    out: Path, store_path: Path, pretrain_tracks: list[Track], steps: int, seeds: list[int], batch_size: int
) -> dict[str, Path]:
    """Positives of each strategy on the pre-training part, and one ``small`` run per seed; name -> checkpoint."""
    from mixtape.pairs import Positives, run_pairs
    from mixtape.training.config import cpu_config
    from mixtape.training.run import last_checkpoint, pretrain

    table = out / "tracks_pretraining.csv"
    write_table(
        table,
        ["track_id", "path", "artist_id", "album_id"],
        [[t.track_id, str(t.path), slug(t.composer), slug(t.album)] for t in pretrain_tracks],
    )
    checkpoints = {}
    for strategy in STRATEGIES:
        pairs = run_pairs(table, out / "pairs" / strategy, strategy)
        positives = Positives.load(pairs.out)
        batch = fitting_batch(positives, batch_size, steps, seeds)
        print(f"pairs {strategy}: {len(positives.anchors)} anchors; batch size {batch}", flush=True)
        for seed in seeds:
            run_dir = out / "pretrain" / f"{strategy}-steps{steps}-batch{batch}" / f"seed{seed}"
            done = run_dir / "done.json"
            if not done.exists():
                result = pretrain(
                    cpu_config(store_path, pairs.out, run_dir, max_steps=steps, batch_size=batch, seed=seed),
                    resume=True,
                )
                print(f"  {result.summary().splitlines()[0]} (seed {seed})", flush=True)
                atomic_write_text(
                    done, json.dumps({"steps": result.steps, "loss": result.loss, "accuracy": result.accuracy})
                )
            checkpoints[f"{strategy}/seed{seed}"] = last_checkpoint(run_dir)
    return checkpoints


def random_encoders(store: FeatureStore, seeds: list[int]) -> dict[str, Any]:
    """The `small` encoder with random weights, one per seed (the no-pre-training rows)."""
    import torch

    from mixtape.models import Encoder
    from mixtape.models.bundle import EncoderBundle

    out = {}
    for seed in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = Encoder("small", int(store.n_mels))
        out[f"{RANDOM}/seed{seed}"] = EncoderBundle(
            encoder.eval(), store.mel_config.model_dump(mode="json"), 128, f"small with random weights (seed {seed})"
        )
    return out


# --- main ----------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path("~/.cache/mixtape/debian-music"),
        help="downloads, unpacked packages and the run (never inside the repository)",
    )
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: CACHE/run)")
    ap.add_argument("--steps", type=int, default=300, help="pre-training steps per run (default 300)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="pre-training seeds (default 0 1 2)")
    ap.add_argument("--batch-size", type=int, default=32, help="pairs per step (lowered to the anchors a strategy has)")
    ap.add_argument(
        "--eval-fraction",
        type=float,
        default=0.5,
        help="share of the attributed tracks whose composers go to evaluation",
    )
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the composer split")
    ap.add_argument("--workers", type=int, default=None, help="feature extraction processes (default: all cores)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    cache = args.cache.expanduser().resolve()
    out = (args.out or cache / "run").expanduser().resolve()
    for folder in (cache, out):
        if folder == REPO or REPO in folder.parents:
            sys.exit(f"--cache/--out {folder} is inside the repository {REPO}; data never goes there")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    tracks = list_music(unpack(cache, download(cache)))
    split_composers(tracks, args.eval_fraction, args.split_seed)
    print_attribution(tracks)
    write_tables(out, tracks)
    named = [t for t in tracks if t.composer]
    store_path = out / "features"
    report = extract_features(
        [TrackRecord(t.track_id, t.path, slug(t.composer), slug(t.album)) for t in named],
        store_path,
        workers=args.workers,
    )
    print("\n" + report.summary(), flush=True)
    store = FeatureStore.open(store_path)
    pre = [t for t in named if t.part == "pretraining" and t.track_id in store]
    ev = [t for t in named if t.part == "evaluation" and t.track_id in store]
    print(
        f"\nsplit (seed {args.split_seed}): pre-training {len(pre)} tracks by {len({t.composer for t in pre})} "
        f"composers; evaluation {len(ev)} tracks by {len({t.composer for t in ev})} composers "
        f"({', '.join(sorted({t.composer for t in ev}))})",
        flush=True,
    )

    encoders: dict[str, Any] = dict(random_encoders(store, args.seeds))
    encoders.update(pretrain_encoders(out, store_path, pre, args.steps, args.seeds, args.batch_size))
    try:
        result = score_groups(
            [TrackRecord(t.track_id, t.path) for t in ev],
            {t.track_id: t.composer for t in ev},
            out / f"eval-steps{args.steps}",
            encoders,
            group_by="composer",
            features=store_path,
            workers=args.workers,
        )
    except MixtapeError as err:
        sys.exit(f"scoring failed: {err}")

    by_row: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, s in result.scores.items():
        by_row[name.split("/seed")[0]].append((s.precision, s.ndcg))
    print(
        f"\ncomposer retrieval on the evaluation part: {result.counts['queries']} queries, "
        f"{result.counts['groups']} composers, "
        f"{result.counts['tracks_scored']} tracks; {args.steps} steps, seeds {' '.join(map(str, args.seeds))}"
    )
    print(f"{'representation':<16} {'P@5':>15} {'nDCG@10':>15} {'runs':>5}")
    for name in (RANDOM, *STRATEGIES, BASELINE, BASELINE_RAW):
        vals = by_row[name]
        print(f"{name:<16} {mean_std([v[0] for v in vals]):>15} {mean_std([v[1] for v in vals]):>15} {len(vals):>5}")
    print(f"{'chance':<16} {result.chance['p@5']:>15.3f} {result.chance['ndcg@10']:>15.3f}")
    for note in result.notes:
        print(f"note: {note}")

    ndcg = {name: float(np.mean([v[1] for v in vals])) for name, vals in by_row.items()}
    best = max(STRATEGIES, key=lambda s: ndcg[s])
    base = max(ndcg[BASELINE], ndcg[BASELINE_RAW])
    print(
        f"best strategy {best}: nDCG@10 {ndcg[best]:.3f} vs mel statistics {base:.3f} "
        f"({ndcg[best] - base:+.3f}) and random init {ndcg[RANDOM]:.3f}"
    )
    print(
        f"RESULT eval_tracks={result.counts['tracks_scored']} queries={result.counts['queries']} "
        f"composers={result.counts['groups']} steps={args.steps} seeds={len(args.seeds)} best={best} "
        f"best_ndcg10={ndcg[best]:.4f} mel_stats_ndcg10={ndcg[BASELINE]:.4f} "
        f"mel_stats_raw_ndcg10={ndcg[BASELINE_RAW]:.4f} random_init_ndcg10={ndcg[RANDOM]:.4f} "
        f"chance_ndcg10={result.chance['ndcg@10']:.4f} best_beats_mel_stats={'yes' if ndcg[best] > base else 'no'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
