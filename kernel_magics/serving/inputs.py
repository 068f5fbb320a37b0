"""Validated request input, and the checks that turn client data into it.

Every wire format (MLflow dataframe_split/records, instances, inputs, CSV, V2 feature
tensors, V2 model tensors, Parquet/CSV batches) ends up as one :class:`Inputs`:

- ``matrix``: rows x features in schema order, numeric (the common fast path);
- ``columns``: feature name -> 1-D array (records, columnar formats, string features);
- ``tensors``: model input name -> array, fed to the model as is (no preprocess).

Every check raises :class:`InputError` naming the feature or tensor at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError
from .schema import Feature, Schema, TensorSpec

NDArray = np.ndarray[Any, Any]


@dataclass(slots=True)
class Inputs:
    """One request's input after validation (exactly one of the three forms is set)."""

    rows: int
    matrix: NDArray | None = None
    columns: dict[str, NDArray] | None = None
    tensors: dict[str, NDArray] | None = None

    def loggable(self, schema: Schema | None) -> dict[str, Any]:
        """Columnar ``{name: [values]}`` (for JSON; called off the request path)."""
        if self.matrix is not None:
            names = schema.feature_names if schema is not None else \
                [f"column_{j}" for j in range(self.matrix.shape[1])]
            return dict(zip(names, self.matrix.T.tolist(), strict=True))
        source = self.columns if self.columns is not None else self.tensors or {}
        return {name: _plain(array) for name, array in source.items()}


def _plain(array: NDArray) -> Any:
    if array.dtype.kind == "S":
        return [v.decode("utf-8", "replace") for v in array.ravel().tolist()]
    if array.dtype.kind == "O":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                for v in array.ravel().tolist()]
    return array.tolist()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def checked_cast(array: NDArray, dtype: np.dtype[Any] | str, name: str,
                 kind: str = "feature") -> NDArray:
    """``array`` as ``dtype``, or InputError when a value does not fit (no silent inf/wrap)."""
    target = np.dtype(dtype)
    if array.dtype == target or array.size == 0 or target.kind in "bO":
        return array.astype(target)
    if target.kind == "f" and array.dtype.kind == "f":
        limit = float(np.finfo(target).max)
        finite = np.isfinite(array)
        if bool((np.abs(array[finite]) > limit).any()):
            raise InputError(f"{kind} {name!r}: a value is out of range for {target}.",
                             field=name)
    elif target.kind in "iu" and array.dtype.kind in "iuf":
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise InputError(f"{kind} {name!r}: a value is out of range for {target}.",
                             field=name)
    return array.astype(target)


def column(feature: Feature, values: Sequence[Any] | NDArray) -> NDArray:
    """One feature's values as a 1-D array of its dtype, or InputError naming it."""
    name = feature.name
    if isinstance(values, np.ndarray):
        array = values
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InputError(f"feature {name!r}: expected one value per row, got an array of "
                             f"shape {list(array.shape)}.", field=name)
    else:
        try:
            array = np.array(values)
        except (ValueError, TypeError):
            raise InputError(f"feature {name!r}: expected one value per row.",
                             field=name) from None
        if array.ndim != 1:
            raise InputError(f"feature {name!r}: expected one scalar per row.", field=name)
    if not feature.numeric:
        for value in array.tolist():
            if isinstance(value, str | bytes) or (value is None and feature.nullable):
                continue
            if value is None:
                raise InputError(f"feature {name!r} is null but not nullable.", field=name)
            raise InputError(f"feature {name!r}: expected strings, got {_describe(value)}.",
                             field=name)
        return array.astype(object)
    if array.dtype.kind not in "biuf":
        array = _numeric_from_objects(feature, array)
    if feature.dtype == "bool":
        if array.dtype.kind != "b":
            if array.dtype.kind == "f" and np.isnan(array).any():
                raise InputError(f"feature {name!r} is null but booleans cannot be.",
                                 field=name)
            if not np.isin(array, (0, 1)).all():
                raise InputError(f"feature {name!r}: expected booleans.", field=name)
        return array.astype(np.bool_)
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any():
            if not feature.nullable:
                raise InputError(f"feature {name!r} is null/NaN but not nullable.",
                                 field=name)
            return checked_cast(array, np.dtype(np.float64) if feature.dtype[0] in "iu" else
                                feature.dtype, name)
        if feature.dtype[0] in "iu" and not np.array_equal(array, np.floor(array)):
            raise InputError(f"feature {name!r}: expected integers ({feature.dtype}).",
                             field=name)
    return checked_cast(array, feature.dtype, name)


def _numeric_from_objects(feature: Feature, array: NDArray) -> NDArray:
    out = np.empty(array.shape, dtype=np.float64)
    for i, value in enumerate(array.tolist()):
        if value is None:
            if not feature.nullable:
                raise InputError(f"feature {feature.name!r} is null but not nullable.",
                                 field=feature.name)
            out[i] = np.nan
        elif isinstance(value, bool | int | float) and not isinstance(value, str):
            out[i] = value
        else:
            raise InputError(f"feature {feature.name!r}: expected {feature.dtype} numbers, "
                             f"got {_describe(value)}.", field=feature.name)
    return out


def from_columns(schema: Schema, data: dict[str, Any]) -> Inputs:
    """Named columns (any order) -> Inputs; every schema feature must be present once."""
    for name in data:
        if schema.feature(name) is None:
            raise InputError(f"unknown feature {name!r}; expected {schema.feature_names}.",
                             field=str(name))
    columns: dict[str, NDArray] = {}
    rows = -1
    for feature in schema.features:
        if feature.name not in data:
            raise InputError(f"missing feature {feature.name!r}.", field=feature.name)
        values = column(feature, data[feature.name])
        if rows not in (-1, len(values)):
            raise InputError(f"feature {feature.name!r} has {len(values)} values, other "
                             f"features {rows}.", field=feature.name)
        rows = len(values)
        columns[feature.name] = values
    if schema.needs_columns:
        return Inputs(rows=rows, columns=columns)
    return Inputs(rows=rows, matrix=np.column_stack(list(columns.values())))


def from_rows(schema: Schema, data: Any, names: Sequence[str] | None = None) -> Inputs:
    """Row-major values (list of lists), columns ``names`` or schema order -> Inputs."""
    if not isinstance(data, list):
        raise InputError("rows must be a list of lists of values.", field="data")
    names = schema.feature_names if names is None else list(names)
    width = len(names)
    if len(set(names)) != width:
        raise InputError("column names repeat.", field="columns")
    for row in data:
        if not isinstance(row, list | tuple) or len(row) != width:
            raise InputError(f"each row must be a list of {width} values "
                             f"({', '.join(names[:5])}{', ...' if width > 5 else ''}); got "
                             f"{_describe(row)}.", field="data")
    if names == schema.feature_names and schema.fast_rows and data:
        matrix = _fast_matrix(schema, data)
        if matrix is not None:
            return Inputs(rows=len(data), matrix=matrix)
    if not data:
        return from_columns(schema, {n: [] for n in names})
    return from_columns(schema, {n: [row[j] for row in data] for j, n in enumerate(names)})


def _fast_matrix(schema: Schema, data: list[Any]) -> NDArray | None:
    """All-numeric rows without nulls in one numpy call; None sends them the slow way."""
    try:
        matrix = np.array(data)
    except (ValueError, TypeError):
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
        return None
    if matrix.dtype.kind == "f":
        if np.isnan(matrix).any():
            return None
        ints = schema.integer_positions
        if ints and not np.array_equal(matrix[:, ints], np.floor(matrix[:, ints])):
            return None
    if float(np.abs(matrix).max()) > schema.fast_limit:
        return None  # a value may not fit its feature's dtype: let column() name it
    return matrix


def tensor(spec: TensorSpec, array: NDArray) -> NDArray:
    """Check a model tensor against its spec: datatype, rank, fixed dimensions."""
    if array.dtype != spec.numpy_dtype and not (spec.datatype == "BYTES"
                                                and array.dtype.kind in "OSU"):
        raise InputError(f"input {spec.name!r}: expected datatype {spec.datatype}.",
                         field=spec.name)
    if array.ndim != len(spec.shape) or any(
            want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)):
        raise InputError(f"input {spec.name!r}: shape {list(array.shape)} does not match "
                         f"{list(spec.shape)}.", field=spec.name)
    return array


def from_tensors(schema: Schema, tensors: dict[str, NDArray], *, identity: bool) -> Inputs:
    """Model input tensors by name -> Inputs; all model inputs must be present.

    ``identity``: the bundle has no preprocess, so column j of the single input is
    feature j and NaN can be checked per feature.
    """
    checked: dict[str, NDArray] = {}
    rows = -1
    for spec in schema.inputs:
        if spec.name not in tensors:
            raise InputError(f"missing input {spec.name!r}.", field=spec.name)
        array = tensor(spec, tensors[spec.name])
        rows = array.shape[0] if array.ndim else 1
        checked[spec.name] = array
    extra = set(tensors) - set(checked)
    if extra:
        name = sorted(extra)[0]
        raise InputError(f"unknown input {name!r}; the model takes "
                         f"{[s.name for s in schema.inputs]}.", field=name)
    if identity:
        # Identity bundles stack features into one tensor: check NaN per feature column.
        array = checked[schema.inputs[0].name]
        if array.dtype.kind == "f" and array.ndim == 2:
            bad = np.isnan(array).any(axis=0) & ~schema.nullable_mask
            if bad.any():
                name = schema.features[int(np.argmax(bad))].name
                raise InputError(f"feature {name!r} is NaN but not nullable.", field=name)
    return Inputs(rows=rows, tensors=checked)
