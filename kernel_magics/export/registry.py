"""MLflow side of export: model versions with their figures, aliases, and the leaderboard.

Every export is a LoggedModel in the ONNX flavor (signature, input example, explicit
requirements), promoted to a registered model version linked to its run. Parity and
profile figures go on the version as `ship.*` tags (what `ship models` reads) and on the
run as `ship.export.*` metrics tied to the logged model, with step = the version number
so a run that exports several variants keeps each one's history.

Everything goes through an `MlflowClient` bound to the workspace's store. `mlflow.onnx.
log_model` is not used: it reads the process-wide tracking URI and active run, which in a
notebook belong to the user; the calls below are the ones it makes, with an explicit client.
The version's `source` is the logged model's artifact location rather than `models:/<id>`,
because the sqlite registry resolves `models:/` URIs through the process-wide URI too.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, TrackingError, ValidationError
from ..workspace import Workspace, slug
from .graph import OnnxGraph
from .holdout import Holdout, write_holdout

if TYPE_CHECKING:
    import numpy as np
    from mlflow.tracking import MlflowClient

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TAG_PREFIX = "ship."
METRIC_PREFIX = "ship.export."
REPORT_FILE = "ship-export.json"
ALIASES = ("champion", "challenger")


@dataclass
class RegisteredVersion:
    """Where an export landed in MLflow."""

    name: str
    version: str
    run_id: str
    model_id: str
    model_uri: str
    run_created: bool


@dataclass
class LeaderboardRow:
    """One model version in `ship models NAME`: accuracy, latency, size and cost side by side."""

    version: str
    aliases: list[str]
    created_ms: int
    precision: str | None
    exporter: str | None
    metric_name: str | None
    metric: float | None
    p50_ms: float | None
    p99_ms: float | None
    batch32_p50_ms: float | None
    size_bytes: int | None
    training_cost: float | None
    cost_currency: str | None
    parity: str
    parity_max_abs_error: float | None
    run_id: str | None
    # int8 versions: the accuracy change against fp32 ("points") or the error's ("relative").
    int8_change: float | None = None
    int8_change_unit: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The run that produced the version: its name and params, to tell versions apart.
    run_name: str | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelSummary:
    """One registered model in `ship models`."""

    name: str
    versions: int
    latest_version: str | None
    aliases: dict[str, str]
    updated_ms: int


@dataclass
class AliasChange:
    """An alias moved onto a version (from `previous`, if it pointed elsewhere)."""

    name: str
    alias: str
    version: str
    previous: str | None


def client_for(workspace: Workspace) -> MlflowClient:
    """A client on the workspace's tracking store (and registry, unless one is configured)."""
    from ..tracking.local_store import mlflow_client

    uri = workspace.tracking_uri()
    return mlflow_client(uri, os.environ.get("MLFLOW_REGISTRY_URI", "").strip() or uri)


def validate_name(name: str) -> str:
    """Registered-model names end up in `models:/NAME/VERSION` URIs and filter strings."""
    cleaned = name.strip()
    if not cleaned or any(c in cleaned for c in "/:'\"\\") or len(cleaned) > 200:
        raise ValidationError(f"{name!r} is not a usable model name.", field="name",
                              hint="Use letters, digits, '-', '_' or '.', e.g. --name digits-mlp.")
    return cleaned


def register(client: MlflowClient, workspace: Workspace, *, name: str, graph: OnnxGraph,
             example_input: Any, example_outputs: dict[str, np.ndarray],
             labels: dict[str, str], figures: dict[str, float], report: dict[str, Any],
             run_id: str | None, experiment: str,
             holdout: Holdout | None = None) -> RegisteredVersion:
    """Log `graph` as an ONNX model, register a version with tags, log figures on the run."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
    from mlflow.exceptions import MlflowException

    name = validate_name(name)
    created = run_id is None
    if run_id is None:
        run = client.create_run(ensure_experiment(client, workspace, experiment),
                                run_name=f"export-{slug(name)}",
                                tags={"ship.export.model": name, "mlflow.source.type": "LOCAL"})
    else:
        run = _get_run(client, run_id)
    run_id = str(run.info.run_id)
    model_id: str | None = None
    try:
        logged = client.create_logged_model(
            experiment_id=run.info.experiment_id, name=name, source_run_id=run_id,
            model_type="onnx", tags={k: v for k, v in labels.items() if k.startswith("export.")})
        model_id = str(logged.model_id)
        with tempfile.TemporaryDirectory(prefix="ship-export-") as tmp:
            path = _save_onnx(Path(tmp), graph, example_input, example_outputs, report,
                              logged.artifact_location, run_id, model_id)
            if holdout is not None:
                write_holdout(path, holdout)
            client.log_model_artifacts(model_id, str(path))
        client.finalize_logged_model(model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        tags = {TAG_PREFIX + k: v[:5000] for k, v in labels.items()}
        tags.update({TAG_PREFIX + k: _fmt(v) for k, v in figures.items()})
        version = client.create_model_version(name, source=logged.artifact_location,
                                              run_id=run_id, tags=tags, model_id=model_id)
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[
            Metric(METRIC_PREFIX + k, float(v), now, int(version.version), model_id=model_id)
            for k, v in figures.items()])
    except Exception as exc:
        if model_id is not None:
            _quietly(lambda: client.finalize_logged_model(model_id, LoggedModelStatus.FAILED))
        if created:
            _quietly(lambda: client.set_terminated(run_id, "FAILED"))
        if isinstance(exc, MlflowException):
            raise TrackingError(f"registering {name!r} in MLflow failed: {exc.message}") from exc
        raise
    if created:
        client.set_terminated(run_id, "FINISHED")
    return RegisteredVersion(name=name, version=str(version.version), run_id=run_id,
                             model_id=model_id, model_uri=f"models:/{name}/{version.version}",
                             run_created=created)


def _save_onnx(folder: Path, graph: OnnxGraph, example_input: Any,
               example_outputs: dict[str, np.ndarray], report: dict[str, Any],
               artifact_location: str, run_id: str, model_id: str) -> Path:
    import mlflow.onnx
    from mlflow.models import Model, infer_signature

    outputs: Any = (next(iter(example_outputs.values())) if len(example_outputs) == 1
                    else example_outputs)
    path = folder / "model"
    mlflow.onnx.save_model(
        graph.model, str(path),
        mlflow_model=Model(artifact_path=artifact_location, run_id=run_id, model_uuid=model_id,
                           model_id=model_id),
        signature=infer_signature(example_input, outputs), input_example=example_input,
        # Explicit requirements: inferring them loads the model in a subprocess (seconds).
        pip_requirements=[f"onnx=={metadata.version('onnx')}",
                          f"onnxruntime=={metadata.version('onnxruntime')}"],
        onnx_execution_providers=["CPUExecutionProvider"], save_as_external_data=False)
    # Written into the model folder directly: save_model's extra_files copies through an
    # artifact download with a progress bar on stderr.
    (path / REPORT_FILE).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return path


def ensure_experiment(client: MlflowClient, workspace: Workspace, name: str) -> str:
    """The experiment's id, created with artifacts under .ship/artifacts for the local store."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        return str(existing.experiment_id)
    location = None
    if workspace.uses_local_store():
        location = (workspace.artifacts_dir / slug(name)).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:
        again = client.get_experiment_by_name(name)  # created by another process meanwhile
        if again is None:
            raise
        return str(again.experiment_id)


def leaderboard(client: MlflowClient, name: str) -> list[LeaderboardRow]:
    """Every version of `name`, oldest first, with the figures Ship recorded on it."""
    model = _get_model(client, name)
    by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(str(version), []).append(str(alias))
    runs: dict[str, Any] = {}
    rows = []
    for mv in client.search_model_versions(f"name = '{model.name}'"):
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        cost, currency, run_name, params = None, None, None, {}
        if mv.run_id:
            if mv.run_id not in runs:
                runs[mv.run_id] = _run_or_none(client, mv.run_id)
            run = runs[mv.run_id]
            if run is not None:
                cost = run.data.metrics.get("ship.cost_estimate")
                currency = run.data.tags.get("ship.cost.currency")
                run_name = run.info.run_name
                params = {str(k): str(v) for k, v in run.data.params.items()}
        passed = tags.get("ship.parity.passed")
        rows.append(LeaderboardRow(
            version=str(mv.version), aliases=sorted(by_version.get(str(mv.version), [])),
            created_ms=int(mv.creation_timestamp or 0),
            precision=tags.get("ship.export.precision"), exporter=tags.get("ship.export.exporter"),
            metric_name=tags.get("ship.metric.name"), metric=_num(tags, "ship.metric.value"),
            p50_ms=_num(tags, "ship.latency.p50_ms"), p99_ms=_num(tags, "ship.latency.p99_ms"),
            batch32_p50_ms=_num(tags, "ship.latency.batch32_p50_ms"),
            size_bytes=_int(tags, "ship.size_bytes"), training_cost=cost, cost_currency=currency,
            parity="passed" if passed == "true" else ("failed" if passed else "not checked"),
            parity_max_abs_error=_num(tags, "ship.parity.max_abs_err"),
            run_id=str(mv.run_id) if mv.run_id else None, tags=tags,
            int8_change=_num(tags, "ship.quant.change"),
            int8_change_unit=tags.get("ship.quant.unit"), run_name=run_name, params=params))
    return sorted(rows, key=lambda r: int(r.version))


def find_identical(client: MlflowClient, name: str, digest: str) -> Any | None:
    """The version of ``name`` whose ONNX file has this sha256 (None: none has)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{validate_name(name)}'")
    except MlflowException:
        return None
    same = [v for v in versions if (v.tags or {}).get(TAG_PREFIX + "export.digest") == digest]
    return min(same, key=lambda v: int(v.version)) if same else None


REUSED_TAG = "ship.export.reused"


def mark_reused(client: MlflowClient, run_id: str, name: str, version: str) -> None:
    """Tag a run whose export matched an existing version byte for byte (none was made):
    ``ship.export.reused.NAME`` = that version."""
    _quietly(lambda: client.set_tag(run_id, f"{REUSED_TAG}.{name}", version))


def list_models(client: MlflowClient) -> list[ModelSummary]:
    """Registered models, most recently updated first."""
    out = []
    for model in client.search_registered_models():
        versions = [str(v.version) for v in client.search_model_versions(f"name = '{model.name}'")]
        out.append(ModelSummary(
            name=str(model.name), versions=len(versions),
            latest_version=max(versions, key=int) if versions else None,
            aliases={str(k): str(v) for k, v in (model.aliases or {}).items()},
            updated_ms=int(model.last_updated_timestamp or 0)))
    return sorted(out, key=lambda m: m.updated_ms, reverse=True)


def set_alias(client: MlflowClient, name: str, version: str, alias: str) -> AliasChange:
    """Point `alias` (champion, challenger, ...) at a version of `name`."""
    from mlflow.exceptions import MlflowException

    model = _get_model(client, name)
    try:
        client.get_model_version(model.name, str(version))
    except MlflowException:
        raise NotFoundError("model version", f"{name}/{version}",
                            hint=f"`ship models {name}` lists its versions.") from None
    previous = (model.aliases or {}).get(alias)
    try:
        client.set_registered_model_alias(model.name, alias, str(version))
    except MlflowException as exc:
        raise ValidationError(f"alias {alias!r} was refused: {exc.message}", field="alias",
                              hint=f"Use e.g. {' or '.join(ALIASES)}.") from exc
    return AliasChange(name=str(model.name), alias=alias, version=str(version),
                       previous=str(previous) if previous is not None else None)


def _get_model(client: MlflowClient, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(validate_name(name))
    except MlflowException:
        raise NotFoundError("model", name, hint="`ship models` lists registered models.") from None


def _get_run(client: MlflowClient, run_id: str) -> Any:
    run = _run_or_none(client, run_id)
    if run is None:
        raise NotFoundError("run", run_id, hint="`ship runs` lists runs and their ids.")
    return run


def _run_or_none(client: MlflowClient, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def _fmt(value: float) -> str:
    """Whole numbers (sizes, counts) exactly; others to six significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _num(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def _int(tags: dict[str, str], key: str) -> int | None:
    value = _num(tags, key)
    return int(value) if value is not None else None


def _quietly(call: Any) -> None:
    # Cleanup after a failure must not hide the failure.
    with contextlib.suppress(Exception):
        call()
