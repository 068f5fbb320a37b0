"""`ship run --engine ray`: a grid's points as Ray tasks on a local Ray that `ship run`
starts and shuts down, each run tracked exactly as the local engine tracks it."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from mlflow.tracking import MlflowClient

from kernel_magics.batch import ray_engine, runner

pytestmark = pytest.mark.slow

PARAMS = ("lr = 0.1\nepochs = 2", ["parameters"])
TRAIN = ("%%ship track\nimport numpy as np\nX = np.arange(12.0).reshape(6, 2)\n"
         "for e in range(epochs):\n    ship.log(step=e, loss=1.0 / (e + 1))\n"
         "score = float(X.sum()) * lr")
# Tags whose values differ between any two runs (ids, names, times); their keys count.
# (ship.notebook: each engine ran a copy of its own; ship.cost.basis: measured CPU seconds)
VARYING_TAGS = ("ship.batch_id", "ship.record_id", "mlflow.runName", "mlflow.source.name",
                "ship.notebook", "ship.cost.basis")


@pytest.fixture
def ray_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's own Ray temp folder (short: Ray's socket paths must fit)."""
    folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def recorded(workspace: Path, experiment: str) -> list[dict[str, Any]]:
    """Each run of ``experiment`` as what it holds, by grid point."""
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / '.ship' / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment} missing"
    runs = []
    for run in client.search_runs([found.experiment_id]):
        history = client.get_metric_history(run.info.run_id, "loss")
        runs.append({
            "status": run.info.status,
            "name": run.info.run_name.removeprefix(experiment),
            "params": run.data.params,
            # measured resources (ship.wall_s, ship.cpu_s ...) differ between any two runs
            "metrics": {k: v if not k.startswith("ship.") else "measured"
                        for k, v in run.data.metrics.items()},
            "loss": [(m.step, m.value) for m in history],
            "tags": sorted((k, "" if k in VARYING_TAGS else v)
                           for k, v in run.data.tags.items()),
            "artifacts": sorted(a.path for a in client.list_artifacts(run.info.run_id,
                                                                      "code"))})
    return sorted(runs, key=lambda r: sorted(r["params"].items()))


def test_a_grid_on_ray_is_tracked_as_on_the_local_engine(workspace: Path, make_notebook: Any,
                                                         ship: Any, ray_tmp: str) -> None:
    for name in ("local", "onray"):
        make_notebook(f"{name}.ipynb", PARAMS, TRAIN)
    done = ship("run", "onray.ipynb", "--engine", "ray", "--grid", "lr=0.1,0.2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and len(report["runs"]) == 2
    assert all(r["exit_code"] == 0 and r["seconds"] > 0 for r in report["runs"])
    local = ship("run", "local.ipynb", "--grid", "lr=0.1,0.2", "--parallel", "2", "--json")
    assert local.returncode == 0, local.stderr

    on_ray = recorded(workspace, "onray")
    assert [r["params"] for r in on_ray] == [{"lr": "0.1", "epochs": "2"},
                                             {"lr": "0.2", "epochs": "2"}]
    assert on_ray == recorded(workspace, "local")  # the same records, point by point
    assert all(r["status"] == "FINISHED" and "code/executed.ipynb" in r["artifacts"]
               for r in on_ray)
    for point in report["runs"]:  # summaries finalised in the executed notebooks
        executed = nbformat.read(point["output"], as_version=4)
        texts = [o["data"]["text/plain"] for c in executed.cells
                 for o in c.get("outputs", []) if o.get("metadata", {}).get("ship")]
        assert len(texts) == 1 and "written to MLflow" in texts[0]
    assert not list((workspace / ".ship" / "spool").glob("pending/*"))


def test_without_ray_the_engine_says_what_to_install(workspace: Path, make_notebook: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = make_notebook("train.ipynb", PARAMS, TRAIN)
    monkeypatch.setattr(runner, "ENGINES", ("local",))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    with pytest.raises(Exception, match=r"pip install 'kernel-magics\[ray\]'"):
        runner.run_notebooks(notebook, [{}], engine="ray")
    assert ray_engine.INSTALL == "pip install 'kernel-magics[ray]'"
    with pytest.raises(Exception, match="add --engine ray"):
        runner.run_notebooks(notebook, [{}], address="auto")
