"""Several worker processes: one socket, metrics added up, every worker's log flushed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from live_server import free_port, wait_ready

from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.predlog import read_log

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_workers(tmp_path: Path, digits_bundle: Bundle) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kernel_magics.serving", "serve",
                             str(digits_bundle.path), "--port", str(port), "--workers", "2",
                             "--log-dir", str(tmp_path / "log")], cwd=ROOT,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=90, in_a_row=20)  # both workers warmed up
        ids = []
        for _ in range(40):  # a new connection each: the kernel spreads them over workers
            answer = httpx.post(url + "/invocations", json={"instances": [[1.0] * 64]})
            assert answer.status_code == 200
            ids.append(answer.headers["x-request-id"])
        time.sleep(1.5)  # other workers publish their metrics every second
        text = httpx.get(url + "/metrics").text
        count = re.search(r'ship_requests_total\{model="digits",version="3",'
                          r'endpoint="invocations",code="200"\} (\d+)', text)
        assert count is not None and int(count.group(1)) == 40, text[:600]
        # the log's counters are published by every worker too: all 40 written, and the
        # CPU its background work took (build, write), measured, added up
        written = re.search(r"ship_prediction_log_records_total (\d+)", text)
        assert written is not None and int(written.group(1)) == 40
        for step in ("build", "write"):
            cpu = re.search(rf'ship_prediction_log_cpu_seconds_total\{{step="{step}"\}} '
                            r"([0-9.]+)", text)
            assert cpu is not None and float(cpu.group(1)) > 0, step
        # Scrapes land on either worker: a counter never reads lower than before.
        seen = []
        for _ in range(30):
            assert httpx.post(url + "/invocations",
                              json={"instances": [[1.0] * 64]}).status_code == 200
            scraped = re.search(r'ship_requests_total\{model="digits",version="3",'
                                r'endpoint="invocations",code="200"\} (\d+)',
                                httpx.get(url + "/metrics").text)
            assert scraped is not None
            seen.append(int(scraped.group(1)))
        assert seen == sorted(seen) and seen[-1] >= 41, seen
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    entries = read_log(tmp_path / "log")
    logged = [e.request_id for e in entries]
    assert set(ids) <= set(logged) and len(logged) == len(set(logged)) == 70
    pids = {p.name.split("-")[2] for p in (tmp_path / "log").rglob("*.parquet")}
    assert len(pids) >= 1
