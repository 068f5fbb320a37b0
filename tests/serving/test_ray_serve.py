"""The runtime on Ray Serve, for real: `ship serve NAME --engine ray` on a local Ray it
starts (two replicas from [serve]), and a bundle's generated rayserve.py run as a user
runs it. Same V2 and MLflow answers (httpx and tritonclient), feedback, one prediction
log written by both replicas, a canary taken up from release.json while serving, and no
Ray process left after SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
import tritonclient.http as triton
from live_server import free_port
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.bundle.deploy import write_deployment
from kernel_magics.errors import ConfigError
from kernel_magics.serving import rayserve
from kernel_magics.serving.bundle import Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.predlog import read_log
from kernel_magics.serving.release import Canary, Release, write_release
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace, init_workspace

SERVING = Path(__file__).resolve().parents[2] / "kernel_magics" / "serving"
ROWS = [[3.0] * 64, [0.0] * 32 + [9.0] * 32]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory,
              digits_data: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> Path:
    """Service `digits`: versions 1 and 2, champion 1; version 1 is a
    whole bundle (ship_runtime/ and rayserve.py beside the model), as `ship build` makes."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("ray")
    workspace = init_workspace(root)
    (workspace.ship_dir / "ship.toml").write_text("[serve]\nreplicas = 2\n")
    x, y = digits_data
    model = sklearn_onnx(LogisticRegression(max_iter=200).fit(x / 16, y), 64)
    service = workspace.services_dir / "digits"
    for version in ("1", "2"):  # the same model: which one answers shows in a header
        write_bundle(service / version,
                     manifest=Manifest(name="digits", version=version,
                                       runtime=RuntimeSettings(log_flush_interval_s=0.2)),
                     schema=classifier_schema([Feature(f"pixel_{i}") for i in range(64)], 64),
                     model=model)
    shutil.copytree(SERVING, service / "1" / "ship_runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    write_deployment(service / "1", name="digits", version="1", ship_version="test",
                     python_version="3.11")
    write_release(service / "release.json", Release("digits", "1"))
    return root


@pytest.fixture
def ray_tmp() -> Iterator[str]:
    """A Ray temp folder of this test's own (short: Ray's socket paths must fit)."""
    folder = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class Started:
    """A command serving on Ray, its output in a file; stopped with SIGTERM."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], output: Path) -> None:
        self.output = output
        self.stream = output.open("wb")
        self.process = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.stream,
                                        stderr=subprocess.STDOUT)
        self.tree: list[psutil.Process] = []

    def ready(self, url: str) -> None:
        """Wait for 200 from /v2/health/ready (Ray's proxy answers 404 or 503 in plain
        text until the application is deployed)."""
        deadline = time.monotonic() + 150
        while True:
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, f"not ready: {self.text()}"
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        # Ray's own processes (GCS, raylet, workers): all of them must end with it
        self.tree = psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=90)
        finally:
            self.stream.close()

    def text(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]

    def left(self) -> list[str]:
        """Ray processes that outlived the command (give them a few seconds)."""
        deadline = time.monotonic() + 20
        while True:
            alive = [p for p in self.tree if p.is_running()
                     and p.status() != psutil.STATUS_ZOMBIE]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid} {p.name()}" for p in alive]
            time.sleep(0.5)


def environment(ray_tmp: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(RAY_TMPDIR=ray_tmp, MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def v2_json(url: str, rows: list[list[float]]) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/digits/infer", timeout=30, json={
        "id": "client-1", "inputs": [{"name": "float_input", "shape": [len(rows), 64],
                                      "datatype": "FP32", "data": rows}]})


def triton_labels(url: str, rows: list[list[float]]) -> list[int]:
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    tensor = triton.InferInput("float_input", [len(rows), 64], "FP32")
    tensor.set_data_from_numpy(np.asarray(rows, dtype=np.float32))  # binary by default
    return [int(v) for v in client.infer("digits", [tensor]).as_numpy("label")]


def send_feedback(url: str, request_id: str, truth: int) -> httpx.Response:
    """Ground truth, to whichever replica Ray picks (the one that answered, or one that
    finds the id in the log once the other flushed it)."""
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.post(f"{url}/feedback", timeout=30,
                            json={"request_id": request_id, "ground_truth": truth})
        if answer.status_code != 404 or time.monotonic() > deadline:
            return answer
        time.sleep(0.3)


@pytest.mark.slow
def test_ship_serve_on_ray_serves_logs_and_follows_the_release(workspace: Path,
                                                               ray_tmp: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = Started([str(Path(sys.executable).with_name("ship")), "serve", "digits",
                      "--engine", "ray", "--port", str(port)], workspace,
                     environment(ray_tmp), workspace / "serve.log")
    try:
        served.ready(url)
        answer = httpx.post(f"{url}/invocations", json={"instances": ROWS}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.headers.get_list("x-request-id")) == 1  # Ray's own one dropped
        assert answer.headers["x-ship-model-version"] == "1"
        predictions = answer.json()["predictions"]
        assert len(predictions) == 2
        v2 = v2_json(url, ROWS)
        assert v2.status_code == 200, v2.text
        body = v2.json()
        assert body["model_name"] == "digits" and body["model_version"] == "1"
        assert body["id"] == "client-1"
        labels = next(o for o in body["outputs"] if o["name"] == "label")["data"]
        assert labels == predictions == triton_labels(url, ROWS)
        bad = httpx.post(f"{url}/invocations", json={"instances": [[1.0] * 3]}, timeout=30)
        assert bad.status_code == 400 and "error" in bad.json()
        for _ in range(20):  # enough traffic for both replicas to answer some
            assert httpx.post(f"{url}/invocations", json={"instances": ROWS[:1]},
                              timeout=30).status_code == 200
        feedback = send_feedback(url, answer.headers["x-request-id"], 3)
        assert feedback.status_code == 200, feedback.text

        service = workspace / ".ship" / "services" / "digits"
        write_release(service / "release.json",
                      Release("digits", "1", Canary("2", 100.0, steps=(100.0,))))
        deadline = time.monotonic() + 60
        streak = 0
        while streak < 10:  # both replicas took the canary up
            assert time.monotonic() < deadline, "the canary never answered"
            version = httpx.post(f"{url}/invocations", json={"instances": ROWS[:1]},
                                 timeout=30).headers["x-ship-model-version"]
            streak = streak + 1 if version == "2" else 0
            time.sleep(0.05 if version == "2" else 0.3)
        versions = httpx.get(f"{url}/version", timeout=30).json()
        assert versions["versions"] == ["1", "2"]
    finally:
        code = served.stop()
    assert code == 0, served.text()
    assert served.left() == [], served.text()

    log = workspace / ".ship" / "services" / "digits" / "log"
    entries = read_log(log)  # every replica flushed its part when it stopped
    endpoints = [e.endpoint for e in entries]
    assert endpoints.count("v2_infer") == 2 and endpoints.count("invocations") >= 32
    assert {e.version for e in entries} == {"1", "2"}
    assert [e.ground_truth for e in entries
            if e.request_id == answer.headers["x-request-id"]] == ["3"]
    writers = {p.name.split("-")[2] for p in (log / "predictions").rglob("part-*.parquet")}
    assert len(writers) == 2, writers  # one writer per replica process


@pytest.mark.slow
def test_the_bundles_rayserve_py_serves_the_same(workspace: Path, ray_tmp: str,
                                                 tmp_path: Path) -> None:
    bundle = workspace / ".ship" / "services" / "digits" / "1"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    served = Started([sys.executable, "rayserve.py", "--port", str(port)], bundle,
                     environment(ray_tmp, SHIP_LOG_DIR=str(tmp_path / "log")),
                     tmp_path / "rayserve.log")
    try:
        served.ready(url)
        answer = httpx.post(f"{url}/invocations", json={"instances": ROWS}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.headers.get_list("x-request-id")) == 1
        labels = next(o for o in v2_json(url, ROWS).json()["outputs"]
                      if o["name"] == "label")["data"]
        assert answer.json()["predictions"] == labels == triton_labels(url, ROWS)
        assert send_feedback(url, answer.headers["x-request-id"], 4).status_code == 200
        modules = httpx.get(f"{url}/version", timeout=30).json()
        assert modules["model"] == "digits" and modules["versions"] == ["1"]
    finally:
        code = served.stop()
    assert code == 0, served.text()
    assert served.left() == [], served.text()
    entries = read_log(tmp_path / "log")
    assert sorted(e.endpoint for e in entries) == ["invocations", "v2_infer", "v2_infer"]
    assert [e.ground_truth for e in entries if e.endpoint == "invocations"] == ["4"]


def test_the_proxy_keeps_the_apps_request_id_alone() -> None:
    """Ray's proxy appends its own x-request-id after the app's: FirstRequestId drops it."""
    sent: list[dict[str, Any]] = []

    async def proxied(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-request-id", b"ship-id"), (b"content-length", b"0"),
                                (b"X-Request-ID", b"ray-id")]})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = rayserve.proxy_middlewares()[0]
    asyncio.run(middleware.cls(proxied)({"type": "http"}, None, send))
    assert sent[0]["headers"] == [(b"x-request-id", b"ship-id"), (b"content-length", b"0")]
    assert rayserve.PROXY_CALLBACK == "kernel_magics.serving.rayserve:proxy_middlewares"


def test_serve_settings_become_ray_serve_options(tmp_path: Path) -> None:
    def options(**serve: Any) -> dict[str, Any]:
        return Workspace(tmp_path, {"serve": serve}).ray_serve().deployment_options()

    assert options() == {"num_replicas": 1, "max_ongoing_requests": 32,
                         "ray_actor_options": {"num_cpus": 1.0}}
    assert options(autoscaling=True, replicas=2, max_replicas=4)["autoscaling_config"] == {
        "min_replicas": 1, "max_replicas": 4, "initial_replicas": 2,
        "target_ongoing_requests": 2.0}
    for bad, message in (({"replicas": 0}, "replicas must be a whole number >= 1"),
                         ({"replica_cpus": "1"}, "replica_cpus must be a number above 0"),
                         ({"autoscaling": True, "replicas": 3},
                          "min_replicas <= replicas <= max_replicas"),
                         ({"replica": 2}, "unknown keys ['replica']")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            options(**bad)


def test_ship_serve_says_which_options_go_with_ray(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from kernel_magics.cli.serving import serve_cmd

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(serve_cmd, ["digits", "--address", "auto"])
    assert done.exit_code == 2 and "add --engine ray" in done.output
    done = runner.invoke(serve_cmd, ["digits", "--engine", "ray", "--workers", "2"])
    assert done.exit_code == 2 and "[serve] replicas" in done.output
