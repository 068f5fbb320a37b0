"""Durability: spooled records are written once, even after a dead kernel or a failed write."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from kernel_magics.tracking.daemon import drain, exclusive
from kernel_magics.tracking.record import RunRecord
from kernel_magics.tracking.spool import Spool, WriteState, new_record_id
from kernel_magics.tracking.writer import KERNEL_DIED


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_kernel() -> tuple[int, float]:
    """The pid and start time of a process that has exited (a crashed kernel)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    started = psutil.Process(proc.pid).create_time()
    proc.communicate(b"")
    assert proc.returncode == 0
    return proc.pid, started


def make_record(workspace, *, status="FINISHED", pid=None, started=None, uri=None,
                experiment="spooled", **fields) -> RunRecord:
    """A record as a kernel spools it, written with the Spool API."""
    me = psutil.Process()
    record = RunRecord(
        record_id=new_record_id(), experiment=experiment, run_name="by-hand",
        tracking_uri=uri or workspace.tracking_uri, workspace=str(workspace.root),
        status=status, start_time_ms=int(time.time() * 1000) - 60_000,
        end_time_ms=None if status == "RUNNING" else int(time.time() * 1000),
        params={"lr": "0.1"}, kernel_pid=pid or me.pid,
        kernel_started=started if started is not None else me.create_time(), **fields)
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    folder = spool.open_record(record)
    (folder / "cell.py").write_text("lr = 0.1\ntrain()\n", encoding="utf-8")
    return record


def test_running_record_of_a_dead_kernel_is_written_as_failed(workspace, dead_kernel):
    pid, started = dead_kernel
    record = make_record(workspace, status="RUNNING", pid=pid, started=started)
    spool = Spool(workspace.spool_dir)
    steps = spool.record_dir(record.record_id) / "steps.jsonl"
    steps.write_text("".join(json.dumps({"t": record.start_time_ms + i, "step": i,
                                         "values": {"loss": 1.0 / (i + 1)}}) + "\n"
                             for i in range(3)) + '{"t": 1, "st', encoding="utf-8")
    last_step_at = time.time() - 30
    os.utime(steps, (last_step_at, last_step_at))

    result = drain(spool)
    assert [w.record_id for w in result.written] == [record.record_id]
    assert not result.failed and not result.waiting
    assert list(spool.pending()) == []
    assert spool.written(record.record_id).status == "FAILED"

    run = workspace.only_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["ship.end_reason"] == KERNEL_DIED
    assert run.data.params == {"lr": "0.1"}
    # The series logged before the crash survives (the torn last line is skipped) and the
    # run ends when the kernel last logged, not when the writer found it.
    history = workspace.client().get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert abs(run.info.end_time - last_step_at * 1000) < 1000
    assert workspace.artifact_text(run.info.run_id, "code/cell.py") == "lr = 0.1\ntrain()\n"


def test_running_record_of_a_live_kernel_waits(workspace):
    record = make_record(workspace, status="RUNNING")  # this process: alive
    spool = Spool(workspace.spool_dir)
    result = drain(spool, force=True)
    assert result.waiting == [record.record_id]
    assert not result.written and not result.failed
    assert list(spool.pending()) == [record.record_id]
    assert spool.load(record.record_id).status == "RUNNING"


def test_a_failed_write_keeps_the_record_and_counts_the_attempt(workspace):
    port = free_port()  # nothing listens there
    record = make_record(workspace, uri=f"http://127.0.0.1:{port}")
    spool = Spool(workspace.spool_dir)

    before = time.time()
    result = drain(spool)
    assert list(result.failed) == [record.record_id]
    assert f"127.0.0.1:{port}" in result.failed[record.record_id]
    assert not result.written
    assert list(spool.pending()) == [record.record_id]
    state = spool.load_state(record.record_id)
    assert state.attempts == 1
    assert state.run_id is None
    assert f"127.0.0.1:{port}" in state.last_error
    assert state.next_attempt_at > before
    assert spool.load(record.record_id) == record  # the record itself is untouched

    # Within the backoff, a normal pass leaves it alone; `ship sync` (force) tries again.
    again = drain(spool)
    assert record.record_id in again.failed
    assert spool.load_state(record.record_id).attempts == 1
    forced = drain(spool, force=True)
    assert record.record_id in forced.failed
    assert spool.load_state(record.record_id).attempts == 2
    assert list(spool.pending()) == [record.record_id]


def test_a_retry_resumes_the_run_it_created_instead_of_duplicating_it(workspace):
    record = make_record(workspace, experiment="resumed")
    client = workspace.client()
    experiment_id = client.create_experiment(
        "resumed", artifact_location=(workspace.ship_dir / "artifacts" / "resumed").as_uri())
    # A previous attempt created the run and saved its id, then failed (say, mid-upload).
    half_done = client.create_run(experiment_id, run_name="by-hand")
    spool = Spool(workspace.spool_dir)
    spool.save_state(record.record_id, WriteState(run_id=half_done.info.run_id, attempts=1,
                                                  last_error="ConnectionError: reset"))

    result = drain(spool)
    assert [w.run_id for w in result.written] == [half_done.info.run_id]
    run = workspace.only_run()
    assert run.info.run_id == half_done.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"}


def test_an_unreadable_record_is_reported_and_kept(workspace):
    good = make_record(workspace)
    broken = make_record(workspace)
    spool = Spool(workspace.spool_dir)
    folder = spool.record_dir(broken.record_id)
    (folder / "record.json").write_text('{"record_id": ', encoding="utf-8")
    with exclusive(workspace.spool_dir):  # what `ship sync` holds while it drains
        result = drain(spool, force=True)
    # Just written: its kernel may still be writing it, so it waits rather than fails.
    assert [w.record_id for w in result.written] == [good.record_id]
    assert result.waiting == [broken.record_id] and not result.failed
    old = time.time() - 60
    os.utime(folder, (old, old))
    with exclusive(workspace.spool_dir):
        result = drain(spool, force=True)
    assert "unreadable record" in result.failed[broken.record_id]
    assert list(spool.pending()) == [broken.record_id]
