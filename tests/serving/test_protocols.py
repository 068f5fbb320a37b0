"""V2 (tritonclient, binary and JSON) and MLflow scoring protocol against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton

from kernel_magics.serving.bundle import Bundle

FEATURES = [f"pixel_{i}" for i in range(64)]


def expected_labels(bundle: Bundle, x: np.ndarray[Any, Any]) -> list[int]:
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    return [int(v) for v in session.run(["label"], {"float_input": x})[0]]


def test_tritonclient_binary_default(server: Any, digits_bundle: Bundle,
                                     digits_data: Any) -> None:
    x, _ = digits_data
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits") and client.is_model_ready("digits", "3")
    meta = client.get_model_metadata("digits")
    assert meta["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 64]}]
    tensor = triton.InferInput("float_input", [5, 64], "FP32")
    tensor.set_data_from_numpy(x[:5])  # binary_data=True: Inference-Header-Content-Length
    result = client.infer("digits", [tensor], request_id="client-7")
    assert result.as_numpy("label").tolist() == expected_labels(digits_bundle, x[:5])
    assert result.as_numpy("probabilities").shape == (5, 10)
    assert result.get_response()["id"] == "client-7"
    assert result.get_response()["model_version"] == "3"


def test_tritonclient_json(server: Any, digits_bundle: Bundle,
                           digits_data: Any) -> None:
    x, _ = digits_data
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensor = triton.InferInput("float_input", [3, 64], "FP32")
    tensor.set_data_from_numpy(x[10:13], binary_data=False)
    wanted = [triton.InferRequestedOutput("label", binary_data=False)]
    result = client.infer("digits", [tensor], outputs=wanted, model_version="3")
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["label"]
    assert response["outputs"][0]["data"] == expected_labels(digits_bundle, x[10:13])
    with pytest.raises(triton.InferenceServerException, match="unknown version"):
        client.infer("digits", [tensor], model_version="99")


def test_v2_json_by_features_and_request_id(server: Any, digits_bundle: Bundle,
                                            digits_data: Any) -> None:
    x, _ = digits_data
    body = {"inputs": [{"name": n, "datatype": "FP32", "shape": [2], "data": x[:2, i].tolist()}
                       for i, n in enumerate(FEATURES)]}
    with server.client() as client:
        response = client.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["id"] == response.headers["x-request-id"]
    label = next(o for o in doc["outputs"] if o["name"] == "label")
    assert label["data"] == expected_labels(digits_bundle, x[:2])


def test_v2_server_and_health_endpoints(server: Any) -> None:
    with server.client() as client:
        assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2/models/digits/versions/3").json()["versions"] == ["3"]
        assert client.get("/v2/models/digits/versions/3/ready").json()["ready"] is True
        assert client.get("/ping").status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/version").json()["champion"] == "3"
        missing = client.get("/v2/models/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        assert "x-request-id" in missing.headers


def _bodies(x: np.ndarray[Any, Any]) -> dict[str, Any]:
    rows = x.tolist()
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    return {
        "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": rows}},
        "dataframe_split_reordered": {"dataframe_split": {
            "columns": FEATURES[::-1], "data": [row[::-1] for row in rows]}},
        "dataframe_records": {"dataframe_records": records},
        "instances_rows": {"instances": rows},
        "instances_records": {"instances": records},
        "inputs_columns": {"inputs": {n: x[:, i].tolist() for i, n in enumerate(FEATURES)}},
        "inputs_rows": {"inputs": rows},
        "inputs_tensor": {"inputs": {"float_input": rows}, "params": {}},
    }


@pytest.mark.parametrize("kind", list(_bodies(np.zeros((1, 64)))))
def test_mlflow_formats(server: Any, digits_bundle: Bundle, digits_data: Any,
                        kind: str) -> None:
    x, _ = digits_data
    with server.client() as client:
        response = client.post("/invocations", json=_bodies(x[20:24])[kind])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected_labels(digits_bundle, x[20:24])}
    assert len(response.headers["x-request-id"]) == 32  # 24 digits of id, 8 of its hash


def test_mlflow_csv(server: Any, digits_bundle: Bundle, digits_data: Any) -> None:
    x, _ = digits_data
    lines = [",".join(FEATURES)] + [",".join(str(v) for v in row) for row in x[:3].tolist()]
    with server.client() as client:
        response = client.post("/invocations", content="\n".join(lines),
                               headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected_labels(digits_bundle, x[:3])


def test_handler_bundle(start_server: Any, tabular_bundle: Bundle) -> None:
    running: Any = start_server(tabular_bundle)
    records = [{"age": None, "income": 1200.0, "city": "paris"},
               {"age": 41.0, "income": -300.0, "city": "lyon"}]
    with running.client() as client:
        response = client.post("/invocations", json={"dataframe_records": records})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert [p["label"] for p in predictions] in (["yes", "no"], ["yes", "yes"],
                                                     ["no", "no"], ["no", "yes"])
        assert all(0 <= p["p"] <= 1 for p in predictions)
        v2 = client.post("/v2/models/churn/infer", json={"inputs": [
            {"name": "age", "datatype": "FP64", "shape": [2], "data": [30.0, 41.0]},
            {"name": "income", "datatype": "FP64", "shape": [2], "data": [1200.0, -300.0]},
            {"name": "city", "datatype": "BYTES", "shape": [2], "data": ["paris", "lyon"]}]})
        assert v2.status_code == 200, v2.text
        assert {o["name"] for o in v2.json()["outputs"]} == {"label", "probabilities"}
        bad = client.post("/invocations", json={"dataframe_records": [
            {"age": 1.0, "income": None, "city": "paris"}]})
        assert bad.status_code == 400 and bad.json()["field"] == "income"


def test_metrics_and_openapi(server: Any, digits_data: Any) -> None:
    x, _ = digits_data
    with server.client() as client:
        client.post("/invocations", json={"inputs": x[:1].tolist()})
        client.post("/invocations", json={"inputs": [[1.0]]})
        text = client.get("/metrics").text
        doc = client.get("/openapi.json").json()
    assert 'ship_requests_total{model="digits",version="3",endpoint="invocations",code="200"} 1' \
        in text
    assert 'ship_request_errors_total{model="digits",version="3",endpoint="invocations"} 1' \
        in text
    assert 'ship_request_duration_seconds_count{model="digits",version="3"} 2' in text
    assert 'ship_model_ready{model="digits",version="3"} 1' in text
    assert doc["openapi"].startswith("3.")
    assert "/v2/models/{model_name}/infer" in doc["paths"]
    assert "/invocations" in doc["paths"] and "/feedback" in doc["paths"]


def test_not_ready_before_warm_up(digits_bundle: Bundle) -> None:
    import asyncio

    from kernel_magics.serving.app import build_app
    from kernel_magics.serving.server import create_service

    app = build_app(create_service(digits_bundle.path, log_dir=""))

    async def probe() -> list[httpx.Response]:
        # ASGITransport runs no lifespan, so the warm-up never happens.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ship") as client:
            return [await client.get("/v2/health/ready"), await client.get("/v2/health/live"),
                    await client.post("/invocations", json={"inputs": [[0.0] * 64]}),
                    await client.get("/v2/models/digits/ready")]

    ready, live, infer, model_ready = asyncio.run(probe())
    assert ready.status_code == 503 and live.status_code == 200
    assert infer.status_code == 503 and "warming up" in infer.json()["error"]
    assert model_ready.status_code == 503
