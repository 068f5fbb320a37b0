"""The prediction log: flushed every interval, on graceful shutdown, and after kill -9 it
has lost at most the last interval."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.fs as pafs
import pytest
from live_server import free_port

from kernel_magics.serving.bundle import Bundle, write_bundle
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import (
    Prediction,
    PredictionLog,
    parse_since,
    read_log,
    register_filesystem,
)

ROOT = Path(__file__).resolve().parents[2]
ROW = [2.0] * 64


def with_interval(bundle: Bundle, dest: Path, seconds: float) -> Bundle:
    manifest = bundle.manifest
    runtime = replace(manifest.runtime, log_flush_interval_s=seconds)
    return write_bundle(dest, manifest=replace(manifest, runtime=runtime),
                        schema=bundle.schema, model=bundle.model_path)


def serve_subprocess(bundle: Bundle, log_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel_magics.serving", "serve", str(bundle.path),
         "--port", str(port), "--log-dir", str(log_dir)],
        cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).is_success:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError(proc.stderr.read().decode() if proc.stderr else "not ready")


def send(port: int, count: int) -> list[str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        return [client.post("/invocations", json={"instances": [ROW]}).headers["x-request-id"]
                for _ in range(count)]


def test_unit_flushes_every_interval(tmp_path: Path, digits_bundle: Bundle) -> None:
    log = PredictionLog(tmp_path, flush_interval=0.1)
    log.register("digits", "3", digits_bundle.schema, identity=True)
    log.start()
    try:
        log.append(Prediction("r1", time.time(), "digits", "3", "invocations", 200, 1.5, None,
                   Inputs(rows=2, matrix=np.ones((2, 64))), None, np.array([1, 2]), None))
        time.sleep(0.4)
        entries = read_log(tmp_path)  # written by the thread, no close()
        assert [e.request_id for e in entries] == ["r1"]
        assert entries[0].inputs is not None and entries[0].inputs["pixel_0"] == [1.0, 1.0]
        assert entries[0].outputs == "[1,2]" and entries[0].rows == 2
    finally:
        log.close()
    assert not list(tmp_path.rglob("*.tmp"))


def test_server_loop_does_the_work_for_a_local_folder(tmp_path: Path,
                                                     digits_bundle: Bundle) -> None:
    """Given the event loop, a local log builds and writes in loop callbacks: no thread."""
    log = PredictionLog(tmp_path / "log", flush_interval=0.2)
    log.register("digits", "3", digits_bundle.schema, identity=True)

    async def serve() -> list[str]:
        log.start(asyncio.get_running_loop())
        assert log._thread is None
        for i in range(30):
            log.append(Prediction(f"r{i}", time.time(), "digits", "3", "invocations", 200,
                                  1.0, None, Inputs(rows=1, matrix=np.full((1, 64), i,
                                                                           np.float32)),
                                  None, b"[1]", None))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # at least one flush after the last record
        written = [e.request_id for e in read_log(tmp_path / "log")]
        log.append(Prediction("last", time.time(), "digits", "3", "invocations", 200, 1.0, None,
                   Inputs(rows=1, matrix=np.zeros((1, 64), np.float32)), None, b"[0]",
                   None))
        log.close()  # on the loop, as the server's lifespan does
        return written

    written = asyncio.run(serve())
    assert written == [f"r{i}" for i in range(30)]  # before close(): the loop wrote them
    entries = read_log(tmp_path / "log")
    assert [e.request_id for e in entries][-1] == "last"
    assert entries[5].inputs is not None and entries[5].inputs["pixel_0"] == [5.0]
    assert len(list((tmp_path / "log" / "predictions").rglob("*.parquet"))) >= 2


def test_object_store_is_written_from_a_thread(tmp_path: Path) -> None:
    """A store that is not a local folder may block on the network: never on the loop."""
    register_filesystem("slowstore", lambda url: (
        pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "log"))
    log = PredictionLog("slowstore://bucket/log", flush_interval=0.1)

    async def serve() -> None:
        log.start(asyncio.get_running_loop())
        assert log._thread is not None and log._timer is None
        log.append(Prediction("r1", time.time(), "m", "1", "invocations", 200, 1.0, None, None,
                   {"raw": 1}, None, None))
        await asyncio.sleep(0.3)
        log.close()

    asyncio.run(serve())
    assert [e.request_id for e in read_log(tmp_path / "log")] == ["r1"]


def test_graceful_shutdown_flushes(tmp_path: Path, digits_bundle: Bundle,
                                   free_port_: int) -> None:
    # A 30 s interval: only the shutdown flush can have written these.
    bundle = with_interval(digits_bundle, tmp_path / "slow" / "3", 30.0)
    proc = serve_subprocess(bundle, tmp_path / "log", free_port_)
    ids = send(free_port_, 25)
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: -15 is its normal exit.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert sorted(e.request_id for e in read_log(tmp_path / "log")) == sorted(ids)


def test_kill_9_loses_at_most_the_last_interval(tmp_path: Path, digits_bundle: Bundle,
                                                free_port_: int) -> None:
    interval = digits_bundle.manifest.runtime.log_flush_interval_s  # 0.2 s
    proc = serve_subprocess(digits_bundle, tmp_path / "log", free_port_)
    ids = send(free_port_, 25)
    time.sleep(interval * 5 + 0.5)  # several intervals (and the write itself) have passed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert sorted(e.request_id for e in read_log(tmp_path / "log")) == sorted(ids)
    assert not list((tmp_path / "log").rglob("*.tmp"))


def test_read_log_since_and_limit(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    now = time.time()
    for i, age in enumerate((7200, 60, 1)):
        log.append(Prediction(f"r{i}", now - age, "m", "1", "invocations", 200, 1.0, None, None,
                   {"raw_body": "x"}, None, "boom" if i == 2 else None))
    log.close()
    assert [e.request_id for e in read_log(tmp_path)] == ["r0", "r1", "r2"]
    assert [e.request_id for e in read_log(tmp_path, since="10m")] == ["r1", "r2"]
    assert [e.request_id for e in read_log(tmp_path, limit=1)] == ["r2"]
    assert [e.request_id for e in read_log(tmp_path, errors_only=True)] == ["r2"]
    assert read_log(tmp_path / "nothing") == []
    fixed = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now=fixed) == fixed - timedelta(hours=2)
    assert parse_since("2026-01-02T10:00") == datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
    with pytest.raises(Exception, match="duration"):
        parse_since("yesterday")


def test_failed_writes_are_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log folder should be")
    log = PredictionLog(blocker)
    log.append(Prediction("r1", time.time(), "m", "1", "e", 200, 1.0, None, None, None, None, None))
    assert log.flush() == 0 and log.dropped == 0
    blocker.unlink()
    assert log.flush() == 1
    assert [e.request_id for e in read_log(blocker)] == ["r1"]


@pytest.fixture
def free_port_() -> int:
    return free_port()


def test_typed_inputs_for_mixed_features(start_server: Any, tabular_bundle: Bundle) -> None:
    running = start_server(tabular_bundle)
    with running.client() as client:
        client.post("/invocations", json={"dataframe_records": [
            {"age": None, "income": 10.0, "city": "paris"},
            {"age": 30.0, "income": 20.0, "city": "lyon"}]})
        tensors = {"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [1, 3],
                               "data": [0.1, 0.2, 1.0]}]}
        assert client.post("/v2/models/churn/infer", json=tensors).status_code == 200
    running.stop()
    first, second = read_log(running.log_dir)
    assert first.inputs is not None
    assert first.inputs["city"] == ["paris", "lyon"] and first.inputs["income"] == [10.0, 20.0]
    assert first.rows == 2 and len(json.loads(first.outputs or "")) == 2
    # model tensors of a bundle with preprocess are not features: typed, flattened
    assert second.inputs is None and second.raw_inputs is None
    assert second.tensors is not None
    assert second.tensors["float_input"] == pytest.approx([0.1, 0.2, 1.0])
    # a V2 JSON answer's outputs list, as answered (not rendered again)
    answered = json.loads(second.outputs or "")
    assert [t["name"] for t in answered] == ["label", "probabilities"]
    assert answered[1]["shape"] == [1, 2] and len(answered[1]["data"]) == 2
