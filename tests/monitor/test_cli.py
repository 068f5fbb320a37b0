"""`ship drift` on a real bundle served by the real runtime: requests over both
protocols and feedback go through HTTP into the prediction log, the CLI reads them."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from click.testing import CliRunner
from drift_fixtures import make_bundle, table

from kernel_magics.cli import main
from kernel_magics.serving.server import create_app, uvicorn_options
from kernel_magics.workspace import Workspace

pytestmark = pytest.mark.slow


def serve(bundle_dir: Path, log_dir: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(bundle_dir, log_dir=str(log_dir))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           **uvicorn_options("warning")))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return url, server, thread
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError("not ready")


def test_ship_drift_on_a_served_bundle(workspace: Workspace, model_bytes: bytes,
                                       training: pd.DataFrame, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = make_bundle(workspace, "churn", model_bytes, training)
    url, server, thread = serve(bundle.path, workspace.services_dir / "churn" / "log")
    rng = np.random.default_rng(11)
    rows = table(rng, 400, shift={"age": 1.0})
    ids = []
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
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
        server.should_exit = True
        thread.join(timeout=30)  # graceful: the log flushes
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
