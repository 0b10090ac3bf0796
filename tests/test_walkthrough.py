"""The README's "Your own catalogue" walk-through, run as written.

The tiny world's files are laid out as a user's own catalogue would be (``lay_out_catalogue``): a
folder of audio files named by artist, album and title, a tracks table, training playlists in all
three formats a user has (an MPD JSON slice, M3U files with relative and absolute paths, a CSV
table), held-out playlists, one audio file that is not audio, and one playlist entry for a song the
user never ripped. Then every command of docs/walkthrough.md's ``console`` blocks runs, in order,
in that folder, and each printed line the page shows must appear in what the command really prints
(numbers may differ; ``…`` stands for anything). The README's bash block must be the same commands,
in the same order, so neither page can change without this test.

Only ``SUBSTITUTE``, ``ADD`` and ``HIDE_FFMPEG`` make the run differ from the pages, each for the
reason given, and the page's port 8000 is a free one here. The run takes 25 s on 2 cores (45 s when
they are busy), so it is marked slow (CI runs it); the README/page agreement check is instant.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixtape.cli import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
WALKTHROUGH = REPO / "docs" / "walkthrough.md"

#: Exact arguments of the documented commands replaced here. Each must occur in the pages (a page that
#: drops one fails the test instead of silently running the slow value).
SUBSTITUTE = {
    # 3000 steps take about 7 minutes on 2 CPU cores; 20 run the same commands end to end in seconds.
    "trainer.max_steps=3000": "trainer.max_steps=20",
    # The commands run in the user's folder (a temporary one here); the config ships in the repository.
    "configs/pretrain_small.yaml": str(REPO / "configs" / "pretrain_small.yaml"),
}
#: Arguments added to a subcommand. The port is filled in when the server starts.
ADD = {
    # The 120-track test catalogue cannot fill the config's batches of 32 pairs without repeating a track.
    "pretrain": ["--set", "data.batch_size=8"],
    # A free port: 8000 may be taken on the machine running the tests.
    "serve": ["--port", "{port}"],
}
#: The page shows the reason a broken file gets where ffmpeg is not installed (libsndfile's alone); where it
#: is, the reason reads "not readable by libsndfile nor ffmpeg", so the test hides it from PATH.
HIDE_FFMPEG = True
BAD_TRACK = "track_broken"  # the row of the tracks table whose file is not audio
NEVER_RIPPED = "A Song You Never Ripped.mp3"  # an M3U entry for a song the tracks table does not have


# --- the user's folder ---------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r'[/\\:*?"<>|]+', "-", name).strip() or "untitled"


def lay_out_catalogue(world_root: Path, my: Path) -> dict[str, int]:
    """Write the tiny world as a user's catalogue under ``my``; returns what was written, for the checks."""
    world = json.loads((world_root / "world.json").read_text(encoding="utf-8"))
    artist_name = {a["artist_id"]: a["name"] for a in world["artists"]}
    album_name = {a["album_id"]: a["name"] for a in world["albums"]}
    track_name = {t["track_id"]: t["name"] for t in world["tracks"]}
    rows = list(csv.DictReader((world_root / "tracks.csv").open(encoding="utf-8")))

    # audio/<artist>/<album>/<NN> <title>.wav: file names that are not track ids, so M3U entries
    # can only match by path.
    path_of: dict[str, str] = {}
    number: dict[str, int] = {}
    for row in rows:
        number[row["album_id"]] = number.get(row["album_id"], 0) + 1
        rel = (
            f"audio/{_safe(artist_name[row['artist_id']])}/{_safe(album_name[row['album_id']])}/"
            f"{number[row['album_id']]:02d} {_safe(track_name[row['track_id']])}.wav"
        )
        dst = my / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(world_root / row["path"], dst)
        except OSError:
            shutil.copyfile(world_root / row["path"], dst)
        path_of[row["track_id"]] = rel
    assert len(set(path_of.values())) == len(rows), "two tracks were given the same file name"
    first = rows[0]
    bad = f"{Path(path_of[first['track_id']]).parent.as_posix()}/99 Broken Download.wav"
    (my / bad).write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt this download stopped half way")

    # The artist and album columns hold names, as a user's library export would.
    assert len(set(artist_name.values())) == len(artist_name) and len(set(album_name.values())) == len(album_name)
    with (my / "tracks.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["track_id", "path", "artist_id", "album_id"])
        for row in [*rows, {**first, "track_id": BAD_TRACK}]:
            rel = path_of.get(row["track_id"], bad)
            w.writerow([row["track_id"], rel, artist_name[row["artist_id"]], album_name[row["album_id"]]])

    # Training playlists: a third as an MPD slice, a third as M3U files, a third as one CSV table.
    (slice_file,) = sorted((world_root / "playlists").glob("*.json"))
    data = json.loads(slice_file.read_text(encoding="utf-8"))
    playlists = data["playlists"]
    third = len(playlists) // 3
    mpd, m3u, table = playlists[:third], playlists[third : 2 * third], playlists[2 * third :]
    (my / "playlists" / "m3u").mkdir(parents=True)
    slice_out = my / "playlists" / f"mpd.slice.{mpd[0]['pid']}-{mpd[-1]['pid']}.json"
    slice_out.write_text(json.dumps({"info": data["info"], "playlists": mpd}, indent=1), encoding="utf-8")
    for i, pl in enumerate(m3u):
        lines = ["#EXTM3U"]
        for t in pl["tracks"]:
            rel = path_of[t["track_uri"].rsplit(":", 1)[-1]]
            # every other file as a player writes it (absolute paths), the rest relative to the playlist
            entry = str((my / rel).resolve()) if i % 2 else f"../../{rel}"
            lines += [f"#EXTINF:{t['duration_ms'] // 1000},{t['artist_name']} - {t['track_name']}", entry]
        if i == 0:  # a song the user never ripped: counted and listed, never fatal
            lines += ["#EXTINF:245,Somebody - A Song You Never Ripped", f"/media/phone/Music/{NEVER_RIPPED}"]
        slug = re.sub(r"[^a-z0-9]+", "-", pl["name"].lower()).strip("-")
        (my / "playlists" / "m3u" / f"{pl['pid']:03d}-{slug}.m3u").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (my / "playlists" / "friends.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["playlist_id", "track_id"])
        for j, pl in enumerate(table):
            for t in pl["tracks"]:
                w.writerow([f"friends-{pl['pid']}", t["track_uri"].rsplit(":", 1)[-1]])
            if j == 0:  # the broken file is in a playlist too
                w.writerow([f"friends-{pl['pid']}", BAD_TRACK])

    (my / "heldout").mkdir()
    for f in sorted((world_root / "heldout").glob("*.json")):
        shutil.copyfile(f, my / "heldout" / f.name)
    return {
        "tracks": len(rows),
        "playlists": len(playlists),
        "entries": sum(len(p["tracks"]) for p in playlists),
        "heldout": len(json.loads(next((my / "heldout").glob("*.json")).read_text())["playlists"]),
    }


# --- the pages' commands -------------------------------------------------------------------------


@dataclass
class Step:
    command: str  # as written, continuation lines joined
    shown: list[str] = field(default_factory=list)  # the output lines the page shows

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command, comments=True)


def _join_continuations(lines: list[str]) -> list[str]:
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1].rstrip() + " "
            continue
        out.append((pending + line.strip()).strip())
        pending = ""
    return [c for c in out if c and not c.startswith("#")]


def readme_commands() -> list[str]:
    """The commands of the bash block of README.md's "Your own catalogue" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own catalogue\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the README section should hold one bash block"
    return _join_continuations(blocks[0].splitlines())


def walkthrough_steps() -> list[Step]:
    """Every ``$ command`` of docs/walkthrough.md's console blocks, with the output lines shown under it."""
    steps: list[Step] = []
    for block in re.findall(r"```console\n(.*?)```", WALKTHROUGH.read_text(encoding="utf-8"), flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                parts = [line[2:]]
                while parts[-1].rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    parts.append(lines[i])
                steps.append(Step(_join_continuations(parts)[0]))
            elif steps and line.strip() and line.strip() != "…":
                steps[-1].shown.append(line)
            i += 1
    return steps


def _normal(command: str) -> str:
    return " ".join(shlex.split(command, comments=True))


def _line_pattern(shown: str) -> re.Pattern[str]:
    """A shown output line as a pattern: numbers may differ, ``…`` stands for anything, spacing may vary."""
    parts = re.split(r"(…|\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?|\s+)", shown.strip())
    out = []
    for part in parts:
        if not part:
            continue
        if part == "…":
            out.append(".*")
        elif part[0].isdigit():
            out.append(r"[-+\d.,e]+")
        elif part.isspace():
            out.append(r"\s+")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def _check_shown(step: Step, printed: str) -> None:
    lines = printed.splitlines()
    for shown in step.shown:
        pattern = _line_pattern(shown)
        assert any(pattern.search(line) for line in lines), (
            f"`{step.command}` does not print the line docs/walkthrough.md shows:\n  {shown}\nit printed:\n{printed}"
        )


def _substituted(argv: list[str]) -> list[str]:
    out = [SUBSTITUTE.get(a, a) for a in argv]
    return out + ADD.get(argv[1], []) if argv[:1] == ["mixtape"] and len(argv) > 1 else out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C, as the page says
        try:
            out, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


def start_server(argv: list[str], cwd: Path) -> Server:
    """``mixtape serve …`` as its own process (it serves until Ctrl-C); returns once it answers."""
    port = _free_port()
    args = [a.format(port=port) for a in argv[1:]]
    process = subprocess.Popen(
        [sys.executable, "-m", "mixtape.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MIXTAPE_NO_PROGRESS": "1"},
    )
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise AssertionError(f"`mixtape serve` exited with {process.returncode}:\n{process.communicate()[0]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/tracks", timeout=2).status_code == 200:
                return Server(process, port)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"`mixtape serve` did not answer within 90 s:\n{process.communicate()[0]}")
        time.sleep(0.2)


# --- the test ------------------------------------------------------------------------------------


def test_readme_commands_are_the_walkthrough_commands() -> None:
    """The README block is the walk-through's `mixtape` commands, in order (the page adds a few)."""
    readme = [_normal(c) for c in readme_commands()]
    doc = [_normal(s.command) for s in walkthrough_steps()]
    assert readme and all(c.startswith("mixtape ") for c in readme)
    it = iter(doc)
    missing = [c for c in readme if not any(c == d for d in it)]
    assert not missing, f"README commands not in docs/walkthrough.md (in this order): {missing}"
    used = {k for k in SUBSTITUTE if any(k in shlex.split(c) for c in readme)}
    assert used == set(SUBSTITUTE), f"substitutions no longer in the README: {set(SUBSTITUTE) - used}"


@pytest.fixture
def user_folder(tiny_world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, dict[str, int]]]:
    sizes = lay_out_catalogue(tiny_world.root, tmp_path / "my")
    monkeypatch.chdir(tmp_path)
    if HIDE_FFMPEG:
        path = os.environ.get("PATH", "").split(os.pathsep)
        monkeypatch.setenv("PATH", os.pathsep.join(d for d in path if d and not (Path(d) / "ffmpeg").exists()))
    yield tmp_path, sizes


def _run_in_process(step: Step, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(argv[1:])
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert code == 0, f"`{step.command}` exited with {code}:\n{printed}"
    return printed


@pytest.mark.slow
def test_walkthrough_runs_as_written(user_folder, capsys: pytest.CaptureFixture[str]) -> None:
    root, sizes = user_folder
    printed: dict[str, str] = {}  # subcommand (or tool) → what it printed
    answers: list[dict[str, Any]] = []  # the JSON of every curl
    server: tuple[Server, Step] | None = None

    def stop_server() -> None:
        nonlocal server
        if server is not None:
            process, step = server
            server = None
            # before Ctrl-C: a neighbour the page offers plays (its audio comes from the indexed file)
            first = answers[-1]["neighbours"][0]["track"]
            audio = httpx.get(f"http://127.0.0.1:{process.port}{first['audio_url']}", timeout=30)
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF", audio.text[:200]
            printed["serve"] = process.stop()
            _check_shown(step, printed["serve"])

    try:
        for step in walkthrough_steps():
            argv = _substituted(step.argv)
            if argv[0] == "curl":  # a request to the page started above it
                assert server is not None, f"`{step.command}`: curl needs the `mixtape serve` above it"
                url = next(a for a in argv if a.startswith("http://127.0.0.1:8000/"))
                response = httpx.get(url.replace(":8000/", f":{server[0].port}/"), timeout=30)
                assert response.status_code == 200, (step.command, response.text)
                answers.append(response.json())
                _check_shown(step, response.text)
                continue
            stop_server()  # the next command: Ctrl-C the page
            if argv[:2] == ["mixtape", "serve"]:
                server = (start_server(argv, root), step)
                continue
            if argv[0] == "cat":
                out = (root / argv[1]).read_text(encoding="utf-8")
            else:
                assert argv[0] == "mixtape", f"docs/walkthrough.md runs something the test cannot: {step.command}"
                out = _run_in_process(step, argv, capsys)
            printed[argv[1] if argv[0] == "mixtape" else argv[0]] = out
            _check_shown(step, out)
        stop_server()
    finally:
        if server is not None:
            server[0].process.kill()
            server[0].process.communicate()

    assert {"features", "pairs", "pretrain", "export", "embed", "index", "serve"} <= set(printed) and answers
    runs = root / "runs" / "my"

    # features: every good file in the store; the bad one skipped and listed with its reason
    from mixtape.audio import FeatureStore

    assert len(FeatureStore.open(runs / "features").track_ids) == sizes["tracks"]
    failures = (runs / "features" / "failures.tsv").read_text().splitlines()
    assert failures[0].split("\t") == ["track_id", "path", "reason"]
    assert [line.split("\t")[0] for line in failures[1:]] == [BAD_TRACK]

    # pairs: the three formats all read and every entry matched (M3U entries by path only, relative and
    # absolute), the broken file's too (it is a track of the table); the song never ripped counted
    catalog = json.loads((runs / "pairs" / "catalog.json").read_text())
    assert catalog["playlists"] == sizes["playlists"] and catalog["heldout_playlists"] == sizes["heldout"]
    assert catalog["playlist_entries"] == sizes["entries"] + 1
    counts = catalog["report"]["counts"]
    assert counts["playlist entries matching no track"] == 1
    # pre-training left the broken file's track out of the pairs it drew, and said so
    assert "failed feature extraction" in printed["pretrain"] and BAD_TRACK in printed["pretrain"]
    inputs = json.dumps(json.loads((runs / "pairs" / "positives.json").read_text()).get("inputs", {}))
    assert all(s in inputs for s in ("mpd.slice.0-32.json", ".m3u", "friends.csv")), inputs

    # pretrain → export → similarity/embed → index: each command took the folder the one before wrote
    assert (runs / "pretrain" / "checkpoints" / "last.ckpt").is_file()
    assert (runs / "encoder").is_dir() and any((runs / "encoder").iterdir())
    assert "ndcg@10" in json.loads((runs / "similarity" / "metrics.json").read_text())["metrics"]
    assert len((runs / "embeddings" / "tracks.tsv").read_text().splitlines()) == 1 + sizes["tracks"]
    assert BAD_TRACK in (runs / "embeddings" / "failures.tsv").read_text()
    assert (runs / "embeddings" / "index" / "index.json").is_file()

    # serve: a real search over HTTP, answered from the index, the query's artist left out as asked
    answer = answers[0]
    assert answer["query"]["track_id"] == "track_000000" and len(answer["neighbours"]) == 3
    assert all(n["track"]["artist_id"] != answer["query"]["artist_id"] for n in answer["neighbours"])
