"""The runtime is self-contained: copied as ``ship_runtime`` it serves without Ship,
Jupyter, IPython, torch or mlflow, and a bundle runs in a fresh venv from its own
requirements.txt."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from live_server import free_port, wait_ready

from kernel_magics.serving import runtime_requirements
from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.predlog import read_log

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "kernel_magics" / "serving"
CONSTRAINTS = ROOT / "constraints.txt"
FORBIDDEN = ("kernel_magics", "jupyter", "jupyter_core", "jupyter_server", "IPython",
             "ipykernel", "ipywidgets", "nbformat", "nbconvert", "papermill", "torch",
             "mlflow", "sklearn", "duckdb", "tornado")
# skops: imported only to load a scikit-learn object a serve cell takes from the notebook
# (state/), and then listed in that bundle's requirements.txt with scikit-learn.
ALLOWED_THIRD_PARTY = {"numpy", "onnxruntime", "pyarrow", "starlette", "uvicorn", "orjson",
                       "yaml", "anyio", "pandas", "duckdb", "fsspec", "skops",
                       "grpc", "google"}  # grpcio, protobuf: the V2 gRPC service (grpc_v2/)
# ray: imported by rayserve.py when a service runs on Ray Serve, never by the rest
ALLOWED_THIRD_PARTY |= {"ray"}
ROW = [3.0] * 64


def ship_runtime_copy(dest: Path) -> Path:
    """What the bundle builder does: serving/ copied as the package ship_runtime."""
    shutil.copytree(SERVING, dest / "ship_runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_imports_are_stdlib_runtime_deps_or_relative() -> None:
    for path in sorted(SERVING.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, \
                    f"{path.name} imports {name}"


SCRIPT = textwrap.dedent('''
    import json, sys, threading, time, urllib.request
    import grpc, uvicorn
    from ship_runtime.server import create_app, uvicorn_options
    from ship_runtime.batch import score_file
    from ship_runtime.grpc_v2 import protocol
    bundle, log, port, grpc_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = create_app(bundle, log_dir=log, grpc_address="127.0.0.1:" + grpc_port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           **uvicorn_options("warning")))
    thread = threading.Thread(target=server.run)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if urllib.request.urlopen(url + "/v2/health/ready").status == 200:
                break
        except OSError:
            time.sleep(0.05)
    body = json.dumps({"instances": [[3.0] * 64]}).encode()
    request = urllib.request.Request(url + "/invocations", data=body,
                                     headers={"content-type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request).read())
    with grpc.insecure_channel("127.0.0.1:" + grpc_port) as channel:
        ready = channel.unary_unary(
            f"/{protocol.SERVICE}/ServerReady",
            request_serializer=protocol.ServerReadyRequest.SerializeToString,
            response_deserializer=protocol.ServerReadyResponse.FromString)
        assert ready(protocol.ServerReadyRequest(), timeout=10).ready
    server.should_exit = True
    thread.join()
    print(json.dumps({"answer": answer, "modules": sorted(sys.modules)}))
''')


def test_serving_loads_nothing_from_ship_or_notebooks(tmp_path: Path, digits_bundle: Bundle,
                                                      ) -> None:
    app = ship_runtime_copy(tmp_path / "app")
    (app / "check.py").write_text(SCRIPT)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "check.py", str(digits_bundle.path),
                           str(tmp_path / "log"), str(port), str(free_port())], cwd=app, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["answer"]["predictions"]) == 1
    loaded = [m for m in result["modules"] if m.split(".")[0] in FORBIDDEN]
    assert loaded == []
    # pandas may appear: pyarrow imports it opportunistically when it is installed (the
    # fresh-venv test below has none, and serves).
    assert "ship_runtime.app" in result["modules"]


@pytest.mark.slow
def test_bundle_serves_from_a_fresh_venv(tmp_path: Path, digits_bundle: Bundle) -> None:
    app = ship_runtime_copy(tmp_path / "app")
    shutil.copytree(digits_bundle.path, app / "bundle")
    (app / "bundle" / "requirements.txt").write_text("\n".join(runtime_requirements()) + "\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(app / "bundle" / "requirements.txt"), "--constraint", str(CONSTRAINTS)],
        capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True).stdout.lower()
    for name in ("jupyter", "ipython", "torch", "mlflow", "kernel-magics", "duckdb"):
        assert name not in freeze, name
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(python), "-m", "ship_runtime", "serve", "bundle", "--port",
                             str(port), "--log-dir", str(tmp_path / "log")], cwd=app, env=env,
                            stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=120)
        answer = httpx.post(url + "/invocations", json={"instances": [ROW]})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        import numpy as np
        import tritonclient.http as triton

        client = triton.InferenceServerClient(url.removeprefix("http://"))
        tensor = triton.InferInput("float_input", [1, 64], "FP32")
        tensor.set_data_from_numpy(np.asarray([ROW], dtype=np.float32))
        assert client.infer("digits", [tensor]).as_numpy("label").shape == (1,)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(read_log(tmp_path / "log")) == 2
