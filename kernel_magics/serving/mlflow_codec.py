"""MLflow's scoring protocol: /invocations bodies -> Inputs.

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}    pandas split orient
    {"dataframe_records": [{"f1": 1, "f2": 2}, ...]}                 pandas records orient
    {"instances": [[...], ...] | [{...}, ...] | {"name": [...]}}     TF-serving rows
    {"inputs": {"name": [...]} | [[...], ...]}                       TF-serving columns
    text/csv with a header row

Names are features, or, when every name is a model input tensor, tensors fed to the
model directly. A ``params`` key is accepted and ignored (the runtime takes no
inference parameters yet). Answers are ``{"predictions": ...}`` (see app.py).
"""

from __future__ import annotations

import io
import operator
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import InputError
from .inputs import Inputs, NDArray, checked_cast, from_columns, from_rows, from_tensors
from .schema import Schema

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def parse_invocation(schema: Schema, doc: Any, *, identity: bool) -> Inputs:
    """A parsed /invocations JSON body -> validated Inputs."""
    if not isinstance(doc, dict):
        raise InputError(f"the body must be a JSON object with one of {list(FORMATS)}.",
                         field="body")
    keys = [k for k in FORMATS if k in doc]
    extra = sorted(set(doc) - set(FORMATS) - {"params"})
    if len(keys) != 1 or extra:
        bad = extra[0] if extra else "body"
        raise InputError(f"the body must hold exactly one of {list(FORMATS)} (and "
                         f"optionally 'params'); got {sorted(doc)}.", field=bad)
    key = keys[0]
    value = doc[key]
    if key == "dataframe_split":
        return _split(schema, value)
    if key == "dataframe_records":
        return _records(schema, value)
    if isinstance(value, dict):
        return _named(schema, value, identity=identity)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _records(schema, value)
    if isinstance(value, list) and value and not isinstance(value[0], list) \
            and len(schema.features) == 1:
        return from_rows(schema, [[v] for v in value])
    return from_rows(schema, value)


def _split(schema: Schema, value: Any) -> Inputs:
    if not isinstance(value, dict) or "data" not in value:
        raise InputError("dataframe_split must be an object with 'columns' and 'data'.",
                         field="dataframe_split")
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise InputError(f"dataframe_split has unknown key {unknown[0]!r}.", field=unknown[0])
    columns = value.get("columns")
    if columns is None or columns == schema.feature_names:  # the common case, at C speed
        return from_rows(schema, value["data"], None)
    if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
        raise InputError("dataframe_split.columns must be a list of names.", field="columns")
    for name in columns:
        if schema.feature(name) is None:
            raise InputError(f"unknown feature {name!r}; expected {schema.feature_names}.",
                             field=name)
    given = set(columns)
    missing = [n for n in schema.feature_names if n not in given]
    if missing:
        raise InputError(f"missing feature {missing[0]!r}.", field=missing[0])
    return from_rows(schema, value["data"], columns)


def _records(schema: Schema, value: Any) -> Inputs:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InputError("dataframe_records must be a list of objects.",
                         field="dataframe_records")
    names = schema.feature_set
    if value and all(record.keys() == names for record in value):  # common case, C speed
        getter = operator.itemgetter(*schema.feature_names)
        rows = [getter(record) for record in value]
        if len(schema.features) == 1:
            rows = [(row,) for row in rows]
        return from_rows(schema, rows)
    for record in value:
        for name in record:
            if schema.feature(name) is None:
                raise InputError(f"unknown feature {name!r}; expected {schema.feature_names}.",
                                 field=str(name))
    columns: dict[str, list[Any]] = {}
    for feature in schema.features:
        try:
            columns[feature.name] = [record[feature.name] for record in value]
        except KeyError:
            raise InputError(f"missing feature {feature.name!r}.", field=feature.name) from None
    return from_columns(schema, columns)


def _named(schema: Schema, value: dict[str, Any], *, identity: bool) -> Inputs:
    tensor_names = {spec.name for spec in schema.inputs}
    if value and all(schema.feature(k) is None for k in value) \
            and set(value) <= tensor_names:
        return from_tensors(schema, {k: json_tensor(schema, k, v) for k, v in value.items()},
                            identity=identity)
    return from_columns(schema, value)


def json_tensor(schema: Schema, name: str, value: Any) -> NDArray:
    """JSON values for model input ``name`` as an array of its dtype (JSON has no dtypes)."""
    spec = next(s for s in schema.inputs if s.name == name)
    try:
        array = np.array(value)
    except (ValueError, TypeError):
        raise InputError(f"input {name!r}: ragged or non-numeric values.", field=name) from None
    want = spec.numpy_dtype
    if want.kind == "O":
        if array.dtype.kind != "U":
            raise InputError(f"input {name!r}: expected strings.", field=name)
        return array.astype(object)
    if array.dtype.kind not in "biuf" or (want.kind == "b" and array.dtype.kind != "b"):
        raise InputError(f"input {name!r}: expected {spec.datatype} values.", field=name)
    if want.kind in "iu" and array.dtype.kind == "f":
        raise InputError(f"input {name!r}: expected integers ({spec.datatype}).", field=name)
    return checked_cast(array, want, name, "input")


def parse_csv(schema: Schema, body: bytes) -> Inputs:
    """A text/csv body with a header row -> validated Inputs."""
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(io.BytesIO(body))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed CSV: {exc}", field="body") from None
    return from_columns(schema, arrow_columns(table))


def arrow_columns(table: pa.Table) -> dict[str, Any]:
    """An Arrow table's columns as numpy arrays (numbers) or lists (anything else)."""
    out: dict[str, Any] = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        kind = chunked.type
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and chunked.null_count == 0:
            out[name] = chunked.to_numpy()
        elif pa.types.is_floating(kind) or pa.types.is_integer(kind):
            out[name] = chunked.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            out[name] = chunked.to_pylist()
    return out
