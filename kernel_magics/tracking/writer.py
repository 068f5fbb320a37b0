"""Writes spooled run records to MLflow. Runs in the writer process or `ship sync`.

One record becomes one MLflow run in a fixed order of calls; the run id is
saved to the record's state file right after `create_run`, so a retry after a
crash or an outage resumes the same run instead of creating a duplicate. Only
when every call succeeded does the record leave the spool.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..serving.state import STATE_DIR
from ..workspace import slug
from .local_store import mlflow_client
from .metrics import read_steps
from .record import (
    ARTIFACT_PATHS,
    MODEL_DIR,
    PROFILES_DIR,
    RUN_PROFILES_PATH,
    STEPS_FILE,
    RunRecord,
    WrittenRun,
)
from .serve_state import RUN_STATE_PATH
from .spool import Spool, WriteState

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The spool retries a failed record with its own backoff and loses nothing. MLflow's own
# HTTP retries (7, exponential: about 4 minutes per call to a server that is down) would
# only hold `ship sync` up and keep the writer from stopping when `exclusive()` asks it to.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")

MAX_BACKOFF_S = 60.0
CRASH_ENV = "SHIP_WRITER_CRASH_AT"
KERNEL_DIED = "the kernel exited before the cell finished (crash, restart or shutdown)"


def run_url(ui_url: str | None, experiment_id: str, run_id: str) -> str | None:
    if not ui_url:
        return None
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def system_tags(record: RunRecord) -> dict[str, str]:
    """MLflow's own tags (so its UI shows the notebook and commit) plus Ship's."""
    tags: dict[str, str] = {
        "mlflow.source.type": "NOTEBOOK",
        "ship.record_id": record.record_id,
        "ship.version": record.ship_version,
        "ship.workspace": record.workspace,
    }
    if record.notebook_path:
        tags["mlflow.source.name"] = record.notebook_path
        tags["ship.notebook"] = record.notebook_path
    if record.execution_count is not None:
        tags["ship.execution_count"] = str(record.execution_count)
    if record.batch_id:
        tags["ship.batch_id"] = record.batch_id
    if record.end_reason:
        tags["ship.end_reason"] = record.end_reason
    if record.error:
        tags["ship.error"] = record.error[:5000]
    git = record.git
    if git is not None:
        if git.commit:
            tags["mlflow.source.git.commit"] = git.commit
        if git.branch:
            tags["mlflow.source.git.branch"] = git.branch
        if git.repo_url:
            tags["mlflow.source.git.repoURL"] = git.repo_url
        if git.root:
            tags["ship.git.dirty"] = str(git.dirty).lower()
    env = record.environment
    if env is not None:
        tags["ship.env.python"] = env.python
        tags["ship.env.platform"] = env.platform
        tags["ship.env.lock_digest"] = env.lock_digest
        tags["ship.env.gpus"] = ", ".join(env.gpus) or "none"
    if record.cost is not None:
        tags["ship.cost.currency"] = record.cost.currency
        tags["ship.cost.basis"] = record.cost.basis
    if record.model is not None:
        tags["ship.model.variable"] = record.model.variable
        tags["ship.model.class"] = record.model.class_name
    tags.update(record.tags)
    return tags


def resource_metrics(record: RunRecord) -> dict[str, float]:
    """Cost and resource figures, logged as metrics so runs compare on them."""
    out: dict[str, float] = {}
    if record.resources is not None:
        r = record.resources
        out.update({"ship.wall_s": r.wall_s, "ship.cpu_s": r.cpu_s, "ship.gpu_s": r.gpu_s,
                    "ship.peak_memory_mb": round(r.peak_memory_bytes / 2**20, 3)})
    if record.cost is not None:
        out["ship.cost_estimate"] = record.cost.amount
    return out


class RecordWriter:
    """Writes records from one spool, one MLflow client per tracking URI."""

    def __init__(self, spool: Spool, ui_url: Callable[[RunRecord], str | None] | None = None):
        self.spool = spool
        self._clients: dict[str, MlflowClient] = {}
        self._ui_url = ui_url or _ui_url_for

    def client(self, uri: str) -> MlflowClient:
        if uri not in self._clients:

            self._clients[uri] = mlflow_client(uri)
        return self._clients[uri]

    def write(self, record_id: str) -> WrittenRun:
        """Write one record; raises on failure after saving the attempt in its state."""
        state = self.spool.load_state(record_id)
        try:
            written = self._write(record_id, state)
        except Exception as exc:
            state.attempts += 1
            state.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            state.next_attempt_at = time.time() + min(2.0 ** state.attempts, MAX_BACKOFF_S)
            self.spool.save_state(record_id, state)
            raise
        self.spool.mark_done(written)
        return written

    def _write(self, record_id: str, state: WriteState) -> WrittenRun:
        from mlflow.entities import Metric, Param, RunTag

        record = self.spool.load(record_id)
        folder = self.spool.record_dir(record_id)
        if record.status == "RUNNING":
            record.status = "FAILED"
            record.end_reason = KERNEL_DIED
            steps = folder / STEPS_FILE
            last = steps.stat().st_mtime if steps.exists() else record.start_time_ms / 1000
            record.end_time_ms = int(last * 1000)
            self.spool.save_record(record)
        elif record.completing:  # the kernel died while capturing git and the files
            record.tags["ship.capture"] = ("partial: the kernel exited before git and the "
                                           "code files were captured; params, metrics and "
                                           "status are complete")
        client = self.client(record.tracking_uri)
        experiment_id = self._experiment_id(client, record)
        run_id = state.run_id
        if run_id is not None and not _run_exists(client, run_id):
            run_id = None
        if run_id is None:
            # A writer killed between create_run and saving its id left a run tagged
            # with this record: resume it instead of making a duplicate.
            run_id = _run_of_record(client, experiment_id, record.record_id)
        if run_id is None:
            run = client.create_run(experiment_id, start_time=record.start_time_ms,
                                    tags={"ship.record_id": record.record_id},
                                    run_name=record.run_name)
            run_id = run.info.run_id
            crash_point("run_created")
        if state.run_id != run_id:
            state.run_id = run_id
            self.spool.save_state(record_id, state)
        crash_point("run_saved")
        end_ms = record.end_time_ms or int(time.time() * 1000)
        params = [Param(k, v) for k, v in record.params.items()]
        series = [Metric(key, value, ts, step)
                  for ts, step, key, value in read_steps(folder / STEPS_FILE)]
        logged = {m.key for m in series}  # a ship.log series already ends at its last value
        metrics = [Metric(k, v, end_ms, 0) for k, v in
                   {**record.metrics, **resource_metrics(record)}.items() if k not in logged]
        metrics += series
        tags = [RunTag(k, v) for k, v in system_tags(record).items()]
        # MLflow caps one batch at 100 params, 100 tags and 1000 metrics.
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(tags), 100):
            client.log_batch(run_id, tags=tags[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        crash_point("logged")
        self._log_datasets(client, run_id, record)
        for name, artifact_dir in ARTIFACT_PATHS.items():
            path = folder / name
            if path.exists():
                client.log_artifact(run_id, str(path), artifact_dir)
        if (folder / STATE_DIR).is_dir():  # the serve cells' state (serve_state.py)
            client.log_artifacts(run_id, str(folder / STATE_DIR), RUN_STATE_PATH)
        if (folder / PROFILES_DIR).is_dir():
            client.log_artifacts(run_id, str(folder / PROFILES_DIR), RUN_PROFILES_PATH)
        record_path = folder / "ship-record.json"
        record_path.write_text(json.dumps(record.to_json(), indent=1, default=str),
                               encoding="utf-8")
        client.log_artifact(run_id, str(record_path), "ship")
        crash_point("artifacts")
        if record.model is not None:
            self._log_model(record, run_id, folder / MODEL_DIR)
            crash_point("model")
        client.set_terminated(run_id, record.status, end_time=end_ms)
        crash_point("terminated")
        return WrittenRun(record_id=record.record_id, run_id=run_id,
                          experiment_id=experiment_id, experiment=record.experiment,
                          run_name=record.run_name, status=record.status,
                          tracking_uri=record.tracking_uri,
                          url=run_url(self._ui_url(record), experiment_id, run_id),
                          written_at_ms=int(time.time() * 1000), batch_id=record.batch_id)

    def _experiment_id(self, client: MlflowClient, record: RunRecord) -> str:
        existing = client.get_experiment_by_name(record.experiment)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                client.restore_experiment(existing.experiment_id)
            return str(existing.experiment_id)
        location = None
        local_db = f"sqlite:///{Path(record.workspace) / '.ship' / 'mlflow.db'}"
        if record.tracking_uri == local_db:
            folder = Path(record.workspace) / ".ship" / "artifacts" / slug(record.experiment)
            location = folder.as_uri()
        try:
            return str(client.create_experiment(record.experiment, artifact_location=location))
        except Exception:
            # Another writer created it in the meantime.
            again = client.get_experiment_by_name(record.experiment)
            if again is None:
                raise
            return str(again.experiment_id)

    def _log_datasets(self, client: MlflowClient, run_id: str, record: RunRecord) -> None:
        if not record.data:
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = []
        for fp in record.data:
            schema: dict[str, Any]
            if fp.kind == "pandas" and len(fp.shape) == 2:
                schema = {"mlflow_colspec": [{"name": n, "type": t} for n, t in fp.schema.items()]}
            else:
                schema = {"mlflow_tensorspec": {"shape": json.dumps(fp.shape), **fp.schema}}
            dataset = Dataset(
                name=fp.name, digest=fp.digest, source_type="code",
                source=json.dumps({"variable": fp.name, "notebook": record.notebook_path}),
                schema=json.dumps(schema),
                profile=json.dumps({"shape": fp.shape, "nbytes": fp.nbytes,
                                    "fingerprint": f"xxh3-128 over all content ({fp.kind})"}))
            inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context",
                                                               "training")]))
        client.log_inputs(run_id, datasets=inputs)

    def _log_model(self, record: RunRecord, run_id: str, folder: Path) -> None:
        import mlflow

        from .models import log_model

        assert record.model is not None
        mlflow.set_tracking_uri(record.tracking_uri)
        with mlflow.start_run(run_id=run_id):
            uri = log_model(record.model, folder)
            mlflow.set_tag("ship.model.uri", uri)


def crash_point(step: str) -> None:
    """Fault injection for the tests: ``SHIP_WRITER_CRASH_AT=step`` kills the writer
    right after that step, as a SIGKILL would (no cleanup). Steps, in order: run_created,
    run_saved, logged, artifacts, model, terminated."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(137)


def _run_of_record(client: MlflowClient, experiment_id: str, record_id: str) -> str | None:
    """The run an earlier attempt created for this record (the oldest, if a writer of an
    older Ship made several: the others are deleted, as duplicates)."""
    found = client.search_runs([experiment_id],
                               filter_string=f"tags.`ship.record_id` = '{record_id}'",
                               order_by=["attributes.start_time ASC"])
    if not found:
        return None
    for duplicate in found[1:]:
        client.delete_run(duplicate.info.run_id)
    return str(found[0].info.run_id)


def _run_exists(client: MlflowClient, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
        return True
    except MlflowException:
        return False


def _ui_url_for(record: RunRecord) -> str | None:
    from ..workspace import find_workspace

    ws = find_workspace(Path(record.workspace))
    if record.tracking_uri != ws.tracking_uri() and record.tracking_uri.startswith("http"):
        return record.tracking_uri
    return ws.ui_url()
