"""/openapi.json: an OpenAPI 3.1 document of the runtime's endpoints, built from the schema.

Feature names and types come from the bundle's schema.json, so clients (and fuzzers
such as schemathesis) see what a valid body looks like for this very model.
"""

from __future__ import annotations

import re
from typing import Any

from .schema import Schema, TensorSpec

JSON = "application/json"
V2_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                "INT64", "FP16", "FP32", "FP64", "BYTES"]
OCTETS = "application/octet-stream"
_NUMERIC = {"bool": "boolean", "string": "string"}


def _feature_type(dtype: str, nullable: bool) -> dict[str, Any]:
    """A feature's JSON type, bounded to what its dtype holds (the runtime refuses more)."""
    kind = _NUMERIC.get(dtype, "integer" if dtype[0] in "iu" else "number")
    spec: dict[str, Any] = {"type": [kind, "null"]} if nullable else {"type": kind}
    if kind in ("integer", "number"):
        import numpy as np

        info: Any = np.iinfo(dtype) if kind == "integer" else np.finfo(dtype)
        spec.update(minimum=int(info.min) if kind == "integer" else float(info.min),
                    maximum=int(info.max) if kind == "integer" else float(info.max))
    return spec


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _tensor_schema(specs: tuple[TensorSpec, ...]) -> dict[str, Any]:
    return {"type": "array", "items": {
        "type": "object", "required": ["name", "datatype", "shape"],
        "properties": {"name": {"type": "string", "enum": [s.name for s in specs]},
                       "datatype": {"type": "string"},
                       "shape": {"type": "array", "items": {"type": "integer"}}}}}


def _csv_pattern(schema: Schema) -> str:
    """A CSV body the service accepts: the header row, then one or more rows."""
    def value(dtype: str, nullable: bool) -> str:
        kind = "[a-z]{1,8}" if dtype == "string" else "(true|false)" if dtype == "bool" \
            else "-?[0-9]{1,4}" if dtype[0] in "iu" else "-?[0-9]{1,4}(\\.[0-9]{1,4})?"
        return f"({kind})?" if nullable else kind
    header = ",".join(re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", f)  # ECMA-262 safe
                      for f in schema.feature_names)
    row = ",".join(value(f.dtype, f.nullable) for f in schema.features)
    return f"^{header}(\\n{row}){{1,5}}\\n?$"


def build_openapi(schema: Schema, *, model: str, versions: list[str],
                  runtime_version: str) -> dict[str, Any]:
    """The OpenAPI document for a service serving ``model`` with this schema."""
    names = schema.feature_names
    record = {"type": "object", "additionalProperties": False, "required": names,
              "properties": {f.name: _feature_type(f.dtype, f.nullable)
                             for f in schema.features}}
    # A row: one value per feature, in schema order, each of its feature's type.
    row = {"type": "array", "minItems": len(names), "maxItems": len(names),
           "prefixItems": [_feature_type(f.dtype, f.nullable) for f in schema.features]}
    one_row_columns = {"type": "object", "required": names, "additionalProperties": False,
                       "properties": {f.name: {"type": "array", "minItems": 1, "maxItems": 1,
                                               "items": _feature_type(f.dtype, f.nullable)}
                                      for f in schema.features}}
    invocation = {"oneOf": [
        {"type": "object", "required": ["dataframe_split"], "additionalProperties": False,
         "properties": {"dataframe_split": {
             "type": "object", "required": ["columns", "data"],
             "additionalProperties": False,
             "properties": {"columns": {"type": "array", "minItems": len(names),
                                        "maxItems": len(names),
                                        "prefixItems": [{"const": n} for n in names]},
                            "data": {"type": "array", "minItems": 1, "items": row}}},
             "params": {"type": "object"}}},
        {"type": "object", "required": ["dataframe_records"], "additionalProperties": False,
         "properties": {"dataframe_records": {"type": "array", "minItems": 1,
                                              "items": record},
                        "params": {"type": "object"}}},
        {"type": "object", "required": ["instances"], "additionalProperties": False,
         "properties": {"instances": {"oneOf": [  # rows, or records: one kind throughout
             {"type": "array", "minItems": 1, "items": row},
             {"type": "array", "minItems": 1, "items": record}]},
                        "params": {"type": "object"}}},
        {"type": "object", "required": ["inputs"], "additionalProperties": False,
         "properties": {"inputs": {"oneOf": [
             {"type": "array", "minItems": 1, "items": row}, one_row_columns]},
             "params": {"type": "object"}}},
    ]}
    # A V2 input is a model tensor or, for a model fed features, a feature by name.
    input_names = [*(spec.name for spec in schema.inputs),
                   *(n for n in names if n not in {spec.name for spec in schema.inputs})]
    infer_request = {
        "type": "object", "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object",
                           "properties": {"binary_data_output": {"type": "boolean"}}},
            "inputs": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "shape", "datatype"],
                "properties": {"name": {"type": "string", "enum": input_names},
                               "shape": {"type": "array", "items": {"type": "integer",
                                                                    "minimum": 0}},
                               "datatype": {"type": "string", "enum": V2_DATATYPES},
                               "parameters": {"type": "object"},
                               "data": {"type": "array"}}}},
            "outputs": {"type": "array", "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}}},
        }}
    infer_response = {"type": "object", "required": ["model_name", "outputs"], "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"},
        "id": {"type": "string"}, "outputs": {"type": "array"}}}
    metadata = {"type": "object", "required": ["name", "versions", "platform", "inputs",
                                               "outputs"],
                "properties": {"name": {"type": "string"},
                               "versions": {"type": "array", "items": {"type": "string"}},
                               "platform": {"type": "string"},
                               "inputs": _tensor_schema(schema.inputs),
                               "outputs": _tensor_schema(schema.outputs)}}
    feedback = {"type": "object", "required": ["request_id", "ground_truth"],
                "properties": {"request_id": {"type": "string"}, "ground_truth": {}}}
    m = {"name": "model_name", "in": "path", "required": True,
         "schema": {"type": "string", "example": model}}
    v = {"name": "model_version", "in": "path", "required": True,
         "schema": {"type": "string", "example": versions[0]}}
    bad = {"400": _error("Malformed input; `error` names the field."),
           "401": _error("A bearer token is required (SHIP_AUTH_TOKEN)."),
           "404": _error("Unknown model or version."),
           "413": _error("Body larger than max_body_bytes."),
           "503": _error("Model still warming up.")}
    binary = {"schema": {"type": "string", "format": "binary"},
              "description": "The binary tensor extension: a JSON header of "
                             "Inference-Header-Content-Length bytes, then the tensors' bytes."}
    infer_op = {"requestBody": {"required": True, "content": {JSON: {"schema": infer_request},
                                                             OCTETS: binary}},
                "responses": {"200": {"description": "OK", "content": {
                    JSON: {"schema": infer_response}, OCTETS: binary}}, **bad}}
    ready_op = {"responses": {"200": _ok({"type": "object"}),
                              "404": _error("Unknown model or version."),
                              "503": _error("Not ready.")}}
    meta_op = {"responses": {"200": _ok(metadata), "404": _error("Unknown model or version.")}}
    feedback_op = {"requestBody": {"required": True, "content": {JSON: {"schema": feedback}}},
                   "responses": {"200": _ok({"type": "object"}),
                                 "400": _error("Malformed feedback."),
                                 "404": _error("Unknown request id or model."),
                                 "409": _error("The service runs without a prediction log."),
                                 "413": _error("Body larger than max_body_bytes.")}}
    simple = {"responses": {"200": _ok({"type": "object"}), "503": _error("Not ready.")}}
    asked = "true: the answer carries `review`, each row's review scores (docs/review.md)."
    review_query = {"name": "review", "in": "query", "required": False,
                    "description": asked, "schema": {"type": "string"}}
    review_header = {"name": "x-ship-review", "in": "header", "required": False,
                     "description": asked, "schema": {"type": "string"}}
    score = {"type": ["number", "null"]}
    review = {"type": "array", "description": "One object per row, when asked.",
              "items": {"type": "object", "properties": {
                  "confidence": score, "margin": score, "entropy": score, "ood": score,
                  "ood_feature": {"type": ["string", "null"]}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Ship service {model}", "version": runtime_version,
                 "description": "Open Inference Protocol v2 and MLflow scoring protocol."},
        "paths": {
            "/v2": {"get": {"summary": "Server metadata",
                            "responses": {"200": _ok({"type": "object"})}}},
            "/v2/health/live": {"get": {"summary": "Liveness", **simple}},
            "/v2/health/ready": {"get": {"summary": "Readiness", **simple}},
            "/v2/models/{model_name}": {"get": {"summary": "Model metadata",
                                                "parameters": [m], **meta_op}},
            "/v2/models/{model_name}/ready": {"get": {"summary": "Model readiness",
                                                      "parameters": [m], **ready_op}},
            "/v2/models/{model_name}/infer": {"post": {"summary": "Inference",
                                                       "parameters": [m], **infer_op}},
            "/v2/models/{model_name}/versions/{model_version}": {
                "get": {"summary": "Model version metadata", "parameters": [m, v], **meta_op}},
            "/v2/models/{model_name}/versions/{model_version}/ready": {
                "get": {"summary": "Model version readiness", "parameters": [m, v],
                        **ready_op}},
            "/v2/models/{model_name}/versions/{model_version}/infer": {
                "post": {"summary": "Inference on a version", "parameters": [m, v],
                         **infer_op}},
            "/v2/models/{model_name}/feedback": {
                "post": {"summary": "Ground truth for a request id", "parameters": [m],
                         **feedback_op}},
            "/feedback": {"post": {"summary": "Ground truth for a request id",
                                   **feedback_op}},
            "/invocations": {"post": {
                "summary": "MLflow scoring protocol",
                "parameters": [review_query, review_header],
                "requestBody": {"required": True, "content": {
                    JSON: {"schema": invocation},
                    "text/csv": {"schema": {"type": "string", "pattern": _csv_pattern(schema)}},
                    "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                                  "format": "binary"}}}},
                "responses": {"200": _ok({"type": "object", "required": ["predictions"],
                                          "properties": {"predictions": {},
                                                         "review": review}}), **bad,
                              "415": _error("Unsupported content type or parameter.")}}},
            "/ping": {"get": {"summary": "MLflow health", **simple}},
            "/health": {"get": {"summary": "MLflow health", **simple}},
            "/version": {"get": {"summary": "Runtime version",
                                 "responses": {"200": _ok({"type": "object"})}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        },
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error", "error_code", "message"],
            "properties": {"error": {"type": "string"}, "field": {"type": "string"},
                           "error_code": {"type": "string"}, "message": {"type": "string"},
                           "request_id": {"type": "string"}}}}},
    }
