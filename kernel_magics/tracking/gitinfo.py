"""Git state around a run: commit, branch, dirty flag, remote, and diffs.

The diff covers the notebook and the local modules the kernel imported (files
inside the repository, outside virtual environments and site-packages), so a
run can be reproduced from its commit plus the patch. It runs in the tracked
cell's background completion (capture.py), one `git status` call when clean.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .record import GitState

MAX_DIFF_BYTES = 5_000_000
# `git status --porcelain=v2`: entry type -> number of space-separated fields before the path.
_PATH_FIELD = {"1": 8, "2": 9, "u": 10, "?": 1}


def find_repo(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding `.git`."""
    for folder in [start, *start.parents]:
        if (folder / ".git").exists():
            return folder
    return None


def local_modules(repo: Path) -> list[Path]:
    """Source files of imported modules that live in the repository (not in a venv)."""
    found: list[Path] = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file)
        try:
            relative = path.resolve().relative_to(repo)
        except (ValueError, OSError):
            continue
        parts = set(relative.parts)
        if parts & {"site-packages", "dist-packages", ".venv", "venv", ".tox", ".ship"}:
            continue
        found.append(path.resolve())
    return sorted(set(found))


def _git(repo: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                            timeout=20, check=False)
    if result.returncode not in ok:
        raise RuntimeError(result.stderr.strip() or f"git {args[0]} failed")
    return result.stdout


def capture(start: Path, notebook: Path | None) -> tuple[GitState, str]:
    """The repository state and the diff text (empty when clean or not a repository)."""
    repo = find_repo(start)
    if repo is None:
        return GitState(error="not a git repository"), ""
    state = GitState(root=str(repo))
    try:
        status = _git(repo, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
        for line in status.splitlines():
            if line.startswith("# branch.oid "):
                oid = line.split(" ", 2)[2]
                state.commit = None if oid == "(initial)" else oid
            elif line.startswith("# branch.head "):
                head = line.split(" ", 2)[2]
                state.branch = None if head == "(detached)" else head
            elif line and line[0] in _PATH_FIELD:
                path = line.split(" ", _PATH_FIELD[line[0]])[-1].split("\t")[0]
                (state.untracked_files if line[0] == "?" else state.changed_files).append(path)
        # Like `git describe --dirty`: changes to tracked files; untracked ones are listed.
        state.dirty = bool(state.changed_files)
        state.repo_url = _origin_url(repo)
        diff = ""
        if state.commit and (state.dirty or state.untracked_files):
            paths = [p for p in [notebook, *local_modules(repo)] if p is not None]
            rel = [str(p.resolve().relative_to(repo)) for p in paths
                   if _inside(p, repo)]
            new = [r for r in rel if _untracked(r, state.untracked_files)]
            changed = [r for r in rel if r not in new]
            if changed and state.dirty:
                diff = _git(repo, "diff", "HEAD", "--", *changed)
            # An imported module nobody committed yet goes into the patch as a new file:
            # without it, the commit plus the diff could not reproduce the run.
            for path in new:
                diff += _git(repo, "diff", "--no-index", "--", "/dev/null", path, ok=(0, 1))
            state.diffed_files = sorted({line[6:] for line in diff.splitlines()
                                         if line.startswith("+++ b/")})
        if len(diff) > MAX_DIFF_BYTES:
            diff = diff[:MAX_DIFF_BYTES] + "\n# diff truncated by Ship\n"
        return state, diff
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        state.error = str(exc)
        return state, ""


def _untracked(path: str, untracked: list[str]) -> bool:
    """Whether `path` is untracked (`git status` lists new folders as `folder/`)."""
    return any(path == u or (u.endswith("/") and path.startswith(u)) for u in untracked)


def _origin_url(repo: Path) -> str | None:
    """remote.origin.url read from .git/config (one subprocess fewer than `git config`)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read(repo / ".git" / "config", encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    url = parser.get('remote "origin"', "url", fallback=None)
    return without_credentials(url) if url else None


def without_credentials(url: str) -> str:
    """A remote URL without the user and password (or token) it may embed:
    ``https://user:ghp_x@host/repo.git`` -> ``https://host/repo.git``. scp-style
    ``git@host:repo`` names an SSH user, no secret, and stays as it is."""
    parts = urlsplit(url)
    if not parts.scheme or parts.hostname is None or "@" not in parts.netloc:
        return url
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.scheme in ("ssh", "git+ssh") and parts.password is None:
        return url  # ssh://git@host/repo: a user name, no secret
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _inside(path: Path, repo: Path) -> bool:
    try:
        path.resolve().relative_to(repo)
        return True
    except ValueError:
        return False
