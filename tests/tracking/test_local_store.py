"""The sqlite MLflow store survives a process killed while creating it.

Fault injection with real processes and SIGKILL at the moment the schema is half made:
once through MLflow's own first use (what used to leave a store every later `ship sync`
failed on), once through Ship's creation. Afterwards a real write goes through.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernel_magics.tracking import local_store
from kernel_magics.tracking.local_store import mlflow_client

pytestmark = pytest.mark.slow


def kill_when(code: str, appears: Path, *, timeout: float = 60) -> None:
    """Run ``code`` in a fresh interpreter; SIGKILL it as soon as ``appears`` has bytes."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size > 0 for p in appears.parent.glob(appears.name)):
                break
            time.sleep(0.005)
        else:
            pytest.fail("the process ended or timed out before the store appeared")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def write_one_run(db: Path, experiment_name: str = "after") -> None:
    client = mlflow_client(f"sqlite:///{db}")
    experiment = client.create_experiment(experiment_name,
                                          artifact_location=db.parent.as_uri())
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "score", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"score": 1.0}


@pytest.fixture(autouse=True)
def fresh_check() -> None:
    local_store._checked.clear()


def test_killed_during_mlflows_own_first_use(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    kill_when("from mlflow.tracking import MlflowClient; "
              f"MlflowClient(tracking_uri='sqlite:///{db}').search_experiments()", db)
    assert db.is_file() and not local_store.complete(db)  # half a schema, as users had
    write_one_run(db)
    assert local_store.complete(db)
    assert list(tmp_path.glob("mlflow.db.incomplete-*"))  # kept aside, not deleted


def test_killed_during_ships_creation(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    kill_when("from pathlib import Path; from kernel_magics.tracking.local_store import "
              f"ensure_store; ensure_store(Path({str(db)!r}))", tmp_path / ".mlflow.db.creating-*")
    assert not db.exists()  # nothing half-made where readers and writers look
    write_one_run(db)
    assert not list(tmp_path.glob(".mlflow.db.creating-*"))


def test_a_store_that_holds_runs_is_left_to_mlflow(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    write_one_run(db)
    local_store._checked.clear()
    before = db.stat().st_size
    write_one_run(db, "again")
    assert db.stat().st_size >= before and not list(tmp_path.glob("mlflow.db.incomplete-*"))
