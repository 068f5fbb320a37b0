"""The Open Inference Protocol over gRPC next to REST, in one process: stock
``tritonclient.grpc`` with its defaults (raw tensors), KServe's typed ``contents`` form,
the same answers and error messages as REST, gRPC status codes, the prediction log, the
release's split, authentication; and the service's descriptors against tritonclient's own.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
import uvicorn
from click.testing import CliRunner
from live_server import ServerGone, free_port, wait_ready
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from kernel_magics.cli import main as ship
from kernel_magics.serving.bundle import Bundle, write_bundle
from kernel_magics.serving.errors import RuntimeServingError
from kernel_magics.serving.grpc_v2 import protocol
from kernel_magics.serving.predlog import read_log
from kernel_magics.serving.release import Canary, Release, write_release
from kernel_magics.serving.server import create_app, serve, uvicorn_options

MODEL = "digits"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Both:
    """A runtime in a thread of the test process, REST and gRPC."""

    url: str
    target: str  # host:port of gRPC
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def grpc(self) -> triton_grpc.InferenceServerClient:
        return triton_grpc.InferenceServerClient(self.target)

    def http(self) -> triton_http.InferenceServerClient:
        return triton_http.InferenceServerClient(self.url.removeprefix("http://"))


def serve_both(bundle: Path, log_dir: Path | None, release_file: Path | None = None
               ) -> Both:
    """The real app with REST and gRPC ports, ready; a port taken meanwhile: others."""
    for attempt in range(3):
        port, grpc_port = free_port(), free_port()
        app = create_app(bundle, log_dir=str(log_dir) if log_dir else "",
                         release_file=release_file, grpc_address=f"127.0.0.1:{grpc_port}")
        options: Any = uvicorn_options("warning", Bundle.load(bundle).manifest.runtime)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        both = Both(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", server, thread)
        try:
            wait_ready(both.url, alive=thread.is_alive)
        except ServerGone:
            if attempt == 2:
                raise
            continue
        except BaseException:
            both.stop()
            raise
        return both
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grpc") / "log"


@pytest.fixture(scope="module")
def both(digits_bundle: Bundle, log_dir: Path) -> Iterator[Both]:
    running = serve_both(digits_bundle.path, log_dir)
    yield running
    running.stop()


def rows(n: int, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).uniform(0, 16, size=(n, 64)).astype(np.float32)


def infer_grpc(client: triton_grpc.InferenceServerClient, x: np.ndarray[Any, Any],
               **options: Any) -> Any:
    tensor = triton_grpc.InferInput("float_input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return client.infer(MODEL, [tensor], **options)


def infer_http(client: triton_http.InferenceServerClient, x: np.ndarray[Any, Any]) -> Any:
    tensor = triton_http.InferInput("float_input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return client.infer(MODEL, [tensor])


def grpc_error(call: Callable[[], Any]) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_stock_tritonclient_grpc_gets_what_rest_answers(both: Both) -> None:
    client = both.grpc()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, "3")
    meta = client.get_model_metadata(MODEL, as_json=True)
    assert (meta["name"], meta["versions"], meta["platform"]) == (
        MODEL, ["3"], "onnxruntime_onnx")
    assert meta["inputs"] == [{"name": "float_input", "datatype": "FP32",
                               "shape": ["-1", "64"]}]  # int64 as JSON strings
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert client.get_server_metadata().name == "ship"
    rest = both.http()
    for n in (1, 100):
        x = rows(n, seed=n)
        over_grpc, over_rest = infer_grpc(client, x), infer_http(rest, x)
        for output in ("label", "probabilities"):
            got, want = over_grpc.as_numpy(output), over_rest.as_numpy(output)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want)
        answer = over_grpc.get_response()
        assert (answer.model_name, answer.model_version) == (MODEL, "3")
        assert len(over_grpc.as_numpy("label")) == n
    # the client's id comes back, a pinned version answers, outputs can be chosen
    pinned = infer_grpc(client, rows(2), request_id="mine", model_version="3",
                        outputs=[triton_grpc.InferRequestedOutput("label")])
    assert pinned.get_response().id == "mine"
    assert pinned.as_numpy("probabilities") is None and pinned.as_numpy("label").shape == (2,)
    # past inline_max_rows (256) the model runs in a thread, as over REST
    assert infer_grpc(client, rows(300)).as_numpy("label").shape == (300,)


def rest_error(both: Both, body: dict[str, Any]) -> str:
    response = httpx.post(f"{both.url}/v2/models/{MODEL}/infer", json=body)
    assert response.status_code == 400
    return str(response.json()["error"])


def test_bad_input_is_invalid_argument_with_rest_s_message(both: Both) -> None:
    client = both.grpc()
    # a tensor of the wrong width, and an input the model does not have
    wrong = rows(1)[:, :63]
    error = grpc_error(lambda: infer_grpc(client, wrong))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message() == rest_error(both, {"inputs": [{
        "name": "float_input", "datatype": "FP32", "shape": [1, 63],
        "data": wrong.ravel().tolist()}]})
    assert "float_input" in error.message()
    tensor = triton_grpc.InferInput("pixels", [1, 64], "FP32")
    tensor.set_data_from_numpy(rows(1))
    error = grpc_error(lambda: client.infer(MODEL, [tensor]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message() == rest_error(both, {"inputs": [{
        "name": "pixels", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}]})
    assert "'pixels'" in error.message()
    # bytes that do not fill the shape they claim
    request = protocol.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="float_input", datatype="FP32", shape=[2, 64])
    request.raw_input_contents.append(rows(1).tobytes())
    with grpc.insecure_channel(both.target) as channel:
        code, message, trailer = raw_call(channel, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == "input 'float_input': 256 bytes do not hold 128 FP32 values."
    assert trailer["x-ship-error-field"] == "float_input" and len(trailer["x-request-id"]) == 32
    # and it still answers
    assert infer_grpc(client, rows(3)).as_numpy("label").shape == (3,)


def test_unknown_model_or_version_is_not_found(both: Both) -> None:
    client = both.grpc()
    tensor = triton_grpc.InferInput("float_input", [1, 64], "FP32")
    tensor.set_data_from_numpy(rows(1))
    error = grpc_error(lambda: client.infer("cats", [tensor]))
    assert error.status() == "StatusCode.NOT_FOUND"
    assert error.message() == "unknown model 'cats'; this service serves 'digits'."
    error = grpc_error(lambda: client.infer(MODEL, [tensor], model_version="9"))
    assert error.status() == "StatusCode.NOT_FOUND" and "unknown version '9'" in \
        error.message()
    for call in (lambda: client.is_model_ready("cats"),
                 lambda: client.get_model_metadata("cats")):
        assert grpc_error(call).status() == "StatusCode.NOT_FOUND"


def raw_call(channel: grpc.Channel, request: Any) -> tuple[Any, str, dict[str, str]]:
    """ModelInfer through our own message classes: (code, details, trailing metadata)."""
    call = channel.unary_unary(f"/{protocol.SERVICE}/ModelInfer",
                               request_serializer=request.SerializeToString,
                               response_deserializer=protocol.ModelInferResponse.FromString)
    try:
        response, state = call.with_call(request, timeout=10)
    except grpc.RpcError as exc:
        return exc.code(), exc.details(), dict(exc.trailing_metadata() or ())
    return response, "", dict(state.trailing_metadata() or ())


def test_typed_contents_as_kserve_s_client_sends_lists(both: Both) -> None:
    x = rows(2, seed=7)
    request = protocol.ModelInferRequest(model_name=MODEL, id="kserve-uuid")
    request.inputs.add(name="float_input", datatype="FP32", shape=[2, 64],
                       contents=protocol.InferTensorContents(fp32_contents=x.ravel()))
    with grpc.insecure_channel(both.target) as channel:
        response, _, trailer = raw_call(channel, request)
        assert response.id == "kserve-uuid" and response.model_version == "3"
        (label, probabilities) = response.outputs
        assert (label.name, label.datatype, list(label.shape)) == ("label", "INT64", [2])
        got = np.frombuffer(response.raw_output_contents[0], dtype="<i8")
        want = infer_http(both.http(), x).as_numpy("label")
        assert np.array_equal(got, want) and trailer["x-ship-model-version"] == "3"
        # values in the field of another datatype
        request.inputs[0].contents.Clear()
        request.inputs[0].contents.int_contents.extend([1] * 128)
        code, message, _ = raw_call(channel, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert message == ("input 'float_input': FP32 values go in "
                           "contents.fp32_contents, not contents.int_contents.")


def test_the_log_and_metrics_have_the_grpc_requests(both: Both, log_dir: Path) -> None:
    client = both.grpc()
    infer_grpc(client, rows(5), request_id="logged-5")
    grpc_error(lambda: infer_grpc(client, rows(1)[:, :10], request_id="bad-10"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = {e.client_id: e for e in read_log(log_dir, limit=1000)
                   if e.endpoint == "grpc_infer"}
        if {"logged-5", "bad-10"} <= entries.keys():
            break
        time.sleep(0.1)
    ok, bad = entries["logged-5"], entries["bad-10"]
    assert (ok.status, ok.rows, ok.version, ok.error) == (200, 5, "3", None)
    assert '"name":"label"' in (ok.outputs or "")
    assert bad.status == 400 and "float_input" in (bad.error or "")
    metrics = httpx.get(f"{both.url}/metrics").text
    assert re.search(r'ship_requests_total\{[^}]*endpoint="grpc_infer"[^}]*code="200"\}',
                     metrics)


def test_a_release_splits_grpc_traffic_and_a_pinned_version_stays(
        digits_bundle: Bundle, tmp_path: Path) -> None:
    folder = tmp_path / MODEL
    shutil.copytree(digits_bundle.path, folder / "3")
    write_bundle(folder / "4", manifest=replace(digits_bundle.manifest, version="4"),
                 schema=digits_bundle.schema, model=digits_bundle.path / "model.onnx")
    write_release(folder / "release.json", Release(MODEL, "3", Canary("4", 50.0)))
    running = serve_both(folder / "3", None, folder / "release.json")
    try:
        client = running.grpc()
        answered = {infer_grpc(client, rows(1), headers={"x-ship-routing-key": str(k)})
                    .get_response().model_version for k in range(40)}
        assert answered == {"3", "4"}
        pinned = {infer_grpc(client, rows(1), model_version="3",
                             headers={"x-ship-routing-key": str(k)})
                  .get_response().model_version for k in range(10)}
        assert pinned == {"3"}
        meta = client.get_model_metadata(MODEL)
        assert list(meta.versions) == ["3", "4"]
    finally:
        running.stop()


def test_a_token_guards_grpc_as_it_guards_rest(digits_bundle: Bundle,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIP_AUTH_TOKEN", "s3cret")
    running = serve_both(digits_bundle.path, None)
    try:
        client = running.grpc()
        assert client.is_server_ready()  # probes stay open
        error = grpc_error(lambda: infer_grpc(client, rows(1)))
        assert error.status() == "StatusCode.UNAUTHENTICATED"
        assert "SHIP_AUTH_TOKEN" in error.message()
        assert grpc_error(lambda: client.get_model_metadata(MODEL)).status() == \
            "StatusCode.UNAUTHENTICATED"
        answer = infer_grpc(client, rows(1), headers={"authorization": "Bearer s3cret"})
        assert answer.as_numpy("label").shape == (1,)
    finally:
        running.stop()


def test_serve_refuses_a_grpc_port_it_cannot_have(digits_bundle: Bundle) -> None:
    with pytest.raises(RuntimeServingError, match="is the HTTP port too"):
        serve(digits_bundle.path, port=8080, grpc_port=8080, log_dir="")
    with pytest.raises(RuntimeServingError, match="is no TCP port"):
        serve(digits_bundle.path, port=8080, grpc_port=70000, log_dir="")


@pytest.mark.slow
def test_two_workers_share_the_grpc_port_and_flush_its_log_on_sigterm(
        digits_bundle: Bundle, tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kernel_magics.serving", "serve",
                             str(digits_bundle.path), "--port", str(port), "--grpc-port",
                             str(grpc_port), "--workers", "2", "--log-dir",
                             str(tmp_path / "log")], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=90, in_a_row=20)  # both warmed up
        for k in range(20):  # a channel each: the kernel spreads connections over workers
            with triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
                infer_grpc(client, rows(1, seed=k), request_id=f"w{k}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    logged = [e for e in read_log(tmp_path / "log", limit=100) if e.endpoint == "grpc_infer"]
    assert sorted(e.client_id or "" for e in logged) == sorted(f"w{k}" for k in range(20))
    writers = {path.name.split("-")[2] for path in (tmp_path / "log").rglob("*.parquet")}
    assert len(writers) == 2  # segment names carry the writing process's id


def test_ship_serve_takes_a_grpc_port_of_its_own(digits_bundle: Bundle) -> None:
    result = CliRunner().invoke(ship, ["serve", str(digits_bundle.path), "--grpc-port", "8080"])
    assert result.exit_code == 2 and "--grpc-port needs a port other than --port" in \
        result.output
    assert "--grpc-port" in CliRunner().invoke(ship, ["serve", "--help"]).output


# -- the contract ----------------------------------------------------------------------------
PROTO = Path(protocol.__file__).with_name("grpc_predict_v2.proto")


def test_every_field_matches_tritonclient_s_own_descriptors() -> None:
    """Same names, numbers, types and labels as the proto stock clients compile: the same
    bytes on the wire."""
    ours = protocol.POOL.FindFileByName("grpc_predict_v2.proto")
    theirs = service_pb2.DESCRIPTOR
    checked = 0

    def compare(mine: Any, other: Any) -> None:
        nonlocal checked
        for field in mine.fields:
            match = other.fields_by_name[field.name]
            assert (field.number, field.type, field.is_repeated) == (
                match.number, match.type, match.is_repeated), f"{mine.full_name}.{field.name}"
            if field.message_type is not None:
                assert field.message_type.name == match.message_type.name
            checked += 1
        for nested in mine.nested_types:
            compare(nested, other.nested_types_by_name[nested.name])

    for name, message in ours.message_types_by_name.items():
        compare(message, theirs.message_types_by_name[name])
    assert checked > 50
    service = ours.services_by_name["GRPCInferenceService"]
    triton = theirs.services_by_name["GRPCInferenceService"]
    for method in service.methods:
        other = triton.methods_by_name[method.name]
        assert (method.input_type.name, method.output_type.name) == (
            other.input_type.name, other.output_type.name)


def test_the_compiled_descriptor_is_the_proto_s() -> None:
    """grpc_predict_v2.pb was regenerated after the last edit of the .proto."""
    text = PROTO.read_text()
    declared = set(re.findall(r"^\s*message (\w+)", text, re.M))
    fields = set(re.findall(r"^\s*(?:repeated )?[\w.<>, ]+? (\w+) = (\d+);", text, re.M))
    file = protocol.POOL.FindFileByName("grpc_predict_v2.proto")
    compiled: set[str] = set()
    compiled_fields: set[tuple[str, str]] = set()

    def walk(message: Any) -> None:
        compiled.add(message.name)
        compiled_fields.update((f.name, str(f.number)) for f in message.fields)
        for nested in message.nested_types:
            if not nested.GetOptions().map_entry:
                walk(nested)

    for message in file.message_types_by_name.values():
        walk(message)
    assert compiled == declared
    assert compiled_fields == fields
