"""`mixtape doctor RUN_DIR ...`: check run folders and say in plain words what is wrong and how to fix it.

Every folder a stage writes carries a header file saying what it is (``store.json``, ``positives.json``,
``config.yaml`` beside ``checkpoints/``, ``config.json``, ``embeddings.json``, ``index.json``,
``tagger.json``, ``experiment.yaml``) and records checksums or fingerprints of what it refers to.
Doctor walks the given folders, recognises each stage folder by its header, and checks it against
its own files and against the folders it was made from:

- feature store: frames file long enough for the index, every track's frames against its checksum
  (skipped with ``quick``), source audio missing or changed since extraction, tracks that failed,
  leftovers of an interrupted run, a writer still running;
- positives: every array file against its checksum, the catalogue files against the checksums
  recorded when the pairs were computed;
- pretrain run: config.yaml parses, every checkpoint loads and holds the model config.yaml describes,
  the feature store has the model's log-mel settings and still is the one the run trained on (its
  fingerprint), the positives too, and every track they pair is in the store;
- export, embeddings, search index, tagger: their files against their checksums, and against the
  encoder, feature store and embeddings they were made from;
- experiment (`mixtape experiment`, `mixtape demo`): its config parses, failed steps.

The checks are the stages' own functions (readers, ``verify_frames``, ``changed_files``,
``check_resume``, ...); this module only composes them and words the findings. Each finding is a
``PROBLEM`` (the folder is wrong: a stage would fail or compute something else) or a ``WARNING``
(worth knowing, nothing is wrong with the results), with the command or action that fixes it.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mixtape.errors import MixtapeError
from mixtape.fileio import file_checksum, get_logger
from mixtape.pairs.params import command_flags
from mixtape.stagefolder import STAGE_FOLDERS
from mixtape.text import and_more

log = get_logger(__name__)

Level = Literal["PROBLEM", "WARNING"]
#: Shown for up to this many examples (track ids, files) in one finding.
EXAMPLES = 5
_RE_EXTRACT = (
    "delete {store} and extract it again: `mixtape features --tracks TRACKS_TABLE --out {store}` (the frames "
    "cannot be repaired in place)"
)


@dataclass(frozen=True)
class Finding:
    """One thing doctor found: where, what is wrong in plain words, and what fixes it."""

    level: Level
    path: Path
    what: str
    fix: str | None = None

    def render(self) -> str:
        text = f"{self.level} {self.path}: {self.what}"
        return text + (f"\n  fix: {self.fix}" if self.fix else "")


@dataclass
class FolderCheck:
    """The findings of one recognised folder."""

    path: Path
    kind: str
    findings: list[Finding] = field(default_factory=list)

    def problem(self, path: Path, what: str, fix: str | None = None) -> None:
        self.findings.append(Finding("PROBLEM", path, what, fix))

    def warning(self, path: Path, what: str, fix: str | None = None) -> None:
        self.findings.append(Finding("WARNING", path, what, fix))

    def error(self, err: BaseException, fix: str | None = None) -> None:
        """A reader's error as a problem; its message already names the file, which becomes the finding's path."""
        path, what = _split_path(str(err), self.path)
        self.problem(path, what, fix)


@dataclass
class DoctorReport:
    """Everything doctor checked and found; ``render()`` is what the command prints."""

    folders: list[FolderCheck]
    empty: list[Path] = field(default_factory=list)  # given folders holding nothing doctor recognises

    @property
    def findings(self) -> list[Finding]:
        """Each distinct finding once: a store that fifteen runs train on is one problem, not fifteen."""
        return list(self._grouped())

    def _grouped(self) -> dict[Finding, list[Path]]:
        """Distinct findings (same level, path and text), in order, with the other folders that found them again."""
        groups: dict[tuple[str, Path, str], tuple[Finding, list[Path]]] = {}
        for check in self.folders:
            for f in check.findings:
                key = (f.level, f.path, f.what)
                if key in groups:
                    groups[key][1].append(check.path)
                else:
                    groups[key] = (f, [])
        return dict(groups.values())

    @property
    def problems(self) -> int:
        return sum(f.level == "PROBLEM" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.level == "WARNING" for f in self.findings) + len(self.empty)

    @property
    def exit_code(self) -> int:
        """0 healthy (warnings allowed), 1 when a problem was found."""
        return 1 if self.problems else 0

    def render(self) -> str:
        lines: list[str] = []
        grouped = self._grouped()
        shown: set[Finding] = set()
        for check in self.folders:
            if not check.findings:
                lines.append(f"ok {check.path} ({check.kind})")
            for f in check.findings:
                if f not in grouped or f in shown:
                    continue  # found again by a later folder: listed under its first appearance
                shown.add(f)
                lines.append(f.render())
                again = grouped[f]
                if again:
                    names = and_more(again, EXAMPLES)
                    lines.append(
                        f"  (found again by {len(again)} more folder{'s' if len(again) != 1 else ''}, the "
                        f"same fix applies there: {names})"
                    )
        lines += [f"WARNING {p}: {nothing_found(p)}" for p in self.empty]
        kinds: dict[str, int] = {}
        for check in self.folders:
            kinds[check.kind] = kinds.get(check.kind, 0) + 1
        named = ", ".join(kind if n == 1 else f"{n} {_PLURALS.get(kind, kind)}" for kind, n in kinds.items())
        n = len(self.folders)
        lines.append(
            f"doctor: {n} folder{'s' if n != 1 else ''} checked ({named}): {self.problems} "
            f"problem{'s' if self.problems != 1 else ''}, {self.warnings} warning{'s' if self.warnings != 1 else ''}"
        )
        return "\n".join(lines)


_PLURALS = {
    "feature store": "feature stores",
    "pretrain run": "pretrain runs",
    "export": "exports",
    "search index": "search indexes",
    "tagger": "taggers",
    "experiment": "experiments",
}


def _relative_hint(path: Path) -> str:
    """Why a relative path recorded by a run may not be found: it is read from the current folder."""
    if path.is_absolute():
        return ""
    return (
        f" (a relative path, read from the current folder {Path.cwd()}: run doctor from the folder the run was "
        "made in, or give the run absolute paths)"
    )


def _split_path(message: str, folder: Path) -> tuple[Path, str]:
    """``"/run/x/file: what"`` → (``/run/x/file``, ``what``) when the message starts with a path in or
    above ``folder``; else (``folder``, the whole message)."""
    head, sep, rest = message.partition(": ")
    inside = head == str(folder) or head.startswith(str(folder) + os.sep)
    if sep and (inside or str(folder).startswith(head + os.sep)):
        return Path(head), rest
    return folder, message


def _q(path: str | Path) -> str:
    return shlex.quote(str(path))


def _dict_at(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a mapping (a damaged metadata file may hold anything there), else ``{}``."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- feature store ---------------------------------------------------------------------------------


def check_store(path: Path, quick: bool = False) -> FolderCheck:
    """Store vs index: frames length and checksums, source audio, failures, leftovers, a running writer."""
    from mixtape.audio.check import source_changes, uncommitted_bytes, writer_active
    from mixtape.audio.store import FAILURES_FILE, FRAMES_FILE, FeatureStore, StoreError, verify_frames

    check = FolderCheck(path, "feature store")
    fix = _RE_EXTRACT.format(store=_q(path))
    if writer_active(path):
        check.warning(
            path,
            "a `mixtape features` process is writing this store right now; what doctor sees may change",
            "wait for it to finish, then run doctor again",
        )
    try:
        store = FeatureStore.open(path)
    except StoreError as err:
        check.error(err, fix)
        return check
    if not quick:
        damaged, unchecked = verify_frames(store)
        if damaged:
            ids = [store.track_ids[i] for i in damaged]
            check.problem(
                path / FRAMES_FILE,
                f"the frames of {len(damaged)} track(s) no longer match the checksums recorded when they were written "
                f"({and_more(ids, EXAMPLES)}): the file was modified after extraction or the disk damaged it",
                fix,
            )
        if unchecked:
            check.warning(
                path / FRAMES_FILE,
                f"{unchecked} track(s) were stored by an older mixtape without frame checksums; their frames "
                "cannot be verified",
                f"rewrite the store with checksums: `mixtape features --merge {_q(path)} --out NEW_STORE`",
            )
    changes = source_changes(store)
    changed = [c for c in changes if c.what != "missing"]
    missing = [c for c in changes if c.what == "missing"]
    if changed:
        check.problem(
            path,
            f"the source audio of {len(changed)} track(s) changed since its features were extracted: "
            + and_more([f"{c.path} (track {c.track_id}: {c.what})" for c in changed], EXAMPLES),
            f"re-run `mixtape features --tracks TRACKS_TABLE --out {_q(path)}`: it recomputes exactly the "
            "tracks whose audio changed",
        )
    if missing:
        check.warning(
            path,
            f"the source audio of {len(missing)} track(s) is gone ({and_more([c.path for c in missing], EXAMPLES)}); "
            "their features are still usable but could not be extracted again",
            "restore the files if the store will ever be re-extracted",
        )
    if store.failures:
        check.warning(
            path / FAILURES_FILE,
            f"{len(store.failures)} track(s) failed extraction and are not in the store, e.g. "
            + and_more([f"{tid}: {reason}" for tid, _, reason in store.failures], 3),
            "fix or replace those audio files and re-run `mixtape features --tracks TRACKS_TABLE --out "
            f"{_q(path)}` (failed tracks are retried)",
        )
    frames_tail, journal_tail = uncommitted_bytes(store)
    if frames_tail or journal_tail:
        check.warning(
            path,
            f"an interrupted `mixtape features` left {frames_tail} byte(s) of uncommitted frames and {journal_tail} "
            "byte(s) of a partial index line; readers ignore them",
            f"re-run the same `mixtape features ... --out {_q(path)}` command: it cuts them and resumes",
        )
    return check


# --- positives -------------------------------------------------------------------------------------


def pairs_command(folder: Path, meta: dict[str, Any]) -> str:
    """The `mixtape pairs` command that rebuilds ``folder`` from the inputs and parameters its metadata records."""
    inputs = _dict_at(meta, "inputs")
    words = ["mixtape", "pairs"]

    def files(role: str) -> list[str]:
        entries = inputs.get(role) or []
        paths = [str(e.get("path")) for e in entries if isinstance(e, dict) and e.get("path")]
        parents = {str(Path(p).parent) for p in paths}
        return sorted(parents) if len(paths) > 3 and len(parents) == 1 else paths

    for role, flag in (
        ("tracks", "--tracks"),
        ("playlists", "--playlists"),
        ("heldout", "--heldout"),
        ("holdout_tracks", "--holdout-tracks"),
        ("mapping", "--mapping"),
    ):
        given = files(role)
        if given:
            words += [flag, *map(_q, given)]
    options = _dict_at(meta, "options")
    if options.get("audio_root"):
        words += ["--audio-root", _q(options["audio_root"])]
    if options.get("match") not in (None, "auto"):
        words += ["--match", str(options["match"])]
    words += ["--strategy", str(meta.get("strategy", "STRATEGY"))]
    params = _dict_at(meta, "params")
    words += [_q(w) if not w.startswith("--") else w for w in command_flags(params)]
    words += ["--out", _q(folder)]
    return " ".join(words)


def check_positives(path: Path) -> FolderCheck:
    """Positives vs their own files (checksums) and vs the catalogue they were computed from."""
    from mixtape.pairs.positives import Positives, changed_files, read_metadata

    check = FolderCheck(path, "positives")
    try:
        meta = read_metadata(path)
    except MixtapeError as err:
        check.error(err, f"rebuild it with `mixtape pairs ... --out {_q(path)}`")
        return check
    rebuild = f"`{pairs_command(path, meta)}`"
    changed = changed_files(path, meta)
    for file, what in changed:
        check.problem(file, what, f"rebuild the positives: {rebuild}")
    if "files" not in meta:
        check.warning(
            path,
            "written by an older mixtape that recorded no checksums of its arrays; they cannot be verified",
            f"rebuild them to record checksums: {rebuild} --force",
        )
    inputs = _dict_at(meta, "inputs")
    for role, entries in inputs.items():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or "path" not in entry:
                continue
            file = Path(str(entry["path"]))
            try:
                same = file_checksum(file) == entry.get("checksum")
            except FileNotFoundError:
                check.warning(
                    file,
                    f"the {role} file the pairs in {path} were computed from is gone; whether the catalogue "
                    "changed cannot be checked",
                )
                continue
            except OSError as err:
                check.warning(
                    file,
                    f"the {role} file the pairs in {path} were computed from is unreadable ({err.strerror or err})",
                )
                continue
            if not same:
                check.problem(
                    file,
                    f"the catalogue changed since the pairs in {path} were computed (this {role} file was edited)",
                    f"re-run {rebuild}",
                )
    if not changed:
        try:
            Positives.load(path)
        except MixtapeError as err:
            check.error(err, f"rebuild the positives: {rebuild}")
    return check


# --- pretrain run ------------------------------------------------------------------------------------


def check_pretrain_run(path: Path) -> FolderCheck:
    """Checkpoints vs config.yaml, the store's mel settings vs the model, recorded data vs the folders now."""
    from mixtape.config import ConfigError
    from mixtape.models.checkpoint import read_checkpoint
    from mixtape.training.config import load_pretrain_config
    from mixtape.training.run import CHECKPOINT_DIR, LAST

    check = FolderCheck(path, "pretrain run")
    config_file = path / "config.yaml"
    try:
        config = load_pretrain_config(config_file)
    except ConfigError as err:
        config = None
        check.error(
            err,
            "restore config.yaml as `mixtape pretrain` wrote it (each checkpoint's model section says what it held)",
        )
    ckpts = sorted((path / CHECKPOINT_DIR).glob("*.ckpt"))
    loaded: dict[Path, dict[str, Any]] = {}
    for ckpt in ckpts:
        try:
            loaded[ckpt] = read_checkpoint(ckpt)
        except MixtapeError as err:
            check.error(
                err,
                f"delete {_q(ckpt)}; `mixtape pretrain --config {_q(config_file)} --out {_q(path)} --resume` "
                "continues from the newest good checkpoint",
            )
    if not ckpts:
        check.warning(
            path / CHECKPOINT_DIR,
            "holds no checkpoint yet",
            f"start or resume the run: `mixtape pretrain --config {_q(config_file)} --out {_q(path)} --resume`",
        )
    _check_weights(check, loaded)
    result = _read_json(path / "result.json")
    if config is not None:
        _check_models_vs_config(check, loaded, config, config_file)
        store = _check_run_store(check, loaded, config, result, config_file)
        _check_run_positives(check, config, result, store, config_file)
        if result is None and ckpts:
            check.warning(
                path,
                "the run has not finished (no result.json)",
                f"resume it: `mixtape pretrain --config {_q(config_file)} --out {_q(path)} --resume`",
            )
    last = path / CHECKPOINT_DIR / LAST
    recorded = (result or {}).get("checkpoint_checksum")
    if recorded and last.is_file() and file_checksum(last) != recorded:
        check.problem(
            last,
            "changed since the run finished: it is not the checkpoint result.json records (replaced or overwritten?)",
            f"put the run's own last.ckpt back, or train again: `mixtape pretrain --config {_q(config_file)} "
            "--out NEW_RUN`",
        )
    return check


def _check_weights(check: FolderCheck, loaded: dict[Path, dict[str, Any]]) -> None:
    """Each readable checkpoint's encoder weights fit the backbone its hyper-parameters name."""
    from mixtape.models.bundle import EncoderBundle

    for ckpt in list(loaded):
        try:
            EncoderBundle.load(ckpt)
        except MixtapeError as err:
            check.error(
                err,
                "the file does not hold what its hyper-parameters say: delete it and resume from another "
                "checkpoint, or train again",
            )
            del loaded[ckpt]


def _model_differences(ckpt: dict[str, Any], config: Any) -> list[str]:
    from mixtape.models.checkpoint import CheckpointMismatchError
    from mixtape.training.run import check_resume

    try:
        check_resume(ckpt, Path("checkpoint"), config)
    except CheckpointMismatchError:
        saved = ckpt["hyper_parameters"]["model"]
        current = config.model.model_dump(mode="json")
        return [
            f"model.{k}: checkpoint {saved.get(k)!r}, config.yaml {v!r}"
            for k, v in current.items()
            if saved.get(k) != v
        ]
    return []


def _check_models_vs_config(
    check: FolderCheck, loaded: dict[Path, dict[str, Any]], config: Any, config_file: Path
) -> None:
    """Checkpoints whose model differs from config.yaml's.

    All of them (config.yaml was edited) or some (foreign checkpoints).
    """
    diffs = {ckpt: _model_differences(c, config) for ckpt, c in loaded.items()}
    wrong = {ckpt: d for ckpt, d in diffs.items() if d}
    if not wrong:
        return
    if len(wrong) == len(diffs):
        first = next(iter(wrong.values()))
        check.problem(
            config_file,
            f"its model section differs from the model the checkpoints hold ({'; '.join(first)}): it was "
            "edited after training",
            "set the model section back to what the checkpoints hold, or train the new model in a new "
            f"folder: `mixtape pretrain --config {_q(config_file)} --out NEW_RUN`",
        )
        return
    for ckpt, d in wrong.items():
        check.problem(
            ckpt,
            f"holds another model than config.yaml and the run's other checkpoints ({'; '.join(d)}): it does "
            "not belong to this run",
            "remove it (or move it back to the run folder it came from)",
        )


def _check_run_store(
    check: FolderCheck,
    loaded: dict[Path, dict[str, Any]],
    config: Any,
    result: dict[str, Any] | None,
    config_file: Path,
) -> Any:
    """The store the run reads: it opens, has the model's log-mel settings, and is the one the run trained on."""
    from mixtape.audio.store import FeatureStore, store_fingerprint
    from mixtape.models.bundle import MelMismatchError, mel_differences

    store_path = Path(config.data.store)
    try:
        store = FeatureStore.open(store_path)
    except MixtapeError as err:
        check.problem(
            store_path,
            f"the feature store this run trains on cannot be opened: {err}{_relative_hint(store_path)}",
            f"restore it, or set data.store in {_q(config_file)} to the store the run was trained on",
        )
        return None
    for ckpt, c in loaded.items():
        hp = c["hyper_parameters"]
        mel = (hp.get("data_info") or {}).get("mel") or {}
        try:
            diff = mel_differences(mel, store.mel_config) if mel else []
        except MelMismatchError as err:
            diff = [str(err)]
        n_mels = int(hp.get("n_mels", store.n_mels))
        if not diff and n_mels != store.n_mels:
            diff = [f"n_mels: model {n_mels}, store {store.n_mels}"]
        if diff:
            check.problem(
                store_path,
                f"its log-mel settings differ from those the model in {ckpt} was trained on "
                f"({'; '.join(diff).replace('encoder', 'model')})",
                f"set data.store in {_q(config_file)} to a store extracted with the model's settings (or "
                "re-extract this one with them)",
            )
            break
    recorded = ((result or {}).get("data") or {}).get("store") or {}
    if recorded.get("fingerprint") and recorded["fingerprint"] != store_fingerprint(store):
        check.problem(
            store_path,
            "changed since the run trained on it (its tracks, source audio or settings differ from those result.json "
            "records): resuming or retraining would use other data",
            "restore the store the run trained on, or train again on this one: `mixtape pretrain --config "
            f"{_q(config_file)} --out NEW_RUN`",
        )
    return store


def _check_run_positives(
    check: FolderCheck, config: Any, result: dict[str, Any] | None, store: Any, config_file: Path
) -> None:
    """The positives the run reads: unchanged since it trained, and every track they pair is in its store."""
    from mixtape.pairs.positives import META_FILE, Positives
    from mixtape.training.data import map_track_ids, tracks_in_use

    folder = Path(config.data.positives)
    recorded = ((result or {}).get("data") or {}).get("positives") or {}
    try:
        now = file_checksum(folder / META_FILE)
    except OSError:
        check.problem(
            folder,
            f"the positives this run trains on are gone{_relative_hint(folder)}",
            f"restore them, or set data.positives in {_q(config_file)} to the folder the run was trained on",
        )
        return
    if recorded.get("metadata_checksum") and recorded["metadata_checksum"] != now:
        check.problem(
            folder,
            "changed since the run trained on them (re-built by `mixtape pairs` on other inputs or "
            "parameters): resuming or retraining would use other pairs",
            "restore the positives the run trained on, or train again on these: `mixtape pretrain --config "
            f"{_q(config_file)} --out NEW_RUN`",
        )
    if store is None:
        return
    try:
        positives = Positives.load(folder)
    except MixtapeError:
        return  # the positives folder's own check words what is wrong with it
    catalog_ids = list(positives.track_ids)
    rows = map_track_ids(catalog_ids, list(store.track_ids))
    used = tracks_in_use(positives)
    failed = {str(row[0]) for row in store.failures}  # left out of pre-training; the store's check warns of them
    missing = [i for i in used[rows[used] < 0] if str(catalog_ids[i]) not in failed]
    if missing:
        meta = _read_json(folder / META_FILE) or {}
        tables = [str(e.get("path")) for e in (meta.get("inputs") or {}).get("tracks", []) if isinstance(e, dict)]
        check.problem(
            folder,
            f"{len(missing)} of the {used.size} tracks these positives pair are not in the feature store "
            f"{store.path}, e.g. " + and_more([str(catalog_ids[i]) for i in missing], EXAMPLES),
            "extract features for the tracks table the pairs were built from: `mixtape features --tracks "
            f"{_q(tables[0]) if tables else 'TRACKS_TABLE'} --out {_q(store.path)}`",
        )


# --- export, embeddings, index, tagger -------------------------------------------------------------------


def check_export(path: Path) -> FolderCheck:
    """An encoder export vs its weights (and ONNX file), and vs the checkpoint it came from."""
    from mixtape.models.bundle import EncoderBundle
    from mixtape.models.export import read_export_config

    check = FolderCheck(path, "export")
    try:
        info = read_export_config(path)
    except MixtapeError as err:
        check.error(err, f"export again: `mixtape export --checkpoint CHECKPOINT --out {_q(path)}`")
        return check
    ckpt = info.get("checkpoint")
    again = (
        f"export again: `mixtape export --checkpoint {_q(ckpt) if ckpt else 'CHECKPOINT'} --out "
        f"{_q(path)}{' --onnx' if info.get('onnx') else ''}`"
    )
    try:
        EncoderBundle.load(path)
    except MixtapeError as err:
        check.error(err, again)
    if info.get("onnx"):
        onnx = path / str(info["onnx"])
        try:
            if file_checksum(onnx) != info.get("onnx_checksum"):
                check.problem(onnx, "changed since it was exported (its checksum differs from config.json)", again)
        except OSError:
            check.problem(onnx, "missing (config.json says the export has an ONNX file)", again)
    recorded = info.get("checkpoint_checksum")
    if ckpt and recorded and Path(ckpt).is_file() and file_checksum(ckpt) != recorded:
        check.warning(
            path,
            f"the checkpoint it was exported from ({ckpt}) changed since (training went on?): the export "
            "holds older weights",
            again,
        )
    return check


def check_embeddings(path: Path, quick: bool = False) -> FolderCheck:
    """Embeddings vs their files, the feature store and the encoder they were computed with."""
    from mixtape.audio.store import FeatureStore, store_fingerprint
    from mixtape.search.embeddings import VECTORS_FILE, Embeddings, changed_vectors, read_meta

    check = FolderCheck(path, "embeddings")
    try:
        meta = read_meta(path)
    except MixtapeError as err:
        check.error(err, f"re-run `mixtape embed ... --out {_q(path)}`")
        return check
    encoder = _dict_at(meta, "encoder")
    store_info = _dict_at(meta, "store")
    source = encoder.get("source")
    again = (
        f"re-run `mixtape embed --checkpoint {_q(source) if source else 'CHECKPOINT'} --features "
        f"{_q(store_info['path']) if store_info.get('path') else 'STORE'} --out {_q(path)}`"
    )
    try:
        emb = Embeddings.open(path)
    except MixtapeError as err:
        check.error(err, again)
        return check
    if not quick and changed_vectors(emb):
        check.problem(
            path / VECTORS_FILE,
            "changed since the embeddings were written (its vectors' checksum differs from embeddings.json)",
            f"{again} --force",
        )
    if store_info.get("path") and store_info.get("fingerprint"):
        store_path = Path(store_info["path"])
        try:
            store = FeatureStore.open(store_path)
        except MixtapeError:
            check.warning(
                path,
                f"the feature store these embeddings were computed from ({store_path}) cannot be opened: "
                "whether it changed cannot be checked",
            )
        else:
            if store_fingerprint(store) != store_info["fingerprint"]:
                check.problem(
                    path,
                    f"the feature store {store_path} changed since these embeddings were computed from it "
                    "(its tracks or their audio differ)",
                    f"{again} (unchanged tracks are reused)",
                )
    if source and encoder.get("fingerprint"):
        if not Path(source).exists():
            check.warning(
                path,
                f"the encoder these embeddings were made with ({source}) is "
                f"gone{_relative_hint(Path(source))}; searching by audio will need --checkpoint",
            )
        else:
            from mixtape.models.bundle import EncoderBundle

            try:
                current = EncoderBundle.load(source).fingerprint()
            except MixtapeError as err:
                check.warning(path, f"the encoder these embeddings were made with cannot be loaded: {err}")
            else:
                if current != encoder["fingerprint"]:
                    check.problem(
                        path,
                        f"the encoder {source} changed since these embeddings were computed with it (other weights)",
                        f"{again} --force",
                    )
    return check


def check_index(path: Path) -> FolderCheck:
    """A search index vs its files and vs the embeddings it was built from."""
    from mixtape.search.embeddings import read_meta
    from mixtape.search.index import IndexHeader, changed_index_files, read_index_meta
    from mixtape.search.neighbours import SimilarIndex

    check = FolderCheck(path, "search index")
    try:
        meta = read_index_meta(path)
    except MixtapeError as err:
        check.error(err, f"rebuild it: `mixtape index EMBEDDINGS --out {_q(path)}`")
        return check
    header = IndexHeader.model_validate(meta)  # checked by read_index_meta
    emb = header.embeddings.path if header.embeddings is not None and header.embeddings.path else None
    rebuild = f"rebuild it: `mixtape index {_q(emb) if emb else 'EMBEDDINGS'} --out {_q(path)}`"
    changed = changed_index_files(path, meta)
    for file, what in changed:
        check.problem(file, what, rebuild)
    if "files" not in meta:
        check.warning(
            path,
            "built by an older mixtape that recorded no checksums of its files; they cannot be verified",
            f"{rebuild} --force",
        )
    if not changed:
        try:
            SimilarIndex.open(path, verified=True)
        except MixtapeError as err:
            check.error(err, rebuild)
    if emb:
        try:
            current = read_meta(Path(emb)).get("vectors_checksum")
        except MixtapeError:
            check.warning(
                path, f"the embeddings it was built from ({emb}) cannot be read: whether they changed cannot be checked"
            )
        else:
            if current != meta["embeddings"].get("checksum"):
                check.problem(
                    path,
                    f"built from other embeddings than those now in {emb} (they changed since the index was built)",
                    rebuild,
                )
    return check


def check_tagger(path: Path) -> FolderCheck:
    """A tagging model vs its weights and vs the encoder of the embeddings it was trained on."""
    from mixtape.search.embeddings import read_meta
    from mixtape.search.tagger import Tagger

    check = FolderCheck(path, "tagger")
    meta = _read_json(path / "tagger.json") or {}
    emb = (meta.get("embeddings") or {}).get("path") if isinstance(meta.get("embeddings"), dict) else None
    again = f"train it again: `mixtape tagger --embeddings {_q(emb) if emb else 'EMBEDDINGS'} --out {_q(path)} ...`"
    try:
        tagger = Tagger.load(path)
    except MixtapeError as err:
        check.error(err, again)
        return check
    if emb:
        try:
            now = (read_meta(Path(emb)).get("encoder") or {}).get("fingerprint")
        except MixtapeError:
            return check
        if tagger.encoder_fingerprint and now and now != tagger.encoder_fingerprint:
            check.problem(
                path,
                f"trained on embeddings of another encoder than those now in {emb}: its tags would not mean "
                "anything for them",
                again,
            )
    return check


def check_experiment(path: Path) -> FolderCheck:
    """An experiment or demo folder: its config parses; failed steps of the last run."""
    from mixtape.experiment import load_experiment_config

    check = FolderCheck(path, "experiment")
    config = path / "experiment.yaml"
    rerun = f"`mixtape experiment {_q(config)} --out {_q(path)}`"
    try:
        load_experiment_config(config)
    except MixtapeError as err:
        check.error(err, "restore experiment.yaml (`mixtape experiment` writes the resolved grid there)")
        return check
    try:
        failed = json.loads((path / "failures.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        failed = []
    if isinstance(failed, list) and failed:
        check.warning(
            path / "failures.json",
            f"{len(failed)} step(s) failed in the last run: {and_more([str(f) for f in failed], 3)}",
            f"see {path / 'experiment.log'}; re-run {rerun} to retry them",
        )
    if not (path / "results.csv").is_file():
        check.warning(
            path, "has no results.csv yet: the experiment has not finished", f"re-run {rerun} (finished steps are kept)"
        )
    return check


# --- recognising folders ---------------------------------------------------------------------------------


Checker = Callable[[Path, bool], FolderCheck]


def _stage_checks() -> dict[str, tuple[str, Checker]]:
    """Doctor's label and check for each registered stage folder kind (importing the stages registers them)."""
    import mixtape.audio.store
    import mixtape.models.export
    import mixtape.pairs.positives
    import mixtape.search.embeddings
    import mixtape.search.index
    import mixtape.search.tagger  # noqa: F401  (the imports register the stage folders)

    return {
        "feature store": ("feature store", check_store),
        "positives file": ("positives", lambda d, q: check_positives(d)),
        "encoder export": ("export", lambda d, q: check_export(d)),
        "embeddings folder": ("embeddings", check_embeddings),
        "index": ("search index", lambda d, q: check_index(d)),
        "tagging model": ("tagger", lambda d, q: check_tagger(d)),
    }


#: Registered stage folders doctor does not check on their own (a world is checked by the stages that read it).
UNCHECKED_STAGE_FOLDERS = frozenset({"world"})


def _kinds() -> list[tuple[str, str, Callable[[Path], bool], Checker]]:
    """(label, how it is recognised, recogniser, check) for every kind of folder doctor checks: the
    registered stage folders, by their header, plus pretrain runs and experiments."""
    checks = _stage_checks()
    missing = set(STAGE_FOLDERS) - set(checks) - UNCHECKED_STAGE_FOLDERS
    if missing:
        raise MixtapeError(f"doctor has no check for the registered stage folder kind(s) {sorted(missing)}")
    kinds = [
        (label, STAGE_FOLDERS[kind].header_file, STAGE_FOLDERS[kind].holds, check)
        for kind, (label, check) in checks.items()
    ]
    pretrain_run: tuple[str, str, Callable[[Path], bool], Checker] = (
        "pretrain run",
        "config.yaml beside checkpoints/",
        lambda d: (d / "config.yaml").is_file() and (d / "checkpoints").is_dir(),
        lambda d, q: check_pretrain_run(d),
    )
    experiment = (
        "experiment",
        "experiment.yaml",
        lambda d: (d / "experiment.yaml").is_file(),
        lambda d, q: check_experiment(d),
    )
    return [*kinds[:2], pretrain_run, *kinds[2:], experiment]


#: Subfolders never walked into: a pretrain run's own logs, a positives folder's parts (its check covers them).
_SKIP = {"pretrain run": {"checkpoints", "logs", "tensorboard", "trace"}, "positives": None}


def nothing_found(path: Path) -> str:
    looks_for = ", ".join(f"{header} ({kind})" for kind, header, _, _ in _kinds())
    return f"no mixtape folder found in {path}; doctor looks for folders holding {looks_for}"


def find_folders(root: Path) -> list[tuple[Path, str]]:
    """Every recognised stage folder under ``root`` (itself included), in walk order, with its kind."""
    found: list[tuple[Path, str]] = []
    known = _kinds()
    for current, dirs, _ in os.walk(root):
        folder = Path(current)
        kinds = [kind for kind, _, recognise, _ in known if recognise(folder)]
        found += [(folder, kind) for kind in kinds]
        skip: set[str] = set()
        for kind in kinds:
            if kind in _SKIP:
                names = _SKIP[kind]
                skip |= set(dirs) if names is None else names
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in skip)
    return found


def doctor(paths: Iterable[str | Path], quick: bool = False) -> DoctorReport:
    """Check every stage folder under ``paths``; ``quick`` skips hashing every track's frames and every vector."""
    checks: list[FolderCheck] = []
    empty: list[Path] = []
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.is_dir():
            raise MixtapeError(
                f"doctor: {root} is not a folder (give run folders: a feature store, a pretrain run, an "
                "experiment, ...)"
            )
    for root in roots:
        found = find_folders(root)
        if not found:
            empty.append(root)
        checker = {kind: check for kind, _, _, check in _kinds()}
        for folder, kind in found:
            log.debug("doctor: checking %s (%s)", folder, kind)
            checks.append(checker[kind](folder, quick))
    if not checks:
        raise MixtapeError(" ".join(nothing_found(p) for p in empty))
    return DoctorReport(checks, empty)
