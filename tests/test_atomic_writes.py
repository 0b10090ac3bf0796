"""Policy: every file mixtape writes goes through ``mixtape.fileio.atomic_open`` (temp file, fsync, rename),
so a killed process or a full disk never leaves a half-written file where a reader would find it.

The source is scanned with ``ast`` for direct writes outside ``mixtape/fileio.py``: ``open()`` / ``Path.open()``
/ ``os.open()`` for writing, ``Path.write_text`` / ``write_bytes``, writable memory maps, and writers
given a file (``np.save``/``savez``/``savetxt``, ``torch.save``, ``json.dump``, ``pickle.dump``,
``yaml.dump``, ``savefig``, ``faiss.write_index``, ``tofile``, ``onnx.save``, ``save_file``) that are
neither inside ``with atomic_open(...)`` nor writing to an in-memory buffer. The few writes that are
not atomic on purpose are listed in ``ALLOWED`` with the reason; a new one fails this test.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mixtape"

#: "path/under/mixtape.py:qualified.function" -> why a direct write is right there.
ALLOWED = {
    "audio/store.py:StoreWriter.__init__": (
        "frames.f16 and index.jsonl are the store's append-only files: frames are fsynced before "
        "the index line that points to them, and the next writer cuts anything past the last complete line"
    ),
    "training/callbacks.py:BatchTrace._write": (
        "the batch trace is an append-only journal, one line per write; "
        "a torn last line left by a kill is cut when the run resumes"
    ),
    "training/callbacks.py:cut_torn_line": (
        "cuts the torn last line off that append-only trace, in place, before the next append"
    ),
    "pairs/track2vec.py:write_corpus": (
        "a scratch corpus for gensim in a private TemporaryDirectory, rewritten each epoch and deleted after "
        "training; a killed run leaves nothing a later run reads"
    ),
    "search/app.py:_save_multipart": (
        "an uploaded query written to a private TemporaryDirectory (receive_upload's), read once and deleted"
    ),
    "search/app.py:_save_body": (
        "an uploaded query written to a private TemporaryDirectory (receive_upload's), read once and deleted"
    ),
    "search/embeddings.py:write_embeddings": (
        "vectors.npy is streamed into a hidden .tmp memmap, fsynced and renamed into place "
        "(atomic_open cannot hand out a memmap); embeddings.json, written last, makes the folder complete"
    ),
}

#: writer call (dotted name as written, or ``*.method`` for any object's method) -> (position, keyword)
#: of the argument that is the file.
WRITERS = {
    "np.save": (0, "file"),
    "numpy.save": (0, "file"),
    "torch.save": (1, "f"),
    "*.savez": (0, "file"),
    "*.savez_compressed": (0, "file"),
    "*.savetxt": (0, "fname"),
    "json.dump": (1, "fp"),
    "pickle.dump": (1, "file"),
    "yaml.dump": (1, "stream"),
    "yaml.safe_dump": (1, "stream"),
    "*.savefig": (0, "fname"),
    "faiss.write_index": (1, "f"),
    "*.tofile": (0, "fid"),
    "onnx.save": (1, "f"),
    "*.save_file": (1, "filename"),
}
WRITE_MODE_CHARS = set("wax+")
OS_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}
BUFFERS = {"BytesIO", "StringIO"}


@dataclass(frozen=True)
class Write:
    where: str  # path:qualname
    line: int
    what: str


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: ``np.lib.format.open_memmap``, ``json.dump``, ``open``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _arg(call: ast.Call, pos: int, keyword: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[pos] if len(call.args) > pos else None


def _writes_mode(mode: ast.AST | None, default: str = "r") -> bool:
    if mode is None:
        return bool(set(default) & WRITE_MODE_CHARS)
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(set(mode.value) & WRITE_MODE_CHARS)
    return True  # a mode computed at run time: assume it writes


class _Scanner(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.scope: list[str] = []
        self.atomic_depth = 0
        self.buffers: list[set[str]] = [set()]
        self.found: list[Write] = []

    def _flag(self, node: ast.AST, what: str) -> None:
        self.found.append(Write(f"{self.rel}:{'.'.join(self.scope) or '<module>'}", getattr(node, "lineno", 0), what))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.buffers.append(set())
        self.generic_visit(node)
        self.buffers.pop()
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _with(self, node: ast.With | ast.AsyncWith) -> None:
        atomic = any(
            isinstance(i.context_expr, ast.Call) and _name(i.context_expr.func).endswith("atomic_open")
            for i in node.items
        )
        for item in node.items:
            self.visit(item.context_expr)
        self.atomic_depth += atomic
        for stmt in node.body:
            self.visit(stmt)
        self.atomic_depth -= atomic

    visit_With = visit_AsyncWith = _with

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and _name(node.value.func).split(".")[-1] in BUFFERS:
            self.buffers[-1].update(t.id for t in node.targets if isinstance(t, ast.Name))
        self.generic_visit(node)

    def _in_memory(self, target: ast.AST | None) -> bool:
        if target is None:
            return True  # e.g. yaml.safe_dump(data) returns a string
        if isinstance(target, ast.Name) and any(target.id in b for b in self.buffers):
            return True
        if isinstance(target, ast.Call) and _name(target.func).split(".")[-1] in BUFFERS:
            return True
        return _name(target) in ("sys.stdout", "sys.stderr")

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        last = name.split(".")[-1]
        if name in ("open", "io.open", "builtins.open"):
            if _writes_mode(_arg(node, 1, "mode")):
                self._flag(node, f"{name}() for writing")
        elif last == "open" and isinstance(node.func, ast.Attribute) and name != "os.open":
            # Path.open("w"); not FeatureStore.open(path) and the like, whose first argument is no mode
            mode = _arg(node, 0, "mode")
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & WRITE_MODE_CHARS:
                self._flag(node, f"{name}() for writing")
        elif name == "os.open":
            flags = _arg(node, 1, "flags")
            used = {n.attr for n in ast.walk(flags) if isinstance(n, ast.Attribute)} if flags is not None else set()
            if used & OS_WRITE_FLAGS or not used:
                self._flag(node, "os.open() for writing")
        elif last in ("write_text", "write_bytes"):
            self._flag(node, f".{last}()")
        elif last in ("memmap", "open_memmap"):
            mode = _arg(node, 1, "mode")
            if _writes_mode(mode, default="r+" if last == "memmap" else "r") and not (
                isinstance(mode, ast.Constant) and mode.value == "c"
            ):
                self._flag(node, f"{last}() for writing")
        elif (spec := WRITERS.get(name) or WRITERS.get(f"*.{last}")) is not None:
            pos, keyword = spec
            if not self.atomic_depth and not self._in_memory(_arg(node, pos, keyword)):
                self._flag(node, f"{name}() to a file outside atomic_open")
        self.generic_visit(node)


def scan_source(text: str, rel: str) -> list[Write]:
    scanner = _Scanner(rel)
    scanner.visit(ast.parse(text))
    return scanner.found


def scan_package() -> list[Write]:
    found: list[Write] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != "fileio.py":  # where the atomic helpers themselves live
            found += scan_source(path.read_text(encoding="utf-8"), rel)
    return found


def test_every_write_is_atomic_or_allowed_with_a_reason() -> None:
    found = scan_package()
    unexplained = [f"{w.where} line {w.line}: {w.what}" for w in found if w.where not in ALLOWED]
    assert not unexplained, (
        "direct writes outside atomic_open (use mixtape.fileio.atomic_open, or add to ALLOWED with the reason):\n"
        + "\n".join(unexplained)
    )
    unused = sorted(set(ALLOWED) - {w.where for w in found})
    assert not unused, f"ALLOWED entries that no longer write (remove them): {unused}"


def test_the_scanner_finds_each_kind_of_direct_write() -> None:
    bad = """
import json, os, pickle, numpy as np, torch, yaml
from pathlib import Path
def f(p: Path, fig, index, arr, d):
    with open(p, "w") as h:
        json.dump(d, h)
    open(p, mode="ab")
    p.open("wb")
    p.write_text("x")
    p.write_bytes(b"x")
    np.save(p, arr)
    np.savez(str(p), a=arr)
    torch.save(d, p)
    pickle.dump(d, open(p, "rb"))
    yaml.safe_dump(d, h)
    fig.savefig(p)
    os.open(p, os.O_WRONLY | os.O_CREAT)
    np.memmap(p, dtype="f2", mode="r+")
    arr.tofile(p)
"""
    kinds = [w.what for w in scan_source(bad, "x.py")]
    assert len(kinds) == 15, kinds
    assert kinds[0] == "open() for writing" and "json.dump() to a file outside atomic_open" in kinds
    assert all(w.where == "x.py:f" for w in scan_source(bad, "x.py"))


def test_the_scanner_accepts_atomic_and_in_memory_writes() -> None:
    good = """
import io, json, numpy as np, torch, yaml
from mixtape.fileio import atomic_open
def g(p, fig, arr, d):
    with atomic_open(p, "wb") as f:
        np.savez(f, a=arr)
        torch.save(d, f)
    with atomic_open(p, "w", encoding="utf-8") as f:
        json.dump(d, f)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    np.save(io.BytesIO(), arr)
    text = yaml.safe_dump(d)
    with open(p, "rb") as f, open(p) as g2, p.open() as h:
        f.read()
    np.memmap(p, dtype="f2", mode="r")
"""
    assert scan_source(good, "y.py") == []
