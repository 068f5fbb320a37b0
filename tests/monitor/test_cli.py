"""`ship drift` on a real bundle served by the real runtime: requests over both
protocols and feedback go through HTTP into the prediction log, the CLI reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from drift_fixtures import make_bundle, table
from live_server import serve_in_thread

from kernel_magics.cli import main
from kernel_magics.workspace import Workspace

pytestmark = pytest.mark.slow


def test_ship_drift_on_a_served_bundle(workspace: Workspace, model_bytes: bytes,
                                       training: pd.DataFrame, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = make_bundle(workspace, "churn", model_bytes, training)
    running = serve_in_thread(bundle.path, workspace.services_dir / "churn" / "log")
    rng = np.random.default_rng(11)
    rows = table(rng, 400, shift={"age": 1.0})
    ids = []
    try:
        with running.client() as client:
            for start in range(0, 400, 20):
                part = rows.iloc[start:start + 20]
                answer = client.post("/invocations", json={"dataframe_split": {
                    "columns": list(part.columns), "data": part.to_numpy().tolist()}})
                assert answer.status_code == 200, answer.text
                ids.append((answer.headers["x-request-id"], answer.json()["predictions"]))
            v2 = client.post("/v2/models/churn/infer", json={"inputs": [
                {"name": "age", "datatype": "FP64", "shape": [1], "data": [30.0]},
                {"name": "income", "datatype": "FP64", "shape": [1], "data": [900.0]},
                {"name": "score", "datatype": "FP64", "shape": [1], "data": [0.1]},
                {"name": "city", "datatype": "BYTES", "shape": [1], "data": ["lyon"]}]})
            assert v2.status_code == 200, v2.text
            for rid, predictions in ids[:10]:
                truth = [p["label"] for p in predictions]
                sent = client.post("/feedback", json={"request_id": rid, "ground_truth": truth})
                assert sent.status_code == 200, sent.text
    finally:
        running.stop()  # graceful: the log flushes
    monkeypatch.chdir(workspace.root)
    runner = CliRunner()
    result = runner.invoke(main, ["drift", "churn", "--json", "--window", "1h",
                                  "--history", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    features = {f["feature"]: f for f in doc["features"]}
    assert doc["current_rows"] == 401
    assert features["age"]["status"] == "drift" and features["income"]["status"] == "ok"
    assert doc["dataset"]["drifted_features"] == ["age"]
    assert doc["performance"] == {"metric": "accuracy", "value": 1.0, "labelled": 200,
                                  "method": doc["performance"]["method"]}
    # the V2 answer holds tensors, the reference holds postprocess's labels: left out
    assert sum(doc["prediction"]["current"]["counts"]) == 400
    assert any("could not be read" in n for n in doc["notes"])
    page = tmp_path / "drift.html"
    text = runner.invoke(main, ["drift", "churn", "--html", str(page)])
    assert text.exit_code == 0, text.output
    assert "age" in text.output and "wasserstein/std" in text.output
    assert page.read_text().startswith("<!DOCTYPE html>")
    missing = runner.invoke(main, ["drift", "nope"])
    assert missing.exit_code == 1 and "not found" in missing.output
