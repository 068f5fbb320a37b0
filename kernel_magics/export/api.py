"""What the magics, the CLI and the REST API call: export a model, list versions, set aliases.

    export_model(model, name, example, ...)   convert → parity gate → int8 → profile → register
    export_from(ref, name, example, ...)      the same for a model logged by a run, or a file
    list_models() / leaderboard(name)         `ship models [NAME]`
    set_alias(name, version, alias)           `ship models alias NAME VERSION ALIAS`

Nothing reaches MLflow before the parity gate (and the int8 bound) have passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, NotFoundError
from ..workspace import CONFIG_FILE, Workspace, find_workspace, init_workspace
from . import registry
from .holdout import Holdout, holdout_of
from .parity import ParityReport
from .pipeline import EXAMPLE_ROWS, CheckedExport, ExportSettings, check_export
from .profile import ONNX_FP32, ONNX_INT8, ORIGINAL, ProfileReport
from .quantize import QuantizationReport
from .registry import AliasChange, LeaderboardRow, ModelSummary


@dataclass
class ExportResult:
    """A registered export: where it is, how it was made, how it measured."""

    name: str
    version: str
    model_uri: str
    run_id: str
    run_created: bool
    model_id: str
    flavor: str
    exporter: str
    fallback_reason: str | None
    precision: str
    task: str
    parity: ParityReport
    quantization: QuantizationReport | None
    profile: ProfileReport | None
    warnings: list[str]
    # True when an identical model (the same ONNX bytes) was registered before: that
    # version is returned instead of a duplicate.
    reused: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--json` and the REST API, derived figures included."""
        data = dataclasses.asdict(self)
        data["parity"].update(passed=self.parity.passed, max_abs_error=self.parity.max_abs_error,
                              max_rel_error=self.parity.max_rel_error,
                              metric_delta=self.parity.metric_delta)
        if self.quantization is not None:
            data["quantization"].update(size_ratio=self.quantization.size_ratio,
                                        within_bound=self.quantization.within_bound)
        return data


def settings_for(workspace: Workspace, *, rtol: float | None = None,
                 atol: float | None = None) -> ExportSettings:
    """`[export]` from ship.toml, validated, with per-call tolerance overrides."""
    path = str(workspace.ship_dir / CONFIG_FILE)
    values: dict[str, Any] = {}
    for key, kind in (("rtol", float), ("atol", float), ("max_accuracy_drop", float),
                      ("max_rmse_increase", float), ("profile_repeats", int),
                      ("profile_threads", int)):
        raw = {"rtol": rtol, "atol": atol}.get(key)
        raw = workspace.setting("export", key) if raw is None else raw
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or (
                kind is int and (raw != int(raw) or raw < 1)):
            need = "a positive whole number" if kind is int else "a non-negative number"
            raise ConfigError(f"[export] {key} must be {need}, got {raw!r}.", path=path)
        values[key] = kind(raw)
    experiment = str(workspace.setting("export", "experiment")).strip() or "ship-export"
    return ExportSettings(experiment=experiment, **values)


def export_model(model: Any, name: str, example: Any, *, eval_X: Any = None,
                 eval_y: Any = None, quantize: str | None = None,
                 run_id: str | Callable[[], str | None] | None = None,
                 workspace: Workspace | None = None, force: bool = False,
                 rtol: float | None = None, atol: float | None = None, task: str | None = None,
                 experiment: str | None = None) -> ExportResult:
    """Export `model` to ONNX behind the parity gate and register it as a model version.

    ``run_id`` may be a function: it is called once the model has passed the gate, so a
    wait for the run (the background writer is still writing it) overlaps the export."""
    workspace = workspace or find_workspace()
    registry.validate_name(name)
    settings = settings_for(workspace, rtol=rtol, atol=atol)
    checked = check_export(model, example, eval_x=eval_X, eval_y=eval_y, quantize=quantize,
                           task=task, force=force, settings=settings)
    if callable(run_id):
        run_id = run_id()
    if workspace.uses_local_store() and not workspace.ship_dir.is_dir():
        workspace = init_workspace(workspace.root)
    labels, figures = describe(checked)
    client = registry.client_for(workspace)
    same = registry.find_identical(client, name, labels["export.digest"])
    if same is not None:  # the same ONNX bytes again: the version it already is
        if run_id:  # the run says so: retraining tells "identical" from "nothing exported"
            registry.mark_reused(client, run_id, name, str(same.version))
        return _result(checked, registry.RegisteredVersion(
            name=str(same.name), version=str(same.version),
            model_uri=f"models:/{same.name}/{same.version}", run_id=str(same.run_id or ""),
            model_id=str(getattr(same, "model_id", "") or ""), run_created=False),
            reused=True)
    # MLflow's signature and input example: the DataFrame itself for tabular rows.
    example_input = checked.held.original.iloc[:min(checked.held.n_example, EXAMPLE_ROWS)] \
        if checked.held.columns is not None else checked.example_input
    registered = registry.register(
        client, workspace, name=name, graph=checked.chosen,
        example_input=example_input, example_outputs=checked.example_outputs,
        labels=labels, figures=figures, report=_report(checked, labels, figures), run_id=run_id,
        experiment=experiment or settings.experiment, holdout=_holdout(checked))
    return _result(checked, registered, reused=False)


def _holdout(checked: CheckedExport) -> Holdout | None:
    """The labelled eval rows as the registered graph receives them (export/holdout.py)."""
    example = checked.example_input
    dtype = example.dtype.type if isinstance(example, np.ndarray) else np.float32
    return holdout_of(checked.held, checked.task, checked.held.features(dtype),
                      checked.chosen.input_names)


def _result(checked: CheckedExport, registered: registry.RegisteredVersion, *,
            reused: bool) -> ExportResult:
    return ExportResult(
        name=registered.name, version=registered.version, model_uri=registered.model_uri,
        run_id=registered.run_id, run_created=registered.run_created,
        model_id=registered.model_id, flavor=checked.flavor, exporter=checked.graph.exporter,
        fallback_reason=checked.fallback_reason, precision=checked.precision,
        task=checked.task.kind, parity=checked.parity, quantization=checked.quantization,
        profile=checked.profile, warnings=list(checked.graph.warnings), reused=reused)


def export_from(ref: str, name: str, example: Any, *, workspace: Workspace | None = None,
                **options: Any) -> ExportResult:
    """Export a model given as a run id, a runs:/ or models:/ URI, or a .pt/.pkl file."""
    from .sources import load_model

    workspace = workspace or find_workspace()
    loaded = load_model(ref, workspace)
    options.setdefault("run_id", loaded.run_id)
    return export_model(loaded.model, name, example, workspace=workspace, **options)


def list_models(*, workspace: Workspace | None = None) -> list[ModelSummary]:
    """Registered models in the workspace's store."""
    workspace = workspace or find_workspace()
    if workspace.uses_local_store() and not (workspace.ship_dir / "mlflow.db").exists():
        return []
    return registry.list_models(registry.client_for(workspace))


def leaderboard(name: str, *, workspace: Workspace | None = None) -> list[LeaderboardRow]:
    """Versions of `name` side by side: task metric, latency, size, training cost, parity."""
    workspace = workspace or find_workspace()
    if workspace.uses_local_store() and not (workspace.ship_dir / "mlflow.db").exists():
        raise NotFoundError("model", name, hint="Nothing is registered in this workspace yet: "
                                                "`%ship export` or `ship export` first.")
    return registry.leaderboard(registry.client_for(workspace), name)


def set_alias(name: str, version: str | int, alias: str, *,
              workspace: Workspace | None = None) -> AliasChange:
    """Point an alias (`champion`, `challenger`) at a version."""
    workspace = workspace or find_workspace()
    return registry.set_alias(registry.client_for(workspace), name, str(version), alias)


def _report(checked: CheckedExport, labels: dict[str, str],
            figures: dict[str, float]) -> dict[str, Any]:
    """ship-export.json, stored next to model.onnx: everything the export measured."""
    parts = {"parity": checked.parity, "quantization": checked.quantization,
             "profile": checked.profile}
    return {"tags": labels, "figures": figures,
            "attempts": [dataclasses.asdict(a) for a in checked.attempts],
            **{k: dataclasses.asdict(v) if v is not None else None for k, v in parts.items()}}


def describe(checked: CheckedExport) -> tuple[dict[str, str], dict[str, float]]:
    """Version tags: words (exporter, precision, ...) and figures (also logged as metrics)."""
    parity, quant, prof = checked.parity, checked.quantization, checked.profile
    labels = {"export.digest": checked.chosen.digest(),
              "export.exporter": checked.graph.exporter, "export.precision": checked.precision,
              "export.task": checked.task.kind, "export.flavor": checked.flavor,
              "export.opset": str(checked.graph.opset),
              "parity.passed": str(parity.passed).lower()}
    if checked.fallback_reason:
        labels["export.fallback"] = checked.fallback_reason
    if checked.graph.warnings:
        labels["export.warnings"] = " | ".join(checked.graph.warnings)
    figures = {"parity.rows": float(parity.rows), "parity.rtol": parity.rtol,
               "parity.atol": parity.atol, "parity.max_abs_err": parity.max_abs_error,
               "parity.max_rel_err": parity.max_rel_error,
               "size_bytes": float(checked.chosen.size_bytes),
               "size.original": float(checked.original_size),
               "size.onnx_fp32": float(checked.graph.size_bytes)}
    if parity.agreement is not None:
        figures["parity.agreement"] = parity.agreement
    metric = parity.metric_onnx
    if quant is not None:
        metric = quant.int8_value if quant.measure in ("accuracy", "rmse") else None
        figures.update({"size.onnx_int8": float(quant.size_int8),
                        "quant.size_ratio": quant.size_ratio, "quant.change": quant.change,
                        "quant.bound": quant.bound})
        if quant.latency_ratio is not None:
            figures["quant.latency_ratio"] = quant.latency_ratio
        labels.update({"quant.unit": quant.unit, "quant.reference": quant.reference,
                       "quant.measure": quant.measure, "quant.forced": str(quant.forced).lower()})
    if parity.metric_name is not None and metric is not None:
        labels["metric.name"] = parity.metric_name
        figures["metric.value"] = metric
        if parity.metric_original is not None:
            figures["metric.original"] = parity.metric_original
    if prof is not None:
        labels.update({"profile.threads": str(prof.threads), "profile.repeats": str(prof.repeats)})
        for variant in (ORIGINAL, ONNX_FP32, ONNX_INT8):
            v = prof.get(variant)
            if v is None:
                continue
            key = variant.replace("-", "_")
            figures.update({f"latency.{key}.p50_ms": v.one_row.p50_ms,
                            f"latency.{key}.p99_ms": v.one_row.p99_ms,
                            f"latency.{key}.batch32_p50_ms": v.batch.p50_ms,
                            f"latency.{key}.batch32_p99_ms": v.batch.p99_ms})
        served = prof.get(ONNX_INT8 if checked.int8 is not None else ONNX_FP32)
        if served is not None:
            figures.update({"latency.p50_ms": served.one_row.p50_ms,
                            "latency.p99_ms": served.one_row.p99_ms,
                            "latency.batch32_p50_ms": served.batch.p50_ms})
    return labels, figures
