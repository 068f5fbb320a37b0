"""`ship retrain NAME`: production data → challenger → gate → canary.

1. The champion is the service's release champion (else the version it serves); its
   bundle names the model version and the run that trained it, and that run names the
   notebook, its git commit and its parameters.
2. Production data (data.py): the labelled rows of the service's prediction log. Too few
   and nothing is trained. The newest share is held out for the gate; the rest is
   written as Parquet under ``.ship/retrain/NAME/<time>/`` and its path passed to the
   notebook as the papermill parameter ``ship_new_data`` (the notebook appends it to its
   own training data; the file stays, so the run can be reproduced).
3. The notebook runs with `ship run` (the champion's parameters, tracked), exports a
   model version like any run, and that version is built into the service's next bundle.
4. The gate (gate.py) scores champion and challenger on the recent rows and on the
   champion's historical holdout; its report is logged to MLflow with the challenger's
   run and appended to the loop's events.
5. A passing challenger goes out as a canary; the release gate (``ship serve NAME``)
   promotes or rolls it back.
"""

from __future__ import annotations

import ast
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotFoundError, ShipError, ValidationError
from ..services import service_folder
from ..workspace import Workspace
from . import events, gate
from .data import TARGET, service_production_data, split_recent
from .settings import LoopSettings

NEW_DATA = "ship_new_data"
Progress = Callable[[str], Any]


@dataclass(frozen=True)
class Version:
    """A service version and the model version and run behind it."""

    version: str
    model: str | None = None
    model_version: str | None = None
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "model": self.model,
                "model_version": self.model_version, "run_id": self.run_id}


@dataclass
class RetrainResult:
    """What `ship retrain` did; ``to_json`` is the `--json` document (DESIGN.md)."""

    service: str
    decision: str
    reason: str
    champion: Version | None = None
    challenger: Version | None = None
    checks: list[gate.Check] = field(default_factory=list)
    notebook: str | None = None
    output: str | None = None  # the executed notebook
    labelled_rows: int = 0
    training_rows: int = 0
    recent_rows: int = 0
    data: str | None = None  # the Parquet file given as ship_new_data
    skipped: dict[str, int] = field(default_factory=dict)
    canary: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "decision": self.decision, "reason": self.reason,
            "champion": self.champion.version if self.champion else None,
            "challenger": self.challenger.version if self.challenger else None,
            "checks": [c.to_json() for c in self.checks],
            "models": {"champion": self.champion.to_json() if self.champion else None,
                       "challenger": self.challenger.to_json() if self.challenger else None},
            "notebook": self.notebook, "output": self.output,
            "data": {"labelled_rows": self.labelled_rows, "training_rows": self.training_rows,
                     "recent_rows": self.recent_rows, "path": self.data,
                     "skipped": self.skipped},
            "canary": self.canary, "seconds": round(self.seconds, 1)}


def retrain(workspace: Workspace, name: str, *, notebook: Path | None = None,
            since: str | None = None, release: bool = True,
            settings: LoopSettings | None = None,
            progress: Progress | None = None) -> RetrainResult:
    """Retrain service ``name``'s model on its production data, gate it, release it."""
    started = time.monotonic()
    settings = settings or LoopSettings.from_workspace(workspace)
    say = progress or (lambda _text: None)
    try:
        result = _retrain(workspace, name, notebook, since, release, settings, say)
    except ShipError as exc:
        events.record(workspace, name, "retrain", f"{gate.FAILED}: {exc}",
                      decision=gate.FAILED)
        raise
    result.seconds = time.monotonic() - started
    details = {k: v for k, v in result.to_json().items() if k not in ("service", "reason")}
    events.record(workspace, name, "retrain", f"{result.decision}: {result.reason}", **details)
    return result


def _retrain(workspace: Workspace, name: str, notebook: Path | None, since: str | None,
             release: bool, settings: LoopSettings, say: Progress) -> RetrainResult:
    if not any((workspace.services_dir / name).glob("*/ship.yaml")):
        return _first_model(workspace, name, notebook, say)
    folder = service_folder(workspace, name)
    champion = _champion(workspace, name)
    source = _source(workspace, champion, notebook)
    _check_parameters(source.notebook)
    say(f"production data of {name} (labelled rows of its prediction log)")
    labelled = service_production_data(workspace, name, since=since)
    result = RetrainResult(service=name, decision=gate.TOO_LITTLE, reason="",
                           champion=champion, notebook=str(source.notebook),
                           labelled_rows=labelled.rows, skipped=labelled.skipped)
    if labelled.rows < settings.min_labelled_rows:
        result.reason = (f"{labelled.rows} labelled production rows, fewer than [loop] "
                         f"min_labelled_rows = {settings.min_labelled_rows}: send ground "
                         f"truth to POST /v2/models/{name}/feedback, then retrain")
        return result
    older, recent = split_recent(labelled.frame, settings.recent_share)
    result.training_rows, result.recent_rows = len(older), len(recent)
    data_dir = workspace.ship_dir / "retrain" / name / datetime.now(UTC).strftime(
        "%Y%m%dT%H%M%SZ")
    data_dir.mkdir(parents=True, exist_ok=True)
    older.to_parquet(data_dir / "production.parquet", index=False)
    recent.to_parquet(data_dir / "recent.parquet", index=False)
    result.data = str(data_dir / "production.parquet")

    say(f"training: ship run {source.notebook} ({len(older)} production rows as "
        f"{NEW_DATA}; the newest {len(recent)} held out for the gate)")
    trained = _train(workspace, source, {**source.parameters, NEW_DATA: result.data})
    result.output = trained.output
    if trained.error is not None:
        result.decision, result.reason = gate.FAILED, trained.error
        return result
    challenger_model = _challenger_version(workspace, champion, trained.run_ids)
    if challenger_model is None:
        result.decision = gate.REJECTED
        result.reason = (f"the retrained model is the champion's exactly (its export matched "
                         f"model {champion.model} version {champion.model_version} byte for "
                         "byte): nothing to gain; does the notebook use ship_new_data?")
        return result
    say(f"build: model {challenger_model.name} version {challenger_model.version} → service "
        f"{name}")
    built = _build(workspace, name, source.notebook, challenger_model)
    result.challenger = Version(built.version, built.model_name, built.model_version,
                                built.run_id)

    say("gate: champion vs challenger on the recent rows and the holdout")
    result.checks, disagreement = judge(workspace, folder / champion.version,
                                        folder / built.version, champion, recent, settings)
    result.decision = gate.decide(result.checks, settings)
    result.reason = "; ".join(c.reason for c in result.checks)
    _log_gate(workspace, result)
    if result.decision == gate.CANARY:
        if release:
            result.canary = _release(workspace, name, built.version, settings, disagreement)
        else:
            result.decision = gate.PASSED
    return result


def judge(workspace: Workspace, champion_dir: Path, challenger_dir: Path,
          champion: Version, recent: Any, settings: LoopSettings
          ) -> tuple[list[gate.Check], float]:
    """The gate's two checks for two built versions (recent rows: raw features and
    ``target``), and the share of recent rows on which their predictions differ."""
    from ..export.holdout import load_holdout
    from .scoring import predict_holdout, predict_rows

    schema = _bundle(champion_dir).schema
    metric = settings.metric if settings.metric != "auto" else (
        "rmse" if schema.task == "regression" else "accuracy")
    targets = recent[TARGET].tolist()
    predicted = [predict_rows(d, recent) for d in (champion_dir, challenger_dir)]
    scores = [gate.per_row_scores(metric, p, targets) for p in predicted]
    checks = [gate.compare(gate.RECENT, metric, scores[0], scores[1], settings)]
    disagreement = gate.disagreement(metric, predicted[0], predicted[1])
    source = _model_source(workspace, champion)
    holdout = load_holdout(source, workspace.tracking_uri()) if source else None
    if holdout is None:
        why = (f"model {champion.model} version {champion.model_version} (champion "
               f"{champion.version}) was exported without labelled --eval rows")
        checks.append(gate.missing_holdout(metric, settings, why))
        return checks, disagreement
    labels = holdout.labels.tolist()
    scores = [gate.per_row_scores(metric, predict_holdout(d, holdout).tolist(), labels)
              for d in (champion_dir, challenger_dir)]
    checks.append(gate.compare(gate.HOLDOUT, metric, scores[0], scores[1], settings))
    return checks, disagreement


# -- the champion and where it came from ------------------------------------------------

@dataclass(frozen=True)
class Source:
    notebook: Path
    parameters: dict[str, Any]
    commit: str | None


def _champion(workspace: Workspace, name: str) -> Version:
    from ..release.rollout import pin_champion

    version = pin_champion(workspace, name).champion  # the challenger's build is newer
    lineage = _bundle(service_folder(workspace, name) / version).manifest.lineage
    return Version(version, lineage.registered_model, lineage.model_version, lineage.run_id)


def _bundle(path: Path) -> Any:
    from ..serving.bundle import Bundle

    return Bundle.load(path)


def _client(workspace: Workspace) -> Any:
    from ..tracking.local_store import mlflow_client

    return mlflow_client(workspace.tracking_uri())


def _source(workspace: Workspace, champion: Version, notebook: Path | None) -> Source:
    """The notebook that trained the champion (or ``notebook``) and its parameters."""
    run = None
    if champion.run_id:
        try:
            run = _client(workspace).get_run(champion.run_id)
        except Exception:  # noqa: BLE001 - a deleted run, or a store that moved
            run = None
    tags = dict(run.data.tags) if run is not None else {}
    params = dict(run.data.params) if run is not None else {}
    path = notebook or (Path(tags["ship.notebook"]) if tags.get("ship.notebook") else None)
    if path is None:
        raise NotFoundError("training notebook", f"for champion {champion.version}",
                            hint="Its run names no notebook; pass --notebook NB.")
    path = path if path.is_absolute() else (workspace.root / path)
    if not path.is_file():
        raise NotFoundError("notebook", str(path), hint="The champion's run names this "
                            "notebook; pass --notebook NB where it moved.")
    return Source(path.resolve(), _typed_parameters(path, params),
                  tags.get("mlflow.source.git.commit"))


def _parameters_of(notebook: Path) -> dict[str, Any]:
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def _check_parameters(notebook: Path) -> None:
    if NEW_DATA not in _parameters_of(notebook):
        raise ValidationError(
            f"{notebook.name} does not take production data: its parameters cell has no "
            f"{NEW_DATA}.", field="notebook",
            hint=f"Add `{NEW_DATA} = None` to the cell tagged `parameters`, and where it is "
                 f"set append pd.read_parquet({NEW_DATA}) (features and `target`) to the "
                 "training rows (docs/retraining.md).")


def _typed_parameters(notebook: Path, params: dict[str, str]) -> dict[str, Any]:
    """The run's values of the notebook's parameters, typed as the notebook types them
    (MLflow keeps strings)."""
    declared = _parameters_of(notebook)
    values: dict[str, Any] = {}
    for key, spec in declared.items():
        if key == NEW_DATA or key not in params:
            continue
        raw = params[key]
        if spec.get("inferred_type_name") == "str":
            values[key] = raw
            continue
        try:
            values[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            values[key] = raw
    return values


# -- training and building ----------------------------------------------------------------

@dataclass(frozen=True)
class Trained:
    output: str
    run_ids: list[str]
    error: str | None


def _train(workspace: Workspace, source: Source, parameters: dict[str, Any]) -> Trained:
    from ..batch.runner import run_notebooks

    batch = run_notebooks(source.notebook, [parameters], progress=False)
    run = batch.runs[0]
    ids = [w.run_id for w in run.runs]
    if not run.ok:
        return Trained(run.output, ids, f"the training notebook failed: {run.error} (see "
                                        f"{run.output})")
    if batch.unwritten:
        return Trained(run.output, ids, "the challenger's run could not be written to MLflow:"
                                        f" {'; '.join(batch.unwritten.values())}")
    return Trained(run.output, ids, None)


def _challenger_version(workspace: Workspace, champion: Version, run_ids: list[str]
                        ) -> Any | None:
    """The model version the notebook's run exported: of the champion's model, linked to
    one of the run's MLflow runs (or an existing version its export matched byte for
    byte), the champion's precision first, the newest first; None when that is the
    champion's own version."""
    client = _client(workspace)
    name = champion.model
    if not name:
        raise ShipError("the champion's bundle names no registered model; rebuild it with "
                        "`ship build`.")
    found = _exported(client, run_ids, name)
    if not found:
        raise ShipError(f"the training notebook's run exported no version of model {name!r}:"
                        f" it needs `%ship export MODEL --name {name} ...`.")
    wanted = _precision(client, name, champion.model_version)
    found.sort(key=lambda v: (v.tags.get("ship.export.precision") == wanted, int(v.version)),
               reverse=True)
    return None if str(found[0].version) == champion.model_version else found[0]


def _exported(client: Any, run_ids: list[str], name: str | None = None) -> list[Any]:
    """Model versions (of ``name``, or any model) the runs registered, and those their
    exports matched byte for byte (tagged ``ship.export.reused.NAME``)."""
    from ..export.registry import REUSED_TAG

    found = {}
    for run_id in run_ids:
        for version in client.search_model_versions(f"run_id='{run_id}'"):
            found[(version.name, str(version.version))] = version
        for tag, value in client.get_run(run_id).data.tags.items():
            if tag.startswith(f"{REUSED_TAG}."):
                model = tag[len(REUSED_TAG) + 1:]
                found[(model, value)] = client.get_model_version(model, value)
    return [v for (model, _), v in found.items() if name is None or model == name]


def _precision(client: Any, name: str, version: str | None) -> str | None:
    if version is None:
        return None
    try:
        tags = client.get_model_version(name, version).tags
    except Exception:  # noqa: BLE001 - a deleted version: any precision will do
        return None
    precision = tags.get("ship.export.precision")
    return None if precision is None else str(precision)


def _build(workspace: Workspace, name: str, notebook: Path, model: Any) -> Any:
    from ..bundle.build import build_service

    return build_service(notebook, name, model_name=str(model.name),
                         model_version=str(model.version), workspace=workspace)


def _model_source(workspace: Workspace, champion: Version) -> str | None:
    if not champion.model or not champion.model_version:
        return None
    try:
        return str(_client(workspace).get_model_version(champion.model,
                                                        champion.model_version).source)
    except Exception:  # noqa: BLE001 - a deleted version has no holdout either
        return None


def _first_model(workspace: Workspace, name: str, notebook: Path | None,
                 say: Progress) -> RetrainResult:
    """A service with no version yet: train and build one; nothing to compare with."""
    if notebook is None:
        raise NotFoundError("service", name, hint=f"Build it first (`ship build NB --name "
                            f"{name}`), or pass --notebook NB to train its first model.")
    _check_parameters(notebook)
    source = Source(notebook.resolve(), {}, None)
    say(f"training: ship run {notebook} (first model of {name})")
    trained = _train(workspace, source, {})
    result = RetrainResult(service=name, decision=gate.FIRST_MODEL, reason="",
                           notebook=str(source.notebook), output=trained.output)
    if trained.error is not None:
        result.decision, result.reason = gate.FAILED, trained.error
        return result
    exported = _exported(_client(workspace), trained.run_ids)
    if not exported:
        raise ShipError(f"{notebook.name} ran but exported no model version: it needs "
                        "`%ship export MODEL --name NAME ...`.")
    model = max(exported, key=lambda v: int(v.version))
    built = _build(workspace, name, source.notebook, model)
    result.challenger = Version(built.version, built.model_name, built.model_version,
                                built.run_id)
    result.reason = (f"no champion to compare with: version {built.version} is the service's "
                     f"first; `ship serve {name}` serves it")
    return result


# -- after the gate -------------------------------------------------------------------------

def _log_gate(workspace: Workspace, result: RetrainResult) -> None:
    """The gate's report on the challenger's run: metrics, a tag and ship/gate.json."""
    from mlflow.entities import Metric, RunTag

    challenger = result.challenger
    if challenger is None or not challenger.run_id:
        return
    client = _client(workspace)
    now = int(time.time() * 1000)
    metrics = []
    for check in result.checks:
        for side in ("champion", "challenger"):
            value = getattr(check, side)
            if value is not None and np.isfinite(value):
                metrics.append(Metric(f"ship.gate.{check.name}.{side}", float(value), now, 0))
    client.log_batch(challenger.run_id, metrics=metrics, tags=[
        RunTag("ship.gate.decision", result.decision),
        RunTag("ship.gate.champion", result.champion.version if result.champion else "")])
    with tempfile.TemporaryDirectory(prefix="ship-gate-") as tmp:
        path = Path(tmp) / "gate.json"
        path.write_text(json.dumps(result.to_json(), indent=1, default=str), encoding="utf-8")
        client.log_artifact(challenger.run_id, str(path), "ship")


def _release(workspace: Workspace, name: str, version: str, settings: LoopSettings,
             disagreement: float) -> dict[str, Any]:
    """The challenger as a canary. It is meant to answer differently where the champion
    was wrong: the release gate allows it the disagreement measured on the recent rows
    on top of [release] max_disagreement."""
    from ..release.gate import GateSettings
    from ..release.rollout import parse_steps, start_canary

    steps = parse_steps(settings.canary_steps)
    allowed = min(1.0, disagreement + GateSettings.from_workspace(workspace).max_disagreement)
    release = start_canary(workspace, name, version, settings.canary_percent, steps,
                           reason="by ship retrain: the challenger passed the gate",
                           max_disagreement=round(allowed, 4))
    canary = release.canary
    assert canary is not None
    return {"version": canary.version, "percent": canary.percent,
            "steps": list(canary.steps)}
