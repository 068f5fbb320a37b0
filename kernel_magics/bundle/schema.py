"""schema.json for a bundle: the ONNX graph's tensors and the features clients send.

Tensors come from the ONNX graph (names, V2 datatypes, -1 for symbolic dimensions).
Feature names and dtypes come from the training data the model's run tracked: the
DataFrame whose column count equals the model input's width, preferring one whose
name mentions "train". Without one, features are named feature_0, feature_1, ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..serving.schema import Feature, Schema, TensorSpec

# onnx.TensorProto element types -> V2 datatypes
_ONNX_TYPES = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
               7: "INT64", 8: "BYTES", 9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32",
               13: "UINT64"}
_V2_TO_FEATURE = {"FP32": "float32", "FP64": "float64", "FP16": "float16", "INT64": "int64",
                  "INT32": "int32", "BOOL": "bool", "BYTES": "string"}
_FEATURE_DTYPES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                   "uint8", "uint16", "uint32", "uint64", "bool"}


def _tensors(values: Any, skip: set[str]) -> tuple[TensorSpec, ...]:
    specs = []
    for value in values:
        if value.name in skip:
            continue
        kind = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim)
        specs.append(TensorSpec(name=value.name, datatype=_ONNX_TYPES.get(kind.elem_type, "FP32"),
                                shape=shape or (-1,)))
    return tuple(specs)


def _feature_dtype(name: str) -> str:
    lowered = name.lower()
    if lowered in _FEATURE_DTYPES:
        return lowered
    if lowered.startswith(("float", "double")):
        return "float64"
    if lowered.startswith(("int", "long")):
        return "int64"
    if lowered.startswith("bool"):
        return "bool"
    return "string"


def tracked_frames(client: Any, run_id: str | None) -> list[tuple[str, dict[str, str]]]:
    """The DataFrames the run tracked, as (name, {column: feature dtype}), training data
    first (a name that mentions "train"), then by name."""
    if not run_id:
        return []
    frames = []
    for item in client.get_run(run_id).inputs.dataset_inputs:
        try:
            spec = json.loads(item.dataset.schema or "{}").get("mlflow_colspec")
        except json.JSONDecodeError:
            continue
        if isinstance(spec, list):
            frames.append((str(item.dataset.name), {
                str(c["name"]): _feature_dtype(str(c.get("type", ""))) for c in spec}))
    return sorted(frames, key=lambda f: ("train" not in f[0].lower(), f[0]))


def tracked_features(client: Any, run_id: str | None, width: int) -> list[Feature] | None:
    """Columns of the run's tracked training DataFrame with `width` columns, if any."""
    columns = next((c for _, c in tracked_frames(client, run_id) if len(c) == width), None)
    return None if columns is None else [Feature(name=n, dtype=d) for n, d in columns.items()]


def tracked_columns(client: Any, run_id: str | None, names: list[str]) -> dict[str, str]:
    """{column: dtype} of a DataFrame the run tracked that has every one of ``names``
    (training data first); {} when none has."""
    return next((c for _, c in tracked_frames(client, run_id) if set(names) <= set(c)), {})


def schema_for(onnx_file: Path, client: Any, version: Any) -> Schema:
    """The bundle schema for an exported model version."""
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = _tensors(graph.input, initializers)
    outputs = _tensors(graph.output, set())
    features: list[Feature] | None = None
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] > 0:
        width = inputs[0].shape[1]
        features = tracked_features(client, version.run_id, width)
        if features is None:
            dtype = _V2_TO_FEATURE.get(inputs[0].datatype, "float32")
            features = [Feature(name=f"feature_{i}", dtype=dtype) for i in range(width)]
    if features is None:
        # One input per column (a tabular model): the features are the inputs, typed as
        # the tracked training DataFrame has them when the run tracked one.
        tracked = tracked_columns(client, version.run_id, [t.name for t in inputs])
        features = [Feature(name=t.name, dtype=tracked.get(t.name) or
                            _V2_TO_FEATURE.get(t.datatype, "float32")) for t in inputs]
    task = (version.tags or {}).get("ship.export.task", "classification")
    return Schema(features=tuple(features), inputs=inputs, outputs=outputs,
                  task=task if task in ("classification", "regression") else "classification")
