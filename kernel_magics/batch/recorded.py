"""A run read back for `ship reproduce`: its tags, metrics and the artifacts the checks need.

    load_run(workspace, "RUN")   an MLflow run id, a spool record id or a unique run name
    notebook_now(workspace, run) where its notebook is now

Artifacts read (all logged by tracking/writer.py): ``ship/ship-record.json``,
``environment/requirements.lock``, ``git/git.diff``, ``code/notebook.ipynb`` (else
``code/executed.ipynb``) and ``code/cell.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConflictError, NotFoundError, ValidationError
from ..tracking.catalog import MAX_LIMIT, PendingRun, list_runs
from ..tracking.detail import locate, read_artifact
from ..tracking.record import GitState, RunRecord
from ..tracking.spool import Spool, kernel_alive
from ..workspace import Workspace

LOCK_PATH = "environment/requirements.lock"
DIFF_PATH = "git/git.diff"
RECORD_PATH = "ship/ship-record.json"
SNAPSHOT_PATH = "code/notebook.ipynb"
EXECUTED_PATH = "code/executed.ipynb"
CELL_PATH = "code/cell.py"


@dataclass
class RecordedRun:
    """A run as recorded: its tags, metrics and the artifacts the checks need."""

    id: str
    name: str
    experiment: str
    status: str
    notebook: str | None
    metrics: dict[str, float | None]
    params: dict[str, str]
    data: dict[str, str]  # in-memory fingerprints: variable -> digest
    tags: dict[str, str] = field(default_factory=dict)
    record: RunRecord | None = None
    lock: str | None = None
    diff: str = ""
    snapshot: dict[str, Any] | None = None
    cell: str | None = None

    @property
    def papermill_params(self) -> dict[str, str]:
        return dict(self.record.papermill_params) if self.record else {}

    @property
    def git(self) -> GitState | None:
        return self.record.git if self.record else None


def load_run(workspace: Workspace, ref: str) -> RecordedRun:
    """The run with this MLflow run id, spool record id or (unique) run name."""
    located = _locate(workspace, ref)
    if isinstance(located, PendingRun):
        record = located.record
        if record.status == "RUNNING" and kernel_alive(record):
            raise ConflictError(f"run {ref!r} is still running; reproduce it once it finished.")
        run = RecordedRun(id=located.state.run_id or record.record_id, name=record.run_name,
                          experiment=record.experiment, status=record.status,
                          notebook=record.notebook_path, metrics=dict(record.metrics),
                          params=dict(record.params),
                          data={d.name: d.digest for d in record.data},
                          tags=dict(record.tags), record=record)
    else:
        tags = located.tags
        run = RecordedRun(id=located.run_id, name=located.name, experiment=located.experiment,
                          status=located.status, notebook=tags.get("ship.notebook"),
                          metrics={k: v for k, v in located.metrics.items()
                                   if not k.startswith("ship.")},
                          params=dict(located.params),
                          data={d.name: d.digest for d in located.datasets}, tags=dict(tags))
        run.record = _written_record(workspace, located, tags.get("ship.record_id"))
        if run.notebook is None and run.record is not None:
            run.notebook = run.record.notebook_path
    run.lock = _text(read_artifact(workspace, located, LOCK_PATH))
    run.diff = _text(read_artifact(workspace, located, DIFF_PATH)) or ""
    run.cell = _text(read_artifact(workspace, located, CELL_PATH))
    raw = read_artifact(workspace, located, SNAPSHOT_PATH) or \
        read_artifact(workspace, located, EXECUTED_PATH)
    try:
        run.snapshot = json.loads(raw) if raw else None
    except ValueError:
        run.snapshot = None
    return run


def _locate(workspace: Workspace, ref: str) -> Any:
    hint = ("`ship runs --json` lists each run's id; a run's name works too when no other "
            "run has it.")
    try:
        return locate(workspace, ref)
    except NotFoundError:
        pass
    named = [r for r in list_runs(workspace, limit=MAX_LIMIT).runs if r.name == ref]
    if len(named) > 1:
        raise ValidationError(f"{len(named)} runs are named {ref!r}; give one id: "
                              + ", ".join(r.id for r in named[:10]), field="run")
    if not named:
        raise NotFoundError("run", ref, hint=f"No run has that id or name in "
                                             f"{workspace.tracking_uri()}. {hint}")
    return locate(workspace, named[0].id)


def _written_record(workspace: Workspace, run: Any, record_id: str | None) -> RunRecord | None:
    if record_id:
        kept = Spool(workspace.spool_dir).written_record(record_id)
        if kept is not None:
            return kept
    raw = read_artifact(workspace, run, RECORD_PATH)
    try:
        return RunRecord.from_json(json.loads(raw)) if raw else None
    except (ValueError, TypeError):
        return None


def _text(raw: bytes | None) -> str | None:
    return raw.decode("utf-8", errors="replace") if raw is not None else None


def notebook_now(workspace: Workspace, run: RecordedRun) -> Path | None:
    """Where the run's notebook is now: its recorded path, else the same place relative to a
    workspace that moved."""
    if not run.notebook:
        return None
    path = Path(run.notebook)
    if path.is_file() or run.record is None:
        return path
    try:
        moved = workspace.root / path.relative_to(run.record.workspace)
    except ValueError:
        return path
    return moved if moved.is_file() else path
