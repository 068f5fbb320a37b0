"""Benchmark: `ship serve` against `ship serve --engine ray` (Ray Serve), same bundle, same load.

    .venv/bin/python bench/ray_serve.py [--cases invocations,v2-binary] [--seconds 10]
        [--warmup 3] [--concurrency 16] [--replicas 1,2] [--no-workers]

About 3 minutes on a 2-core machine (each Ray start costs 10 to 30 s there).

One bundle (LogisticRegression on sklearn's digits, 64 features, as bench/serving.py),
one row per request, served in turn by:

- `ship serve BUNDLE` (one uvicorn process), and with ``--workers 2`` (two processes
  sharing the socket; ``--no-workers`` leaves it out);
- `ship serve BUNDLE --engine ray` on a local Ray that command starts, with
  ``[serve] replicas`` = each of ``--replicas`` (Ray Serve's defaults otherwise:
  ``max_ongoing_requests`` 5, one CPU per replica; the proxy and the controller are Ray
  Serve's own processes).

Every server logs its predictions (the default), gets one request of each case checked
(HTTP 200, one ``x-request-id``), ``--warmup`` seconds of load, then ``--seconds`` of
timed load from bench/serving.py's generator (an HTTP/1.1 keep-alive client on uvloop,
``--concurrency`` connections, each sending its next request when its answer arrived).
Nothing is pinned to a core: Ray's replicas must be free to use both, so the generator
shares the machine with every server alike. Printed per case: req/s, p50 and p99, the
server's CPU per request (every process of the command: for Ray, GCS, raylet, proxy,
controller and replicas) and the ratios against one `ship serve` process. One run: the
figures move with whatever else the machine is doing (check `uptime`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from serving import (  # noqa: E402 (bench/serving.py: the same generator and requests)
    Call,
    Case,
    Result,
    _drive,
    free_port,
    http_request,
    load_runner,
    make_call,
)

SHIP = str(Path(sys.executable).with_name("ship"))


class Served:
    """A `ship serve` command; stopped with SIGTERM to it alone (it tears Ray down)."""

    def __init__(self, label: str, args: list[str], cwd: Path, port: int,
                 timeout: float = 300.0) -> None:
        self.label = label
        self.port = port
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 (read when it fails)
        self.proc = subprocess.Popen([SHIP, "serve", *args, "--port", str(port)], cwd=cwd,
                                     stdout=subprocess.DEVNULL, stderr=self.err,
                                     env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
                                          "RAY_USAGE_STATS_ENABLED": "0"})
        started = time.monotonic()
        import httpx

        while True:
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                self.stop()
                self.err.seek(0)
                raise SystemExit(f"{label} did not start:\n"
                                 f"{self.err.read().decode(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready",
                             timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.start_s = time.monotonic() - started

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check(port: int, call: Call) -> None:
    import httpx

    reply = httpx.post(f"http://127.0.0.1:{port}{call.path}", content=call.body,
                       headers=dict(call.headers), timeout=60)
    if reply.status_code != 200 or len(reply.headers.get_list("x-request-id")) != 1:
        raise SystemExit(f"port {port}, {call.path}: HTTP {reply.status_code} "
                         f"{reply.headers.get_list('x-request-id')}: {reply.text[:300]}")


def measure(server: Served, call: Call, args: argparse.Namespace) -> Result:
    runner = load_runner()
    payload = http_request(server.port, call)
    runner(_drive(server.port, payload, 1 << 60, args.warmup, args.concurrency))
    cpu = server.cpu_seconds()
    result: Result = runner(_drive(server.port, payload, 1 << 60, args.seconds,
                                   args.concurrency))
    result.cpu_s = server.cpu_seconds() - cpu
    result.label = server.label
    return result


def prepare(root: Path) -> tuple[Path, Any]:
    """A workspace holding the digits bundle; the features."""
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.serving.bundle import Manifest, write_bundle
    from kernel_magics.serving.schema import Feature, Schema, TensorSpec
    from kernel_magics.workspace import init_workspace

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    model = LogisticRegression(max_iter=300).fit(x / 16, y)
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 64]))],
                  options={id(model): {"zipmap": False}}, target_opset=17)
    init_workspace(root)
    bundle = root / ".ship" / "services" / "digits" / "1"
    write_bundle(bundle, manifest=Manifest(name="digits", version="1"),
                 schema=Schema(features=tuple(Feature(f"pixel_{i}") for i in range(64)),
                               inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                               outputs=(TensorSpec("label", "INT64", (-1,)),
                                        TensorSpec("probabilities", "FP32", (-1, -1)))),
                 model=onx.SerializeToString())
    return bundle, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="invocations,v2-binary")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--replicas", default="1,2")
    parser.add_argument("--no-workers", action="store_true")
    args = parser.parse_args()
    cases = [Case(name, 1) for name in args.cases.split(",")]
    with tempfile.TemporaryDirectory(prefix="ship-bench-ray-") as tmp:
        root = Path(tmp)
        bundle, x = prepare(root)
        calls = {case: make_call(case, x) for case in cases}
        setups: list[tuple[str, list[str], int | None]] = [("ship serve", [], None)]
        if not args.no_workers:
            setups.append(("ship serve --workers 2", ["--workers", "2"], None))
        setups += [(f"Ray Serve, {n} replica{'s' if n != '1' else ''}",
                    ["--engine", "ray"], int(n)) for n in args.replicas.split(",")]
        results: dict[Case, list[Result]] = {case: [] for case in cases}
        starts: dict[str, float] = {}
        for label, extra, replicas in setups:
            if replicas is not None:
                (root / ".ship" / "ship.toml").write_text(f"[serve]\nreplicas = {replicas}\n")
            server = Served(label, [str(bundle), *extra], root, free_port())
            starts[label] = server.start_s
            try:
                for case in cases:
                    check(server.port, calls[case])
                    result = measure(server, calls[case], args)
                    results[case].append(result)
                    print(f"{label:<24} {case.name:<20} {result.rps:8.0f} req/s  "
                          f"p50 {result.quantile(0.5):6.2f} ms  p99 "
                          f"{result.quantile(0.99):7.2f} ms  errors {result.errors}",
                          flush=True)
            finally:
                server.stop()
    print(f"\n{os.cpu_count()} CPUs; load average at the end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; concurrency "
          f"{args.concurrency}, {args.seconds:g} s per server and case\n")
    for case in cases:
        base = results[case][0]
        print(f"{case.name}:\n| server | req/s | p50 ms | p99 ms | CPU us/req | req/s vs "
              f"ship serve | p99 vs ship serve | start s |\n| --- | ---: | ---: | ---: | "
              f"---: | ---: | ---: | ---: |")
        for result in results[case]:
            print(f"| {result.label} | {result.rps:,.0f} | {result.quantile(0.5):.2f} | "
                  f"{result.quantile(0.99):.2f} | {result.cpu_us:,.0f} | "
                  f"{result.rps / base.rps:.2f} | "
                  f"{result.quantile(0.99) / base.quantile(0.99):.1f} | "
                  f"{starts[result.label]:.1f} |")
        print()


if __name__ == "__main__":
    main()
