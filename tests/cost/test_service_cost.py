"""Service cost from the serving processes' own accounting: real servers, real requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from live_server import RunningServer, free_port, wait_ready

from kernel_magics.cli import main
from kernel_magics.cost.service import read_usage, service_cost
from kernel_magics.errors import NotFoundError
from kernel_magics.workspace import Workspace

ROW = [3.0] * 64


def _records(log_dir: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in sorted((log_dir / "usage").rglob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def test_requests_are_counted_exactly_and_priced(
        cost_workspace: Workspace, serve_in_thread: Callable[..., RunningServer]) -> None:
    from kernel_magics.serving.bundle import Bundle

    bundle = Bundle.load(cost_workspace.services_dir / "digits" / "1")
    log_dir = cost_workspace.services_dir / "digits" / "log"
    running = serve_in_thread(bundle, log_dir)
    with httpx.Client(base_url=running.url, timeout=10) as client:
        for _ in range(150):  # 150 requests of 1 row
            assert client.post("/invocations", json={"instances": [ROW]}).status_code == 200
        for _ in range(10):  # 10 requests of 5 rows
            assert client.post("/invocations", json={"instances": [ROW] * 5}).status_code == 200
        for _ in range(3):  # errors: counted as requests, not predictions
            assert client.post("/invocations", json={"instances": [[1.0]]}).status_code == 400
        client.post("/feedback", json={"request_id": "nope", "ground_truth": 1})
        time.sleep(0.5)  # at least one periodic record while serving
        metrics = client.get("/metrics").text
    assert 'ship_predictions_total{model="digits",version="1"} 200' in metrics
    assert 'ship_process_cpu_seconds_total{mode="user"}' in metrics
    running.stop()
    assert not running.thread.is_alive()  # graceful: the lifespan wrote the last records

    records = _records(log_dir)
    phases = [r["phase"] for r in records]
    assert phases[0] == "startup" and phases[-1] == "shutdown" and "serving" in phases
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert {(r["model"], r["version"], r["share"]) for r in records} == {("digits", "1", 1.0)}
    assert sum(r["predictions"] for r in records) == 200
    assert sum(r["requests"] for r in records) == 163
    assert sum(r["errors"] for r in records) == 3
    cpu = sum(r["cpu_user_s"] + r["cpu_system_s"] for r in records)
    assert cpu > 0
    # deltas add up to the cumulative counter of the process
    assert cpu == pytest.approx(records[-1]["process_cpu_s"], abs=1e-4)

    cost = service_cost(cost_workspace, "digits")
    assert (cost.processes, cost.predictions, cost.requests, cost.errors) == (1, 200, 163, 3)
    assert cost.cpu_s == pytest.approx(cpu, abs=1e-5) and cost.startup_cpu_s > 0
    assert cost.cpu_s_per_1k_predictions == pytest.approx(cost.cpu_s / 200 * 1000)
    prices = cost_workspace.prices()
    assert cost.amount == pytest.approx(cost.cpu_s / 3600 * prices.cpu_core_hour, rel=1e-6)
    assert cost.amount_per_1k_predictions == pytest.approx(cost.amount / 200 * 1000, rel=1e-6)
    assert "cpu_s_per_1k_predictions" in cost.measured and "amount" in cost.estimated
    assert cost.basis.startswith("estimate:") and cost.currency == "USD"
    [version] = cost.versions
    assert (version.version, version.predictions, version.cpu_s) == ("1", 200, cost.cpu_s)
    assert "cpu_s" in version.measured
    assert sum(p.predictions for p in cost.series) == 200
    assert sum(p.cpu_s for p in cost.series) == pytest.approx(cost.cpu_s, abs=1e-5)
    doc = json.loads(json.dumps(cost.to_json()))
    assert doc["predictions"] == 200 and doc["versions"][0]["estimated"] == [
        "amount", "amount_per_1k_predictions"]

    # --since: a window after the last record holds nothing, and says so
    later = service_cost(cost_workspace, "digits", since="2999-01-01T00:00")
    assert later.records == 0 and later.cpu_s == 0 and later.cpu_s_per_1k_predictions is None
    assert later.notes and "no usage records" in later.notes[0]


def test_no_usage_yet_is_zeros_with_a_note(cost_workspace: Workspace) -> None:
    cost = service_cost(cost_workspace, "digits")
    assert (cost.records, cost.predictions, cost.cpu_s, cost.amount) == (0, 0, 0.0, 0.0)
    assert cost.cpu_s_per_1k_predictions is None and cost.series == []
    assert "no usage records" in cost.notes[0]


def test_unknown_service_names_the_services_there_are(cost_workspace: Workspace) -> None:
    with pytest.raises(NotFoundError, match="'nope' not found") as caught:
        service_cost(cost_workspace, "nope")
    assert "digits" in str(caught.value)


def test_torn_lines_and_versions_sharing_a_process(cost_workspace: Workspace) -> None:
    folder = cost_workspace.services_dir / "digits" / "log" / "usage" / "date=2026-05-01"
    folder.mkdir(parents=True)
    base = {"time": "2026-05-01T12:00:10+00:00", "started": "2026-05-01T12:00:00+00:00",
            "host": "h", "pid": 1, "seq": 1, "phase": "startup", "interval_s": 10.0,
            "process_cpu_s": 1.0, "max_rss_mb": 100.0, "model": "digits", "requests": 0,
            "errors": 0}
    lines = [dict(base, version="1", cpu_user_s=0.75, cpu_system_s=0.0, predictions=30,
                  share=0.75),
             dict(base, version="2", cpu_user_s=0.25, cpu_system_s=0.0, predictions=10,
                  share=0.25)]
    (folder / "usage-h-1-x.jsonl").write_bytes(
        b"".join(orjson.dumps(line) + b"\n" for line in lines) + b'{"time": "2026-05-01T1')
    assert [r["version"] for r in read_usage(folder.parents[1])] == ["1", "2"]

    cost = service_cost(cost_workspace, "digits")
    assert (cost.records, cost.predictions, cost.cpu_s) == (2, 40, 1.0)
    assert cost.cpu_s_per_1k_predictions == pytest.approx(25.0)
    assert cost.process_wall_s == pytest.approx(10.0)  # shares of one process's 10 s
    one, two = cost.versions
    assert one.cpu_s_per_1k_predictions == pytest.approx(25.0)
    # CPU split between versions is an attribution, not a measurement
    assert "cpu_s" in one.estimated and "cpu_s" not in one.measured


@pytest.mark.slow
def test_two_workers_add_up(cost_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
                           ) -> None:
    """`ship serve NAME --workers 2`, the real command, stopped with SIGTERM."""
    port = free_port()
    env = {**os.environ, "SHIP_USAGE_INTERVAL_S": "0.5"}
    proc = subprocess.Popen([sys.executable, "-c", "from kernel_magics.cli import main; main()",
                             "serve", "digits", "--port", str(port), "--workers", "2"],
                            cwd=cost_workspace.root, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=90, in_a_row=20)  # both workers warmed up
        for _ in range(60):  # a new connection each: the kernel spreads them over workers
            answer = httpx.post(url + "/invocations", json={"instances": [ROW, ROW]})
            assert answer.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    log_dir = cost_workspace.services_dir / "digits" / "log"
    records = _records(log_dir)
    pids = {r["pid"] for r in records}
    assert len(pids) == 2
    for pid in pids:
        mine = [r for r in records if r["pid"] == pid]
        assert mine[-1]["phase"] == "shutdown"
        assert sum(r["cpu_user_s"] + r["cpu_system_s"] for r in mine) == pytest.approx(
            mine[-1]["process_cpu_s"], abs=1e-4)
    cost = service_cost(cost_workspace, "digits")
    assert cost.processes == 2 and cost.predictions == 120 and cost.requests == 60
    assert cost.cpu_s == pytest.approx(sum(r["process_cpu_s"] for r in records
                                           if r["phase"] == "shutdown"), abs=1e-4)

    monkeypatch.chdir(cost_workspace.root)
    runner = CliRunner()
    result = runner.invoke(main, ["cost", "--service", "digits", "--json"])
    text = runner.invoke(main, ["cost", "--service", "digits"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["predictions"] == 120
    assert text.exit_code == 0 and "CPU s per 1,000 predictions" in text.output
