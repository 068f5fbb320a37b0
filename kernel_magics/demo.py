"""`ship demo` / `make demo`: the loop on examples/, end to end, on this machine.

1. train: `ship run examples/train.ipynb` for two learning rates (tracked runs, each
   exporting an fp32 and an int8 ONNX version of the model `digits`);
2. runs: what MLflow now holds;
3. models: the leaderboard, the most accurate version aliased `champion`;
4. build: the notebook's serve cell and the champion become the bundle `digits`;
5. serve: `ship serve digits` on a free port, real requests over both protocols
   (and a malformed one), then a graceful stop;
6. log: the prediction log those requests left, read back with DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ShipError

Echo = Callable[[str], Any]


def run_demo(examples: Path, echo: Echo = print) -> None:
    """Run every step; raises ShipError naming the step that failed."""
    notebook = examples / "train.ipynb"
    if not notebook.is_file():
        raise ShipError(f"{notebook} not found; run `ship demo` from the repository root or "
                        "pass --examples DIR.")
    from .workspace import find_workspace

    train(notebook, echo)
    workspace = find_workspace(notebook.parent.resolve())
    show_runs(workspace, echo)
    choose_champion(workspace, echo)
    build(notebook, echo)
    log_dir = serve_and_predict(workspace, echo)
    show_log(log_dir, echo)
    db = workspace.ship_dir / "mlflow.db"
    echo("\nLook further:")
    echo(f"  MLflow UI:   mlflow ui --backend-store-uri sqlite:///{db} --port 5000")
    echo(f"  JupyterLab:  jupyter lab {notebook}   (the Ship sidebar)")
    echo("  Terminal:    ship runs · ship models digits · ship serve digits · ship logs digits")


def train(notebook: Path, echo: Echo) -> None:
    from .batch.runner import run_notebooks

    echo(f"1/6 train and export: ship run {notebook} -p lr 0.05, then -p lr 0.01")
    result = run_notebooks(notebook, [{"lr": 0.05}, {"lr": 0.01}], progress=True)
    for run in result.runs:
        echo(f"  lr={run.parameters['lr']}: {'ok' if run.ok else run.error} ({run.seconds:.0f} s)"
             f", output {run.output}")
    if not result.ok:
        raise ShipError("the training notebook failed; open the output notebook above.")


def show_runs(workspace: Any, echo: Echo) -> None:
    from .tracking.catalog import list_runs

    echo("2/6 runs in MLflow:")
    for row in list_runs(workspace, limit=4).runs:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in row.metrics.items()
                            if v is not None and not k.startswith("ship."))
        echo(f"  {row.status:<9} {row.name:<28} {metrics}")


def choose_champion(workspace: Any, echo: Echo) -> None:
    from .export.api import leaderboard, set_alias
    from .export.report import render_alias, render_leaderboard

    echo("3/6 model versions (fp32 and int8 per run); the most accurate becomes champion:")
    rows = leaderboard("digits", workspace=workspace)
    scored = [r for r in rows if r.metric is not None]
    if scored:
        best = max(scored, key=lambda r: (r.metric or 0.0, -(r.p50_ms or 0.0)))
        echo("  " + render_alias(set_alias("digits", best.version, "champion",
                                           workspace=workspace)))
        rows = leaderboard("digits", workspace=workspace)
    echo(render_leaderboard("digits", rows))


def build(notebook: Path, echo: Echo) -> Path:
    from sklearn.datasets import load_digits

    from .bundle.build import build_service, describe

    echo(f"4/6 build: ship build {notebook} --name digits --reference <the digits features>")
    training = load_digits(as_frame=True).frame.drop(columns="target")
    result = build_service(notebook, "digits", reference=training)
    echo(describe(result))
    return Path(result.path)


def serve_and_predict(workspace: Any, echo: Echo) -> Path:
    """Start the service, send real requests, stop it gracefully; the log folder."""
    import httpx
    import numpy as np
    from sklearn.datasets import load_digits

    from .bundle.services import start_service, stop_service

    echo("5/6 serve: ship serve digits (a free port, as the sidebar's Start does)")
    running = start_service(workspace, "digits")
    echo(f"  ready at {running.url}")
    try:
        digits = load_digits(as_frame=True)
        features = digits.frame.drop(columns="target")
        sample = features.iloc[:3]
        with httpx.Client(base_url=running.url, timeout=10) as client:
            body = {"dataframe_split": {"columns": list(sample.columns),
                                        "data": sample.to_numpy().tolist()}}
            answer = client.post("/invocations", json=body)
            echo(f"  POST /invocations (dataframe_split, 3 rows) -> {answer.status_code} "
                 f"{answer.json()['predictions']}   truth: {digits.target[:3].tolist()}")
            # V2 carries the model's own tensor: scaled already, as preprocess would.
            rows = features.iloc[3:8].to_numpy(dtype=np.float32) / 16.0
            name = client.get("/v2/models/digits").json()["inputs"][0]["name"]
            v2 = {"inputs": [{"name": name, "datatype": "FP32", "shape": list(rows.shape),
                              "data": rows.ravel().tolist()}]}
            answer = client.post("/v2/models/digits/infer", json=v2)
            logits = np.array(answer.json()["outputs"][0]["data"]).reshape(len(rows), -1)
            echo(f"  POST /v2/models/digits/infer (5 rows, model tensor) -> "
                 f"{answer.status_code} argmax {logits.argmax(1).tolist()}   "
                 f"truth: {digits.target[3:8].tolist()}")
            bad = client.post("/invocations", json={"dataframe_split": {
                "columns": ["pixel_0_0"], "data": [[1.0]]}})
            echo(f"  POST /invocations with missing features -> {bad.status_code} "
                 f"{bad.json()['error'][:90]}")
            for _ in range(50):
                client.post("/invocations", json=body)
            echo("  50 more predictions sent")
    finally:
        stop_service(workspace, "digits")  # graceful: the log is flushed on the way out
    return Path(workspace.services_dir) / "digits" / "log"


def show_log(log_dir: Path, echo: Echo) -> None:
    from .serving.logread import read_log

    entries = read_log(log_dir)
    errors = [e for e in entries if e.error]
    echo(f"6/6 prediction log: {len(entries)} requests in {log_dir} ({len(errors)} error)")
    for entry in entries[:2] + errors[:1]:
        detail = entry.error or entry.outputs or ""
        echo(f"  {entry.time:%H:%M:%S} {entry.endpoint:<12} {entry.status} "
             f"{entry.latency_ms:.2f} ms  {detail[:70]}")
    echo(f"  all of it: ship logs digits   (or DuckDB on {log_dir}/**/*.parquet)")
