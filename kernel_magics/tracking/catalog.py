"""Runs as the sidebar lists them: MLflow's runs plus records still in the spool.

The typed answers of the REST API's listing endpoints. A run is addressed by one
id: its MLflow run id once the writer created it, else its spool record id (both
resolve with ``detail.locate``). Pending records sort by time like any run, marked
``written: false``, so a cell's run shows the moment the cell finishes.

    list_runs(workspace, notebooks, experiment, limit)  -> RunPage   newest first
    listing_version(workspace)                          -> str | None  changes when runs may have
    list_experiments(workspace)                         -> [ExperimentInfo]

One run in full (detail, artifacts, notebook snapshot) is in detail.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..workspace import Workspace
from .mlflow_store import reader_for
from .record import RunRecord
from .spool import Spool, WriteState
from .stored import RunQuery, StoredRun
from .writer import run_url

# Tags the list needs; the detail reads them all.
LIST_TAGS = ("ship.notebook", "ship.record_id", "ship.error", "ship.end_reason",
             "ship.cost.currency", "ship.cost.basis")
COST_METRICS = {"ship.wall_s": "wall_s", "ship.cpu_s": "cpu_s", "ship.gpu_s": "gpu_s",
                "ship.peak_memory_mb": "peak_memory_mb", "ship.cost_estimate": "amount"}
MAX_LIMIT = 5000
# File times tick coarsely (a few ms): a file changed this recently may change again
# without its time moving, so its version is not trusted yet (git's "racy" rule).
RACY_S = 1.0


@dataclass
class DataInput:
    """A data fingerprint: a full-content digest and the shape of what the cell read."""

    name: str
    digest: str
    shape: list[int] | None = None
    context: str | None = None


@dataclass
class RunCost:
    """Resources measured in the kernel and their price (always an estimate)."""

    wall_s: float | None = None
    cpu_s: float | None = None
    gpu_s: float | None = None
    peak_memory_mb: float | None = None
    amount: float | None = None
    currency: str | None = None
    basis: str | None = None
    estimated: bool = True


@dataclass
class RunRow:
    """One run in a list: enough to show and to compare at a glance."""

    id: str
    run_id: str | None
    record_id: str | None
    name: str
    experiment: str
    experiment_id: str | None
    status: str
    start_time_ms: int
    end_time_ms: int | None
    # False while the record waits in the spool for the background writer.
    written: bool
    notebook: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    data: list[DataInput] = field(default_factory=list)
    cost: RunCost | None = None
    error: str | None = None
    # Why a pending record is not written yet (the writer's last error), if it tried.
    pending_reason: str | None = None
    url: str | None = None


@dataclass
class RunPage:
    """``GET /ship/api/runs``: newest first; ``total`` counts every match (None: unknown)."""

    runs: list[RunRow]
    total: int | None
    truncated: bool
    workspace: str
    notebook: str | None
    experiment: str | None
    ui_url: str | None

    def to_json(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies every value: 40 ms for 1,000 rows; this is 2 ms.
        page = dict(vars(self))
        page["runs"] = [_row_json(row) for row in self.runs]
        return page


def _row_json(row: RunRow) -> dict[str, Any]:
    out = dict(vars(row))
    out["data"] = [vars(d) for d in row.data]
    out["cost"] = vars(row.cost) if row.cost is not None else None
    return out


@dataclass
class ExperimentInfo:
    """An experiment with runs in MLflow, in the spool, or both."""

    experiment_id: str | None
    name: str
    run_count: int | None
    pending_count: int
    last_start_time_ms: int | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PendingRun:
    """A record still in the spool (the writer may have created its MLflow run already)."""

    record: RunRecord
    folder: Path
    state: WriteState


# -- listing ---------------------------------------------------------------------------
def notebook_spellings(*paths: Path) -> tuple[str, ...]:
    """Every string the ship.notebook tag may hold for these paths (as given, resolved)."""
    found: dict[str, None] = {}
    for path in paths:
        found[str(path)] = None
        found[os.path.realpath(path)] = None
    return tuple(found)


def list_runs(workspace: Workspace, notebooks: Sequence[str] = (), experiment: str | None = None,
              limit: int = 100) -> RunPage:
    """Runs of the notebook (any spelling in ``notebooks``; empty: all), newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.",
                              field="limit")
    ui_url = workspace.ui_url()
    wanted = set(notebooks) | {os.path.realpath(n) for n in notebooks}
    pending = [
        pending_row(p, ui_url) for p in pending_runs(workspace)
        if (not experiment or p.record.experiment == experiment)
        and (not wanted or _notebook_matches(p.record.notebook_path, wanted))
    ]
    query = RunQuery(notebooks=tuple(notebooks), experiment=experiment, limit=limit,
                     tags=LIST_TAGS)
    result = reader_for(workspace.tracking_uri()).search(query)
    in_spool = {row.run_id for row in pending if row.run_id}
    stored = [stored_row(run, ui_url) for run in result.runs if run.run_id not in in_spool]
    rows = sorted(pending + stored, key=lambda r: (-r.start_time_ms, r.id))
    total = None if result.total is None else \
        result.total + len(pending) - (len(result.runs) - len(stored))
    return RunPage(runs=rows[:limit], total=total,
                   truncated=len(rows) > limit or (total is not None and total > limit),
                   workspace=str(workspace.root), notebook=notebooks[0] if notebooks else None,
                   experiment=experiment, ui_url=ui_url)


def listing_version(workspace: Workspace) -> str | None:
    """A token that changes whenever the runs a listing shows may have changed.

    Built from file metadata only (the sqlite store and its journals, the spool's
    pending records), so a polling client learns "nothing new" in well under a
    millisecond. None when it cannot be known cheaply (a remote store) or when a
    file changed too recently to trust its time.
    """
    uri = workspace.tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):])
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")]
    spool = Spool(workspace.spool_dir)
    for record_id in spool.pending():
        folder = spool.record_dir(record_id)
        files += [folder / "record.json", folder / "state.json"]
    parts = [uri, str(workspace.ui_url())]
    newest = 0
    for path in files:
        try:
            st = path.stat()
        except OSError:
            parts.append(f"{path.name}:-")
            continue
        newest = max(newest, st.st_mtime_ns)
        parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
    if time.time_ns() - newest < RACY_S * 1e9:
        return None
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def list_experiments(workspace: Workspace) -> list[ExperimentInfo]:
    """Active MLflow experiments, plus experiments that so far only have pending records."""
    pending_counts: dict[str, int] = {}
    pending_last: dict[str, int] = {}
    for run in pending_runs(workspace):
        name = run.record.experiment
        pending_counts[name] = pending_counts.get(name, 0) + 1
        pending_last[name] = max(pending_last.get(name, 0), run.record.start_time_ms)
    out = []
    for exp in reader_for(workspace.tracking_uri()).experiments():
        last = max(filter(None, [exp.last_start_time_ms, pending_last.pop(exp.name, None)]),
                   default=None)
        out.append(ExperimentInfo(experiment_id=exp.experiment_id, name=exp.name,
                                  run_count=exp.run_count,
                                  pending_count=pending_counts.pop(exp.name, 0),
                                  last_start_time_ms=last))
    out += [ExperimentInfo(experiment_id=None, name=name, run_count=0, pending_count=count,
                           last_start_time_ms=pending_last.get(name))
            for name, count in pending_counts.items()]
    return sorted(out, key=lambda e: (-(e.last_start_time_ms or 0), e.name))


def _notebook_matches(path: str | None, wanted: set[str]) -> bool:
    return path is not None and (path in wanted or os.path.realpath(path) in wanted)


def pending_runs(workspace: Workspace) -> list[PendingRun]:
    spool = Spool(workspace.spool_dir)
    found = []
    for record_id in spool.pending():
        try:
            record = spool.load(record_id)
            state = spool.load_state(record_id)
        except (FileNotFoundError, ValueError, TypeError):
            continue  # being written for the first time, or just moved to done/
        found.append(PendingRun(record=record, folder=spool.record_dir(record_id), state=state))
    return found


def pending_row(run: PendingRun, ui_url: str | None) -> RunRow:
    record, state = run.record, run.state
    cost = None
    if record.resources is not None or record.cost is not None:
        cost = RunCost(currency=record.cost.currency if record.cost else None,
                       basis=record.cost.basis if record.cost else None,
                       amount=record.cost.amount if record.cost else None)
        if record.resources is not None:
            res = record.resources
            cost.wall_s, cost.cpu_s, cost.gpu_s = res.wall_s, res.cpu_s, res.gpu_s
            cost.peak_memory_mb = round(res.peak_memory_bytes / 2**20, 3)
    return RunRow(id=state.run_id or record.record_id, run_id=state.run_id,
                  record_id=record.record_id, name=record.run_name,
                  experiment=record.experiment, experiment_id=None, status=record.status,
                  start_time_ms=record.start_time_ms, end_time_ms=record.end_time_ms,
                  written=False, notebook=record.notebook_path, params=dict(record.params),
                  metrics={k: _finite(v) for k, v in record.metrics.items()},
                  data=[DataInput(name=d.name, digest=d.digest, shape=list(d.shape),
                                  context="training") for d in record.data],
                  cost=cost, error=_first_line(record.error or record.end_reason),
                  pending_reason=state.last_error, url=None)


def stored_row(run: StoredRun, ui_url: str | None, cls: type[RunRow] = RunRow) -> Any:
    tags = run.tags
    cost = None
    if any(k in run.metrics for k in COST_METRICS):
        cost = RunCost(currency=tags.get("ship.cost.currency"), basis=tags.get("ship.cost.basis"))
        for key, attr in COST_METRICS.items():
            setattr(cost, attr, run.metrics.get(key))
    return cls(id=run.run_id, run_id=run.run_id, record_id=tags.get("ship.record_id"),
               name=run.name, experiment=run.experiment, experiment_id=run.experiment_id,
               status=run.status, start_time_ms=run.start_time_ms, end_time_ms=run.end_time_ms,
               written=True, notebook=tags.get("ship.notebook"), params=dict(run.params),
               metrics={k: v for k, v in run.metrics.items() if not k.startswith("ship.")},
               data=[DataInput(name=d.name, digest=d.digest, shape=d.shape, context=d.context)
                     for d in run.datasets],
               cost=cost, error=_first_line(tags.get("ship.error") or tags.get("ship.end_reason")),
               url=run_url(ui_url, run.experiment_id, run.run_id))


def _finite(value: float) -> float | None:
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # A traceback's last line names the exception; a plain message is its first.
    line = lines[-1] if text.lstrip().startswith("Traceback") else lines[0] if lines else text
    return line[:300]




def filter_runs(rows: list[RunRow], *, where: tuple[str, ...] = (),
                sort: str | None = None) -> list[RunRow]:
    """``ship runs --where KEY=VALUE --sort [-]KEY``: runs whose params (or status) match,
    ordered by a metric or param (numbers as numbers; runs without it last)."""
    from ..errors import ValidationError

    for condition in where:
        key, sep, value = condition.partition("=")
        if not sep or not key:
            raise ValidationError(f"--where {condition!r} is not KEY=VALUE; e.g. --where lr=0.1",
                                  field="where")
        rows = [r for r in rows if (r.status if key == "status" else r.params.get(key)) == value]
    if sort:
        key = sort.lstrip("-")
        descending = sort.startswith("-")

        def value_of(row: RunRow) -> float | str | None:
            value: Any = row.metrics.get(key, row.params.get(key))
            try:
                return float(value) if value is not None else None
            except ValueError:
                return str(value)

        present = [r for r in rows if value_of(r) is not None]
        missing = [r for r in rows if value_of(r) is None]
        present.sort(key=lambda r: (isinstance(value_of(r), str), value_of(r)),
                     reverse=descending)
        rows = present + missing
    return rows
