"""schema.json: the features a service accepts and the tensors its model takes and returns.

    {
      "task": "classification",               # or "regression"
      "features": [{"name": "age", "dtype": "float64", "nullable": false}, ...],
      "inputs":  [{"name": "float_input", "datatype": "FP32", "shape": [-1, 64]}],
      "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}, ...],
      "class_labels": ["cat", "dog"]          # optional, classification only
    }

Features are what clients send (MLflow dataframe formats, V2 feature tensors);
inputs and outputs are the ONNX model's tensors with V2 datatypes and -1 for any
dimension that varies (the batch dimension first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .errors import BundleError

#: V2 datatype -> numpy dtype (BYTES tensors hold Python ``bytes``/``str`` objects).
V2_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

#: onnxruntime's type strings -> V2 datatypes.
ONNX_TO_V2: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

#: Feature dtypes (numpy names, plus "string").
FEATURE_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string",
})
TASKS = frozenset({"classification", "regression"})


def numpy_to_v2(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in "OUS":
        return "BYTES"
    for name, candidate in V2_TO_NUMPY.items():
        if candidate == dtype:
            return name
    raise BundleError(f"numpy dtype {dtype} has no V2 datatype.")


@dataclass(frozen=True)
class Feature:
    """One input column: name, dtype and whether null/NaN is allowed."""

    name: str
    dtype: str = "float32"
    nullable: bool = False

    @property
    def numeric(self) -> bool:
        """True when values are numbers (bool counts)."""
        return self.dtype != "string"


@dataclass(frozen=True)
class TensorSpec:
    """One model tensor: name, V2 datatype, shape with -1 for varying dimensions."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """The numpy dtype that carries this tensor."""
        return V2_TO_NUMPY[self.datatype]

    def to_dict(self) -> dict[str, Any]:
        """The V2 metadata form: ``{"name", "datatype", "shape"}``."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Schema:
    """schema.json, parsed."""

    features: tuple[Feature, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: str = "classification"
    class_labels: tuple[Any, ...] | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False,
                                   compare=False)

    def __post_init__(self) -> None:
        self._index.update({f.name: i for i, f in enumerate(self.features)})

    @cached_property
    def feature_names(self) -> list[str]:
        """Feature names in schema order (the identity handler's column order)."""
        return [f.name for f in self.features]

    @cached_property
    def feature_set(self) -> frozenset[str]:
        """Feature names as a set."""
        return frozenset(self._index)

    @cached_property
    def inputs_by_feature(self) -> bool:
        """True when the model takes one input per feature, named as it is and shaped
        [-1, 1] or [-1] (a tabular model): features go in without a preprocess."""
        return len(self.inputs) > 0 and {s.name for s in self.inputs} == set(self._index) \
            and all(s.shape in ((-1, 1), (-1,)) for s in self.inputs)

    @cached_property
    def needs_columns(self) -> bool:
        """True when features cannot share one numeric matrix (strings present)."""
        return any(not f.numeric for f in self.features)

    @cached_property
    def fast_rows(self) -> bool:
        """True when numeric rows can be checked in one numpy call (no bool or string)."""
        return all(f.numeric and f.dtype != "bool" for f in self.features)

    @cached_property
    def fast_limit(self) -> float:
        """The largest magnitude every numeric feature's dtype can hold."""
        limits = [float(np.finfo(f.dtype).max) if f.dtype.startswith("float") else
                  float(np.iinfo(f.dtype).max) for f in self.features
                  if f.numeric and f.dtype != "bool"]
        return min(limits, default=float("inf"))

    @cached_property
    def integer_positions(self) -> list[int]:
        """Positions of integer features (their values must be whole numbers)."""
        return [i for i, f in enumerate(self.features) if f.dtype[0] in "iu"]

    @cached_property
    def nullable_mask(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """One flag per feature, True where null/NaN is allowed."""
        return np.array([f.nullable for f in self.features], dtype=np.bool_)

    def feature(self, name: str) -> Feature | None:
        """The feature called ``name``, or None."""
        i = self._index.get(name)
        return None if i is None else self.features[i]

    def validate(self) -> None:
        """Raise BundleError naming the first inconsistency."""
        where = "schema.json"
        if self.task not in TASKS:
            raise BundleError(f"task must be one of {sorted(TASKS)}, not {self.task!r}.",
                              path=where)
        if not self.features:
            raise BundleError("lists no features.", path=where)
        if len(self._index) != len(self.features):
            raise BundleError("feature names repeat.", path=where)
        for f in self.features:
            if f.dtype not in FEATURE_DTYPES:
                raise BundleError(f"feature {f.name!r} has dtype {f.dtype!r}; use one of "
                                  f"{sorted(FEATURE_DTYPES)}.", path=where)
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            if not tensors:
                raise BundleError(f"lists no model {kind}s.", path=where)
            if len({t.name for t in tensors}) != len(tensors):
                raise BundleError(f"model {kind} names repeat.", path=where)
            for t in tensors:
                if t.datatype not in V2_TO_NUMPY:
                    raise BundleError(f"{kind} {t.name!r} has datatype {t.datatype!r}; use "
                                      f"one of {sorted(V2_TO_NUMPY)}.", path=where)
                if not t.shape or any(d < -1 or d == 0 for d in t.shape):
                    raise BundleError(f"{kind} {t.name!r} has shape {list(t.shape)}; use "
                                      "positive sizes and -1 for varying ones.", path=where)
        if self.class_labels is not None and self.task != "classification":
            raise BundleError("class_labels only apply to task 'classification'.", path=where)

    def to_dict(self) -> dict[str, Any]:
        """The schema.json document."""
        doc: dict[str, Any] = {
            "task": self.task,
            "features": [{"name": f.name, "dtype": f.dtype, "nullable": f.nullable}
                         for f in self.features],
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }
        if self.class_labels is not None:
            doc["class_labels"] = list(self.class_labels)
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Schema:
        """Parse a schema.json document; BundleError names a missing or mistyped key."""
        where = "schema.json"
        if not isinstance(doc, dict):
            raise BundleError("must hold a JSON object.", path=where)
        try:
            features = tuple(
                Feature(name=str(f["name"]), dtype=str(f.get("dtype", "float32")),
                        nullable=bool(f.get("nullable", False)))
                for f in doc["features"])
            inputs = tuple(_tensor(t) for t in doc["inputs"])
            outputs = tuple(_tensor(t) for t in doc["outputs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"missing or malformed key {exc}; see docs/serving.md.",
                              path=where) from None
        labels = doc.get("class_labels")
        schema = cls(features=features, inputs=inputs, outputs=outputs,
                     task=str(doc.get("task", "classification")),
                     class_labels=None if labels is None else tuple(labels))
        schema.validate()
        return schema


def _tensor(doc: dict[str, Any]) -> TensorSpec:
    return TensorSpec(name=str(doc["name"]), datatype=str(doc["datatype"]).upper(),
                      shape=tuple(int(d) for d in doc["shape"]))
