"""The held-out rows an export is checked on: the example first, then the `--eval` rows.

Users hand Ship numpy arrays, torch tensors or pandas DataFrames; the exporters, the
parity gate and the profiler need one numeric array (what ONNX receives) and, for
scikit-learn, the rows in the form the estimator was fitted on (a DataFrame keeps its
column names, so the estimator does not warn about missing feature names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError


@dataclass
class HeldOut:
    """Rows for the gate: `n_example` example rows, then eval rows with optional labels."""

    array: np.ndarray
    original: Any
    n_example: int
    labels: np.ndarray | None = None
    # Tabular rows (a DataFrame with string columns, or a model that selects columns by
    # name): one (n, 1) column per feature, numbers as float32/int64, strings as str.
    columns: dict[str, np.ndarray] | None = None

    @property
    def rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def n_eval(self) -> int:
        return self.rows - self.n_example

    def origin(self, row: int) -> str:
        """Where a row came from, in the user's terms: 'example row 2' or 'eval row 17'."""
        if row < self.n_example:
            return f"example row {row}"
        return f"eval row {row - self.n_example}"

    def features(self, dtype: type[np.generic]) -> Any:
        """The rows as ONNX receives them: a contiguous, writable array of `dtype`, or the
        tabular columns."""
        if self.columns is not None:
            return self.columns
        rows = np.ascontiguousarray(self.array, dtype=dtype)
        # torch.from_numpy warns on read-only arrays (np.load with mmap, some pandas columns).
        return rows if rows.flags.writeable else rows.copy()


def as_array(value: Any, field: str) -> np.ndarray:
    """A numeric numpy array from an ndarray, tensor, DataFrame, Series or nested list."""
    if value is None:
        raise ValidationError(f"{field} is missing.", field=field)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "to_numpy") and hasattr(value, "dtypes"):  # pandas DataFrame / Series
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        columns = getattr(value, "columns", None)
        dtypes = value.dtypes if columns is not None else [value.dtypes]
        bad = [str(c) for c, d in zip(columns if columns is not None else [field], dtypes,
                                      strict=True) if not (is_numeric_dtype(d) or is_bool_dtype(d))]
        if bad:
            raise ValidationError(
                f"{field} has non-numeric columns: {', '.join(bad[:5])}.", field=field,
                hint="Export takes one numeric input tensor; encode categories in the model "
                     "(e.g. a OneHotEncoder step) and pass numeric columns.")
        value = value.to_numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field} is not array-like ({exc}).", field=field) from exc
    if not _numeric_kind(array.dtype.kind):
        raise ValidationError(f"{field} must be numeric, got dtype {array.dtype}.", field=field)
    return array


def prepare(example: Any, eval_x: Any = None, eval_y: Any = None, *,
            by_name: bool = False) -> HeldOut:
    """Validate and join the example and eval rows; a 1-D example is one row.

    A DataFrame with string columns, or any DataFrame when the model selects columns by
    name (``by_name``), becomes tabular rows: one named input per column."""
    if _is_frame(example) and (by_name or not _all_numeric(example)):
        return _tabular(example, eval_x, eval_y)
    if isinstance(example, tuple):
        raise ValidationError("example must be one array, not a tuple.", field="example",
                              hint="Ship exports models with a single input tensor.")
    first = as_array(example, "example")
    if first.ndim == 0 or first.size == 0:
        raise ValidationError("example is empty; pass at least one row.", field="example")
    if first.ndim == 1:
        first = first.reshape(1, -1)
    parts, originals = [first], [example if _is_frame(example) else first]
    labels = None
    if eval_y is not None and eval_x is None:
        raise ValidationError("eval labels given without eval rows.", field="eval",
                              hint="Pass both: --eval X_test y_test.")
    if eval_x is not None:
        rows = as_array(eval_x, "eval_X")
        if rows.ndim == 1 and first.shape[1:] != rows.shape:
            rows = rows.reshape(1, -1)
        if rows.shape[1:] != first.shape[1:]:
            raise ValidationError(
                f"eval rows have shape {list(rows.shape[1:])} per row, the example "
                f"{list(first.shape[1:])}.", field="eval_X")
        parts.append(rows)
        originals.append(eval_x if _is_frame(eval_x) else rows)
        if eval_y is not None:
            labels = as_array(eval_y, "eval_y")
            if labels.shape[0] != rows.shape[0]:
                raise ValidationError(f"eval_y has {labels.shape[0]} labels for "
                                      f"{rows.shape[0]} eval rows.", field="eval_y")
    array = np.concatenate(parts) if len(parts) > 1 else first
    return HeldOut(array=array, original=_join(originals), n_example=int(first.shape[0]),
                   labels=labels)


def _numeric_kind(kind: str) -> bool:
    return kind in "biuf"


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iloc")


def _join(parts: list[Any]) -> Any:
    """Rows in the original form: DataFrames stay DataFrames (with their column names)."""
    frames = [p for p in parts if _is_frame(p)]
    if not frames:
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
    import pandas as pd

    columns = frames[0].columns
    as_frames = [p if _is_frame(p) else pd.DataFrame(p, columns=columns) for p in parts]
    return pd.concat(as_frames, ignore_index=True) if len(as_frames) > 1 else as_frames[0]


def _all_numeric(frame: Any) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return all(is_numeric_dtype(d) or is_bool_dtype(d) for d in frame.dtypes)


def _tabular(example: Any, eval_x: Any, eval_y: Any) -> HeldOut:
    """Tabular rows: the example and eval DataFrames, one column per named input."""
    import pandas as pd

    if eval_y is not None and eval_x is None:
        raise ValidationError("eval labels given without eval rows.", field="eval",
                              hint="Pass both: --eval X_test y_test.")
    if len(example) == 0:
        raise ValidationError("example is empty; pass at least one row.", field="example")
    frames = [example]
    labels = None
    if eval_x is not None:
        if not _is_frame(eval_x) or list(eval_x.columns) != list(example.columns):
            raise ValidationError("eval rows must be a DataFrame with the example's columns "
                                  f"({', '.join(map(str, example.columns[:6]))}).",
                                  field="eval_X")
        frames.append(eval_x)
        if eval_y is not None:
            labels = as_array(eval_y, "eval_y")
            if labels.shape[0] != len(eval_x):
                raise ValidationError(f"eval_y has {labels.shape[0]} labels for "
                                      f"{len(eval_x)} eval rows.", field="eval_y")
    joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else \
        example.reset_index(drop=True)
    columns = {str(name): tabular_column(joined[name]) for name in joined.columns}
    return HeldOut(array=np.empty((len(joined), 0), dtype=np.float32), original=joined,
                   n_example=len(example), labels=labels, columns=columns)


def tabular_column(series: Any) -> np.ndarray:
    """One column as an ONNX input receives it: (n, 1) of float32, int64, bool or str."""
    from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

    if is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.bool_)
    elif is_integer_dtype(series.dtype):
        values = series.to_numpy(dtype=np.int64)
    elif is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float32)
    else:
        values = series.astype(str).to_numpy(dtype=object)
    return np.asarray(values).reshape(-1, 1)
