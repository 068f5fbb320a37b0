"""MLflow's scoring protocol: /invocations bodies -> Inputs.

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}    pandas split orient
    {"dataframe_records": [{"f1": 1, "f2": 2}, ...]}                 pandas records orient
    {"instances": [[...], ...] | [{...}, ...] | {"name": [...]}}     TF-serving rows
    {"inputs": {"name": [...]} | [[...], ...]}                       TF-serving columns
    text/csv with a header row (pandas' default ``to_csv()`` index column is dropped)
    application/vnd.apache.parquet (``DataFrame.to_parquet()``, its index dropped)

As MLflow's scoring server does: top-level keys other than the format are ignored
(``params`` included: the runtime takes no inference parameters yet); a Content-Type
other than those three, a charset other than UTF-8 or any other content-type
parameter is a 415. Names are features, or, when every name is a model input tensor,
tensors fed to the model directly; a single row may come as scalars
(``{"inputs": {"a": 1, "b": 2}}``, ``{"instances": [1, 2]}``). Answers are
``{"predictions": ...}`` (see app.py).
"""

from __future__ import annotations

import io
import operator
import re
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import InputError, UnsupportedMediaType
from .inputs import Inputs, NDArray, checked_cast, from_columns, from_rows, from_tensors
from .schema import Schema

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MEDIA_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")
_PANDAS_INDEX = re.compile(r"^(__index_level_\d+__|Unnamed: 0|)$")


def media_type(content_type: str) -> str:
    """The media type /invocations reads the body as; UnsupportedMediaType (415) as
    MLflow answers it: another type, a charset other than UTF-8, any other parameter."""
    kind, *parameters = (part.strip() for part in content_type.split(";"))
    kind = kind.lower() or "application/json"  # no Content-Type: JSON, as curl -d sends
    if kind not in MEDIA_TYPES:
        raise UnsupportedMediaType(f"content type {content_type!r} is not supported; send "
                                   f"one of {list(MEDIA_TYPES)}.", field="content-type")
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key == "charset" and value in ("utf-8", "utf8"):
            continue
        what = "only UTF-8 is read" if key == "charset" else "the only parameter read is " \
            "charset=utf-8"
        raise UnsupportedMediaType(f"content type parameter {parameter!r} is not supported "
                                   f"({what}).", field="content-type")
    return kind


def parse_invocation(schema: Schema, doc: Any, *, identity: bool) -> Inputs:
    """A parsed /invocations JSON body -> validated Inputs."""
    if not isinstance(doc, dict):
        raise InputError(f"the body must be a JSON object with exactly one of the input "
                         f"fields {list(FORMATS)}.", field="body")
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        raise InputError(f"the body must be a JSON object with exactly one of the input fields "
                         f"{list(FORMATS)}; got {sorted(doc)[:10]}.", field="body")
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
    if isinstance(value, list) and value and not isinstance(value[0], list):
        if len(schema.features) == 1:
            return from_rows(schema, [[v] for v in value])
        if len(value) == len(schema.features) and not any(
                isinstance(v, list | dict) for v in value):
            return from_rows(schema, [value])  # one row, given as its scalars
    return from_rows(schema, value)


def _split(schema: Schema, value: Any) -> Inputs:
    if not isinstance(value, dict) or "data" not in value:
        raise InputError("dataframe_split must be an object with 'columns' and 'data'.",
                         field="dataframe_split")
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise InputError(f"dataframe_split has unknown key {unknown[0]!r}.", field=unknown[0])
    index, data = value.get("index"), value["data"]
    if index is not None and (not isinstance(index, list) or not isinstance(data, list)
                              or len(index) != len(data)):
        raise InputError("dataframe_split.index must be a list with one entry per row of "
                         "'data'; the provided dataframe_split field is not a valid "
                         "dataframe representation.", field="index")
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
    if value and not any(isinstance(v, list | dict) for v in value.values()):
        value = {k: [v] for k, v in value.items()}  # one row, given as its scalars
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

    if not body.strip():
        raise InputError("the CSV body is empty; send a header row of feature names and one "
                         "line per row.", field="body")
    try:
        table = pacsv.read_csv(io.BytesIO(body))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed CSV: {exc}", field="body") from None
    return from_columns(schema, _without_index(schema, table))


def parse_parquet(schema: Schema, body: bytes) -> Inputs:
    """An application/vnd.apache.parquet body (``DataFrame.to_parquet()``) -> Inputs."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(body))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InputError(f"malformed Parquet: {exc}", field="body") from None
    return from_columns(schema, _without_index(schema, table))


def _without_index(schema: Schema, table: pa.Table) -> dict[str, Any]:
    """The table's columns, less a pandas index column (``to_csv()``'s unnamed first
    column, ``to_parquet()``'s ``__index_level_0__``) that is no feature."""
    keep = [name for name in table.column_names
            if schema.feature(name) is not None or not _PANDAS_INDEX.match(name)]
    return arrow_columns(table.select(keep) if len(keep) != table.num_columns else table)


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
