"""One run in full: found by id in the spool or MLflow, its artifacts, its notebook snapshot.

    locate(workspace, id)             -> PendingRun | StoredRun  (MLflow run id or record id)
    read_artifact(workspace, run, p)  -> bytes | None  (spool folder, local file or download)
    run_detail(workspace, run)        -> RunDetail  (the row, tags, environment, git, cell)
    get_run(workspace, id)            -> RunDetail
    notebook_snapshot(workspace, id)  -> NotebookSnapshot
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import NotFoundError
from ..workspace import Workspace
from .catalog import PendingRun, RunRow, pending_row, pending_runs, stored_row
from .mlflow_store import reader_for
from .record import ARTIFACT_PATHS, EnvironmentChange, RunRecord
from .spool import Spool
from .stored import StoredRun

MAX_ARTIFACT_BYTES = 64 * 2**20
SNAPSHOT_PATHS = ("code/notebook.ipynb", "code/executed.ipynb")

Located = PendingRun | StoredRun


@dataclass
class EnvironmentInfo:
    """Interpreter and packages; ``change`` is the difference from the experiment's
    previous run, as captured when the cell ran."""

    python: str | None = None
    platform: str | None = None
    gpus: str | None = None
    lock_digest: str | None = None
    package_count: int | None = None
    change: EnvironmentChange | None = None


@dataclass
class GitInfo:
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    repo_url: str | None = None


@dataclass
class RunDetail(RunRow):
    """``GET /ship/api/runs/{id}``: the row plus tags, environment, git and the cell."""

    tags: dict[str, str] = field(default_factory=dict)
    artifact_uri: str | None = None
    environment: EnvironmentInfo | None = None
    git: GitInfo | None = None
    cell_source: str | None = None
    has_snapshot: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class NotebookSnapshot:
    """The notebook as saved when the run's cell ran (nbformat JSON)."""

    id: str
    run_id: str | None
    run_name: str
    name: str
    content: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- one run ---------------------------------------------------------------------------
def locate(workspace: Workspace, run_id: str) -> Located:
    """The run with this MLflow run id or spool record id."""
    for run in pending_runs(workspace):
        if run_id in (run.record.record_id, run.state.run_id):
            return run
    written = Spool(workspace.spool_dir).written(run_id)
    stored = reader_for(workspace.tracking_uri()).get(written.run_id if written else run_id)
    if stored is None:
        raise NotFoundError("run", run_id, hint=f"No such run in {workspace.tracking_uri()} "
                            f"or in the spool of {workspace.root}.")
    return stored


def read_artifact(workspace: Workspace, run: Located, path: str) -> bytes | None:
    """The bytes of an artifact such as ``code/cell.py``, or None when the run has none."""
    if isinstance(run, PendingRun):
        folder, name = os.path.split(path)
        if ARTIFACT_PATHS.get(name) != folder:
            return None
        return _read_file(run.folder / name)
    local = _local_artifact_dir(run.artifact_uri)
    if local is not None:
        return _read_file(local / path)
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="ship-artifact-") as tmp:
        try:
            fetched = download_artifacts(artifact_uri=f"{run.artifact_uri}/{path}",
                                         dst_path=tmp, tracking_uri=workspace.tracking_uri())
        except (MlflowException, OSError):
            return None
        return _read_file(Path(fetched))


def _local_artifact_dir(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def _read_file(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def run_detail(workspace: Workspace, run: Located) -> RunDetail:
    """Everything the panel shows about one run."""
    cell = read_artifact(workspace, run, "code/cell.py")
    cell_source = cell.decode("utf-8", errors="replace") if cell is not None else None
    if isinstance(run, PendingRun):
        row = pending_row(run, workspace.ui_url())
        record: RunRecord | None = run.record
        detail = RunDetail(**{f.name: getattr(row, f.name) for f in dataclasses.fields(RunRow)},
                           tags=dict(run.record.tags))
        has_snapshot = any((run.folder / os.path.basename(p)).is_file() for p in SNAPSHOT_PATHS)
        git = run.record.git
        detail.git = GitInfo(commit=git.commit, branch=git.branch, dirty=git.dirty,
                             repo_url=git.repo_url) if git else None
    else:
        detail = stored_row(run, workspace.ui_url(), cls=RunDetail)
        detail.tags = dict(run.tags)
        detail.artifact_uri = run.artifact_uri
        record = _written_record(workspace, run)
        has_snapshot = _has_snapshot(workspace, run)
        tags = run.tags
        dirty = tags.get("ship.git.dirty")
        detail.git = GitInfo(commit=tags.get("mlflow.source.git.commit"),
                             branch=tags.get("mlflow.source.git.branch"),
                             dirty=None if dirty is None else dirty == "true",
                             repo_url=tags.get("mlflow.source.git.repoURL"))
    detail.environment = _environment(detail.tags, record)
    detail.cell_source = cell_source
    detail.has_snapshot = has_snapshot
    return detail


def get_run(workspace: Workspace, run_id: str) -> RunDetail:
    """``run_detail`` of the run with this id."""
    return run_detail(workspace, locate(workspace, run_id))


def _written_record(workspace: Workspace, run: StoredRun) -> RunRecord | None:
    """The final record: the spool keeps a copy; else the run's ship-record.json artifact."""
    record_id = run.tags.get("ship.record_id")
    if record_id:
        kept = Spool(workspace.spool_dir).written_record(record_id)
        if kept is not None:
            return kept
    raw = read_artifact(workspace, run, "ship/ship-record.json")
    if raw is None:
        return None
    try:
        return RunRecord.from_json(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _has_snapshot(workspace: Workspace, run: StoredRun) -> bool:
    local = _local_artifact_dir(run.artifact_uri)
    if local is not None:
        return any((local / p).is_file() for p in SNAPSHOT_PATHS)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        listed = MlflowClient(tracking_uri=workspace.tracking_uri()).list_artifacts(
            run.run_id, "code")
    except (MlflowException, OSError):
        return False
    return any(item.path in SNAPSHOT_PATHS for item in listed)


def _environment(tags: dict[str, str], record: RunRecord | None) -> EnvironmentInfo:
    env = record.environment if record is not None else None
    if env is not None:
        return EnvironmentInfo(python=env.python, platform=env.platform,
                               gpus=", ".join(env.gpus) or "none", lock_digest=env.lock_digest,
                               package_count=env.package_count, change=env.change)
    return EnvironmentInfo(python=tags.get("ship.env.python"),
                           platform=tags.get("ship.env.platform"),
                           gpus=tags.get("ship.env.gpus"),
                           lock_digest=tags.get("ship.env.lock_digest"))


def notebook_snapshot(workspace: Workspace, run_id: str) -> NotebookSnapshot:
    """The saved notebook captured with the run (``code/notebook.ipynb``)."""
    run = locate(workspace, run_id)
    for path in SNAPSHOT_PATHS:
        raw = read_artifact(workspace, run, path)
        if raw is not None:
            break
    else:
        raise NotFoundError("notebook snapshot of run", run_id,
                            hint="Runs capture the notebook only when it was saved to disk.")
    try:
        content = json.loads(raw)
    except ValueError as exc:
        raise NotFoundError("readable notebook snapshot of run", run_id) from exc
    if isinstance(run, PendingRun):
        notebook, name, real_id = run.record.notebook_path, run.record.run_name, run.state.run_id
    else:
        notebook, name, real_id = run.tags.get("ship.notebook"), run.name, run.run_id
    file_name = os.path.basename(notebook) if notebook else f"{name or run_id}.ipynb"
    return NotebookSnapshot(id=run_id, run_id=real_id, run_name=name, name=file_name,
                            content=content)
