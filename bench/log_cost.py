"""Benchmark: what the prediction log costs, measured inside the same server process.

    .venv/bin/python bench/log_cost.py [--processes 4] [--pairs 12] [--requests 20000]
                                       [--settle 1.5] [--warm-up 10]

bench/serving.py compares a server with the log on and one with it off, fresh processes
every round. A process's memory layout alone moves its throughput by several percent
for its whole life, so those paired rounds spread by about ±5 % and a run cannot tell
a 4 % cost from a 6 % one. Here one server (bench/switchable_serve.py: `ship serve` with
the log on, switched off with SIGUSR2 and on again with SIGUSR1) is measured in
alternating windows, log on and log off, so both sides of a pair share the process and
its layout. Off, the server takes the request path of ``--no-log``.

A fresh server first takes ``--warm-up`` seconds of load (it speeds up by several
percent over its first seconds). Each window is preceded by settling load (``--settle``
seconds, past one flush interval: what the other state left queued is written before
the window starts) and runs ``--requests`` requests with bench/serving.py's load
generator (concurrency 16, the same `/invocations` body). Pairs go on-off, off-on, ...
Several fresh processes average the layout's effect on the log itself. Prints each
pair's cost, and per process and overall the req/s and server CPU per request on and
off, the mean cost with a bootstrap 95 % interval, and the goal (at most 5 %).

What this leaves out, and bench/serving.py includes: whatever a server started with the
log differs in from one started with ``--no-log`` while its log is off (the log's
warm-up, its 100 ms timer, the usage meter's thread, the memory layout these leave).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from serving import (  # bench/
    PY,
    Result,
    Server,
    _drive,
    free_port,
    http_request,
    load_runner,
    mean_interval,
    pinned,
    prepare,
    split_cores,
)

HERE = Path(__file__).resolve().parent
GOAL = 0.05


def run_load(port: int, payload: bytes, requests: int, concurrency: int) -> Result:
    result: Result = load_runner()(_drive(port, payload, requests, concurrency))
    return result


def settle(port: int, payload: bytes, seconds: float, concurrency: int) -> None:
    """Keep the server under load for ``seconds`` (not measured)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        run_load(port, payload, 2000, concurrency)


def window(server: Server, payload: bytes, on: bool, args: argparse.Namespace) -> Result:
    """Switch the log, let it settle, then one measured window."""
    server.proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
    settle(server.port, payload, args.settle, args.concurrency)
    cpu = server.cpu_seconds()
    result = run_load(server.port, payload, args.requests, args.concurrency)
    result.cpu_s = server.cpu_seconds() - cpu
    result.label = "on" if on else "off"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=4, help="fresh servers, one after another")
    parser.add_argument("--pairs", type=int, default=12, help="on/off pairs of windows per server")
    parser.add_argument("--requests", type=int, default=20000, help="per window")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds of load before a window")
    parser.add_argument("--warm-up", type=float, default=10.0,
                        help="seconds of load on a fresh server before its first window")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    server_core, client_core = split_cores()
    print(f"load average before: {os.getloadavg()[0]:.2f}; server on core {server_core}, "
          f"load generator on core {client_core}; concurrency {args.concurrency}; "
          f"{args.processes} processes x {args.pairs} pairs of {args.requests} requests")
    costs: list[float] = []
    cpu_costs: list[float] = []
    per_state: dict[str, list[Result]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        workdir = Path(tmp)
        bundle, _, body, _ = prepare(workdir)
        for p in range(args.processes):
            port = free_port()
            server = Server(pinned(
                [PY, str(HERE / "switchable_serve.py"), "serve", str(bundle), "--port",
                 str(port), "--log-dir", str(workdir / f"log-{p}")], server_core),
                port, "/v2/health/ready")
            payload = http_request(port, "/invocations", body)
            mine: list[float] = []
            try:  # a fresh server speeds up over its first seconds of load
                settle(port, payload, args.warm_up, args.concurrency)
                for i in range(args.pairs):
                    order = (True, False) if i % 2 == 0 else (False, True)
                    results = {r.label: r for r in (window(server, payload, on, args)
                                                    for on in order)}
                    on, off = results["on"], results["off"]
                    cost = 1 - on.rps / off.rps
                    mine.append(cost)
                    cpu_costs.append(on.cpu_us / off.cpu_us - 1)
                    per_state["on"].append(on)
                    per_state["off"].append(off)
                    print(f"  process {p + 1} pair {i + 1:2d}: on {on.rps:6.0f} req/s "
                          f"{on.cpu_us:6.1f} us/req, off {off.rps:6.0f} req/s "
                          f"{off.cpu_us:6.1f} us/req, cost {cost * 100:5.1f}%  errors "
                          f"{on.errors + off.errors}", flush=True)
            finally:
                server.stop()
            mean, low, high = mean_interval(mine)
            print(f"process {p + 1}: cost {mean * 100:.1f}% "
                  f"(95% interval {low * 100:.1f} to {high * 100:.1f}%)", flush=True)
            costs.extend(mine)
    mean, low, high = mean_interval(costs)
    print(f"\n{'log':<6}{'req/s':>10}{'CPU us/req':>12}   (means over windows)")
    for state, results in per_state.items():
        print(f"{state:<6}{np.mean([r.rps for r in results]):>10.0f}"
              f"{np.mean([r.cpu_us for r in results]):>12.1f}")
    print(f"\nthroughput cost of the log: {mean * 100:.2f}%  (mean of {len(costs)} pairs; "
          f"median {np.median(costs) * 100:.2f}%; 95% interval {low * 100:.2f} to "
          f"{high * 100:.2f}%)   goal <= 5%   "
          f"{'met' if high <= GOAL else 'met on the mean' if mean <= GOAL else 'NOT met'}")
    print(f"server CPU per request added by the log: {np.mean(cpu_costs) * 100:.2f}% (mean)")
    print(f"(load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
