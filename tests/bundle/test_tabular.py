"""What people train on tables: a ColumnTransformer that selects columns by name, string
categories encoded inside the pipeline, exported with one named ONNX input per column and
served with string features, unchanged, by the bundle's own runtime.

A notebook written as a data scientist writes one, run for real (papermill), built from a
terminal, scored by the bundle in a separate interpreter, and served over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from notebook_files import write_notebook

from kernel_magics.export.pipeline import ExportSettings, check_export
from kernel_magics.workspace import init_workspace

pytestmark = pytest.mark.slow

FAST = ExportSettings(profile_repeats=10)


def churn(rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure": rng.integers(1, 72, rows).astype("int64"),
        "monthly": rng.normal(70, 20, rows).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], rows),
        "region": rng.choice(["north", "south", "east", "west"], rows),
    })
    score = 0.04 * frame["monthly"] - 0.05 * frame["tenure"] + (frame["plan"] == "basic") * 1.5
    return frame, pd.Series((score + rng.normal(0, 0.5, rows) > 1.0).astype(int), name="churn")


def pipeline(kind: str) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    encoder = OneHotEncoder(handle_unknown="ignore") if kind == "onehot" else \
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    prep = ColumnTransformer([("num", StandardScaler(), ["tenure", "monthly"]),
                              ("cat", encoder, ["plan", "region"])])
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])


@pytest.mark.parametrize("kind", ["onehot", "ordinal"])
def test_named_columns_and_strings_export_with_an_input_per_column(kind: str) -> None:
    x, y = churn()
    model = pipeline(kind).fit(x, y)  # type: ignore[attr-defined]
    checked = check_export(model, x[:5], eval_x=x, eval_y=y, settings=FAST)
    graph = checked.graph
    assert graph.input_names == ["tenure", "monthly", "plan", "region"]
    assert checked.parity.passed and checked.parity.agreement == 1.0
    kinds = {i.name: i.type.tensor_type.elem_type for i in graph.model.graph.input}
    assert kinds == {"tenure": 7, "monthly": 1, "plan": 8, "region": 8}  # int64, float, string
    assert checked.profile is not None


NOTEBOOK = (
    """import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler""",
    """rng = np.random.default_rng(0)
df = pd.DataFrame({"tenure": rng.integers(1, 72, 600), "monthly": rng.normal(70, 20, 600),
                   "plan": rng.choice(["basic", "plus", "pro"], 600),
                   "region": rng.choice(["north", "south", "east", "west"], 600)})
y = ((0.04 * df.monthly - 0.05 * df.tenure + (df.plan == "basic") * 1.5) > 1).astype(int)
df.loc[rng.random(600) < 0.05, "monthly"] = np.nan  # real data has holes
X_train, X_test, y_train, y_test = df[:450], df[450:], y[:450], y[450:]""",
    """%%ship track --model model
monthly_median = X_train["monthly"].median()
prep = ColumnTransformer([("num", StandardScaler(), ["tenure", "monthly"]),
                          ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])])
model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])
model.fit(X_train.fillna({"monthly": monthly_median}), y_train)
accuracy = model.score(X_test.fillna({"monthly": monthly_median}), y_test)""",
    """filled = X_test.fillna({"monthly": monthly_median})""",
    "%ship export model --name churn --example filled[:5] --eval filled y_test",
    ("""def preprocess(df):
    return df.fillna({"monthly": monthly_median})     # a DataFrame, column per input""",
     ["ship:serve"]),
)


def test_a_tabular_notebook_serves_string_features(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    init_workspace(tmp_path)
    nb = write_notebook(tmp_path / "churn.ipynb", *NOTEBOOK)
    ship = str(Path(sys.executable).with_name("ship"))
    env = {**os.environ}
    run = subprocess.run([ship, "run", str(nb), "-o", str(tmp_path / "out.ipynb")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    built = subprocess.run([ship, "build", str(nb), "--name", "churn", "--json"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stderr
    bundle = Path(json.loads(built.stdout)["path"])
    schema = json.loads((bundle / "schema.json").read_text())
    assert [(f["name"], f["dtype"], f["nullable"]) for f in schema["features"]] == [
        ("tenure", "int64", False), ("monthly", "float64", True),  # it had holes in training
        ("plan", "string", False), ("region", "string", False)]
    state = json.loads((bundle / "state" / "state.json").read_text())["values"]
    assert set(state) == {"monthly_median"}
    rows = tmp_path / "rows.csv"
    rows.write_text("tenure,monthly,plan,region\n3,95.5,basic,north\n60,40.0,pro,west\n"
                    "12,70.0,plus,mars\n")  # an unseen region: the encoder ignores it
    scored = subprocess.run([sys.executable, "-E", "-s", "-m", "ship_runtime", "score",
                             str(bundle), str(rows), str(tmp_path / "pred.csv")], cwd=bundle,
                            capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0, scored.stderr
    predicted = [line.split(",")[-1] for line in
                 (tmp_path / "pred.csv").read_text().splitlines()[1:]]
    assert predicted[:2] == ["1", "0"] and len(predicted) == 3
    # Served: MLflow records with strings, and V2 with a BYTES tensor per string feature.
    import httpx
    from live_server import serve_in_thread

    running = serve_in_thread(bundle, bundle.parent / "log")  # where `ship serve` logs
    try:
        records = {"dataframe_records": [
            {"tenure": 3, "monthly": 95.5, "plan": "basic", "region": "north"},
            {"tenure": 60, "monthly": 40.0, "plan": "pro", "region": "west"},
            {"tenure": 10, "monthly": None, "plan": "basic", "region": "east"}]}
        answer = httpx.post(running.url + "/invocations", json=records)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][:2] == [1, 0]  # the hole filled by preprocess
        v2 = {"inputs": [
            {"name": "tenure", "datatype": "INT64", "shape": [1, 1], "data": [3]},
            {"name": "monthly", "datatype": "FP64", "shape": [1, 1], "data": [95.5]},
            {"name": "plan", "datatype": "BYTES", "shape": [1, 1], "data": ["basic"]},
            {"name": "region", "datatype": "BYTES", "shape": [1, 1], "data": ["north"]}]}
        infer = httpx.post(running.url + "/v2/models/churn/infer", json=v2)
        assert infer.status_code == 200, infer.text
        label = next(o for o in infer.json()["outputs"] if o["name"] == "label")
        assert label["data"] == [1]
        bad = httpx.post(running.url + "/invocations", json={"dataframe_records": [
            {"tenure": 3, "monthly": 95.5, "plan": "basic"}]})
        assert bad.status_code == 400 and bad.json()["field"] == "region"
    finally:
        running.stop()
    # The prediction log, read back as a user does: features typed by name, the hole a
    # null; V2 tensors named by feature are features too; the bad request kept.
    logs = subprocess.run([ship, "logs", "churn", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert logs.returncode == 0, logs.stderr
    records_entry, v2_entry, bad_entry = json.loads(logs.stdout)
    assert records_entry["inputs"]["plan"] == ["basic", "pro", "basic"]
    assert records_entry["inputs"]["tenure"] == [3, 60, 10]
    assert records_entry["inputs"]["monthly"] == [95.5, 40.0, None]  # standard JSON
    assert v2_entry["inputs"]["region"] == ["north"]  # V2 tensors named by feature
    assert v2_entry["tensors"] is None
    assert bad_entry["status"] == 400 and "region" in bad_entry["error"]
    drift = subprocess.run([ship, "drift", "churn", "--json", "--window", "1h"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, env=env)
    assert drift.returncode == 0, drift.stderr
    report = json.loads(drift.stdout)
    methods = {f["feature"]: f["method"] for f in report["features"]}
    assert set(methods) == {"tenure", "monthly", "plan", "region"}  # the tracked profile
    assert report["current_rows"] == 4  # 3 records and the V2 row; the bad one has none
