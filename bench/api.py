"""Benchmark: listing 1,000 runs through Ship's REST API against MLflow's own REST API.

    .venv/bin/python bench/api.py [--runs 1000] [--repeat 20] [--json]

One temporary workspace, one sqlite MLflow store, `--runs` runs of one notebook
(bench/seed_runs.py: the tags, params, metrics and dataset inputs Ship's writer logs).

- Ship: a real `jupyter-server` (token auth, the kernel_magics server extension) on
  127.0.0.1; `GET /ship/api/runs?notebook=train.ipynb&limit=N`, the sidebar's request,
  answered in full each time; then the same with If-None-Match (a poll that finds
  nothing new: 304).
- Peer: a real `mlflow server --workers 1` on the same store (job execution off);
  `POST /api/2.0/mlflow/runs/search` for the same runs (filter on the notebook tag,
  newest first, max_results N). If it does not start in time, MlflowClient.search_runs
  in this process stands in, and the output says so.

Both answer the same rows (params, metrics, tags, dataset inputs). Each figure is the
median (and p95) of `--repeat` requests on one keep-alive connection, after one warm-up
request; the first request is reported too. The goal: Ship at most 200 ms for 1,000 runs.
In-process figures (Ship's core call vs MlflowClient.search_runs) separate the data path
from HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_runs import seed  # noqa: E402

BIN = Path(sys.executable).parent
GOAL_MS = 200.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, stopped (the whole group) on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float,
              headers: dict[str, str] | None = None) -> float | None:
    """Seconds until `url` answers 200, or None (timeout or the process died)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            return None
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return None


def timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    """First call, then median and p95 of `repeat` more (ms)."""
    start = time.perf_counter()
    call()
    first = (time.perf_counter() - start) * 1000
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"first_ms": first, "median_ms": statistics.median(samples),
            "p95_ms": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]}


def bench_ship(root: Path, notebook: str, runs: int, repeat: int, work: Path) -> dict[str, Any]:
    port, token = free_port(), secrets.token_hex(16)
    cmd = [str(BIN / "jupyter-server"), f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           "--ServerApp.open_browser=False", "--ServerApp.allow_root=True",
           "--ServerApp.jpserver_extensions={'kernel_magics': True}"]
    headers = {"Authorization": f"token {token}"}
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with process(cmd, env, work / "jupyter.log") as proc:
        started = wait_http(f"{base}/api/status", proc, 120, headers)
        if started is None:
            raise SystemExit(f"jupyter-server did not start; see {work / 'jupyter.log'}")
        url = f"{base}/ship/api/runs"
        params = {"notebook": notebook, "limit": str(runs)}
        with httpx.Client(headers=headers, timeout=60) as client:
            def call() -> None:
                response = client.get(url, params=params)
                response.raise_for_status()
                body = response.json()
                assert len(body["runs"]) == runs, (len(body["runs"]), runs)
                call.size = len(response.content)  # type: ignore[attr-defined]
            result = timed(call, repeat)
            result["bytes"] = call.size  # type: ignore[attr-defined]
            # What a polling panel pays when nothing changed: If-None-Match, 304, no body.
            etag = client.get(url, params=params).headers.get("ETag")
            if etag:
                def unchanged() -> None:
                    response = client.get(url, params=params, headers={"If-None-Match": etag})
                    assert response.status_code == 304, response.status_code
                result["unchanged_304_median_ms"] = timed(unchanged, repeat)["median_ms"]
    result["startup_s"] = started
    return result


def bench_mlflow_server(uri: str, experiment_id: str, notebook: Path, runs: int, repeat: int,
                        work: Path) -> dict[str, Any] | None:
    port = free_port()
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1",
           "--default-artifact-root", (work / "mlflow-artifacts").as_uri()]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    base = f"http://127.0.0.1:{port}"
    with process(cmd, env, work / "mlflow.log") as proc:
        started = wait_http(f"{base}/health", proc, 180)
        if started is None:
            return None
        payload = {"experiment_ids": [experiment_id], "max_results": runs,
                   "filter": f"tags.`ship.notebook` = '{notebook}'",
                   "order_by": ["attributes.start_time DESC"]}
        with httpx.Client(timeout=120) as client:
            def call() -> None:
                response = client.post(f"{base}/api/2.0/mlflow/runs/search", json=payload)
                response.raise_for_status()
                body = response.json()
                assert len(body["runs"]) == runs, (len(body["runs"]), runs)
                call.size = len(response.content)  # type: ignore[attr-defined]
            result = timed(call, repeat)
            result["bytes"] = call.size  # type: ignore[attr-defined]
    result["startup_s"] = started
    return result


def bench_in_process(root: Path, notebook: Path, runs: int, repeat: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    from kernel_magics.tracking import catalog
    from kernel_magics.workspace import find_workspace

    workspace = find_workspace(root)
    spellings = catalog.notebook_spellings(notebook)
    ship = timed(lambda: catalog.list_runs(workspace, spellings, limit=runs), repeat)
    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    peer = timed(lambda: client.search_runs(
        experiment_ids, filter_string=f"tags.`ship.notebook` = '{notebook}'",
        max_results=runs, order_by=["attributes.start_time DESC"]), max(3, repeat // 4))
    return {"ship_core": ship, "mlflow_client": peer}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ship-bench-api-") as tmp:
        work = Path(tmp)
        root = work / "project"
        root.mkdir()
        notebook = root / "train.ipynb"
        notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                        "nbformat_minor": 5}), encoding="utf-8")
        start = time.perf_counter()
        seed(root, notebook, args.runs, "bench")
        seed_s = time.perf_counter() - start
        uri = f"sqlite:///{root / '.ship' / 'mlflow.db'}"

        from mlflow.tracking import MlflowClient

        experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("bench")
        assert experiment is not None

        ship = bench_ship(root, "train.ipynb", args.runs, args.repeat, work)
        peer = bench_mlflow_server(uri, experiment.experiment_id, notebook, args.runs,
                                   args.repeat, work)
        in_process = bench_in_process(root, notebook, args.runs, args.repeat)
        peer_name = "mlflow server REST runs/search"
        if peer is None:
            peer_name = "MlflowClient.search_runs (mlflow server did not start in 180 s)"
            peer = in_process["mlflow_client"]

    ratio = peer["median_ms"] / ship["median_ms"]
    figures = {"runs": args.runs, "repeat": args.repeat, "seed_s": round(seed_s, 1),
               "ship": ship, "peer": {"name": peer_name, **peer}, "ratio": ratio,
               "in_process": in_process, "goal_ms": GOAL_MS,
               "meets_goal": ship["median_ms"] <= GOAL_MS}
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(f"listing {args.runs} runs of one notebook (seeded in {seed_s:.1f} s); "
              f"median (p95, first) of {args.repeat} requests:")
        print(f"  Ship   GET /ship/api/runs        {ship['median_ms']:8.1f} ms "
              f"({ship['p95_ms']:.1f}, {ship['first_ms']:.1f})  {ship['bytes'] / 1e6:.2f} MB")
        print(f"  peer   {peer_name:<26}{peer['median_ms']:8.1f} ms "
              f"({peer['p95_ms']:.1f}, {peer['first_ms']:.1f})"
              + (f"  {peer['bytes'] / 1e6:.2f} MB" if "bytes" in peer else ""))
        print(f"  ratio  {ratio:.1f}x faster; goal <= {GOAL_MS:.0f} ms: "
              f"{'met' if figures['meets_goal'] else 'NOT met'}")
        if "unchanged_304_median_ms" in ship:
            print(f"  Ship, nothing changed since the last poll (304): "
                  f"{ship['unchanged_304_median_ms']:.1f} ms")
        core, client = in_process["ship_core"], in_process["mlflow_client"]
        print(f"  in process: catalog.list_runs {core['median_ms']:.1f} ms, "
              f"MlflowClient.search_runs {client['median_ms']:.1f} ms")
    return 0 if figures["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
