"""Scoring encoders on a user's own recordings, grouped by a file tag, against a mel-statistics baseline.

``mixtape similarity --audio FOLDER --group-by artist|album|composer [--encoder PATH] --out DIR``:
the folder is scanned (the scanner ``mixtape embed`` uses), each file's tags are read
(:func:`mixtape.audio.read_tags`), log-mel features are extracted into ``DIR/features``
(resumable; bad files are skipped and listed in ``DIR/features/failures.tsv``), and each
representation is scored by leave-one-out group retrieval (:mod:`mixtape.evaluation.groups`):

- each encoder given: track embeddings from ``mixtape.models.embed_tracks`` (the definition search
  and evaluation use);
- ``mel-stats``: per track, mean and std over frames of each log-mel band (192-d), each dimension
  standardised over the collection — the trivial feature an encoder has to beat;
- ``mel-stats-raw``: the same without standardisation (cosine on raw log-mel statistics).

The run writes ``metrics.json`` (scores, chance level, counts, verdict, notes), ``per_query.tsv``
(one row per query track) and ``tracks.tsv`` (every file: its tags, group and what happened to it),
so no file is dropped without a trace. :func:`score_groups` is the same run for tracks whose groups
are known some other way (a benchmark's own attribution), and takes several encoders at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixtape.catalog.tracks import TrackRecord
from mixtape.errors import MixtapeError
from mixtape.evaluation.groups import (
    GroupLayout,
    GroupRetrieval,
    chance_levels,
    group_layout,
    group_retrieval,
    mel_statistics,
    standardize,
)
from mixtape.fileio import folder_lock, get_logger, progress

log = get_logger(__name__)

#: Tags a folder can be grouped by (``mixtape.audio.TAG_FIELDS`` less the title).
GROUP_TAGS = ("artist", "album", "composer")
BASELINE = "mel-stats"
BASELINE_RAW = "mel-stats-raw"
BASELINES = (BASELINE, BASELINE_RAW)
FEATURES_DIR = "features"
METRICS_FILE = "metrics.json"
PER_QUERY_FILE = "per_query.tsv"
TRACKS_FILE = "tracks.tsv"


class GroupSimilarityError(MixtapeError, ValueError):
    """Recordings that cannot be scored by group at all (no group of two tracks, clashing names)."""


@dataclass
class GroupSimilarityResult:
    """Scores of every representation, the chance level, what was counted out, and the verdict."""

    out: Path
    group_by: str
    k: int
    p_at: int
    scores: dict[str, GroupRetrieval]  # representation -> scores; encoders first, then the baselines
    encoders: dict[str, str]  # encoder name -> where it came from
    chance: dict[str, float]
    counts: dict[str, int]
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def p_key(self) -> str:
        return f"p@{self.p_at}"

    @property
    def ndcg_key(self) -> str:
        return f"ndcg@{self.k}"

    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: {self.p_key: s.precision, self.ndcg_key: s.ndcg} for name, s in self.scores.items()}

    def table(self) -> str:
        """The representation × metric table, chance last."""
        c = self.counts
        width = max([len("representation"), *(len(n) for n in self.scores)])
        lines = [
            f"group retrieval by {self.group_by}: {c['queries']} queries in {c['groups']} groups, "
            f"{c['tracks_scored']} tracks ranked ({c['no_group_value']} with no {self.group_by} tag, "
            f"{c['singleton_groups']} {self.group_by}(s) with a single track)",
            f"{'representation'.ljust(width)}  {f'P@{self.p_at}':>7}  {f'nDCG@{self.k}':>8}",
        ]
        for name, s in self.scores.items():
            lines.append(f"{name.ljust(width)}  {s.precision:>7.3f}  {s.ndcg:>8.3f}")
        lines.append(f"{'chance'.ljust(width)}  {self.chance[self.p_key]:>7.3f}  {self.chance[self.ndcg_key]:>8.3f}")
        return "\n".join(lines)

    def summary(self) -> str:
        return "\n".join([self.table(), *self.verdicts, *(f"note: {n}" for n in self.notes)])

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": "group-similarity",
            "group_by": self.group_by,
            "k": self.k,
            "p_at": self.p_at,
            "metrics": self.metrics(),
            "chance": self.chance,
            "counts": self.counts,
            "encoders": self.encoders,
            "baseline": BASELINE,
            "verdict": self.verdicts,
            "notes": self.notes,
        }


def _paired(a: GroupRetrieval, b: GroupRetrieval, key: str) -> tuple[float, float]:
    """Mean per-query difference a - b of one metric and its standard error (the queries are shared)."""
    d = np.asarray(a.per_query[key], dtype=np.float64) - np.asarray(b.per_query[key], dtype=np.float64)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se


def verdict(name: str, encoder: GroupRetrieval, baselines: Mapping[str, GroupRetrieval]) -> str:
    """One line: does ``encoder`` beat the stronger mel-statistics variant (by nDCG@k), and by how much."""
    base_name, base = max(baselines.items(), key=lambda item: (item[1].ndcg, item[1].precision))
    dp, dn = encoder.precision - base.precision, encoder.ndcg - base.ndcg
    if dp > 0 and dn > 0:
        word = "BEATS"
    elif dp <= 0 and dn <= 0:
        word = "does NOT beat"
    else:
        word = "is mixed against"
    diff, se = _paired(encoder, base, f"ndcg@{encoder.k}")
    return (
        f"{name} {word} the mel-statistics baseline ({base_name}): P@{encoder.p_at} {encoder.precision:.3f} vs "
        f"{base.precision:.3f} ({dp:+.3f}), nDCG@{encoder.k} {encoder.ndcg:.3f} vs {base.ndcg:.3f} ({dn:+.3f}; "
        f"per-query difference {diff:+.3f} ± {se:.3f} s.e. over {encoder.queries} queries)"
    )


def _load_encoders(encoders: Mapping[str, Any] | None) -> dict[str, Any]:
    from mixtape.models.bundle import EncoderBundle

    loaded = {}
    for name, enc in (encoders or {}).items():
        if name in BASELINES or name == "chance":
            raise GroupSimilarityError(f"encoder name {name!r} is taken by a baseline row; choose another")
        loaded[name] = EncoderBundle.of(enc)
    return loaded


def score_groups(
    records: Sequence[TrackRecord],
    groups: Mapping[str, str | None],
    out: str | Path,
    encoders: Mapping[str, Any] | None = None,
    *,
    group_by: str = "group",
    features: str | Path | None = None,
    tags: Mapping[str, Mapping[str, str]] | None = None,
    tag_errors: Mapping[str, str] | None = None,
    workers: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    k: int = 10,
    p_at: int = 5,
) -> GroupSimilarityResult:
    """Score every encoder and the mel-statistics baselines on ``records`` grouped by ``groups``.

    ``groups`` maps track ids to a group (None/"" or absent = no value). ``encoders`` maps a row name
    to an export folder, a checkpoint, an ``EncoderBundle`` or a module. Features go to
    ``features`` (default ``out/features``; an existing store is resumed and may hold other tracks
    too). ``tags``/``tag_errors`` (per track id) only feed ``tracks.tsv`` and the notes.
    """
    from mixtape.audio import FeatureStore, MelConfig, extract_features
    from mixtape.models.embedding import embed_tracks

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MixtapeError(f"similarity: --out {out} is a file; give a folder")
    if not records:
        raise GroupSimilarityError("similarity: no tracks to score")
    store_path = Path(features) if features is not None else out / FEATURES_DIR
    with folder_lock(out, f"{out} is being written by another `mixtape similarity`; wait for it or use another --out"):
        loaded = _load_encoders(encoders)
        first = next(iter(loaded.values()), None)
        mel = MelConfig.model_validate(first.mel) if first is not None and first.mel else None
        patch_frames = first.patch_frames if first is not None else 128
        extraction = extract_features(records, store_path, mel=mel, workers=workers, patch_frames=patch_frames)
        log.info("%s", extraction.summary())
        store = FeatureStore.open(store_path)
        reasons = {tid: reason for tid, _, reason in store.failures}
        have = [r for r in records if r.track_id in store]
        failed = {r.track_id: reasons.get(r.track_id, "no features") for r in records if r.track_id not in store}
        rows = store.indices([r.track_id for r in have]) if have else np.zeros(0, dtype=np.int64)
        layout = group_layout([groups.get(r.track_id) for r in have])
        counts = {
            "files": len(records),
            "tracks_scored": len(have),
            "failed_features": len(failed),
            "tag_errors": len(tag_errors or {}),
            "queries": len(layout.queries),
            "groups": layout.n_groups,
            "no_group_value": layout.no_value,
            "singleton_groups": layout.singleton_groups,
        }
        notes = _notes(counts, group_by, store_path, tag_errors or {}, failed)
        _write_tracks(out, records, have, layout, groups, group_by, tags, tag_errors or {}, failed)
        if len(layout.queries) == 0:
            raise GroupSimilarityError(
                f"similarity: no {group_by} holds two of the {len(have)} tracks with features ({layout.no_value} have "
                f"no {group_by} tag, {layout.singleton_groups} {group_by}s have one track, {len(failed)} files "
                f"failed): nothing to retrieve; see {out / TRACKS_FILE}"
            )

        scores: dict[str, GroupRetrieval] = {}
        for name, enc in loaded.items():
            _, reader = enc.open_store(store_path)
            emb = embed_tracks(
                enc.encoder, reader, rows, batch_size=batch_size, device=device, desc=f"embedding with {name}"
            )
            bad = ~np.isfinite(emb).all(axis=1)
            if bad.any():
                notes.append(
                    f"{name}: {int(bad.sum())} track embedding(s) were NaN/Inf and were scored as zero vectors"
                )
                emb[bad] = 0.0
            scores[name] = group_retrieval(emb, layout, k=k, p_at=p_at)
        stats = mel_statistics(store, rows)
        scores[BASELINE] = group_retrieval(standardize(stats), layout, k=k, p_at=p_at)
        scores[BASELINE_RAW] = group_retrieval(stats, layout, k=k, p_at=p_at)

        baselines = {b: scores[b] for b in BASELINES}
        verdicts = [verdict(name, scores[name], baselines) for name in loaded] or [
            "no encoder given: only the mel-statistics baselines were scored"
        ]
        result = GroupSimilarityResult(
            out,
            group_by,
            k,
            p_at,
            scores,
            {n: e.source for n, e in loaded.items()},
            chance_levels(layout, k=k, p_at=p_at),
            counts,
            verdicts,
            notes,
        )
        _write_outputs(result, have, layout)
        return result


def _notes(
    counts: dict[str, int], group_by: str, store_path: Path, tag_errors: Mapping[str, str], failed: Mapping[str, str]
) -> list[str]:
    """Everything left out of the queries, counted (the per-file list is in tracks.tsv)."""
    notes = []
    if counts["no_group_value"]:
        notes.append(f"{counts['no_group_value']} track(s) have no {group_by} tag: ranked as candidates, never queries")
    if counts["singleton_groups"]:
        notes.append(
            f"{counts['singleton_groups']} {group_by}(s) have a single track: ranked as candidates, never queries"
        )
    if failed:
        example = next(iter(failed.items()))
        notes.append(
            f"{len(failed)} file(s) gave no features and were left out (listed in "
            f"{store_path / 'failures.tsv'}), e.g. {example[0]}: {example[1]}"
        )
    if tag_errors:
        example = next(iter(tag_errors.items()))
        notes.append(
            f"{len(tag_errors)} file(s) had unreadable tags (treated as untagged), e.g. {example[0]}: {example[1]}"
        )
    return notes


def _write_tracks(
    out: Path,
    records: Sequence[TrackRecord],
    have: Sequence[TrackRecord],
    layout: GroupLayout,
    groups: Mapping[str, str | None],
    group_by: str,
    tags: Mapping[str, Mapping[str, str]] | None,
    tag_errors: Mapping[str, str],
    failed: Mapping[str, str],
) -> None:
    """``tracks.tsv``: every file with its tags, its group (the ``group_by`` value) and status.

    The status is one of query, candidate only, failed.
    """
    from mixtape.audio import TAG_FIELDS
    from mixtape.evaluation.report import write_table

    position = {r.track_id: i for i, r in enumerate(have)}
    queries = set(layout.queries.tolist())
    tag_cols = list(TAG_FIELDS) if tags is not None else []
    rows = []
    for r in records:
        tid = r.track_id
        i = position.get(tid)
        if i is None:
            status = f"failed: {failed.get(tid, 'no features')}"
        elif i in queries:
            status = "query"
        elif layout.groups[i] is None:
            status = f"candidate only: no {group_by} tag"
        else:
            status = f"candidate only: the only track of its {group_by}"
        if tid in tag_errors:
            status += f"; tags unreadable: {tag_errors[tid]}"
        file_tags = (tags or {}).get(tid, {})
        rows.append([tid, str(r.path), *(file_tags.get(c, "") for c in tag_cols), groups.get(tid) or "", status])
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / TRACKS_FILE, ["track_id", "path", *tag_cols, "group", "status"], rows, delimiter="\t")


def _write_outputs(result: GroupSimilarityResult, have: Sequence[TrackRecord], layout: GroupLayout) -> None:
    """``metrics.json`` and ``per_query.tsv``.

    ``per_query.tsv`` has one row per query: its group, relevant count, each representation's scores.
    """
    from mixtape.evaluation.report import write_json, write_table

    names = list(result.scores)
    first = result.scores[names[0]]
    header = ["track_id", result.group_by, "relevant"] + [
        f"{n}:{m}" for n in names for m in (result.p_key, result.ndcg_key)
    ]
    rows = []
    for j, q in enumerate(first.per_query["query"].tolist()):
        row: list[Any] = [have[q].track_id, layout.groups[q], int(first.per_query["relevant"][j])]
        for n in names:
            s = result.scores[n].per_query
            row += [float(s[result.p_key][j]), float(s[result.ndcg_key][j])]
        rows.append(row)
    write_table(result.out / PER_QUERY_FILE, header, rows, delimiter="\t")
    write_json(result.out / METRICS_FILE, result.as_dict())


def folder_group_similarity(
    folder: str | Path,
    group_by: str,
    out: str | Path,
    encoder: Any = None,
    *,
    workers: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    k: int = 10,
    p_at: int = 5,
) -> GroupSimilarityResult:
    """Scan ``folder``, group its files by their ``group_by`` tag and score ``encoder`` (optional)
    and the mel-statistics baselines on them (see the module docstring). What `mixtape similarity
    --audio` runs."""
    from mixtape.audio import TAG_FIELDS, TagReadError, read_tags, scan_audio_folder

    if group_by not in GROUP_TAGS:
        raise GroupSimilarityError(f"similarity: cannot group by {group_by!r}; choose one of {', '.join(GROUP_TAGS)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise MixtapeError(f"similarity: --audio {folder}: no such folder")
    table = scan_audio_folder(folder)
    tags: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for r in progress(table.records, desc="reading tags", unit="file"):
        try:
            tags[r.track_id] = read_tags(r.path)
        except TagReadError as err:
            log.warning("%s", err)
            errors[r.track_id] = err.reason
            tags[r.track_id] = dict.fromkeys(TAG_FIELDS, "")
    groups = {tid: t[group_by] or None for tid, t in tags.items()}
    encoders = {"encoder": encoder} if encoder is not None else {}
    return score_groups(
        table.records,
        groups,
        out,
        encoders,
        group_by=group_by,
        tags=tags,
        tag_errors=errors,
        workers=workers,
        batch_size=batch_size,
        device=device,
        k=k,
        p_at=p_at,
    )
