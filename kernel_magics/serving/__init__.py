"""Ship's serving runtime: a bundle served over V2 and MLflow protocols, every request logged.

Self-contained on purpose: it imports only the standard library, its runtime
dependencies (numpy, onnxruntime, pyarrow, starlette, uvicorn, orjson, PyYAML, grpcio and
protobuf; pandas for handlers with preprocess(df)) and its own modules, relatively. The
bundle builder copies this package into each bundle as ``ship_runtime``:

    python -m ship_runtime serve BUNDLE_DIR --port 8080
    python -m ship_runtime score BUNDLE_DIR input.parquet predictions.parquet
    python -m ship_runtime compact LOG_DIR      (an hour's log segments into one file)

Modules: bundle/schema (the format), inputs, mlflow_codec and v2_codec (wire formats),
model and pipeline (onnxruntime + handler.py), router (which version answers), app and
wire (HTTP), predlog/ (the prediction log: its format, writer, reader, compaction and
the request ids feedback may name), usage (CPU per version), metrics, openapi, batch
(score_file), server (uvicorn), grpc_v2/ (V2 over gRPC beside REST, --grpc-port).
Imports are lazy here so that ``import ship_runtime`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .requirements import RUNTIME_VERSION, runtime_requirements

if TYPE_CHECKING:
    from .batch import score_file
    from .bundle import Bundle, write_bundle
    from .predlog import read_log
    from .server import serve

__all__ = ["RUNTIME_VERSION", "Bundle", "read_log", "runtime_requirements", "score_file",
           "serve", "write_bundle"]

_LAZY = {"Bundle": "bundle", "write_bundle": "bundle", "read_log": "predlog",
         "score_file": "batch", "serve": "server"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
