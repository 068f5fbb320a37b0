"""`ship run`: real notebooks through papermill and a real kernel, runs read back from MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

PARAMS = ("lr = 0.1\nepochs = 2", ["parameters"])
TRAIN = ("%%ship track\nimport numpy as np\nX = np.arange(12.0).reshape(6, 2)\n"
         "for e in range(epochs):\n    ship.log(step=e, loss=1.0 / (e + 1))\n"
         "score = float(X.sum()) * lr")


def client(workspace: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{workspace / '.ship' / 'mlflow.db'}")


def runs_of(workspace: Path, experiment: str) -> list:
    found = client(workspace).get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment} missing"
    return client(workspace).search_runs([found.experiment_id])


def test_run_records_parameters_and_executed_notebook(workspace, make_notebook, ship):
    nb = make_notebook("train.ipynb", PARAMS, TRAIN)
    out = workspace / "out.ipynb"
    result = ship("run", str(nb), "-p", "lr", "0.5", "-p", "epochs", "3", "-o", str(out))
    assert result.returncode == 0, result.stderr
    (run,) = runs_of(workspace, "train")
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.5"  # papermill's value, not the notebook's default
    assert run.data.params["epochs"] == "3"
    assert run.data.metrics["score"] == pytest.approx(66.0 * 0.5)
    assert [m.step for m in client(workspace).get_metric_history(run.info.run_id, "loss")] == [
        0, 1, 2]
    assert run.data.tags["ship.batch_id"]
    artifacts = {a.path for a in client(workspace).list_artifacts(run.info.run_id, "code")}
    assert "code/executed.ipynb" in artifacts
    # The summary in the output notebook was finalised with the run id.
    executed = nbformat.read(out, as_version=4)
    texts = [o["data"]["text/plain"] for c in executed.cells for o in c.get("outputs", [])
             if o.get("metadata", {}).get("ship")]
    assert len(texts) == 1 and run.info.run_id in texts[0] and "written to MLflow" in texts[0]


def test_failing_cell_fails_the_run_and_the_command(workspace, make_notebook, ship):
    nb = make_notebook("broken.ipynb", PARAMS,
                       "%%ship track\nx = 1\nraise RuntimeError('data file is empty')",
                       "never = 1")
    out = workspace / "broken-out.ipynb"
    result = ship("run", str(nb), "-o", str(out))
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "data file is empty" in result.stdout
    (run,) = runs_of(workspace, "broken")
    assert run.info.status == "FAILED"
    assert "RuntimeError: data file is empty" in run.data.tags["ship.error"]
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["evalue"] == "data file is empty"
    assert executed.cells[-1].get("outputs") == []  # the cell after the failure never ran


def test_grid_runs_every_point_in_parallel(workspace, make_notebook, ship):
    nb = make_notebook("grid.ipynb", PARAMS, TRAIN)
    result = ship("run", str(nb), "--grid", "lr=0.1,0.2", "--grid", "epochs=1,2",
                  "--parallel", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and len(report["runs"]) == 4
    runs = runs_of(workspace, "grid")
    points = sorted((r.data.params["lr"], r.data.params["epochs"]) for r in runs)
    assert points == [("0.1", "1"), ("0.1", "2"), ("0.2", "1"), ("0.2", "2")]
    assert len({r.data.tags["ship.batch_id"] for r in runs}) == 4
    # Each run is named by its point of the grid, and `ship runs` filters and sorts by it.
    assert sorted(r.info.run_name for r in runs) == [
        "grid lr=0.1 epochs=1", "grid lr=0.1 epochs=2", "grid lr=0.2 epochs=1",
        "grid lr=0.2 epochs=2"]
    chosen = json.loads(ship("runs", "--where", "lr=0.2", "--sort", "-epochs", "--json").stdout)
    assert [(r["params"]["lr"], r["params"]["epochs"]) for r in chosen] == [("0.2", "2"),
                                                                            ("0.2", "1")]
    table = ship("runs", "--where", "epochs=1").stdout
    assert "lr=0.1, epochs=1" in table and "epochs=2" not in table


def test_runs_lists_and_sync_reports(workspace, make_notebook, ship):
    nb = make_notebook("list.ipynb", PARAMS, TRAIN)
    assert ship("run", str(nb), "-o", str(workspace / "o.ipynb")).returncode == 0
    listed = json.loads(ship("runs", "--json").stdout)
    assert [r["experiment"] for r in listed] == ["list"]
    assert listed[0]["status"] == "FINISHED" and listed[0]["written"] is True
    assert listed[0]["metrics"]["score"] == pytest.approx(6.6)
    sync = ship("sync", "--json")
    assert sync.returncode == 0
    assert json.loads(sync.stdout)["failed"] == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.ipynb"], "not found"),
        (["run", "notes.txt"], "not a notebook"),
        (["run", "grid.ipynb", "--grid", "lr"], "not NAME=V1,V2"),
        (["run", "grid.ipynb", "-p", "lr", "1", "--grid", "lr=1,2"], "both with -p and --grid"),
        (["runs", "--experiment", "nope"], "experiment 'nope' not found"),
    ],
)
def test_bad_input_gets_a_clear_error(workspace, make_notebook, ship, args, message):
    make_notebook("grid.ipynb", PARAMS, TRAIN)
    (workspace / "notes.txt").write_text("hello")
    result = ship(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
