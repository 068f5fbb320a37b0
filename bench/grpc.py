"""Benchmark: the V2 protocol over gRPC against V2 over REST, same model, same server.

    .venv/bin/python bench/grpc.py [--rows 1,100] [--rounds 3] [--seconds 3]
        [--concurrency 1] [--no-log]

About 45 seconds with the defaults. One `ship_runtime` server (``python -m
kernel_magics.serving serve BUNDLE --port P --grpc-port G``, one worker, the prediction
log on in a temporary folder unless ``--no-log``) serves the digits model of
bench/serving.py (LogisticRegression, 64 FP32 features, ONNX) on both ports. The clients
are the stock ones with their defaults, sending the same V2 request: one FP32 tensor
``float_input`` [rows, 64] set with ``set_data_from_numpy``, which tritonclient.grpc sends
in ``raw_input_contents`` and tritonclient.http in the binary tensor extension (outputs
come back raw and binary). ``--concurrency`` threads, each with its own client, send
their next request when the previous answer arrived.

The server runs on core 0 and the clients on core 1 (machines with two cores or more).
Per batch size, rounds alternate the protocols' order; each round is timed over
``--seconds``. Printed: each round; then per batch size the median round's req/s of
each protocol, p50 and p99 latency (client side) of all its requests, the server's CPU
time per request (median round; less sensitive to other load on the machine than req/s),
and the ratio gRPC / REST of req/s. Both answers are checked equal before anything is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This file is named grpc.py: run as a script, its folder would come first on sys.path and
# `import grpc` (in tritonclient.grpc) would import it instead of grpcio.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = HERE.parent
MODEL = "digits"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_bundle(folder: Path) -> Path:
    """The digits bundle of bench/serving.py (without its MLflow copy)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT))
    from kernel_magics.serving.bundle import Manifest, write_bundle
    from kernel_magics.serving.schema import Feature, Schema, TensorSpec

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x.astype(np.float32), y)
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 64]))],
                  options={id(model): {"zipmap": False}}, target_opset=17)
    bundle = folder / "services" / MODEL / "1"
    write_bundle(bundle, manifest=Manifest(name=MODEL, version="1"),
                 schema=Schema(features=tuple(Feature(f"pixel_{i}") for i in range(64)),
                               inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                               outputs=(TensorSpec("label", "INT64", (-1,)),
                                        TensorSpec("probabilities", "FP32", (-1, -1)))),
                 model=onx.SerializeToString())
    return bundle


def pinned(cmd: list[str], core: int | None) -> list[str]:
    return (["taskset", "-c", str(core)] if core is not None and shutil.which("taskset")
            else []) + cmd


def start_server(bundle: Path, log: str, port: int, grpc_port: int,
                 core: int | None) -> subprocess.Popen[bytes]:
    import httpx

    cmd = pinned([sys.executable, "-m", "kernel_magics.serving", "serve", str(bundle),
                  "--port", str(port), "--grpc-port", str(grpc_port)]
                 + (["--no-log"] if not log else ["--log-dir", log]), core)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server was not ready within 120 s")


def callers(protocol: str, port: int, grpc_port: int, x: np.ndarray[Any, Any]
            ) -> Callable[[], Callable[[], Any]]:
    """A factory of ``call()``: one stock client each, sending the same V2 request."""
    if protocol == "grpc":
        import tritonclient.grpc as triton
        url = f"127.0.0.1:{grpc_port}"
    else:
        import tritonclient.http as triton  # type: ignore[no-redef]
        url = f"127.0.0.1:{port}"

    def make() -> Callable[[], Any]:
        client = triton.InferenceServerClient(url)
        tensor = triton.InferInput("float_input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        return lambda: client.infer(MODEL, [tensor]).as_numpy("label")

    return make


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (taskset execs the server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(make: Callable[[], Callable[[], Any]], seconds: float, concurrency: int
          ) -> tuple[float, list[float]]:
    """(req/s, latencies in ms) of ``concurrency`` threads calling for ``seconds``."""
    calls = [make() for _ in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in calls]
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def run(call: Callable[[], Any], out: list[float]) -> None:
        start.wait()
        while (now := time.perf_counter()) < stop_at[0]:
            call()
            out.append((time.perf_counter() - now) * 1000.0)

    threads = [threading.Thread(target=run, args=(c, o)) for c, o in zip(calls, latencies,
                                                                         strict=True)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = [v for out in latencies for v in out]
    return len(flat) / elapsed, flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="1,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--no-log", action="store_true")
    args = parser.parse_args()
    server_core = client_core = None
    if len(os.sched_getaffinity(0)) >= 2:
        server_core, client_core = 0, 1
        os.sched_setaffinity(0, {client_core})
    work = Path(tempfile.mkdtemp(prefix="ship-bench-grpc-"))
    port, grpc_port = free_port(), free_port()
    proc = None
    try:
        bundle = make_bundle(work)
        log = "" if args.no_log else str(work / "log")
        proc = start_server(bundle, log, port, grpc_port, server_core)
        print(f"server: one worker on core {server_core}, clients on core {client_core}, "
              f"log {'off' if args.no_log else 'on'}, concurrency {args.concurrency}, "
              f"{args.rounds} rounds of {args.seconds:g} s")
        rng = np.random.default_rng(0)
        summary = []
        for rows in [int(r) for r in args.rows.split(",")]:
            x = rng.uniform(0, 16, size=(rows, 64)).astype(np.float32)
            makers = {p: callers(p, port, grpc_port, x) for p in ("grpc", "rest")}
            labels = {p: make()() for p, make in makers.items()}
            assert np.array_equal(labels["grpc"], labels["rest"]), "the answers differ"
            for make in makers.values():  # warm-up: connections, first-call paths
                timed(make, 0.5, args.concurrency)
            rounds: dict[str, list[tuple[float, list[float], float]]] = {"grpc": [],
                                                                         "rest": []}
            for r in range(args.rounds):
                order = ("grpc", "rest") if r % 2 == 0 else ("rest", "grpc")
                for protocol in order:
                    cpu = cpu_seconds(proc.pid)
                    rate, lat = timed(makers[protocol], args.seconds, args.concurrency)
                    per_request = (cpu_seconds(proc.pid) - cpu) / max(len(lat), 1) * 1000.0
                    rounds[protocol].append((rate, lat, per_request))
                    print(f"  rows {rows:>4}  round {r + 1}  {protocol:<4}  {rate:8.0f} req/s"
                          f"  server CPU {per_request:.3f} ms/req")
            summary.append((rows, rounds))
        print()
        print(f"{'rows':>5} {'protocol':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU ms/req':>11}  gRPC/REST req/s")
        for rows, rounds in summary:
            medians = {}
            for protocol in ("grpc", "rest"):
                rates = [rate for rate, _, _ in rounds[protocol]]
                medians[protocol] = statistics.median(rates)
                lat = np.asarray([v for _, lats, _ in rounds[protocol] for v in lats])
                cpu = statistics.median(c for _, _, c in rounds[protocol])
                ratio = f"{medians['grpc'] / medians['rest']:.2f}" if protocol == "rest" \
                    else ""
                print(f"{rows:>5} {protocol:<9} {medians[protocol]:>8.0f} "
                      f"{np.percentile(lat, 50):>8.3f} {np.percentile(lat, 99):>8.3f} "
                      f"{cpu:>11.3f}  {ratio}")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
