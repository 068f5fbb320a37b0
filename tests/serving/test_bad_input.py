"""Malformed input gets a 4xx naming the field, is logged, and never takes the server down."""

from __future__ import annotations

import gzip
import json
import struct
from typing import Any

import orjson
import pytest

from kernel_magics.serving.predlog import read_log

FEATURES = [f"pixel_{i}" for i in range(64)]
ROW = [0.0] * 64


def split(columns: list[str], data: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": data}}


CASES: list[tuple[str, str, Any, int, str]] = [
    # (name, path, JSON body or raw bytes, status, field named in the answer)
    ("unknown feature", "/invocations", split([*FEATURES[:63], "colour"], [ROW]), 400, "colour"),
    ("missing feature", "/invocations", split(FEATURES[:63], [ROW[:63]]), 400, "pixel_63"),
    ("records missing feature", "/invocations",
     {"dataframe_records": [dict(zip(FEATURES[1:], ROW, strict=False))]}, 400, "pixel_0"),
    ("string for number", "/invocations", split(FEATURES, [["x", *ROW[1:]]]), 400, "pixel_0"),
    ("null not nullable", "/invocations", split(FEATURES, [[*ROW[:5], None, *ROW[6:]]]), 400,
     "pixel_5"),
    ("short row", "/invocations", split(FEATURES, [ROW[:10]]), 400, "data"),
    ("nested value", "/invocations", split(FEATURES, [[[1.0], *ROW[1:]]]), 400, "pixel_0"),
    ("two formats", "/invocations", {"instances": [ROW], "inputs": [ROW]}, 400, "body"),
    ("not an object", "/invocations", [1, 2, 3], 400, "body"),
    ("malformed json", "/invocations", b'{"instances": [', 400, "body"),
    ("NaN literal", "/invocations", b'{"instances": [[NaN]]}', 400, "body"),
    ("empty body", "/invocations", b"", 400, "body"),
    ("v2 wrong datatype", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FP64", "shape": [1, 64], "data": ROW}]}, 400,
     "float_input"),
    ("v2 wrong shape", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FP32", "shape": [2, 32], "data": ROW}]}, 400,
     "float_input"),
    ("v2 data size", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FP32", "shape": [1, 64], "data": ROW[:3]}]}, 400,
     "float_input"),
    ("v2 unknown input", "/v2/models/digits/infer", {"inputs": [
        {"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1.0]}]}, 400, "pixels"),
    ("v2 bad datatype", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FLOAT", "shape": [1, 64], "data": ROW}]}, 400,
     "float_input"),
    ("v2 unknown output", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FP32", "shape": [1, 64], "data": ROW}],
        "outputs": [{"name": "logits"}]}, 400, "logits"),
    ("v2 no inputs", "/v2/models/digits/infer", {"inputs": []}, 400, "inputs"),
    ("v2 string data", "/v2/models/digits/infer", {"inputs": [
        {"name": "float_input", "datatype": "FP32", "shape": [1, 1], "data": ["a"]}]}, 400,
     "float_input"),
    ("v2 unknown model", "/v2/models/cats/infer", {"inputs": []}, 404, "model_name"),
]


@pytest.mark.parametrize(("name", "path", "body", "status", "field"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(server: Any, name: str, path: str, body: Any, status: int,
                   field: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with server.client() as client:
        response = client.post(path, content=content,
                               headers={"content-type": "application/json"})
        assert response.status_code == status, response.text
        doc = response.json()
        assert doc["field"] == field
        assert field in doc["error"] or field in ("body", "data", "model_name")
        assert doc["request_id"] == response.headers["x-request-id"]
        assert client.get("/v2/health/live").status_code == 200


def test_nan_in_binary_tensor_names_the_feature(server: Any) -> None:
    values = [0.0] * 64
    values[7] = float("nan")
    header = orjson.dumps({"inputs": [{"name": "float_input", "datatype": "FP32",
                                       "shape": [1, 64],
                                       "parameters": {"binary_data_size": 256}}]})
    body = header + struct.pack("<64f", *values)
    with server.client() as client:
        response = client.post("/v2/models/digits/infer", content=body, headers={
            "inference-header-content-length": str(len(header))})
    assert response.status_code == 400
    assert response.json()["field"] == "pixel_7"


def test_binary_size_mismatch(server: Any) -> None:
    header = orjson.dumps({"inputs": [{"name": "float_input", "datatype": "FP32",
                                       "shape": [1, 64],
                                       "parameters": {"binary_data_size": 100}}]})
    with server.client() as client:
        response = client.post("/v2/models/digits/infer", content=header + b"\0" * 256,
                               headers={"inference-header-content-length": str(len(header))})
        assert response.status_code == 400
        bad_header = client.post("/v2/models/digits/infer", content=b"{}",
                                 headers={"inference-header-content-length": "99"})
        assert bad_header.status_code == 400


@pytest.mark.parametrize("datatype", ["BYTES", "FP32"])
@pytest.mark.parametrize("shape", [[2**31 - 1, 2**31 - 1], [1, 2**30]])
def test_a_huge_declared_shape_is_refused_before_allocating(server: Any, datatype: str,
                                                             shape: list[int]) -> None:
    # A ~100-byte request once declared billions of BYTES elements and froze the server
    # while it allocated for them (or got it OOM-killed).
    header = orjson.dumps({"inputs": [{"name": "float_input", "datatype": datatype,
                                       "shape": shape, "parameters": {"binary_data_size": 4}}]})
    with server.client() as client:
        response = client.post("/v2/models/digits/infer", content=header + b"\0" * 4,
                               headers={"inference-header-content-length": str(len(header))},
                               timeout=5)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "float_input"
        as_json = client.post("/v2/models/digits/infer", json={"inputs": [{
            "name": "float_input", "datatype": datatype, "shape": shape, "data": ["a"]}]},
            timeout=5)
        assert as_json.status_code == 400, as_json.text
        assert client.get("/v2/health/live").status_code == 200


def test_oversized_bodies_get_413(server: Any) -> None:
    big = json.dumps({"instances": [ROW] * 2000}).encode()  # > 256 KiB
    assert len(big) > 256 * 1024

    def chunks() -> Any:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    with server.client() as client:
        declared = client.post("/invocations", content=big,
                               headers={"content-type": "application/json"})
        assert declared.status_code == 413 and declared.json()["field"] == "body"
        streamed = client.post("/invocations", content=chunks(),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        bomb = gzip.compress(b" " * (2 * 1024 * 1024))
        inflated = client.post("/invocations", content=bomb, headers={
            "content-type": "application/json", "content-encoding": "gzip"})
        assert inflated.status_code == 413
        ok = client.post("/invocations", content=gzip.compress(json.dumps(
            {"instances": [ROW]}).encode()), headers={"content-type": "application/json",
                                                      "content-encoding": "gzip"})
        assert ok.status_code == 200, ok.text
        assert client.post("/invocations", content=b"{}", headers={
            "content-type": "application/xml"}).status_code == 415  # as MLflow answers


def test_errors_are_in_the_prediction_log(server: Any) -> None:
    with server.client() as client:
        client.post("/invocations", json=split(["colour"], [[1]]))
        good = client.post("/invocations", json={"instances": [ROW]})
    server.stop()
    entries = read_log(server.log_dir)
    assert len(entries) == 2
    bad = next(e for e in entries if e.error)
    assert bad.status == 400 and "colour" in bad.error and "colour" in (bad.raw_inputs or "")
    assert read_log(server.log_dir, errors_only=True) == [bad]
    ok = next(e for e in entries if not e.error)
    assert ok.request_id == good.headers["x-request-id"]
    assert json.loads(ok.outputs or "") == good.json()["predictions"]
    assert ok.inputs is not None and ok.inputs["pixel_0"] == [0.0]
