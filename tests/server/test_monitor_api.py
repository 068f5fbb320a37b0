"""The drift and cost endpoints through a real Jupyter server, authentication on.

The workspace holds a real bundle (a skl2onnx classifier with a handler over a nullable
numeric, a numeric and a string feature) with its reference profile built from the
training data, and a prediction log written by the real components: five past hours of
normal traffic through ``PredictionLog`` (stamped in the past), then shifted traffic and
feedback sent to the real runtime served by uvicorn, whose usage meter measures its CPU.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_server import serve_in_thread
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.monitor.predictions import profile_predictions
from kernel_magics.monitor.reference import build_profile, write_reference
from kernel_magics.serving.bundle import Manifest, write_bundle
from kernel_magics.serving.inputs import from_columns
from kernel_magics.serving.pipeline import Pipeline
from kernel_magics.serving.predlog import Prediction, PredictionLog
from kernel_magics.serving.schema import Feature
from kernel_magics.tracking.record import Cost, Resources, RunRecord
from kernel_magics.tracking.spool import Spool
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow  # a real served bundle and a prediction log: seconds

HANDLER = textwrap.dedent('''
    import numpy as np

    def preprocess(df):
        age = df["age"].fillna(40.0).to_numpy() / 100.0
        income = df["income"].to_numpy() / 100000.0
        paris = (df["city"] == "paris").to_numpy().astype(np.float32)
        return np.stack([age, income, paris], axis=1).astype(np.float32)

    def postprocess(outputs):
        return [{"label": int(l), "p": round(float(p[1]), 4)}
                for l, p in zip(outputs["label"], outputs["probabilities"])]
''')
FEATURES = ["age", "income", "city"]


def _population(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, Any]:
    if shifted:
        return {"age": rng.normal(60, 8, rows), "income": rng.normal(90_000, 9_000, rows),
                "city": rng.choice(["paris", "lyon", "nice"], rows, p=[0.2, 0.3, 0.5])}
    return {"age": rng.normal(40, 8, rows), "income": rng.normal(50_000, 9_000, rows),
            "city": rng.choice(["paris", "lyon"], rows, p=[0.6, 0.4])}


def _serve_shifted_traffic(bundle_dir: Path, log_dir: Path) -> None:
    """The real runtime in a thread: shifted requests, feedback, then a graceful stop."""
    running = serve_in_thread(bundle_dir, log_dir)
    rng = np.random.default_rng(5)
    try:
        with running.client() as client:
            for i in range(30):
                data = _population(rng, 20, shifted=True)
                records = pd.DataFrame(data).to_dict("records")
                answer = client.post("/invocations", json={"dataframe_records": records})
                assert answer.status_code == 200, answer.text
                if i % 2 == 0:
                    labels = [int(a > 40) for a in data["age"]]
                    truth = client.post("/feedback", json={
                        "request_id": answer.headers["x-request-id"], "ground_truth": labels})
                    assert truth.status_code == 200, truth.text
    finally:
        running.stop()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from sklearn.linear_model import LogisticRegression

    os.environ.setdefault("SHIP_USAGE_INTERVAL_S", "0.5")
    root = tmp_path_factory.mktemp("monitor-root")
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    train = pd.DataFrame(_population(rng, 3000, shifted=False))
    service = workspace.services_dir / "shop"
    schema = classifier_schema(
        (Feature("age", "float64", nullable=True), Feature("income", "float64"),
         Feature("city", "string")), 3)
    x = np.stack([train["age"] / 100, train["income"] / 100_000,
                  (train["city"] == "paris").astype(float)], axis=1).astype(np.float32)
    y = (train["age"] > 40).astype(int).to_numpy()
    bundle = write_bundle(service / "1", manifest=Manifest(name="shop", version="1"),
                          schema=schema, model=sklearn_onnx(LogisticRegression().fit(x, y), 3),
                          handler_source=HANDLER)
    # The reference as `ship build --reference` writes it: features, and the predictions.
    profiles = build_profile(train, FEATURES)
    predicted = profile_predictions(service / "1", train)
    assert predicted is not None
    write_reference([*profiles, predicted], service / "1" / "reference.parquet")

    # Five past hours of normal traffic, scored by the bundle's own pipeline.
    log = PredictionLog(service / "log")
    log.register("shop", "1", bundle.schema, identity=False)
    pipeline = Pipeline(bundle)
    now = time.time()
    for hour in range(5, 0, -1):
        for i in range(10):
            inputs = from_columns(bundle.schema, _population(rng, 30, shifted=False))
            log.append(Prediction(f"past-{hour}-{i}", now - hour * 3600 - 600 - i * 60, "shop", "1",
                       "invocations", 200, 1.0, None, inputs, None,
                       pipeline.predict(inputs), None))
    log.close()
    _serve_shifted_traffic(service / "1", service / "log")

    # A tracked run of the notebook, still in the spool: its cost counts already.
    notebook = root / "shop.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}), encoding="utf-8")
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    record = RunRecord(record_id="18a0000000000000-cafe0001", experiment="shop",
                       run_name="train-shop", tracking_uri=workspace.tracking_uri(),
                       workspace=str(root), status="RUNNING",
                       start_time_ms=int(now * 1000) - 60_000, notebook_path=str(notebook))
    spool.open_record(record)
    record.status = "FINISHED"
    record.end_time_ms = record.start_time_ms + 4000
    record.resources = Resources(wall_s=4.0, cpu_s=3.5, peak_memory_bytes=200 * 2**20)
    record.cost = Cost(amount=0.0000467, currency="USD", estimated=True,
                       basis="estimate: 3.50 CPU s x 0.048/core-h")
    spool.save_record(record)
    yield workspace


@pytest.fixture
def jp_root_dir(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workspace.root


async def test_drift_report_of_shifted_traffic(api: Any) -> None:
    report = await api.call("services", "shop", "drift", window="1h", history="6")
    api.check(report, "DriftReport")
    assert report["service"] == "shop" and report["version"] == "1"
    assert report["window"]["length_s"] == 3600
    assert report["reference"]["rows"] == 3000
    assert report["current_rows"] == 30 * 20
    features = {f["feature"]: f for f in report["features"]}
    assert set(features) == set(FEATURES)
    # Ages and incomes moved by several standard deviations; a new city appeared.
    assert features["age"]["drifted"] and features["age"]["status"] == "drift"
    assert features["income"]["drifted"]
    assert report["dataset"]["drifted"] is True
    assert set(report["dataset"]["drifted_features"]) >= {"age", "income"}
    for entry in features.values():
        assert entry["method"] and entry["threshold"] > 0 and entry["tests"]
        assert entry["reference"] and entry["current"]
    assert "edges" in features["age"]["reference"]
    assert "categories" in features["city"]["reference"]
    # The past windows were normal; the current one is not.
    history = report["history"]
    assert len(history) == 6
    assert [w["rows"] for w in history] == [300, 300, 300, 300, 300, 600]
    assert history[-1]["dataset_drifted"] is True
    assert not any(w["dataset_drifted"] for w in history[:-1])
    assert report["prediction"] is not None
    assert report["performance"] is not None and report["performance"]["labelled"] == 15 * 20


async def test_drift_window_and_history_arguments(api: Any) -> None:
    wide = await api.call("services", "shop", "drift", window="1d", history="2")
    assert wide["window"]["length_s"] == 86400 and len(wide["history"]) == 2
    assert wide["current_rows"] == 5 * 300 + 600
    code, message = await api.error("services", "shop", "drift", window="soon")
    assert code == 400 and "window" in message and "15m" in message
    code, message = await api.error("services", "shop", "drift", history="x")
    assert code == 400 and "history" in message


async def test_cost_of_runs_and_services(api: Any) -> None:
    summary = await api.call("cost", notebook="shop.ipynb")
    api.check(summary, "CostSummary")
    assert summary["notebook"] == "shop.ipynb"
    (run,) = summary["runs"]
    assert run["name"] == "train-shop" and run["written"] is False
    assert run["cpu_s"] == 3.5 and "cpu_s" in run["measured"] and run["estimated"] == ["amount"]
    (service,) = summary["services"]
    assert service["name"] == "shop" and service["predictions"] == 30 * 20
    assert service["cpu_s"] > 0 and service["cpu_s_per_1k_predictions"] > 0
    assert "cpu_s_per_1k_predictions" in service["measured"]
    assert "amount_per_1k_predictions" in service["estimated"]
    totals = summary["totals"]
    assert totals["runs"]["count"] == 1 and totals["services"]["predictions"] == 600
    assert totals["amount"] == pytest.approx(totals["runs"]["amount"]
                                             + totals["services"]["amount"])
    other = await api.call("cost", notebook="elsewhere.ipynb")
    assert other["runs"] == [] and len(other["services"]) == 1

    cost = await api.call("services", "shop", "cost", since="1d")
    api.check(cost, "ServiceCost")
    assert cost["name"] == "shop" and cost["predictions"] == 600
    assert cost["versions"][0]["version"] == "1" and cost["series"]


async def test_unknown_service_and_bad_arguments(api: Any) -> None:
    for endpoint in ("drift", "cost"):
        code, message = await api.error("services", "ghost", endpoint)
        assert code == 404 and "ghost" in message and "not found" in message
    code, message = await api.error("services", "shop", "cost", since="yesterday")
    assert code == 400 and "since" in message
    code, message = await api.error("cost", notebook="../x.ipynb")
    assert code == 400 and "outside" in message


async def test_unauthenticated_requests_are_refused(api: Any) -> None:
    wrong = {"Authorization": "token wrong"}
    for parts in (("services", "shop", "drift"), ("services", "shop", "cost"), ("cost",)):
        code, _ = await api.error(*parts, headers=wrong)
        assert code in (401, 403)
