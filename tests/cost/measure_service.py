"""Measure CPU seconds per 1,000 predictions of a demo-like service (not a test).

    .venv/bin/python tests/cost/measure_service.py [--requests 20000] [--rows 1]
                                                  [--concurrency 16] [--workers 1]

Builds a workspace in a temporary folder with the service ``digits`` (sklearn's
LogisticRegression on the digits data, 64 features, as ONNX: the demo's model), runs
``ship serve digits`` (the real command, pinned to core 0 when there are two), sends
``--requests`` ``POST /invocations`` of ``--rows`` rows from ``--concurrency`` keep-alive
connections (a minimal HTTP/1.1 client on core 1, as in bench/serving.py), stops the
service with SIGTERM, and prints what ``ship cost --service digits --json`` says.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # live_server, as under pytest


def _build(workspace_root: Path) -> None:
    from conftest import add_service_version, serving  # tests/cost/conftest.py
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.workspace import init_workspace

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x.astype("float32"), y)
    workspace = init_workspace(workspace_root)
    add_service_version(workspace, serving._onnx(model, 64))


async def _load(port: int, requests: int, rows: int, concurrency: int) -> float:
    """A minimal HTTP/1.1 keep-alive client (httpx would be the bottleneck, not the server)."""
    body = json.dumps({"instances": [[3.0] * 64] * rows}).encode()
    request = (f"POST /invocations HTTP/1.1\r\nhost: 127.0.0.1\r\n"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
               ).encode() + body
    left = requests

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    from live_server import free_port, wait_ready  # tests/live_server.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    two_cores = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    with tempfile.TemporaryDirectory(prefix="ship-cost-") as tmp:
        root = Path(tmp) / "ws"
        _build(root)
        port = free_port()
        command = [sys.executable, "-c", "from kernel_magics.cli import main; main()",
                   "serve", "digits", "--port", str(port), "--workers", str(args.workers)]
        if two_cores:
            command = ["taskset", "-c", "0", *command]
            os.sched_setaffinity(0, {1})
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, timeout=90)
            seconds = asyncio.run(_load(port, args.requests, args.rows, args.concurrency))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        out = subprocess.run([sys.executable, "-c", "from kernel_magics.cli import main; main()",
                              "cost", "--service", "digits", "--json"], cwd=root, env=env,
                             capture_output=True, text=True, check=True).stdout
        cost: dict[str, Any] = json.loads(out)
    predictions = cost["predictions"]
    serving_cpu = cost["cpu_s"] - cost["startup_cpu_s"]
    print(f"{args.requests} requests x {args.rows} row(s), concurrency {args.concurrency}, "
          f"{args.workers} worker(s): {args.requests / seconds:,.0f} req/s")
    print(f"predictions counted: {predictions}; CPU s: {cost['cpu_s']:.3f} "
          f"(start-up {cost['startup_cpu_s']:.3f}) over {cost['process_wall_s']:.1f} process-s")
    print(f"CPU s per 1,000 predictions (measured): {cost['cpu_s_per_1k_predictions']:.4f} "
          f"all CPU; {serving_cpu / predictions * 1000:.4f} without start-up")
    print(f"per 1,000 predictions (estimated): {cost['amount_per_1k_predictions']:.8f} "
          f"{cost['currency']} ({cost['basis']})")


if __name__ == "__main__":
    main()
