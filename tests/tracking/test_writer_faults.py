"""A background writer killed at any step of writing a run: `ship sync` finishes the same
run, with nothing duplicated, orphaned RUNNING or lost.

Fault injection with real processes: a real kernel-like IPython process tracks a cell
(with its model), its background writer dies (os._exit, as SIGKILL) right after one
named step (`SHIP_WRITER_CRASH_AT`), then `ship sync` runs as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from kernel_magics.workspace import init_workspace

pytestmark = pytest.mark.slow

STEPS = ["run_created", "run_saved", "logged", "artifacts", "model", "terminated"]

SESSION = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    os.chdir(sys.argv[1])
    from IPython.testing.globalipapp import start_ipython
    ip = start_ipython()
    ip.run_line_magic("load_ext", "kernel_magics")
    ok = ip.run_cell("""%%ship track --model clf --name faulty
    from sklearn.linear_model import LogisticRegression
    X = [[0.0], [1.0], [2.0], [3.0]]
    clf = LogisticRegression().fit(X, [0, 0, 1, 1])
    accuracy = clf.score(X, [0, 0, 1, 1])""").success
    from kernel_magics.tracking.capture import wait_for_background
    from kernel_magics.tracking.daemon import writer_pid
    wait_for_background()
    spool = Path(".ship/spool")
    deadline = time.monotonic() + 120
    time.sleep(1.0)
    while writer_pid(spool) is not None and time.monotonic() < deadline:
        time.sleep(0.1)  # the writer runs until it dies at the injected step
    print("OK" if ok else "FAILED")
''')


@pytest.mark.parametrize("step", STEPS)
def test_a_writer_killed_at_any_step_leaves_one_complete_run(tmp_path: Path,
                                                             step: str) -> None:
    init_workspace(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", SHIP_WRITER_CRASH_AT=step,
               SHIP_WRITER_IDLE_S="2")
    session = subprocess.run([sys.executable, "-c", SESSION, str(tmp_path)], env=env,
                             capture_output=True, text=True, timeout=240)
    assert session.stdout.strip().endswith("OK"), session.stdout + session.stderr
    pending = list((tmp_path / ".ship" / "spool" / "pending").iterdir())
    assert len(pending) == 1  # the writer died before finishing it
    env.pop("SHIP_WRITER_CRASH_AT")
    ship = str(Path(sys.executable).with_name("ship"))
    sync = subprocess.run([ship, "sync", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert json.loads(sync.stdout)["failed"] == {}
    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / '.ship' / 'mlflow.db'}")
    experiments = [e.experiment_id for e in store.search_experiments()]
    runs = store.search_runs(experiments)
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "faulty"
    assert run.data.metrics["accuracy"] == 1.0
    paths = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert {"code", "environment", "ship"} <= paths
    assert run.data.tags.get("ship.model.uri")  # the model was logged once
    assert not list((tmp_path / ".ship" / "spool" / "pending").iterdir())
