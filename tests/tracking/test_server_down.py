"""A real `mlflow server` that is down while cells run and started later: nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow_server import MlflowServer, free_port

from kernel_magics.tracking.daemon import drain, exclusive
from kernel_magics.tracking.spool import Spool

pytestmark = pytest.mark.slow


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path, free_port())
    try:
        yield server
    finally:
        server.stop()


def test_runs_tracked_while_the_server_is_down_reach_it_once_it_is_up(
        nb: Any, workspace: Any, mlflow_server: MlflowServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    nb.run("import numpy as np\nfeatures = np.arange(100.0)")
    record_ids = []
    for alpha in (1, 2):
        start = time.perf_counter()
        out = nb.track(f"alpha = {alpha}\nscore = float(features.mean()) * alpha")
        elapsed = time.perf_counter() - start
        assert out.result.success, out.stdout
        assert elapsed < 2.0, f"the cell took {elapsed:.2f} s with the server down"
        assert "pending" in out.summary
        record_ids.append(out.record_id)

    # The background writer tries, fails, and keeps both records.
    spool = Spool(workspace.spool_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(spool.load_state(r).attempts for r in record_ids):
            break
        time.sleep(0.5)
    assert any(spool.load_state(r).attempts for r in record_ids), "the writer never tried"
    assert sorted(spool.pending()) == sorted(record_ids)
    assert workspace.done() == []
    assert all(spool.load(r).status == "FINISHED" for r in record_ids)

    mlflow_server.start()
    with exclusive(workspace.spool_dir, timeout=60):  # what `ship sync` does
        result = drain(spool, force=True)
    assert not result.failed, result.failed
    assert list(spool.pending()) == []
    assert sorted(workspace.done()) == sorted(record_ids)

    runs = workspace.runs(mlflow_server.url)
    assert len(runs) == 2  # each record once, no duplicates from the failed attempts
    by_alpha = {r.data.params["alpha"]: r for r in runs}
    assert set(by_alpha) == {"1", "2"}
    for alpha, run in by_alpha.items():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["score"] == pytest.approx(49.5 * int(alpha))
        assert run.data.tags["ship.record_id"] in record_ids
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        cell = workspace.artifact_text(run.info.run_id, "code/cell.py", mlflow_server.url)
        assert f"alpha = {alpha}" in cell
    # Artifacts went through the server to its destination folder.
    assert list((mlflow_server.folder / "srv-artifacts").rglob("cell.py"))
