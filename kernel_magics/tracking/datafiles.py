"""Data files a tracked cell read: the files its code names, digested whole.

The in-memory fingerprints (fingerprint.py) say what the cell computed on, but they can
be checked only by running the notebook again. So that `ship reproduce` can name a
changed data file before running anything, a run also records the digest of every
existing file the code names:

- string literals in the tracked cell and in the cells run before it
  (``pd.read_csv("data/iris.csv")``);
- the string (or ``pathlib``) values of the names the cell reads, such as a papermill
  parameter ``data_path`` (``pd.read_csv(data_path)``).

A file modified after the cell started is something the cell wrote, not read, and is
left out; so are folders, notebooks and Python files (git covers code), and whatever is
inside ``.ship/``. Paths built at run time (``f"{split}.csv"``, ``Path(d) / name``) are
not seen. Digests run in the cell's background completion, never on its critical path.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import xxhash

from .record import DataFile

# Files larger than this are recorded by size only: hashing 4 GiB takes seconds.
MAX_FILE_BYTES = 4 * 2**30
MAX_FILES = 50
MAX_STRINGS = 2000
MAX_PATH_CHARS = 1024
CODE_SUFFIXES = (".py", ".ipynb", ".pyc")
CHUNK = 2**20

_strings_cache: dict[str, tuple[str, ...]] = {}
# A file digested by an earlier cell of this kernel, unchanged since (same size, time and
# inode), is not read again.
_digests: dict[tuple[str, int, int, int], DataFile] = {}


def string_values(names: Iterable[str], namespace: Mapping[str, Any]) -> list[str]:
    """The values of ``names`` that are strings or paths (the kernel's thread: cheap)."""
    found = []
    for name in names:
        value = namespace.get(name)
        if isinstance(value, PurePath):
            value = str(value)
        if isinstance(value, str) and 0 < len(value) <= MAX_PATH_CHARS:
            found.append(value)
    return found


def literals(source: str) -> tuple[str, ...]:
    """String literals in a cell's code; IPython lines (``%``, ``!``) are skipped."""
    cached = _strings_cache.get(source)
    if cached is not None:
        return cached
    try:
        tree = ast.parse(python_lines(source))
    except (SyntaxError, ValueError):
        found: tuple[str, ...] = ()
    else:
        found = tuple(dict.fromkeys(
            node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and 0 < len(node.value) <= MAX_PATH_CHARS and "\n" not in node.value))
    if len(_strings_cache) > 1000:
        _strings_cache.clear()
    _strings_cache[source] = found
    return found


def python_lines(source: str) -> str:
    """A cell's code with its cell magic line dropped and IPython lines made ``pass``."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[:len(line) - len(stripped)] + "pass"
        out.append(line)
    return "\n".join(out)


def capture(candidates: Iterable[str], *, cwd: Path, started_ms: int,
            exclude: Path) -> list[DataFile]:
    """Digests of the candidates that name existing files unchanged since ``started_ms``."""
    found: dict[str, DataFile] = {}
    for count, text in enumerate(dict.fromkeys(candidates)):
        if count >= MAX_STRINGS or len(found) >= MAX_FILES:
            break
        if not text.strip() or "\x00" in text or text.endswith(CODE_SUFFIXES):
            continue
        path = Path(os.path.expanduser(text))
        if not path.is_absolute():
            path = cwd / path
        try:
            st = path.stat()
        except (OSError, ValueError):
            continue
        resolved = str(path.resolve())
        if not path.is_file() or resolved in found or _inside(Path(resolved), exclude):
            continue
        if st.st_mtime_ns // 1_000_000 >= started_ms:
            continue  # written during (or after) the cell: an output
        key = (resolved, st.st_size, st.st_mtime_ns, st.st_ino)
        known = _digests.get(key)
        if known is None:
            known = _digests[key] = digest_file(Path(resolved))
            if len(_digests) > 10_000:
                _digests.clear()
        found[resolved] = DataFile(path=text, resolved=resolved, size=known.size,
                                   digest=known.digest, seconds=known.seconds)
    return list(found.values())


def digest_file(path: Path, label: str | None = None) -> DataFile:
    """The XXH3-128 digest of every byte of ``path`` (size only above MAX_FILE_BYTES)."""
    start = time.perf_counter()
    size = path.stat().st_size
    digest = None
    if size <= MAX_FILE_BYTES:
        h = xxhash.xxh3_128()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
    return DataFile(path=label or str(path), resolved=str(path), size=size, digest=digest,
                    seconds=round(time.perf_counter() - start, 6))


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False
