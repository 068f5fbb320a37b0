"""What differs from a run's record, found in seconds without running anything.

`ship reproduce` reads the run back (recorded.py: its tags and the artifacts the writer
logged) and compares each part with what is here now:

    commit     the recorded commit against HEAD (and the files that changed between them)
    diff       uncommitted changes: each file of the recorded patch, and each Python file
               changed now, by git blob id; the notebook by the source of its code cells
    package    every distribution of the lock against ``importlib.metadata`` now
    data       every data file the run recorded (tracking/datafiles.py), digested again
    python     the recorded interpreter version against this one
    kernel     the notebook's kernelspec then and now, and whether it is still installed
    parameter  the notebook's parameter defaults against the values the run used

In-memory fingerprints (DataFrames the cell read) can only be compared after the
re-run; reproduce.py does that.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..tracking import datafiles, gitinfo, source
from ..tracking.environment import installed_packages
from ..tracking.record import DataFile
from ..workspace import SHIP_DIR, Workspace
from .freshenv import local_distributions, parse_lock
from .parameters import parse_value
from .recorded import LOCK_PATH, RECORD_PATH, RecordedRun

Kind = Literal["commit", "diff", "package", "data", "python", "kernel", "parameter"]
MAX_NAMED_FILES = 10


@dataclass
class Difference:
    """One way the world differs from the run's record; ``stage`` says who found it."""

    kind: Kind
    name: str
    recorded: Any
    now: Any
    note: str | None = None
    stage: Literal["check", "rerun"] = "check"


# -- the checks ----------------------------------------------------------------------------
def differences(workspace: Workspace, run: RecordedRun,
                notebook: Path | None) -> tuple[list[Difference], list[str]]:
    """Every difference the record lets us see without running, and notes on what it
    does not let us see."""
    found: list[Difference] = []
    notes: list[str] = []
    if run.record is None:
        notes.append(f"the run has no {RECORD_PATH}: git state, data files and papermill "
                     "parameters were not recorded and are not compared.")
    data_paths = {_relative(Path(f.resolved), workspace.root) for f in _data_files(run)}
    found += _git(workspace, run, notebook, data_paths, notes)
    found += _notebook_code(workspace, run, notebook, notes)
    found += _packages(run, notes)
    found += _python(run)
    found += _kernel(run, notebook)
    found += _data(workspace, run, notes)
    found += parameter_differences(run, notebook)
    return found, notes


def _data_files(run: RecordedRun) -> list[DataFile]:
    return run.record.data_files if run.record else []


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)


def _git_out(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git(workspace: Workspace, run: RecordedRun, notebook: Path | None, data_paths: set[str],
         notes: list[str]) -> list[Difference]:
    state = run.git
    then = run.tags.get("mlflow.source.git.commit") or (state.commit if state else None)
    repo = gitinfo.find_repo(notebook.parent if notebook else workspace.root)
    if repo is None:
        return [Difference("commit", "HEAD", then, None, "not a git repository now")] \
            if then else []
    now = (_git_out(repo, "rev-parse", "--verify", "-q", "HEAD") or "").strip() or None
    found = []
    if then != now:
        note = None
        if then and now and _git_out(repo, "cat-file", "-e", f"{then}^{{commit}}") is not None:
            changed = (_git_out(repo, "diff", "--name-only", then, now) or "").splitlines()
            note = f"{len(changed)} file(s) differ between them" + (
                f": {', '.join(changed[:MAX_NAMED_FILES])}" if changed else "")
        elif then:
            note = "the recorded commit is not in this repository"
        found.append(Difference("commit", "HEAD", then, now, note))
    if state is None or state.root is None:
        return found
    skip = {_relative(p, repo) for p in [notebook, workspace.ship_dir] if p is not None}
    skip |= {_relative(workspace.root / p, repo) for p in data_paths}
    then_blobs = _patch_blobs(run.diff)
    dirty_now = {f for f in (_git_out(repo, "diff", "HEAD", "--name-only") or "").splitlines()
                 if f.endswith(".py")}
    files = sorted(f for f in set(then_blobs) | dirty_now
                   if f not in skip and not f.startswith(f"{SHIP_DIR}/"))
    now_blobs = _hash_objects(repo, [f for f in files if (repo / f).is_file()])
    for name in files:
        current = now_blobs.get(name, "deleted")
        if name in then_blobs:
            recorded = then_blobs[name]
        elif name in state.changed_files:
            found.append(Difference("diff", name, "uncommitted (not captured)",
                                    _blob_text(current), "changed at the run too, but the "
                                    "kernel had not imported it: its patch was not recorded"))
            continue
        else:
            committed = _git_out(repo, "rev-parse", "-q", "--verify", f"{then}:{name}") \
                if then else None
            recorded = committed.strip() if committed else "deleted"
            if _same(recorded, current):
                continue
            recorded = "clean"
        if not _same(recorded, current):
            found.append(Difference("diff", name, _blob_text(recorded), _blob_text(current),
                                    "the file's content differs from the run's"))
    return found


def _same(a: str, b: str) -> bool:
    """Two states or git blob ids (either may be abbreviated) that name the same content."""
    blobs = a not in ("clean", "deleted") and b not in ("clean", "deleted")
    return a == b or (blobs and (a.startswith(b) or b.startswith(a)))


def _blob_text(state: str) -> str:
    return state if state in ("clean", "deleted") else f"uncommitted (blob {state[:10]})"


def _patch_blobs(diff: str) -> dict[str, str]:
    """File -> the git blob id of its content when the run was made, from the patch's
    ``index OLD..NEW`` lines ("deleted" for a file the patch removes)."""
    blobs: dict[str, str] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            current = line.rsplit(" b/", 1)[-1]
        elif line.startswith("index ") and current is not None:
            new = line.split()[1].split("..")[-1]
            blobs[current] = "deleted" if set(new) == {"0"} else new
            current = None
    return blobs


def _hash_objects(repo: Path, files: list[str]) -> dict[str, str]:
    if not files:
        return {}
    out = _git_out(repo, "hash-object", "--", *files)
    return dict(zip(files, out.splitlines(), strict=False)) if out else {}


def _code_cells(notebook: dict[str, Any]) -> list[str]:
    cells = []
    for cell in notebook.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and "injected-parameters" not in tags:
            text = cell.get("source", "")
            cells.append((text if isinstance(text, str) else "".join(text)).strip())
    return cells


def _notebook_code(workspace: Workspace, run: RecordedRun, notebook: Path | None,
                   notes: list[str]) -> list[Difference]:
    if notebook is None:
        return []
    name = _relative(notebook, workspace.root)
    if not notebook.is_file():
        return [Difference("diff", name, "present", None, "the notebook is gone")]
    if run.snapshot is None:
        notes.append("the run has no notebook snapshot: the notebook's code is compared "
                     "through git only.")
        return []
    try:
        now = _code_cells(json.loads(notebook.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return [Difference("diff", name, "readable", "unreadable")]
    then = _code_cells(run.snapshot)
    if then == now:
        return []
    changed: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=then, b=now).get_opcodes():
        if tag == "delete":
            changed.append(f"the run's cell {i1 + 1}" + (f"-{i2}" if i2 > i1 + 1 else "")
                           + " removed")
        elif tag != "equal":
            changed += [str(j) for j in range(j1 + 1, j2 + 1)]
    return [Difference("diff", name, f"{len(then)} code cells", f"{len(now)} code cells",
                       "code cells changed (numbered as now): "
                       + ", ".join(changed[:MAX_NAMED_FILES]))]


def _packages(run: RecordedRun, notes: list[str]) -> list[Difference]:
    if run.lock is None:
        notes.append(f"the run has no lock file ({LOCK_PATH}): packages are not compared and "
                     "the re-run uses the current environment as it is.")
        return []
    _, locked = parse_lock(run.lock)
    now = installed_packages()
    local = local_distributions()
    found = []
    for name in sorted(set(locked) | set(now)):
        if locked.get(name) != now.get(name):
            note = None
            if name in local:
                note = "installed from a folder: its code is compared through git, not reinstalled"
            elif name not in locked:
                note = "not in the lock: stays importable in the fresh environment"
            found.append(Difference("package", name, locked.get(name), now.get(name), note))
    return found


def recorded_python(run: RecordedRun) -> str | None:
    """The Python version the run's kernel had."""
    if run.tags.get("ship.env.python"):
        return run.tags["ship.env.python"]
    if run.record is not None and run.record.environment is not None:
        return run.record.environment.python or None
    return parse_lock(run.lock)[0] if run.lock else None


def _python(run: RecordedRun) -> list[Difference]:
    then, now = recorded_python(run), platform.python_version()
    if then is None or then == now:
        return []
    return [Difference("python", "python", then, now,
                       "the fresh environment runs this Python: a venv cannot change it")]


def _kernelspec(notebook: dict[str, Any]) -> tuple[str | None, str | None]:
    spec = notebook.get("metadata", {}).get("kernelspec", {}) or {}
    return spec.get("name"), spec.get("language")


def _kernel(run: RecordedRun, notebook: Path | None) -> list[Difference]:
    if run.snapshot is None or notebook is None or not notebook.is_file():
        return []
    then_name, then_language = _kernelspec(run.snapshot)
    try:
        now_name, now_language = _kernelspec(json.loads(notebook.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []
    found = []
    if then_language and now_language and then_language != now_language:
        found.append(Difference("kernel", "language", then_language, now_language))
    if then_name != now_name:
        found.append(Difference("kernel", "kernelspec", then_name, now_name))
    elif then_name and not _kernel_installed(then_name):
        found.append(Difference("kernel", "kernelspec", then_name, None,
                                "not installed now; the re-run uses a kernel of its own"))
    return found


def _kernel_installed(name: str) -> bool:
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        return name in KernelSpecManager().find_kernel_specs()
    except Exception:  # noqa: BLE001 - a broken kernelspec folder: say "not installed"
        return False


def _data(workspace: Workspace, run: RecordedRun, notes: list[str]) -> list[Difference]:
    files = _data_files(run)
    if not files:
        if run.data:
            notes.append(f"no data file was recorded; the {len(run.data)} in-memory "
                         "fingerprint(s) are compared after the re-run.")
        return []
    found = []
    for recorded in files:
        path = Path(recorded.resolved)
        if not path.exists() and run.record is not None:
            with contextlib.suppress(ValueError):
                path = workspace.root / path.relative_to(run.record.workspace)
        if not path.is_file():
            found.append(Difference("data", recorded.path, recorded.digest, None,
                                    f"missing: {path}"))
            continue
        current = datafiles.digest_file(path, label=recorded.path)
        if current.size != recorded.size or (recorded.digest is not None
                                             and current.digest != recorded.digest):
            found.append(Difference("data", recorded.path, recorded.digest, current.digest,
                                    f"{recorded.size} bytes then, {current.size} now"))
    return found


# -- parameters ------------------------------------------------------------------------------
def notebook_defaults(notebook: Path | None) -> dict[str, Any]:
    """The literal values the notebook's `parameters` cell assigns now."""
    if notebook is None or not notebook.is_file():
        return {}
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return {}
    defaults: dict[str, Any] = {}
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
                "tags", []):
            text = cell.get("source", "")
            defaults.update(source.analyse(text if isinstance(text, str)
                                           else "".join(text)).params)
    return defaults


def rerun_parameters(run: RecordedRun, notebook: Path | None) -> dict[str, Any]:
    """What papermill passes: the run's papermill parameters, and the recorded value of
    every other name the notebook's `parameters` cell assigns (its default may have
    changed since)."""
    defaults = notebook_defaults(notebook)
    texts = {n: run.params[n] for n in defaults if n in run.params and n not in _cell_set(run)}
    texts.update(run.papermill_params)
    # A recorded value is text (MLflow params are): a string default keeps it as text.
    return {n: t if isinstance(defaults.get(n), str) else parse_value(t)
            for n, t in texts.items()}


def _cell_set(run: RecordedRun) -> set[str]:
    """Names the tracked cell itself assigns a literal: its value, not the notebook's."""
    return set(source.analyse(datafiles.python_lines(run.cell)).params) if run.cell else set()


def parameter_differences(run: RecordedRun, notebook: Path | None) -> list[Difference]:
    found = []
    injected = run.papermill_params
    for name, default in notebook_defaults(notebook).items():
        if name in injected or name in _cell_set(run):
            continue
        now = source.format_param(default)
        if name not in run.params:
            found.append(Difference("parameter", name, None, now,
                                    "new in the notebook: the re-run uses its default"))
        elif run.params[name] != now:
            found.append(Difference("parameter", name, run.params[name], now,
                                    "the notebook's default changed: the re-run passes the "
                                    "recorded value"))
    return found
