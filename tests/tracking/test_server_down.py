"""A real `mlflow server` that is down while cells run and started later: nothing is lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kernel_magics.tracking.daemon import drain, exclusive
from kernel_magics.tracking.spool import Spool

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlflowServer:
    """`mlflow server` on 127.0.0.1 in its own process group, started on demand."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240.0) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "MLFLOW_DISABLE_TELEMETRY": "true"}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server",
                 "--backend-store-uri", f"sqlite:///{self.folder / 'srv.db'}",
                 "--artifacts-destination", str(self.folder / "srv-artifacts"),
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"mlflow server not healthy after {timeout} s:\n"
                             f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                # The group may outlive its leader (gunicorn/uvicorn workers).
                os.killpg(self.proc.pid, 0)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path, free_port())
    try:
        yield server
    finally:
        server.stop()


def test_runs_tracked_while_the_server_is_down_reach_it_once_it_is_up(
        nb, workspace, mlflow_server, monkeypatch):
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
