"""The registry side, read back with a plain MlflowClient: versions linked to runs, tags,
run metrics, the ONNX flavor, aliases, the leaderboard, and exports from a tracked run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnxruntime as ort
import pytest
from mlflow.artifacts import download_artifacts
from mlflow.models import Model
from torch import nn

from kernel_magics.errors import NotFoundError, ValidationError
from kernel_magics.export import export_from, export_model, leaderboard, list_models, set_alias
from kernel_magics.export.report import render_export, render_leaderboard, render_models


@pytest.fixture
def training_run(workspace: Any, mlflow_client: Any) -> str:
    """A finished run like the tracking writer leaves: its cost as a `ship.cost_estimate`."""
    experiment = mlflow_client.create_experiment(
        "train", artifact_location=(workspace.artifacts_dir / "train").as_uri())
    run = mlflow_client.create_run(experiment, run_name="train-mlp")
    mlflow_client.log_metric(run.info.run_id, "ship.cost_estimate", 0.0123)
    mlflow_client.log_metric(run.info.run_id, "accuracy", 0.95)
    mlflow_client.set_tag(run.info.run_id, "ship.cost.currency", "USD")
    mlflow_client.set_terminated(run.info.run_id, "FINISHED", end_time=1_700_000_000_000)
    return str(run.info.run_id)


def test_export_becomes_a_version_linked_to_its_run(
        mlp: nn.Module, digits: Any, workspace: Any, mlflow_client: Any, training_run: str,
        tmp_path: Path) -> None:
    result = export_model(mlp, "digits", digits.x_test[:3], eval_X=digits.x_test,
                          eval_y=digits.y_test, run_id=training_run, workspace=workspace)
    assert (result.name, result.version, result.run_id) == ("digits", "1", training_run)
    assert not result.run_created
    assert result.model_uri == "models:/digits/1"

    version = mlflow_client.get_model_version("digits", "1")
    assert version.run_id == training_run
    assert version.status == "READY"
    tags = version.tags
    assert tags["ship.export.exporter"] == "torch-dynamo"
    assert tags["ship.export.precision"] == "fp32"
    assert tags["ship.parity.passed"] == "true"
    assert float(tags["ship.parity.rtol"]) == 1e-3 and float(tags["ship.parity.atol"]) == 1e-5
    assert int(tags["ship.parity.rows"]) == 3 + len(digits.x_test)
    assert tags["ship.metric.name"] == "accuracy"
    assert float(tags["ship.metric.value"]) == pytest.approx(result.parity.metric_onnx, abs=1e-6)
    assert int(tags["ship.size_bytes"]) == result.profile.get("onnx-fp32").size_bytes
    for variant in ("original", "onnx_fp32"):
        assert float(tags[f"ship.latency.{variant}.p50_ms"]) > 0
        assert float(tags[f"ship.latency.{variant}.batch32_p99_ms"]) > 0

    # The training run is untouched (still FINISHED, same end) and gained the figures.
    run = mlflow_client.get_run(training_run)
    assert run.info.status == "FINISHED" and run.info.end_time == 1_700_000_000_000
    metrics = run.data.metrics
    assert metrics["accuracy"] == 0.95
    assert metrics["ship.export.parity.max_abs_err"] == pytest.approx(result.parity.max_abs_error)
    assert metrics["ship.export.latency.p50_ms"] > 0
    history = mlflow_client.get_metric_history(training_run, "ship.export.size_bytes")
    assert [m.step for m in history] == [1]  # step = the version number
    logged = mlflow_client.get_logged_model(result.model_id)
    assert logged.source_run_id == training_run
    assert "ship.export.parity.max_abs_err" in {m.key for m in logged.metrics}

    # An ONNX-flavor MLflow model with a signature and an input example, that serves.
    folder = Path(download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path)))
    mlmodel = Model.load(str(folder / "MLmodel"))
    assert "onnx" in mlmodel.flavors
    assert mlmodel.signature is not None
    assert list(mlmodel.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 64]
    assert (folder / "input_example.json").exists()
    assert (folder / "ship-export.json").exists()
    assert "onnxruntime==" in (folder / "requirements.txt").read_text()
    sess = ort.InferenceSession(str(folder / "model.onnx"))
    (out,) = sess.run(None, {"input": digits.x_test[:5]})
    expected = mlp(__import__("torch").from_numpy(digits.x_test[:5])).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-5)


def test_export_without_a_run_creates_one(mlp: nn.Module, digits: Any, workspace: Any,
                                          mlflow_client: Any) -> None:
    result = export_model(mlp, "digits", digits.x_test[:2], workspace=workspace)
    assert result.run_created
    run = mlflow_client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["ship.export.model"] == "digits"
    experiment = mlflow_client.get_experiment(run.info.experiment_id)
    assert experiment.name == "ship-export"
    assert experiment.artifact_location.startswith(workspace.artifacts_dir.as_uri())
    # No labels: the metric is unknown, the agreement with the original is still there.
    tags = mlflow_client.get_model_version("digits", result.version).tags
    assert "ship.metric.value" not in tags
    assert float(tags["ship.parity.agreement"]) == 1.0


def test_aliases_and_leaderboard(mlp: nn.Module, wide_mlp: nn.Module, digits: Any,
                                 workspace: Any, mlflow_client: Any, training_run: str) -> None:
    for model, quantize in ((mlp, None), (wide_mlp, "int8")):
        export_model(model, "digits", digits.x_test[:2], eval_X=digits.x_test,
                     eval_y=digits.y_test, quantize=quantize, force=True, run_id=training_run,
                     workspace=workspace)
    first = set_alias("digits", 1, "champion", workspace=workspace)
    assert first.previous is None
    set_alias("digits", "2", "challenger", workspace=workspace)
    moved = set_alias("digits", 2, "champion", workspace=workspace)
    assert moved.previous == "1"
    model = mlflow_client.get_registered_model("digits")
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "2", "challenger": "2"}
    assert str(mlflow_client.get_model_version_by_alias("digits", "champion").version) == "2"

    rows = leaderboard("digits", workspace=workspace)
    assert [r.version for r in rows] == ["1", "2"]
    one, two = rows
    assert one.aliases == [] and two.aliases == ["challenger", "champion"]
    assert (one.precision, two.precision) == ("fp32", "int8")
    assert one.exporter == two.exporter == "torch-dynamo"
    assert one.metric_name == "accuracy" and one.metric is not None and one.metric > 0.9
    assert two.metric is not None and two.metric > 0.9
    assert one.parity == two.parity == "passed"
    assert one.p50_ms is not None and one.p50_ms > 0
    assert one.size_bytes is not None and two.size_bytes is not None
    assert one.training_cost == pytest.approx(0.0123) and one.cost_currency == "USD"
    table = render_leaderboard("digits", rows)
    assert "champion" in table and "0.0123 USD" in table and "int8" in table

    summary = list_models(workspace=workspace)
    assert [(m.name, m.versions, m.latest_version) for m in summary] == [("digits", 2, "2")]
    assert "champion=v2" in render_models(summary)


def test_unknown_names_and_versions(workspace: Any, mlp: nn.Module, digits: Any) -> None:
    assert list_models(workspace=workspace) == []
    with pytest.raises(NotFoundError):
        leaderboard("nothing", workspace=workspace)
    export_model(mlp, "digits", digits.x_test[:2], workspace=workspace)
    with pytest.raises(NotFoundError, match="digits/7"):
        set_alias("digits", 7, "champion", workspace=workspace)
    with pytest.raises(ValidationError):
        set_alias("digits", 1, "latest", workspace=workspace)  # reserved by MLflow
    with pytest.raises(ValidationError, match="model name"):
        export_model(mlp, "a/b", digits.x_test[:2], workspace=workspace)


def test_export_from_a_tracked_run(mlp: nn.Module, digits: Any, workspace: Any,
                                   mlflow_client: Any, tmp_path: Path) -> None:
    """`ship export RUN_ID`: the model `%%ship track --model` logged, found by its run tag."""
    from kernel_magics.tracking.models import log_model, save_model

    ref = save_model(mlp, "model", tmp_path / "saved")
    mlflow.set_tracking_uri(workspace.tracking_uri())
    try:
        experiment = mlflow_client.create_experiment(
            "nb", artifact_location=(workspace.artifacts_dir / "nb").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.set_tag("ship.model.uri", log_model(ref, tmp_path / "saved"))
    finally:
        mlflow.set_tracking_uri(None)
    result = export_from(run.info.run_id, "from-run", digits.x_test[:2], workspace=workspace)
    assert result.run_id == run.info.run_id and not result.run_created
    assert mlflow_client.get_model_version("from-run", "1").run_id == run.info.run_id
    text = render_export(result)
    assert text.startswith("Registered from-run version 1 (models:/from-run/1)")
    assert "parity     passed" in text


def test_export_from_a_file(mlp: nn.Module, digits: Any, workspace: Any, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "mlp.pt"
    torch.save(mlp, path)
    np.save(tmp_path / "rows.npy", digits.x_test[:4])
    from kernel_magics.export.sources import load_rows

    result = export_from(str(path), "from-file", load_rows(tmp_path / "rows.npy"),
                         workspace=workspace)
    assert result.run_created and result.version == "1"


def test_rows_from_files(tmp_path: Path) -> None:
    import pandas as pd

    from kernel_magics.export.sources import load_rows

    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame({"label": [0, 1]}).to_parquet(tmp_path / "y.parquet")
    frame = load_rows(tmp_path / "x.csv")
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["a", "b"]
    assert list(load_rows(tmp_path / "y.parquet")) == [0, 1]  # one column: a Series
    (tmp_path / "x.txt").write_text("1 2")
    with pytest.raises(ValidationError, match="x.txt"):
        load_rows(tmp_path / "x.txt")
    with pytest.raises(NotFoundError):
        load_rows(tmp_path / "missing.npy")
