"""Benchmark: `ship serve` against `mlflow models serve` on the same model, same load.

    .venv/bin/python bench/serving.py [--requests 20000] [--concurrency 16] [--workers 1]

One model (LogisticRegression on sklearn's digits, 64 features): Ship serves its ONNX
conversion from a bundle, MLflow serves the sklearn model saved with mlflow.sklearn,
`--env-manager local`. Both get the same `POST /invocations` body (dataframe_split, one
row) from the same load generator: a minimal HTTP/1.1 keep-alive client on asyncio
(uvloop when installed), ``concurrency`` connections each sending its next request
when the previous answer arrived, a fixed number of requests after a warm-up. Servers
are pinned to core 0 and the generator to core 1 when the machine has two or more.

Ship runs twice, with the prediction log on and off, in fresh processes every round and
in alternating order (a process's memory layout alone moves its throughput by a few
percent for its whole life: four identical log-off servers in one run read up to 1.9 %
apart). Prints req/s, p50 and p99 per server, the ratios, and the goals next to them.
``--aa`` runs both Ship servers without the log: the "cost of the log" it prints is then
the benchmark's own bias and noise. ``--baseline TREE`` adds a third Ship server with the
log on, run from another checkout (say a git worktree of the commit before a change),
to the same rounds: a change to the log is measured against what it replaces
(bench/log_cost.py measures the log's cost inside one process, without the layout's
noise). The
numbers are measured on whatever else the machine is doing: run it when `uptime` shows
little load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BASELINE = "baseline, log on"  # --baseline: the log on, from another checkout


@dataclass
class Result:
    """One load run."""

    label: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_s: float = 0.0  # CPU time of the server's processes during the timed requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request (less sensitive to other load than req/s)."""
        return self.cpu_s / max(self.requests, 1) * 1e6

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _worker(port: int, payload: bytes, count: list[int], latencies: list[float],
                  errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while count[0] > 0:
            count[0] -= 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    finally:
        writer.close()


async def _drive(port: int, payload: bytes, requests: int, concurrency: int) -> Result:
    count, errors = [requests], [0]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, payload, count, latencies, errors)
                           for _ in range(concurrency)))
    return Result("", len(latencies), errors[0], time.perf_counter() - started, latencies)


def load_runner() -> Any:
    """``uvloop.run`` when uvloop is installed, else ``asyncio.run``: runs the generator."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def drive(label: str, server: Server, body: bytes, requests: int, concurrency: int) -> Result:
    """Warm up, then send ``requests`` requests over ``concurrency`` connections."""
    runner = load_runner()
    port = server.port
    payload = http_request(port, "/invocations", body)
    # Warm up for at least 1.5 s: a fresh server's log then has written a segment or two
    # (steady state) before the timed requests.
    warm_until = time.monotonic() + 1.5
    while True:
        runner(_drive(port, payload, min(2000, requests // 5), concurrency))
        if time.monotonic() >= warm_until:
            break
    cpu = server.cpu_seconds()
    result: Result = runner(_drive(port, payload, requests, concurrency))
    result.cpu_s = server.cpu_seconds() - cpu
    result.label = label
    return result


def wait_http(port: int, path: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"port {port} not ready")


def prepare(workdir: Path) -> tuple[Path, Path, bytes, Any]:
    """Train once; write the Ship bundle and the MLflow model; one request body."""
    import mlflow.sklearn
    import numpy as np
    import orjson
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT))
    from kernel_magics.serving.bundle import Manifest, write_bundle
    from kernel_magics.serving.schema import Feature, Schema, TensorSpec

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(x, y)
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 64]))],
                  options={id(model): {"zipmap": False}}, target_opset=17)
    names = [f"pixel_{i}" for i in range(64)]
    bundle = workdir / "services" / "digits" / "1"
    write_bundle(bundle, manifest=Manifest(name="digits", version="1"),
                 schema=Schema(features=tuple(Feature(n) for n in names),
                               inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                               outputs=(TensorSpec("label", "INT64", (-1,)),
                                        TensorSpec("probabilities", "FP32", (-1, -1)))),
                 model=onx.SerializeToString())
    mlflow_model = workdir / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_model), input_example=x[:1].astype(float))
    body = orjson.dumps({"dataframe_split": {"columns": names, "data": x[7:8].tolist()}})
    return bundle, mlflow_model, body, x


def pinned(cmd: list[str], core: int | None) -> list[str]:
    return (["taskset", "-c", str(core)] if core is not None and shutil.which("taskset")
            else []) + cmd


def split_cores() -> tuple[int | None, int | None]:
    """(server core, load generator core): 0 and 1 on a machine with two or more, this
    process (the load generator) moved to core 1; (None, None) on one core."""
    if len(os.sched_getaffinity(0)) < 2:
        return None, None
    os.sched_setaffinity(0, {1})
    return 0, 1


class Server:
    """A server subprocess, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, cmd: list[str], port: int, ready: str, root: Path = ROOT,
                 cwd: Path | None = None) -> None:
        """``root``: the checkout whose kernel_magics runs; ``cwd``: the working folder
        (default ``root``)."""
        # mlflow execs `uvicorn` from PATH: put this interpreter's bin first.
        path = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(root),
               "PATH": path}
        # cwd: `python -m` imports from its working folder first
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd or root, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.port = port
        try:
            wait_http(port, ready)
        except TimeoutError:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every live process in the server's group."""
        import psutil

        total = 0.0
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == self.proc.pid:
                    times = proc.cpu_times()
                    total += times.user + times.system
            except (ProcessLookupError, psutil.Error):
                continue
        return total

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def summarize(label: str, rounds: list[Result]) -> Result:
    """The round with the median throughput (its latencies), for one server."""
    ordered = sorted(rounds, key=lambda r: r.rps)
    chosen = ordered[len(ordered) // 2]
    chosen.label = label
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="per round, Ship")
    parser.add_argument("--mlflow-requests", type=int, default=1500, help="per round, MLflow")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-mlflow", action="store_true",
                        help="only Ship, log on and off (quick check of the log's cost)")
    parser.add_argument("--aa", action="store_true",
                        help="A/A check: both Ship servers without the log, so the "
                             "'cost of the log' printed is the benchmark's own bias")
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also serve with the log on from this checkout (kernel_magics "
                             "from TREE), in the same rounds")
    args = parser.parse_args()
    server_core, client_core = split_cores()
    print(f"load average before: {os.getloadavg()[0]:.2f}; servers on core {server_core}, "
          f"load generator on core {client_core}; concurrency {args.concurrency}, "
          f"{args.workers} worker(s); {args.rounds} interleaved rounds"
          + ("; A/A: both Ship servers without the log" if args.aa else ""))
    rounds: dict[str, list[Result]] = {"ship, log on": [], "ship, log off": [], "mlflow": []}
    ships = ["ship, log on", "ship, log off"]
    if args.baseline is not None:
        rounds[BASELINE] = []
        ships.append(BASELINE)
    # per log-on server: the log's records and CPU seconds per step
    log_totals: dict[str, Counter[str]] = {label: Counter() for label in ships}
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        workdir = Path(tmp)
        bundle, mlflow_model, body, _ = prepare(workdir)
        flags = {"ship, log on": ["--no-log"] if args.aa else
                 ["--log-dir", str(workdir / "log")], "ship, log off": ["--no-log"],
                 BASELINE: ["--log-dir", str(workdir / "log-baseline")]}

        def ship(label: str) -> Server:
            port = free_port()
            return Server(pinned(
                [PY, "-m", "kernel_magics.serving", "serve", str(bundle), "--port", str(port),
                 "--workers", str(args.workers), *flags[label]], server_core),
                port, "/v2/health/ready",
                args.baseline.resolve() if label == BASELINE and args.baseline else ROOT)

        mlflow_server = None
        try:
            if args.no_mlflow:
                del rounds["mlflow"]
            else:
                port = free_port()
                mlflow_server = Server(pinned(
                    [PY, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model),
                     "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                     "-w", str(args.workers)], server_core), port, "/ping")
            # Interleaved rounds: load from other processes hits every server alike. Ship
            # runs in fresh processes each round, in alternating order: one process's
            # memory layout alone moves its throughput by a few percent for its lifetime.
            for i in range(args.rounds):
                order = ships[i % len(ships):] + ships[:i % len(ships)]
                order = order if i % 2 == 0 else order[::-1]
                if mlflow_server is not None:
                    order.append("mlflow")
                for label in order:
                    server = ship(label) if mlflow_server is None or label != "mlflow" \
                        else mlflow_server
                    count = args.mlflow_requests if label == "mlflow" else args.requests
                    try:
                        result = drive(label, server, body, count, args.concurrency)
                        if label != "mlflow" and "--no-log" not in flags[label]:
                            log_totals[label].update(log_cpu(server.port))
                    finally:
                        if server is not mlflow_server:
                            server.stop()
                    rounds[label].append(result)
                    print(f"  round {i + 1} {label:<16} {result.rps:7.0f} req/s  "
                          f"p99 {result.quantile(0.99):7.2f} ms  "
                          f"server CPU {result.cpu_us:6.1f} us/req  errors {result.errors}",
                          flush=True)
        finally:
            if mlflow_server is not None:
                mlflow_server.stop()
        logged = pq_rows(workdir / "log") if (workdir / "log").exists() else 0
    results = {label: summarize(label, rs) for label, rs in rounds.items()}
    print(f"\nmedian round per server:\n{'server':<16}{'requests':>10}{'errors':>8}"
          f"{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'best req/s':>12}{'CPU us/req':>12}")
    for label, r in results.items():
        best = max(x.rps for x in rounds[label])
        cpu = sorted(x.cpu_us for x in rounds[label])[len(rounds[label]) // 2]
        print(f"{r.label:<16}{r.requests:>10}{r.errors:>8}{r.rps:>10.0f}"
              f"{r.quantile(0.5):>9.2f}{r.quantile(0.99):>9.2f}{best:>12.0f}{cpu:>12.1f}")
    on = results["ship, log on"]
    print()
    if "mlflow" in results:
        ml = results["mlflow"]
        speed = on.rps / ml.rps
        p99 = on.quantile(0.99) / ml.quantile(0.99)
        print(f"ship (log on) / mlflow req/s: {speed:6.1f}x   goal >= 10x   "
              f"{'met' if speed >= 10 else 'NOT met'}")
        print(f"ship (log on) / mlflow p99:   {p99:6.3f}    goal <= 0.2   "
              f"{'met' if p99 <= 0.2 else 'NOT met'}")
    print(f"ship req/s with the log on:   {on.rps:6.0f}    goal >= 3000  "
          f"{'met' if on.rps >= 3000 else 'NOT met'}")
    for label in ships:
        if label != "ship, log off":
            print_cost(label, rounds[label], rounds["ship, log off"],
                       1 - results[label].rps / results["ship, log off"].rps, log_totals[label])
    print(f"(rows in the prediction log: {logged}; load average after: "
          f"{os.getloadavg()[0]:.2f})")


def mean_interval(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    """The mean of ``values`` and a bootstrap 95 % interval of it."""
    import numpy as np

    data = np.asarray(values)
    means = np.random.default_rng(seed).choice(data, (20000, len(data))).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(data.mean()), float(low), float(high)


def print_cost(label: str, on: list[Result], off: list[Result], cost: float,
               log_totals: Counter[str]) -> None:
    """The throughput cost (``cost``: of the median rounds) and CPU cost of one log-on
    server against the log-off one, and the log's own work per record."""
    name = "the log" if label == "ship, log on" else "the baseline's log"
    best_cost = 1 - max(x.rps for x in on) / max(x.rps for x in off)
    # Rounds are interleaved: pair each log-on round with the log-off round of its round.
    paired = sorted(1 - a.rps / b.rps for a, b in zip(on, off, strict=True))
    cpu_cost = sorted(a.cpu_us / b.cpu_us - 1 for a, b in zip(on, off, strict=True))
    print(f"throughput cost of {name}:   {cost * 100:5.1f}%    goal <= 5%    "
          f"{'met' if cost <= 0.05 else 'NOT met'}   (best rounds: {best_cost * 100:.1f}%; "
          f"paired rounds: {', '.join(f'{c * 100:.1f}%' for c in paired)})")
    mean, low, high = mean_interval(paired)
    print(f"mean of the paired rounds: {mean * 100:.1f}% (bootstrap 95% interval "
          f"{low * 100:.1f} to {high * 100:.1f}%)")
    print(f"server CPU per request added by {name}: {cpu_cost[len(cpu_cost) // 2] * 100:5.1f}% "
          f"(median of paired rounds: {', '.join(f'{c * 100:.1f}%' for c in cpu_cost)})")
    records = log_totals["records"]
    if records:
        print(f"{name}'s own work, timed in the server (CPU per record written): " + ", ".join(
            f"{step} {seconds / records * 1e6:.2f} us" for step, seconds in log_totals.items()
            if step != "records"))


def log_cpu(port: int) -> dict[str, float]:
    """The log's CPU seconds per step and its records written so far, from the server's
    /metrics (``ship_prediction_log_cpu_seconds_total``, ``..._records_total``)."""
    import re

    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    records = re.search(r"^ship_prediction_log_records_total (\d+)", text, re.M)
    if records is None:
        return {}
    steps = re.findall(r'^ship_prediction_log_cpu_seconds_total\{step="(\w+)"\} ([0-9.]+)',
                       text, re.M)
    return {"records": float(records.group(1)),
            **{step: float(seconds) for step, seconds in steps}}


def pq_rows(folder: Path) -> int:
    """Rows in the Parquet segments under ``folder``."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))


if __name__ == "__main__":
    main()
