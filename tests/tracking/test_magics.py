"""`%%ship track` in a real IPython shell, written to a real sqlite MLflow store."""

from __future__ import annotations

import json
import time

import mlflow
import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from kernel_magics.errors import NotFoundError, ValidationError
from kernel_magics.magics import usage_errors
from kernel_magics.tracking.fingerprint import fingerprint
from kernel_magics.tracking.summary import SUMMARY_MIME

pytestmark = pytest.mark.slow  # every tracked cell starts the background writer process

SETUP = """
import numpy as np
import pandas as pd
df = pd.DataFrame({"x": np.arange(1000, dtype="float64"), "label": ["a", "b"] * 500})
"""

TRAIN = """
lr = 0.01
momentum = -0.5
layers = [64, 32]
opts = {"optimizer": "adam", "betas": [0.9, 0.999]}
run_label = "baseline"
verbose = True
best = 0.0
for epoch in range(3):
    loss = 1.0 / (epoch + 1)
    acc = float((df["x"] > epoch * 300).mean())
    best = max(best, acc)
    ship.log(step=epoch, loss=loss, acc=acc)
mean_x = df["x"].mean()
n_rows = len(df)
is_good = best > 0.5
label_counts = df["label"].value_counts()
"""


def updates_of(captured, record_id: str) -> list:
    return [o for o in captured.outputs
            if o.data.get(SUMMARY_MIME, {}).get("record_id") == record_id]


def user_metrics(run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if not k.startswith("ship.")}


def test_tracked_cell_becomes_one_complete_run(nb, workspace, notebook_path):
    nb.run(SETUP)
    with capture_output(display=True) as later:  # what is displayed after the cell returns
        out = nb.track(TRAIN)
        assert out.result.success, out.stdout
        assert "pending" in out.summary and "lr=0.01" in out.summary
        # Zero configuration: the workspace is created, the background writer does the rest.
        assert (workspace.ship_dir / "ship.toml").is_file()
        workspace.wait_written(1)
        deadline = time.monotonic() + 30
        while not updates_of(later, out.record_id) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert mlflow.active_run() is None
    # The summary is updated in place once the run is written.
    [update] = updates_of(later, out.record_id)
    assert update.update and update.data[SUMMARY_MIME]["state"] == "written"
    assert "written to MLflow" in update.data["text/plain"]

    run = workspace.only_run()
    client = workspace.client()
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "train"
    assert run.info.artifact_uri.startswith((workspace.ship_dir / "artifacts").as_uri())
    assert run.data.params == {
        "lr": "0.01", "momentum": "-0.5", "layers": "[64, 32]",
        "opts": "{'optimizer': 'adam', 'betas': [0.9, 0.999]}", "run_label": "baseline",
        "verbose": "True"}
    # Computed numeric scalars; not the bool, the Series, the loop variable or the params.
    assert user_metrics(run) == pytest.approx({
        "best": 0.999, "loss": 1 / 3, "acc": 0.399, "mean_x": 499.5, "n_rows": 1000.0})
    assert {"ship.wall_s", "ship.cpu_s", "ship.peak_memory_mb",
            "ship.cost_estimate"} <= set(run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "loss")
    history = sorted(history, key=lambda m: m.step)
    assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in history] == pytest.approx([1.0, 0.5, 1 / 3])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "acc")] == [0, 1, 2]

    tags = run.data.tags
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.source.name"] == str(notebook_path)
    assert tags["ship.record_id"] == out.record_id == workspace.done()[0]
    assert tags["mlflow.runName"].startswith("train-")
    assert "ship.warnings" not in tags

    [dataset_input] = run.inputs.dataset_inputs
    expected = fingerprint("df", nb.ns["df"])
    assert dataset_input.dataset.name == "df"
    assert dataset_input.dataset.digest == expected.digest
    assert json.loads(dataset_input.dataset.profile)["shape"] == [1000, 2]
    schema = json.loads(dataset_input.dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == ["x", "label"]

    assert {"code/cell.py", "code/history.py", "code/notebook.ipynb",
            "environment/requirements.lock", "ship/ship-record.json"} <= \
        workspace.artifact_paths(run.info.run_id)
    cell = workspace.artifact_text(run.info.run_id, "code/cell.py")
    assert cell.strip() == TRAIN.strip()
    history_py = workspace.artifact_text(run.info.run_id, "code/history.py")
    assert 'df = pd.DataFrame({"x"' in history_py and "%%ship track" in history_py
    lock = workspace.artifact_text(run.info.run_id, "environment/requirements.lock")
    assert f"numpy=={np.__version__}\n" in lock and "\nmlflow==" in lock


def test_metrics_option_narrows_the_metrics(nb, workspace):
    nb.run(SETUP)
    assert nb.track("a = 1.5\nb = 2 * 3\nc = 7 / 2", args="--metrics a,c").result.success
    assert nb.track("d = 4 * 2", args="--metrics typo").result.success  # the cell still runs
    workspace.sync_cleanly()
    narrowed, typo = workspace.runs()
    assert user_metrics(narrowed) == {"a": 1.5, "c": 3.5}
    assert user_metrics(typo) == {}
    assert "'typo'" in typo.data.tags["ship.warnings"]


def test_experiment_name_and_tags_are_respected(nb, workspace):
    out = nb.track("z = 2 ** 10",
                   args='--experiment "vision exp" --name first-try --tag team=vision '
                        "-t formula=a=b")
    assert out.result.success
    workspace.sync()
    run = workspace.only_run()
    assert workspace.client().get_experiment(run.info.experiment_id).name == "vision exp"
    assert run.data.tags["mlflow.runName"] == "first-try"
    assert run.data.tags["team"] == "vision"
    assert run.data.tags["formula"] == "a=b"
    assert user_metrics(run) == {"z": 1024.0}


@pytest.mark.parametrize(("line", "cell", "expected"), [
    ("track --tag novalue", "x = 1", "--tag 'novalue' is not KEY=VALUE"),
    ("track --tag =v", "x = 1", "is not KEY=VALUE"),
    ("trak", "x = 1", "Unknown ship command 'trak'"),
    ("track --bogus", "x = 1", "unrecognized arguments: --bogus"),
    ("track --model 2fast", "x = 1", "--model takes a variable name"),
    ("track --metrics ,", "x = 1", "--metrics needs names"),
    ('track --name "unclosed', "x = 1", "Quote values with spaces"),
    ("track", None, "put `%%ship track` on the first line"),
])
def test_bad_arguments_raise_usage_error_and_track_nothing(shell, workspace, line, cell,
                                                           expected):
    with pytest.raises(UsageError) as info:
        if cell is None:
            shell.run_line_magic("ship", line)
        else:
            shell.run_cell_magic("ship", line, cell)
    assert expected in str(info.value)
    if "Unknown" in expected:
        assert "%%ship track [--experiment E]" in str(info.value)  # what to type instead
    if "unrecognized" in expected:
        assert "Usage: %%ship track" in str(info.value)
    assert "x" not in shell.user_ns  # the cell did not run
    assert workspace.pending() == [] and workspace.done() == []


def test_core_errors_become_usage_errors_with_the_usage_for_bad_input():
    usage = "%ship drift NAME [--window W]"
    with pytest.raises(UsageError) as info, usage_errors(usage):
        raise ValidationError("--window 5 is not a duration.", hint="Try --window 1h.")
    assert str(info.value) == f"--window 5 is not a duration. Try --window 1h.\nUsage: {usage}"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(UsageError) as info, usage_errors(usage):
        raise NotFoundError("service", "shop")
    assert str(info.value) == "service 'shop' not found."
    with usage_errors(usage):
        pass  # nothing raised, nothing mapped


def test_ship_log_outside_a_tracked_cell_says_what_to_do(nb):
    out = nb.execute("ship.log(step=0, loss=1.0)")
    assert "%%ship track" in str(out.result.error_in_exec)
    out = nb.track("for i in range(2):\n    ship.log(step=i, loss='high')")
    assert "pass a finite number" in str(out.result.error_in_exec)


def test_failing_cell_reaches_the_user_unchanged_and_run_is_failed(nb, workspace):
    nb.run("err = ValueError('learning rate must be positive, got -1')")
    out = nb.track("partial = 6 * 7\nraise err")
    assert out.result.error_before_exec is None
    assert out.result.error_in_exec is nb.ns["err"]  # the very same exception object
    assert "kernel_magics" not in out.stdout  # Ship's frames are hidden from the user
    assert "raise err" in out.stdout

    out = nb.track("ratio = 1 / 0")
    assert isinstance(out.result.error_in_exec, ZeroDivisionError)
    assert str(out.result.error_in_exec) == "division by zero"

    workspace.sync()
    first, second = workspace.runs()
    assert first.info.status == second.info.status == "FAILED"
    assert first.data.tags["ship.error"] == \
        "ValueError: learning rate must be positive, got -1"
    assert user_metrics(first) == {"partial": 42.0}  # what the cell computed before failing
    traceback_text = workspace.artifact_text(first.info.run_id, "error/traceback.txt")
    assert "raise err" in traceback_text
    assert traceback_text.rstrip().endswith(
        "ValueError: learning rate must be positive, got -1")
    assert "ZeroDivisionError: division by zero" in \
        workspace.artifact_text(second.info.run_id, "error/traceback.txt")


@pytest.mark.parametrize("interrupt", [
    "raise KeyboardInterrupt",
    # What Jupyter does on "interrupt kernel": SIGINT to the kernel process mid-cell.
    "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)",
])
def test_interrupted_cell_is_killed_and_the_next_cell_works(nb, workspace, interrupt):
    out = nb.track("before = 3 * 3\n" + interrupt)
    assert isinstance(out.result.error_in_exec, KeyboardInterrupt)
    out = nb.track("after = 2 + 2")
    assert out.result.success
    assert "already active" not in out.stdout
    assert mlflow.active_run() is None
    out = nb.track("again = 5 - 1")
    assert out.result.success

    workspace.sync_cleanly()  # the background writer may have written some already
    killed, after, again = workspace.runs()
    assert killed.info.status == "KILLED"
    assert killed.data.tags["ship.end_reason"] == "interrupted by the user"
    assert user_metrics(killed) == {"before": 9.0}
    assert (after.info.status, user_metrics(after)) == ("FINISHED", {"after": 4.0})
    assert (again.info.status, user_metrics(again)) == ("FINISHED", {"again": 4.0})
    assert mlflow.active_run() is None
    assert workspace.pending() == []


SKLEARN_MODEL = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_iris(return_X_y=True)
C = 0.5
clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X, y)
train_acc = clf.score(X, y)
"""

TORCH_MODEL = """
import torch
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x):
        return self.body(x).softmax(dim=-1)

torch.manual_seed(0)
hidden = 8
net = TinyNet(hidden)
probe = torch.randn(5, 4)
with torch.no_grad():
    expected = net(probe)
"""


def test_sklearn_model_is_logged_and_loadable(nb, workspace):
    assert nb.track(SKLEARN_MODEL, args="--model clf").result.success
    workspace.sync_cleanly()
    run = workspace.only_run()
    assert run.data.params["C"] == "0.5"
    assert run.data.metrics["train_acc"] == pytest.approx(nb.ns["train_acc"])
    assert run.data.tags["ship.model.variable"] == "clf"
    assert run.data.tags["ship.model.class"] == "sklearn.pipeline.Pipeline"
    mlflow.set_tracking_uri(workspace.tracking_uri)
    loaded = mlflow.sklearn.load_model(run.data.tags["ship.model.uri"])
    X = nb.ns["X"]
    assert (loaded.predict(X) == nb.ns["clf"].predict(X)).all()


def test_torch_module_defined_in_the_cell_is_logged_and_loadable(nb, workspace):
    import torch

    assert nb.track(TORCH_MODEL, args="--model net").result.success
    workspace.sync_cleanly()
    run = workspace.only_run()
    assert run.data.params["hidden"] == "8"
    assert run.data.tags["ship.model.class"].endswith("TinyNet")
    mlflow.set_tracking_uri(workspace.tracking_uri)
    loaded = mlflow.pytorch.load_model(run.data.tags["ship.model.uri"])
    with torch.no_grad():
        assert torch.allclose(loaded(nb.ns["probe"]), nb.ns["expected"])


def test_a_failed_cell_logs_no_model(nb, workspace):
    out = nb.track(SKLEARN_MODEL + "raise RuntimeError('evaluation failed')", args="--model clf")
    assert isinstance(out.result.error_in_exec, RuntimeError)
    workspace.sync()
    run = workspace.only_run()
    assert run.info.status == "FAILED"
    assert "ship.model.uri" not in run.data.tags


# A notebook the tests have not seen: pandas preprocessing, sklearn, a torch training loop.
NOTEBOOK_SETUP = """
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

raw = load_breast_cancer(as_frame=True).frame
raw.loc[raw.index[::37], "mean area"] = np.nan  # the real world has holes
"""

NOTEBOOK_TRAIN = """
import torch
from torch import nn
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

seed = 7
test_size = 0.25
area_edges = [0, 500, 1000, 5000]
epochs = 25
hidden = 16
learning_rate = 0.02

frame = raw.copy()
frame["mean area"] = frame["mean area"].fillna(frame["mean area"].median())
frame["area_bucket"] = pd.cut(frame["mean area"], bins=area_edges, labels=["s", "m", "l"])
frame = pd.get_dummies(frame, columns=["area_bucket"], dtype="float64")
feature_cols = [c for c in frame.columns if c != "target"]
X_train, X_test, y_train, y_test = train_test_split(
    frame[feature_cols], frame["target"], test_size=test_size, random_state=seed,
    stratify=frame["target"])
mu, sigma = X_train.mean(), X_train.std().replace(0, 1)
X_train, X_test = (X_train - mu) / sigma, (X_test - mu) / sigma
n_features = X_train.shape[1]

forest = RandomForestClassifier(n_estimators=50, random_state=seed).fit(X_train, y_train)
forest_auc = roc_auc_score(y_test, forest.predict_proba(X_test)[:, 1])

torch.manual_seed(seed)
xt = torch.tensor(X_train.to_numpy(), dtype=torch.float32)
yt = torch.tensor(y_train.to_numpy(), dtype=torch.float32)
xv = torch.tensor(X_test.to_numpy(), dtype=torch.float32)
model = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
loss_fn = nn.BCEWithLogitsLoss()
for epoch in range(epochs):
    optimizer.zero_grad()
    train_loss = loss_fn(model(xt).squeeze(1), yt)
    train_loss.backward()
    optimizer.step()
    with torch.no_grad():
        val_acc = ((model(xv).squeeze(1) > 0).numpy() == y_test.to_numpy()).mean()
    ship.log(step=epoch, train_loss=train_loss.item(), val_acc=val_acc)
with torch.no_grad():
    val_probs = torch.sigmoid(model(xv).squeeze(1)).numpy()
torch_auc = roc_auc_score(y_test, val_probs)
"""


def test_unseen_notebook_with_pandas_sklearn_and_torch(nb, workspace):
    import torch

    nb.run(NOTEBOOK_SETUP)
    out = nb.track(NOTEBOOK_TRAIN, args="--experiment cancer --model model")
    assert out.result.success, out.stdout
    workspace.sync_cleanly()
    run = workspace.only_run()
    client = workspace.client()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"seed": "7", "test_size": "0.25",
                               "area_edges": "[0, 500, 1000, 5000]", "epochs": "25",
                               "hidden": "16", "learning_rate": "0.02"}
    metrics = user_metrics(run)
    assert 0.9 < metrics["forest_auc"] <= 1.0
    assert 0.9 < metrics["torch_auc"] <= 1.0
    assert metrics["n_features"] == 33.0  # 30 features + 3 area buckets
    assert 0.5 < metrics["val_acc"] <= 1.0  # a numpy scalar, also logged as a series
    assert "epoch" not in metrics and "seed" not in metrics
    losses = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in losses) == list(range(25))
    by_step = {m.step: m.value for m in losses}
    assert by_step[24] < by_step[0]
    assert len(client.get_metric_history(run.info.run_id, "val_acc")) == 25

    digests = {d.dataset.name: d.dataset.digest for d in run.inputs.dataset_inputs}
    assert digests["raw"] == fingerprint("raw", nb.ns["raw"]).digest  # the input, as read
    assert digests["xt"] == fingerprint("xt", nb.ns["xt"]).digest  # produced by the cell
    assert "frame" in digests and "X_train" in digests

    mlflow.set_tracking_uri(workspace.tracking_uri)
    loaded = mlflow.pytorch.load_model(run.data.tags["ship.model.uri"])
    with torch.no_grad():
        assert torch.allclose(loaded(nb.ns["xv"]), nb.ns["model"](nb.ns["xv"]))


def test_environment_change_is_shown_against_the_previous_run(nb):
    first = nb.track("a = 1 + 1")
    second = nb.track("b = 2 + 2")
    other = nb.track("c = 3 + 3", args="--experiment elsewhere")
    env_line = [line for line in second.summary.splitlines() if "environment" in line]
    assert "first run of experiment" in first.summary
    assert len(env_line) == 1 and "unchanged since last run" in env_line[0]
    assert "first run of experiment" in other.summary


def test_papermill_and_notebook_parameters_are_params(nb, workspace, notebook_path,
                                                     make_notebook):
    # The saved notebook tags its defaults cell `parameters`, as papermill expects.
    make_notebook(notebook_path, ["epochs = 3\nbatch_size = 16", "%%ship track\n..."])
    notebook = json.loads(notebook_path.read_text())
    notebook["cells"][0]["metadata"]["tags"] = ["parameters"]
    notebook_path.write_text(json.dumps(notebook))
    nb.run("epochs = 3\nbatch_size = 16")
    nb.run("# Parameters\nalpha = 0.5\nepochs = 20\n")  # what papermill injects after it
    assert nb.track("score = alpha * epochs * batch_size").result.success
    workspace.sync()
    run = workspace.only_run()
    assert run.data.params == {"alpha": "0.5", "epochs": "20", "batch_size": "16"}
    assert run.data.metrics["score"] == 160.0
    record = json.loads(workspace.artifact_text(run.info.run_id, "ship/ship-record.json"))
    assert record["papermill_params"] == {"alpha": "0.5", "epochs": "20"}


def test_cost_uses_the_workspace_price_table(nb, workspace):
    workspace.ship_dir.mkdir()
    (workspace.ship_dir / "ship.toml").write_text(
        '[cost]\ncurrency = "EUR"\ncpu_core_hour = 3600.0\n', encoding="utf-8")
    out = nb.track("total = 0\nfor i in range(300_000):\n    total += i * i")
    assert out.result.success
    assert "EUR (estimate)" in out.summary
    workspace.sync()
    run = workspace.only_run()
    metrics = run.data.metrics
    assert metrics["ship.cpu_s"] > 0 and metrics["ship.wall_s"] > 0
    assert metrics["ship.peak_memory_mb"] > 1
    # 3600 EUR per core-hour is 1 EUR per CPU second; GPU and memory cost nothing here.
    assert metrics["ship.cost_estimate"] == pytest.approx(metrics["ship.cpu_s"], rel=1e-3)
    assert run.data.tags["ship.cost.currency"] == "EUR"
    assert run.data.tags["ship.cost.basis"].startswith("estimate")


def test_a_bad_price_table_stops_the_cell_before_it_runs(nb, workspace):
    workspace.ship_dir.mkdir()
    (workspace.ship_dir / "ship.toml").write_text('[cost]\ncpu_core_hour = "cheap"\n',
                                                 encoding="utf-8")
    out = nb.track("ran = 1")
    assert isinstance(out.result.error_in_exec, UsageError)
    assert "cpu_core_hour must be a non-negative number" in str(out.result.error_in_exec)
    assert "ran" not in nb.ns
    assert workspace.pending() == []


def test_without_a_notebook_path_artifacts_stay_in_the_workspace(nb, workspace, monkeypatch):
    monkeypatch.delenv("SHIP_NOTEBOOK")  # e.g. a terminal IPython: no notebook known
    assert nb.track("q = 1 + 2").result.success
    workspace.sync()
    run = workspace.only_run()
    assert run.data.tags["mlflow.runName"].startswith("cell-")
    assert "mlflow.source.name" not in run.data.tags
    # Named after the workspace, not MLflow's "Default" (whose artifacts live elsewhere).
    experiment = workspace.client().get_experiment(run.info.experiment_id)
    assert experiment.name == workspace.root.name
    assert run.info.artifact_uri.startswith(workspace.ship_dir.as_uri())
    assert not (workspace.root / "mlruns").exists()
