"""Benchmark: `ship serve` (log on and off) against MLServer and MLflow, per endpoint and batch.

    .venv/bin/python bench/serving.py [--cases invocations,v2-json,v2-binary] [--rows 1,100]
        [--rounds 7] [--requests 10000] [--seconds 4] [--no-mlserver] [--no-mlflow]
        [--aa] [--baseline TREE]

About 13 minutes with the defaults on a 2-core machine (plus about a minute the first
time, to make MLServer's virtual environment).

One model (LogisticRegression on sklearn's digits, 64 features) and a matrix of cases:
each endpoint of ``--cases`` at each batch size of ``--rows`` (rows per request):

- ``invocations``: ``POST /invocations``, dataframe_split JSON (MLflow's protocol);
- ``v2-json``: ``POST /v2/models/digits/infer``, one FP32 tensor ``float_input`` of shape
  [rows, 64] as JSON;
- ``v2-binary``: the same tensor in the V2 binary tensor extension (a JSON header of
  ``Inference-Header-Content-Length`` bytes, then the raw little-endian floats, with
  ``binary_data_size`` on the input), asking for binary outputs as tritonclient does
  (``--json-outputs`` asks for JSON outputs instead).

Servers, each on core 0 (the load generator on core 1) when the machine has two or more:

- Ship serves the model's ONNX conversion from a bundle, twice: with the prediction log
  on and off, in fresh processes for every case of every round, in alternating order (a
  process's memory layout alone moves its throughput by a few percent for its whole life:
  four identical log-off servers in one run read up to 1.9 % apart).
- MLServer (``--no-mlserver`` leaves it out) serves the same ONNX file with a custom
  runtime (bench/peers/onnx_runtime.py: onnxruntime with one thread, MLServer's
  ``NumpyRequestCodec``), from its own virtual environment, bench/.venv-mlserver, made on
  first use with ``pip install mlserver==MLSERVER_VERSION`` and the onnxruntime and numpy
  versions of this interpreter. Its settings give it its best chance on one core: one
  process (``parallel_workers`` 0: inference in the server's process, no worker pool),
  no metrics server, no access log (``debug`` off), no gzip middleware; its gRPC server
  cannot be turned off and listens on a free port, idle. It answers the V2 cases only
  (it has no MLflow ``/invocations`` with this runtime); a case it refuses (MLServer
  1.7's REST server has no binary tensor extension) is said so, and its ship/mlserver
  goals are then taken against MLServer's V2 JSON at the same rows.
- MLflow (``--no-mlflow`` leaves it out) serves the sklearn model saved with
  mlflow.sklearn, ``mlflow models serve --env-manager local``, ``/invocations`` cases only.

The peers start once per run and stay up (a peer's layout noise does not matter to goals
of 2x or 10x; a fresh MLServer costs seconds a start). Every server answers one request
of each of its cases before the rounds (HTTP 200, the right labels and shapes: the run
stops otherwise), is warmed up for ``--warmup`` seconds (a fresh log has then written a
segment or two) and then timed over ``--requests`` requests (``--mlserver-requests``,
``--mlflow-requests`` for the peers) or ``--seconds``, whichever ends first. The load
generator is a minimal HTTP/1.1 keep-alive client on asyncio (uvloop when installed):
``--concurrency`` connections, each sending its next request when the previous answer
arrived.

Printed: each run as it ends; then per case a table of the median round per server
(req/s, p50, p99, the best round, server CPU per request: less sensitive to other load
than req/s), the log's cost (1 - log on / log off req/s of the median rounds, each
interleaved pair of rounds and a bootstrap interval of their mean, CPU per request, and
the log's own CPU per record from /metrics); at the end the goals, one line each, met or
NOT met: the log's cost <= 5 % in every case; Ship (log on) against MLServer at 1 row
>= 3x req/s, at more rows >= 2x req/s with a p99 no worse than its; against MLflow at
1 row on /invocations >= 10x req/s, p99 <= 0.2 of its, >= 3,000 req/s.

``--aa`` runs both Ship servers without the log: the "cost of the log" it prints is then
the benchmark's own bias and noise. ``--baseline TREE`` adds a third Ship server with the
log on, run from another checkout (say a git worktree of the commit before a change),
to the same rounds: a change to the log is measured against what it replaces
(bench/log_cost.py measures the log's cost inside one process, without the layout's
noise). The numbers are measured on whatever else the machine is doing: run it when
`uptime` shows little load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
LOG_ON, LOG_OFF, MLSERVER, MLFLOW = "ship, log on", "ship, log off", "mlserver", "mlflow"
ENDPOINTS = ("invocations", "v2-json", "v2-binary")
MLSERVER_VERSION = "1.7.1"
MLSERVER_VENV = ROOT / "bench" / ".venv-mlserver"
PEERS = ROOT / "bench" / "peers"
MODEL = "digits"


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


@dataclass(frozen=True)
class Case:
    """One endpoint at one batch size."""

    endpoint: str
    rows: int

    @property
    def name(self) -> str:
        return f"{self.endpoint}, {self.rows} row{'s' if self.rows != 1 else ''}"


@dataclass(frozen=True)
class Call:
    """What a case sends: path, body and the headers besides Host and Content-Length."""

    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


def make_call(case: Case, x: Any, json_outputs: bool = False) -> Call:
    """The request of ``case``: rows 7, 8, ... of the digits."""
    import numpy as np
    import orjson

    rows = np.ascontiguousarray(x[7:7 + case.rows], dtype=np.float32)
    if len(rows) != case.rows:
        raise SystemExit(f"--rows: at most {len(x) - 7} rows")
    json_type = (("Content-Type", "application/json"),)
    if case.endpoint == "invocations":
        names = [f"pixel_{i}" for i in range(64)]
        return Call("/invocations", orjson.dumps(
            {"dataframe_split": {"columns": names, "data": rows.tolist()}}), json_type)
    tensor: dict[str, Any] = {"name": "float_input", "datatype": "FP32",
                              "shape": list(rows.shape)}
    path = f"/v2/models/{MODEL}/infer"
    if case.endpoint == "v2-json":
        return Call(path, orjson.dumps({"inputs": [{**tensor,
                                                    "data": rows.ravel().tolist()}]}),
                    json_type)
    if case.endpoint != "v2-binary":
        raise SystemExit(f"--cases: unknown endpoint {case.endpoint!r}; one of {ENDPOINTS}")
    blob = rows.astype("<f4").tobytes()
    header = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}],
                           "parameters": {"binary_data_output": not json_outputs}})
    return Call(path, header + blob, (("Content-Type", "application/octet-stream"),
                                      ("Inference-Header-Content-Length", str(len(header)))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(port: int, call: Call) -> bytes:
    head = f"POST {call.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in call.headers) + \
        f"Content-Length: {len(call.body)}\r\n\r\n"
    return head.encode() + call.body


async def _worker(port: int, payload: bytes, count: list[int], deadline: float,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while count[0] > 0 and time.perf_counter() < deadline:
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


async def _drive(port: int, payload: bytes, requests: int, seconds: float,
                 concurrency: int) -> Result:
    count, errors = [requests], [0]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, payload, count, started + seconds, latencies, errors)
                           for _ in range(concurrency)))
    return Result("", len(latencies), errors[0], time.perf_counter() - started, latencies)


def load_runner() -> Any:
    """``uvloop.run`` when uvloop is installed, else ``asyncio.run``: runs the generator."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def drive(label: str, server: Server, call: Call, requests: int, seconds: float,
          warmup: float, concurrency: int) -> Result:
    """Warm up for ``warmup`` seconds, then send ``requests`` requests (or for ``seconds``,
    whichever ends first) over ``concurrency`` connections."""
    runner = load_runner()
    payload = http_request(server.port, call)
    runner(_drive(server.port, payload, 1 << 60, warmup, concurrency))
    cpu = server.cpu_seconds()
    result: Result = runner(_drive(server.port, payload, requests, seconds, concurrency))
    result.cpu_s = server.cpu_seconds() - cpu
    result.label = label
    return result


def answer(port: int, call: Call) -> tuple[int, str, dict[str, Any]]:
    """One request: status, text (for errors) and the decoded answer: ``predictions`` for
    /invocations, else each V2 output name -> array (JSON or binary outputs)."""
    import httpx
    import numpy as np
    import orjson

    reply = httpx.post(f"http://127.0.0.1:{port}{call.path}", content=call.body,
                       headers=dict(call.headers), timeout=60)
    if reply.status_code != 200:
        return reply.status_code, reply.text[:300], {}
    if call.path == "/invocations":
        return 200, "", {"predictions": np.asarray(orjson.loads(reply.content)["predictions"])}
    content = reply.content
    size = int(reply.headers.get("inference-header-content-length", len(content)))
    outputs, offset = {}, size
    for out in orjson.loads(content[:size])["outputs"]:
        binary = (out.get("parameters") or {}).get("binary_data_size")
        if binary is None:
            array = np.asarray(out["data"])
        else:
            dtype = {"INT64": "<i8", "FP32": "<f4", "FP64": "<f8", "INT32": "<i4"}[
                out["datatype"]]
            array = np.frombuffer(content, dtype, binary // np.dtype(dtype).itemsize, offset)
            offset += binary
        outputs[out["name"]] = array.reshape(out["shape"])
    if offset != len(content):
        return 200, f"{len(content) - offset} bytes after the outputs", outputs
    return 200, "", outputs


def validate(label: str, case: Case, port: int, call: Call, expected: Any) -> str | None:
    """None when the server answers ``call`` with 200 and ``expected`` labels in the right
    shapes, else why not."""
    import numpy as np

    status, text, outputs = answer(port, call)
    if status != 200 or text:
        return f"{label}, {case.name}: HTTP {status}: {text}"
    labels = outputs.get("predictions", outputs.get("label"))
    probabilities = outputs.get("probabilities")
    n = case.rows
    wrong = labels is None or labels.size != n or labels.shape[0] != n \
        or not np.array_equal(labels.ravel(), expected[:n])
    if "predictions" not in outputs:
        wrong = wrong or probabilities is None or probabilities.shape != (n, 10)
    if wrong:
        return (f"{label}, {case.name}: wrong answer: "
                + ", ".join(f"{k} {v.shape} {v.ravel()[:5]}" for k, v in outputs.items()))
    return None


def wait_http(port: int, path: str, timeout: float = 120.0,
              proc: subprocess.Popen[bytes] | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TimeoutError(f"exited with {proc.returncode} before port {port} was ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"port {port} not ready")


def prepare(workdir: Path) -> tuple[Path, Path, Path, Any, Any]:
    """Train once; write the Ship bundle, the ONNX file (MLServer's) and the MLflow model;
    return them, the features and the model's labels for them."""
    import mlflow.sklearn
    import numpy as np
    import sklearn
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
    bundle = workdir / "services" / MODEL / "1"
    write_bundle(bundle, manifest=Manifest(name=MODEL, version="1"),
                 schema=Schema(features=tuple(Feature(n) for n in names),
                               inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                               outputs=(TensorSpec("label", "INT64", (-1,)),
                                        TensorSpec("probabilities", "FP32", (-1, -1)))),
                 model=onx.SerializeToString())
    onnx_file = workdir / "digits.onnx"
    onnx_file.write_bytes(onx.SerializeToString())
    mlflow_model = workdir / "mlflow-model"
    # explicit requirements: inferring them runs a subprocess for half a minute
    mlflow.sklearn.save_model(model, str(mlflow_model), input_example=x[:1].astype(float),
                              pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    return bundle, onnx_file, mlflow_model, x, model.predict(x[7:])


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
                 cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        """``root``: the checkout whose kernel_magics runs; ``cwd``: the working folder
        (default ``root``); ``env``: variables over the default environment."""
        # mlflow execs `uvicorn` from PATH: put this interpreter's bin first.
        path = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(root),
               "PATH": path, **(env or {})}
        # stderr to a file: a pipe nobody reads would block a server that logs a lot
        # (closed with the Server: it is read when the server fails to start)
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        # cwd: `python -m` imports from its working folder first
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd or root, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, start_new_session=True)
        self.port = port
        try:
            wait_http(port, ready, proc=self.proc)
        except TimeoutError as exc:
            self.stop()
            self.stderr.seek(0)
            error = self.stderr.read().decode(errors="replace")
            raise SystemExit(f"{' '.join(cmd)}: {exc}\n{error[-3000:]}") from None

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
        with contextlib.suppress(ProcessLookupError):  # the server exited by itself
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def mlserver_venv() -> Path:
    """MLServer's virtual environment (bench/.venv-mlserver, git-ignored), made on first
    use with MLSERVER_VERSION and this interpreter's onnxruntime and numpy; its bin/."""
    from importlib.metadata import version

    wanted = [f"mlserver=={MLSERVER_VERSION}", f"onnxruntime=={version('onnxruntime')}",
              f"numpy=={version('numpy')}"]
    marker = MLSERVER_VENV / "bench-requirements.txt"
    if marker.exists() and marker.read_text().split() == wanted:
        return MLSERVER_VENV / "bin"
    print(f"making {MLSERVER_VENV.relative_to(ROOT)}: {' '.join(wanted)} (about a minute)",
          flush=True)
    shutil.rmtree(MLSERVER_VENV, ignore_errors=True)
    subprocess.run([PY, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = subprocess.run([str(MLSERVER_VENV / "bin" / "python"), "-m", "pip", "install",
                          "-q", "--disable-pip-version-check", *wanted],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise SystemExit(f"pip install {' '.join(wanted)} failed:\n{pip.stderr[-3000:]}")
    marker.write_text("\n".join(wanted) + "\n")
    return MLSERVER_VENV / "bin"


def start_mlserver(workdir: Path, onnx_file: Path, core: int | None) -> Server:
    """MLServer serving ``onnx_file`` as ``digits`` with bench/peers/onnx_runtime.py."""
    import json

    bin_dir = mlserver_venv()
    folder = workdir / "mlserver"
    folder.mkdir()
    port = free_port()
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
        "metrics_endpoint": None, "parallel_workers": 0, "debug": False,
        "gzip_enabled": False, "load_models_at_startup": True}, indent=1))
    (folder / "model-settings.json").write_text(json.dumps({
        "name": MODEL, "implementation": "onnx_runtime.OnnxRuntime",
        "parameters": {"uri": str(onnx_file), "version": "1"}}, indent=1))
    return Server(pinned([str(bin_dir / "mlserver"), "start", str(folder)], core), port,
                  f"/v2/models/{MODEL}/ready", cwd=folder,
                  env={"PYTHONPATH": str(PEERS), "PATH": f"{bin_dir}{os.pathsep}"
                       f"{os.environ.get('PATH', '')}"})


def summarize(label: str, rounds: list[Result]) -> Result:
    """The round with the median throughput (its latencies), for one server."""
    ordered = sorted(rounds, key=lambda r: r.rps)
    chosen = ordered[len(ordered) // 2]
    chosen.label = label
    return chosen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(ENDPOINTS),
                        help=f"endpoints, comma-separated, of {', '.join(ENDPOINTS)}")
    parser.add_argument("--rows", default="1,100", help="rows per request, comma-separated")
    parser.add_argument("--requests", type=int, default=10000, help="per timed run, Ship")
    parser.add_argument("--mlserver-requests", type=int, default=4000,
                        help="per timed run, MLServer")
    parser.add_argument("--mlflow-requests", type=int, default=1500,
                        help="per timed run, MLflow")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="a timed run ends after this long if its requests are not done")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json-outputs", action="store_true",
                        help="v2-binary asks for JSON outputs (default: binary outputs)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--no-mlserver", action="store_true", help="leave MLServer out")
    parser.add_argument("--aa", action="store_true",
                        help="A/A check: both Ship servers without the log, so the "
                             "'cost of the log' printed is the benchmark's own bias")
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also serve with the log on from this checkout (kernel_magics "
                             "from TREE), in the same rounds")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cases = [Case(endpoint.strip(), int(rows)) for endpoint in args.cases.split(",")
             for rows in args.rows.split(",")]
    server_core, client_core = split_cores()
    print(f"load average before: {os.getloadavg()[0]:.2f}; servers on core {server_core}, "
          f"load generator on core {client_core}; concurrency {args.concurrency}, "
          f"{args.workers} Ship worker(s); {args.rounds} interleaved rounds of "
          f"{len(cases)} cases" + ("; A/A: both Ship servers without the log"
                                   if args.aa else ""), flush=True)
    ships = [LOG_ON, LOG_OFF] + ([BASELINE] if args.baseline is not None else [])
    rounds: dict[tuple[Case, str], list[Result]] = {}
    # per case and log-on server: the log's records and CPU seconds per step
    log_totals: dict[tuple[Case, str], Counter[str]] = {}
    peers: dict[Case, list[str]] = {case: [] for case in cases}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        workdir = Path(tmp)
        bundle, onnx_file, mlflow_model, x, expected = prepare(workdir)
        calls = {case: make_call(case, x, args.json_outputs) for case in cases}
        logs = {case: workdir / "log" / f"{case.endpoint}-{case.rows}" for case in cases}

        def flags(label: str, case: Case) -> list[str]:
            if label == LOG_OFF or (label == LOG_ON and args.aa):
                return ["--no-log"]
            return ["--log-dir", str(logs[case] if label == LOG_ON
                                     else workdir / "log-baseline" / logs[case].name)]

        def ship(label: str, case: Case) -> Server:
            port = free_port()
            return Server(pinned(
                [PY, "-m", "kernel_magics.serving", "serve", str(bundle), "--port", str(port),
                 "--workers", str(args.workers), *flags(label, case)], server_core),
                port, "/v2/health/ready",
                args.baseline.resolve() if label == BASELINE and args.baseline else ROOT)

        servers: dict[str, Server] = {}
        try:
            if not args.no_mlflow and any(c.endpoint == "invocations" for c in cases):
                port = free_port()
                servers[MLFLOW] = Server(pinned(
                    [PY, "-m", "mlflow", "models", "serve", "-m", str(mlflow_model),
                     "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                     "-w", str(args.workers)], server_core), port, "/ping")
            if not args.no_mlserver and any(c.endpoint != "invocations" for c in cases):
                servers[MLSERVER] = start_mlserver(workdir, onnx_file, server_core)
            # Each peer answers each of its cases once, right, before anything is timed.
            for case in cases:
                peer = MLFLOW if case.endpoint == "invocations" else MLSERVER
                if peer not in servers:
                    continue
                error = validate(peer, case, servers[peer].port, calls[case], expected)
                if error is None:
                    peers[case].append(peer)
                elif peer == MLSERVER and case.endpoint == "v2-binary":
                    against = "against mlserver's v2-json" if Case("v2-json", case.rows) \
                        in cases else "none (v2-json is not in --cases)"
                    notes.append(f"mlserver {MLSERVER_VERSION} does not take {case.name} "
                                 f"({error.split(': ', 1)[1][:120]}); ship/mlserver "
                                 f"goals there: {against}")
                    print(notes[-1], flush=True)
                else:
                    raise SystemExit(error)
            if "mlserver" in servers and not any(MLSERVER in p for p in peers.values()):
                notes.append("mlserver answered no case")
            # Interleaved rounds: load from other processes hits every server alike. Ship
            # runs in fresh processes for each case of each round, in alternating order:
            # one process's memory layout alone moves its throughput by a few percent for
            # its lifetime.
            for i in range(args.rounds):
                for case in cases:
                    order = ships[i % len(ships):] + ships[:i % len(ships)]
                    order = (order if i % 2 == 0 else order[::-1]) + peers[case]
                    for label in order:
                        server = servers[label] if label in servers else ship(label, case)
                        count = {MLFLOW: args.mlflow_requests,
                                 MLSERVER: args.mlserver_requests}.get(label, args.requests)
                        try:
                            if i == 0 and label in ships:
                                error = validate(label, case, server.port, calls[case],
                                                 expected)
                                if error is not None:
                                    raise SystemExit(error)
                            result = drive(label, server, calls[case], count, args.seconds,
                                           args.warmup, args.concurrency)
                            if label in ships and "--no-log" not in flags(label, case):
                                log_totals.setdefault((case, label), Counter()).update(
                                    log_cpu(server.port))
                        finally:
                            if label not in servers:
                                server.stop()
                        rounds.setdefault((case, label), []).append(result)
                        print(f"  round {i + 1} {case.name:<21} {label:<16} "
                              f"{result.rps:7.0f} req/s  p99 {result.quantile(0.99):7.2f} ms  "
                              f"server CPU {result.cpu_us:7.1f} us/req  errors {result.errors}",
                              flush=True)
        finally:
            for server in servers.values():
                server.stop()
        logged = {case: pq_rows(logs[case]) if logs[case].exists() else 0 for case in cases}
    report(args, cases, ships, rounds, log_totals, logged, notes)


def report(args: argparse.Namespace, cases: list[Case], ships: list[str],
           rounds: dict[tuple[Case, str], list[Result]],
           log_totals: dict[tuple[Case, str], Counter[str]], logged: dict[Case, int],
           notes: list[str]) -> None:
    """Per case: the table of median rounds and the log's cost; then every goal."""
    goals: list[str] = []

    def goal(case: Case, what: str, value: float, unit: str, target: str, met: bool) -> None:
        goals.append(f"{case.name:<22}{what:<46}{value:8.2f}{unit:<2} goal {target:<8} "
                     f"{'met' if met else 'NOT met'}")

    results = {key: summarize(key[1], rs) for key, rs in rounds.items()}
    for case in cases:
        labels = [label for c, label in rounds if c == case]
        print(f"\n{case.name}: median round per server ({logged[case]} rows in the log)\n"
              f"{'server':<18}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}"
              f"{'p99 ms':>9}{'best req/s':>12}{'CPU us/req':>12}")
        for label in labels:
            r, rs = results[case, label], rounds[case, label]
            cpu = sorted(x.cpu_us for x in rs)[len(rs) // 2]
            print(f"{label:<18}{r.requests:>10}{r.errors:>8}{r.rps:>10.0f}"
                  f"{r.quantile(0.5):>9.2f}{r.quantile(0.99):>9.2f}"
                  f"{max(x.rps for x in rs):>12.0f}{cpu:>12.1f}")
        off = results[case, LOG_OFF]
        for label in ships:
            if label != LOG_OFF:
                cost = 1 - results[case, label].rps / off.rps
                print_cost(label, rounds[case, label], rounds[case, LOG_OFF], cost,
                           log_totals.get((case, label), Counter()))
                name = "the log's cost" if label == LOG_ON else "the baseline log's cost"
                goal(case, name, cost * 100, "%", "<= 5 %", cost <= 0.05)
        on = results[case, LOG_ON]
        peer = (case, MLSERVER) if (case, MLSERVER) in results else \
            (Case("v2-json", case.rows), MLSERVER)
        if case.endpoint != "invocations" and peer in results:
            ms = results[peer]
            via = "" if peer[0] == case else " (its v2-json)"
            speed = on.rps / ms.rps
            if case.rows == 1:
                goal(case, f"ship (log on) / mlserver req/s{via}", speed, "x", ">= 3x",
                     speed >= 3)
            else:
                p99 = on.quantile(0.99) / ms.quantile(0.99)
                goal(case, f"ship (log on) / mlserver req/s{via}", speed, "x", ">= 2x",
                     speed >= 2)
                goal(case, f"p99 ship (log on) / mlserver{via}", p99, "", "<= 1", p99 <= 1)
        if case == Case("invocations", 1):
            if (case, MLFLOW) in results:
                ml = results[case, MLFLOW]
                speed, p99 = on.rps / ml.rps, on.quantile(0.99) / ml.quantile(0.99)
                goal(case, "ship (log on) / mlflow req/s", speed, "x", ">= 10x", speed >= 10)
                goal(case, "p99 ship (log on) / mlflow", p99, "", "<= 0.2", p99 <= 0.2)
            goal(case, "ship (log on) req/s", on.rps, "", ">= 3000", on.rps >= 3000)
    print("\ngoals (median rounds" + ("; A/A: the log's cost is the benchmark's bias)"
                                      if args.aa else ")"))
    print("\n".join(goals))
    for note in notes:
        print(f"note: {note}")
    print(f"(load average after: {os.getloadavg()[0]:.2f})")


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
