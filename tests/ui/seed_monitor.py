"""Seed a workspace for the Drift and Cost panels, through Ship's real components:

1. `monitor/churn.ipynb` (a serve cell and a training cell) runs in a real IPython
   shell with the magics loaded: three `%%ship track` runs of the training cell
   (their CPU time and cost measured by the tracker, written to MLflow by the real
   background writer), the last one exporting the model (`--export churn`);
2. `build_service` builds the `churn` service from the saved notebook with the
   training DataFrame as its reference profile (`--reference`);
3. the real `PredictionLog` writes a day of traffic, a batch of requests every half
   hour, scored by the bundle's own pipeline: normal traffic first, then shifted
   traffic (older customers, higher incomes, another plan mix) for the last five hours;
   ground truth for part of the requests arrives as feedback;
4. the real `ship serve` runs the service for a few seconds and answers real requests,
   so its usage records (CPU per prediction) are measured.

    python tests/ui/seed_monitor.py FOLDER        (about 40 s)
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

SERVE_CELL = '''%%ship serve
import numpy as np

PLANS = ["basic", "plus", "premium"]


def preprocess(df):
    age = df["age"].to_numpy(dtype="float64") / 100.0
    income = df["income"].to_numpy(dtype="float64") / 100_000.0
    plan = df["plan"].map({p: i for i, p in enumerate(PLANS)}).fillna(0).to_numpy() / 2.0
    return np.stack([age, income, plan], axis=1).astype(np.float32)


def postprocess(outputs):
    return [{"churn": int(label), "p": round(float(p[1]), 4)}
            for label, p in zip(outputs["label"], outputs["probabilities"])]
'''

TRAIN_CELL = '''import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
train = pd.DataFrame({
    "age": rng.normal(40, 9, n).clip(18, 90),
    "income": rng.lognormal(10.8, 0.35, n),
    "plan": rng.choice(PLANS, n, p=[0.6, 0.3, 0.1]),
})
labels = ((train["age"] < 32) ^ (train["plan"] == "premium")).astype("int64").to_numpy()
X = preprocess(train)
clf = LogisticRegression(C=C, max_iter=500).fit(X, labels)
accuracy = float(clf.score(X, labels))
'''


def traffic(rng: np.random.Generator, rows: int, shifted: bool) -> dict[str, Any]:
    """Columns of one request: normal customers, or the shifted population."""
    if shifted:
        return {"age": rng.normal(55, 10, rows).clip(18, 90),
                "income": rng.lognormal(11.2, 0.35, rows),
                "plan": rng.choice(["basic", "plus", "premium"], rows, p=[0.25, 0.3, 0.45])}
    return {"age": rng.normal(40, 9, rows).clip(18, 90),
            "income": rng.lognormal(10.8, 0.35, rows),
            "plan": rng.choice(["basic", "plus", "premium"], rows, p=[0.6, 0.3, 0.1])}


def track_runs(folder: Path) -> None:
    """Three tracked training runs in a real shell; the last exports the model."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    os.environ["SHIP_NOTEBOOK"] = str(folder / "churn.ipynb")
    os.chdir(folder)
    shell.run_line_magic("load_ext", "kernel_magics")
    cells = [SERVE_CELL]
    for i, (c, n) in enumerate(((1.0, 4000), (0.3, 30000), (0.05, 12000))):
        magic = f"%%ship track --name churn-C{c}"
        if i == 2:
            magic += " --model clf --export churn --example X[:4] --eval X labels"
        cells += [f"C = {c}\nn = {n}", magic + "\n" + TRAIN_CELL]
    for cell in cells:
        with capture_output(display=True) as captured:
            result = shell.run_cell(cell, store_history=True)
        if not result.success:
            sys.stderr.write(captured.stdout + captured.stderr)
            raise SystemExit(f"seed cell failed: {result.error_in_exec!r}")
    shell.user_ns["train"].to_parquet(folder / "train.parquet")


def wait_written(folder: Path, timeout: float = 180.0) -> None:
    """Until the background writer has put every tracked run into MLflow."""
    from kernel_magics.tracking import catalog
    from kernel_magics.workspace import find_workspace

    workspace = find_workspace(folder)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = catalog.list_runs(workspace, ()).runs
        if len(runs) >= 3 and all(r.written for r in runs):
            return
        time.sleep(0.5)
    raise SystemExit("the tracked runs were not written to MLflow in time")


def write_log(folder: Path) -> None:
    """A day of scored traffic in the real prediction log, then feedback."""
    from kernel_magics.serving.bundle import Bundle
    from kernel_magics.serving.inputs import from_columns
    from kernel_magics.serving.pipeline import Pipeline
    from kernel_magics.serving.predlog import Prediction, PredictionLog

    service = folder / ".ship" / "services" / "churn"
    bundle = Bundle.load(service / "1")
    pipeline = Pipeline(bundle)
    log = PredictionLog(service / "log")
    name, version = bundle.manifest.name, bundle.manifest.version
    log.register(name, version, bundle.schema, identity=False)
    rng = np.random.default_rng(7)
    now = time.time()
    truth: list[tuple[str, list[int]]] = []
    for step in range(48):  # every 30 minutes, the oldest a day ago
        at = now - 24 * 3600 + step * 1800 + 60
        shifted = step >= 38
        for _ in range(8):
            data = traffic(rng, 25, shifted)
            inputs = from_columns(bundle.schema, data)
            outputs = pipeline.predict(inputs)
            request_id = uuid.uuid4().hex
            log.append(Prediction(request_id, at, name, version, "invocations", 200,
                       float(rng.uniform(0.4, 1.5)), None, inputs, None, outputs, None))
            # Ground truth, one label per row: the rule the model learnt, which no longer
            # holds for a third of the shifted population.
            labels = ((data["age"] < 32) ^ (data["plan"] == "premium")).astype(int)
            if shifted:
                flip = rng.random(labels.size) < 0.35
                labels[flip] = 1 - labels[flip]
            truth.append((request_id, [int(v) for v in labels]))
            at += 180
    log.flush()
    for request_id, labels in truth[::2]:
        log.feedback(request_id, name, labels)
    log.close()


def serve_briefly(folder: Path) -> None:
    """The real `ship serve`: a few seconds of real requests, so usage is measured."""
    import httpx

    from kernel_magics import services
    from kernel_magics.workspace import find_workspace

    workspace = find_workspace(folder)
    os.environ.setdefault("SHIP_USAGE_INTERVAL_S", "1")
    started = services.start_service(workspace, "churn")
    rng = np.random.default_rng(11)
    try:
        with httpx.Client(base_url=started.url, timeout=30) as client:
            for _ in range(40):
                data = traffic(rng, 25, shifted=True)
                records = [{"age": float(a), "income": float(i), "plan": str(p)}
                           for a, i, p in zip(data["age"], data["income"], data["plan"],
                                              strict=True)]
                answer = client.post("/invocations", json={"dataframe_records": records})
                answer.raise_for_status()
        time.sleep(1.5)
    finally:
        services.stop_service(workspace, "churn")


def main(folder: Path) -> None:
    from kernel_magics.bundle.build import build_service
    from kernel_magics.workspace import init_workspace

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    workspace = init_workspace(folder)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell(SERVE_CELL))
    notebook.cells.append(nbformat.v4.new_code_cell("C = 0.05\nn = 12000"))
    notebook.cells.append(nbformat.v4.new_code_cell(
        "%%ship track --model clf --export churn --example X[:4]\n" + TRAIN_CELL))
    notebook.cells.append(nbformat.v4.new_code_cell("%ship drift churn --window 1h"))
    nbformat.write(notebook, folder / "churn.ipynb")
    started = time.monotonic()
    track_runs(folder)
    wait_written(folder)
    import pandas as pd

    build_service(folder / "churn.ipynb", "churn", workspace=workspace,
                  reference=pd.read_parquet(folder / "train.parquet"))
    write_log(folder)
    serve_briefly(folder)
    print(f"seeded {folder} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
