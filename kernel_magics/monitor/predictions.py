"""Predictions as one scalar per row: from the log's answers and from the reference rows.

The prediction log keeps each answer's JSON in ``outputs``:

- ``/invocations`` (and batch scoring): the ``predictions`` value, a list with one entry
  per row: a scalar (label or value), or what ``postprocess`` returns per row;
- V2 ``/infer``: ``{output name: nested list}``, the model's tensors (V2 answers do not
  go through postprocess).

One rule turns an entry into a scalar (:func:`scalar`): a scalar is itself; a dict gives
its first key among ``PREFERRED_KEYS``, else its first scalar value; a one-element list
its element; anything else is skipped. V2 tensors become predictions the way the runtime
does without postprocess (class labels, else the first output), so they compare with the
reference only for bundles without postprocess; otherwise they are skipped (the report
says how many).

At build time the model's predictions on the reference rows go through the bundle's own
handler and model (the serving pipeline), rendered to JSON as ``/invocations`` answers
are, and the same rule applies: the profile compares like with like.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .reference import PREDICTION, FeatureProfile, build_profile

logger = logging.getLogger(__name__)

PREFERRED_KEYS = ("prediction", "label", "class", "value", "y")
PROFILE_ROWS = 200_000  # the most reference rows scored for the prediction profile
_BATCH = 65_536


def scalar(entry: Any) -> Any:
    """One row's prediction as a scalar (str, int, float, bool), or None."""
    if isinstance(entry, str | int | float | bool):
        return entry
    if isinstance(entry, dict):
        for key in PREFERRED_KEYS:
            if key in entry and isinstance(entry[key], str | int | float | bool):
                return entry[key]
        for value in entry.values():
            if isinstance(value, str | int | float | bool):
                return value
        return None
    if isinstance(entry, list) and len(entry) == 1:
        return scalar(entry[0])
    return None


def label(value: Any) -> str:
    """A categorical prediction as text: 1, 1.0 and "1" are the same class."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def from_invocations(predictions: Any) -> list[Any] | None:
    """Scalars of an /invocations answer's ``predictions`` (None: not one per row)."""
    if isinstance(predictions, dict):  # a postprocess returning columns: {name: [...]}
        for key in (*PREFERRED_KEYS, *predictions):
            column = predictions.get(key)
            if isinstance(column, list):
                return [scalar(v) for v in column]
        return None
    if not isinstance(predictions, list):
        return [scalar(predictions)]
    return [scalar(v) for v in predictions]


def from_v2(outputs: Any, task: str, class_labels: tuple[Any, ...] | None) -> list[Any] | None:
    """Scalars of a V2 answer's output tensors (the logged ``outputs`` list, or a dict of
    name -> values as logs before version 2 hold), as the runtime's default postprocess."""
    from ..serving.pipeline import default_postprocess

    if isinstance(outputs, list):  # [{"name", "datatype", "shape", "data"}, ...]
        try:
            outputs = {str(t["name"]): np.asarray(t["data"]).reshape(t["shape"])
                       for t in outputs}
        except (KeyError, TypeError, ValueError):
            return None
    if not isinstance(outputs, dict) or not outputs:
        return None
    try:
        arrays = {str(k): np.asarray(v) for k, v in outputs.items()}
        values = default_postprocess(task, class_labels, arrays)
    except (ValueError, TypeError, IndexError):
        return None
    flat = np.asarray(values)
    if flat.ndim != 1:
        return None
    return [scalar(v) for v in flat.tolist()]


def kind_of(values: list[Any], task: str) -> str:
    """numeric or categorical for a list of scalar predictions."""
    present = [v for v in values if v is not None]
    if any(isinstance(v, str | bool) for v in present):
        return "categorical"
    if task == "classification" and all(isinstance(v, int) or (
            isinstance(v, float) and v.is_integer()) for v in present):
        return "categorical"
    return "numeric"


def bundle_predictions(bundle_dir: Path, data: Any, *, limit: int | None = None
                       ) -> list[Any] | None:
    """The bundle's predictions on rows of raw features (a DataFrame, or a 2-D array in
    feature order), through its own handler and model, rendered to JSON as /invocations
    answers are, one scalar per row; None when they are not one scalar per row. With
    ``limit``, an evenly spread, deterministic sample of at most that many rows."""
    import pandas as pd

    from ..serving.bundle import Bundle
    from ..serving.inputs import from_columns
    from ..serving.pipeline import Pipeline
    from ..serving.wire import json_default  # how /invocations renders its answers

    bundle = Bundle.load(bundle_dir)
    schema = bundle.schema
    pipeline = Pipeline(bundle)
    names = schema.feature_names
    frame = data[names] if isinstance(data, pd.DataFrame) else \
        pd.DataFrame(np.asarray(data), columns=names)
    if limit is not None and len(frame) > limit:
        frame = frame.iloc[np.linspace(0, len(frame) - 1, limit).astype(np.int64)]
    values: list[Any] = []
    for start in range(0, len(frame), _BATCH):
        part = frame.iloc[start:start + _BATCH]
        inputs = from_columns(schema, {n: part[n].to_numpy() for n in names})
        answer = orjson.loads(orjson.dumps(pipeline.predict(inputs), default=json_default,
                                           option=orjson.OPT_SERIALIZE_NUMPY))
        scalars = from_invocations(answer)
        if scalars is None or len(scalars) != len(part):
            return None
        values += scalars
    return values


def profile_predictions(bundle_dir: Path, data: Any) -> FeatureProfile | None:
    """The profile of the bundle's predictions on the reference rows (None if it cannot
    score them: the reason is logged; the bundle's check reports real faults)."""
    import pandas as pd

    from ..serving.bundle import Bundle

    try:
        values = bundle_predictions(bundle_dir, data, limit=PROFILE_ROWS)
        if values is None:
            logger.warning("prediction profile skipped: predictions are not one scalar "
                           "per row")
            return None
        task = Bundle.load(bundle_dir).schema.task
    except Exception as exc:  # never fail a build for the profile; _check names real faults
        logger.warning("prediction profile skipped: %s: %s", type(exc).__name__, exc)
        return None
    kind = kind_of(values, task)
    if kind == "categorical":
        column = pd.Series([None if v is None else label(v) for v in values], dtype=object)
    else:
        column = pd.Series([np.nan if v is None else float(v) for v in values],
                           dtype=np.float64)
    (profile,) = build_profile(pd.DataFrame({PREDICTION: column}), [PREDICTION])
    return profile
