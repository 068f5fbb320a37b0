"""A real kernel started the way JupyterLab starts one: magics loaded, notebook known."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def execute(client, code: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """Run `code`; the execute reply and every iopub message it caused."""
    msg_id = client.execute(code)
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    messages = []
    while True:
        try:
            msg = client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return reply["content"], messages


@pytest.fixture
def lab_kernel(tmp_path: Path):
    """A python3 kernel with JPY_SESSION_NAME set, as jupyter_server's session manager does."""
    (tmp_path / ".ship").mkdir()
    notebook = tmp_path / "analysis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(JPY_SESSION_NAME=str(notebook), SHIP_WRITER_IDLE_S="2",
               MLFLOW_DISABLE_TELEMETRY="true")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        yield client, tmp_path, manager
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_magics_are_loaded_and_track_the_notebook(lab_kernel):
    client, root, _ = lab_kernel
    reply, _ = execute(client, "assert get_ipython().find_cell_magic('ship') is not None")
    assert reply["status"] == "ok", reply
    reply, messages = execute(client, "%%ship track\nalpha = 0.5\nscore = alpha * 3\nscore")
    assert reply["status"] == "ok", reply
    kinds = [m["msg_type"] for m in messages]
    assert "execute_result" in kinds  # the cell's last expression is still its result
    summaries = [m["content"] for m in messages if m["msg_type"] == "display_data"
                 and "ship" in m["content"].get("metadata", {})]
    assert len(summaries) == 1
    data = summaries[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data  # the live summary widget
    assert "score=1.5" in data["text/plain"]  # and its text fallback
    (run,) = written_runs(client, root)
    assert run.data.tags["mlflow.source.name"] == str(root / "analysis.ipynb")
    assert run.data.tags["mlflow.source.type"] == "NOTEBOOK"
    assert run.data.params == {"alpha": "0.5"}
    assert run.data.metrics["score"] == 1.5


def written_runs(client, root: Path) -> list:
    """Finish background work in the kernel, write the spool (as `ship sync` does), read back."""
    from kernel_magics.tracking import daemon
    from kernel_magics.tracking.spool import Spool

    execute(client, "from kernel_magics.tracking.capture import wait_for_background\n"
                    "wait_for_background()")
    with daemon.exclusive(root / ".ship" / "spool", timeout=60):
        daemon.drain(Spool(root / ".ship" / "spool"), force=True)
    store = MlflowClient(tracking_uri=f"sqlite:///{root / '.ship' / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("analysis")  # named after the notebook
    return store.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])


def test_interrupt_marks_the_run_killed(lab_kernel):
    client, root, manager = lab_kernel
    msg_id = client.execute("%%ship track\nimport time\nstarted = 1\ntime.sleep(60)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the cell is really running
        msg = client.get_iopub_msg(timeout=30)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "busy"):
            break
    time.sleep(1.0)
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:  # e.g. a late kernel_info reply
        reply = client.get_shell_msg(timeout=30)  # of start-up under load: not this cell's
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, _ = execute(client, "%%ship track\nafter = 2")
    if reply["status"] == "aborted":  # ipykernel aborts what arrives while it stops on
        reply, _ = execute(client, "%%ship track\nafter = 2")  # the error: send it again
    assert reply["status"] == "ok"
    killed, after = written_runs(client, root)
    assert killed.info.status == "KILLED"
    assert killed.data.tags["ship.end_reason"] == "interrupted by the user"
    assert after.info.status == "FINISHED"


def test_failing_cell_reports_the_users_error(lab_kernel):
    client, _, _ = lab_kernel
    reply, messages = execute(client, "%%ship track\nx = 1\n{}['missing']")
    assert reply["status"] == "error"
    assert reply["ename"] == "KeyError" and reply["evalue"] == "'missing'"
    tb = "\n".join(reply["traceback"])
    assert "kernel_magics" not in tb  # Ship's own frames are hidden
    reply, _ = execute(client, "%%ship track\ny = 2")
    assert reply["status"] == "ok"  # the next tracked cell starts cleanly


def test_a_kernel_killed_while_git_is_captured_keeps_the_finished_run(tmp_path: Path):
    # Fault injection: `git` hangs (as `git status` does in a 60,000-file repository), and
    # the kernel is killed right after the tracked cell returned, while Ship captures git in
    # the background. The outcome was spooled before that step: nothing finished is lost.
    from kernel_magics.tracking import daemon
    from kernel_magics.tracking.spool import Spool

    (tmp_path / ".ship").mkdir()
    notebook = tmp_path / "analysis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    slow_bin = tmp_path / "bin"
    slow_bin.mkdir()
    (slow_bin / "git").write_text("#!/bin/sh\nexec sleep 20\n")
    (slow_bin / "git").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(JPY_SESSION_NAME=str(notebook), MLFLOW_DISABLE_TELEMETRY="true",
               PATH=f"{slow_bin}:{env['PATH']}")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        for value in (1, 2, 3):
            reply, _ = execute(client, f"%%ship track\nalpha = {value}\nscore = alpha * 10")
            assert reply["status"] == "ok", reply
        time.sleep(0.5)
        manager.signal_kernel(signal.SIGKILL)  # no atexit, no flush
        manager.shutdown_kernel(now=True)
    finally:
        client.stop_channels()
        manager.cleanup_resources()
    spool = Spool(tmp_path / ".ship" / "spool")
    with daemon.exclusive(spool.directory, timeout=60):
        result = daemon.drain(spool, force=True)
    # (the kernel's own background writer may have written some of them already)
    assert not result.failed and not result.waiting and not list(spool.pending())
    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / '.ship' / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("analysis")
    runs = store.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [r.info.status for r in runs] == ["FINISHED"] * 3
    assert [r.data.metrics["score"] for r in runs] == [10.0, 20.0, 30.0]
    assert "partial" in runs[-1].data.tags["ship.capture"]
