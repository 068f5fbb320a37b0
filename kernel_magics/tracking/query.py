"""Reading runs back: what MLflow has, plus records still waiting in the spool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError
from ..workspace import Workspace
from .spool import Spool


@dataclass
class RunSummary:
    """One row of `ship runs`: a run in MLflow or a record still pending."""

    run_id: str | None
    run_name: str
    experiment: str
    status: str
    start_time_ms: int
    end_time_ms: int | None
    written: bool
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    notebook: str | None = None
    record_id: str | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.end_time_ms is None:
            return None
        return (self.end_time_ms - self.start_time_ms) / 1000


def pending_runs(workspace: Workspace, experiment: str | None = None) -> list[RunSummary]:
    """Records in the spool not yet in MLflow, newest first."""
    spool = Spool(workspace.spool_dir)
    rows = []
    for record_id in spool.pending():
        try:
            record = spool.load(record_id)
        except (FileNotFoundError, ValueError):
            continue
        if experiment and record.experiment != experiment:
            continue
        state = spool.load_state(record_id)
        rows.append(RunSummary(run_id=state.run_id, run_name=record.run_name,
                               experiment=record.experiment, status=record.status,
                               start_time_ms=record.start_time_ms,
                               end_time_ms=record.end_time_ms, written=False,
                               params=record.params, metrics=record.metrics,
                               notebook=record.notebook_path, record_id=record_id,
                               error=state.last_error))
    return sorted(rows, key=lambda r: r.start_time_ms, reverse=True)


def mlflow_runs(workspace: Workspace, experiment: str | None = None,
                limit: int = 100) -> list[RunSummary]:
    """Runs in the workspace's MLflow store, newest first."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise NotFoundError("experiment", experiment,
                                hint="`ship runs` without --experiment lists all of them.")
        experiments = {found.experiment_id: found.name}
    else:
        experiments = {e.experiment_id: e.name
                       for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)}
    if not experiments:
        return []
    runs = client.search_runs(list(experiments), max_results=limit,
                              order_by=["attributes.start_time DESC"])
    return [_from_mlflow(run, experiments) for run in runs]


def _from_mlflow(run: Any, experiments: dict[str, str]) -> RunSummary:
    tags = run.data.tags
    return RunSummary(run_id=run.info.run_id, run_name=run.info.run_name or "",
                      experiment=experiments.get(run.info.experiment_id, "?"),
                      status=run.info.status, start_time_ms=run.info.start_time,
                      end_time_ms=run.info.end_time, written=True,
                      params=dict(run.data.params),
                      metrics={k: v for k, v in run.data.metrics.items()
                               if not k.startswith("ship.")},
                      notebook=tags.get("ship.notebook"), record_id=tags.get("ship.record_id"),
                      error=tags.get("ship.error"))


def list_runs(workspace: Workspace, experiment: str | None = None,
              limit: int = 100) -> list[RunSummary]:
    """Pending records first, then MLflow's runs, newest first within each."""
    pending = pending_runs(workspace, experiment)
    written_ids = {p.run_id for p in pending if p.run_id}
    stored = [r for r in mlflow_runs(workspace, experiment, limit) if r.run_id not in written_ids]
    return (pending + stored)[:limit]
