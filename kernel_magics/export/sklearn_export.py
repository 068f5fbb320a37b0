"""scikit-learn → ONNX through skl2onnx, with errors that name the step skl2onnx cannot convert.

The graph takes one float32 tensor named "input". Classifiers export without skl2onnx's
ZipMap (a list of dicts per row) so their probabilities compare as a plain matrix:
outputs are `label` and `probabilities`; regressors output `variable`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..errors import ExportError
from .graph import SKL2ONNX, OnnxGraph

INPUT_NAME = "input"


def task_of(estimator: Any) -> str:
    """'classification', 'regression' or 'transform' (a pipeline without a predictor)."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    return "transform"


def original_outputs(estimator: Any, rows: Any) -> list[np.ndarray]:
    """What the estimator computes, aligned with the ONNX graph's outputs."""
    task = task_of(estimator)
    if task == "classification":
        labels = np.asarray(estimator.predict(rows))
        if hasattr(estimator, "predict_proba"):
            return [labels, np.asarray(estimator.predict_proba(rows))]
        return [labels, np.asarray(estimator.decision_function(rows))]
    if task == "regression":
        return [np.asarray(estimator.predict(rows))]
    return [np.asarray(estimator.transform(rows))]


def steps(estimator: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every leaf estimator of a Pipeline / FeatureUnion / ColumnTransformer, with its path.

    A bare estimator is its own single step, with an empty path.
    """
    children: list[tuple[str, Any]] = []
    if hasattr(estimator, "steps"):  # Pipeline
        children = list(estimator.steps)
    elif hasattr(estimator, "transformer_list"):  # FeatureUnion
        children = list(estimator.transformer_list)
    elif hasattr(estimator, "transformers"):  # ColumnTransformer (fitted ones first)
        fitted = getattr(estimator, "transformers_", estimator.transformers)
        children = [(name, step) for name, step, _ in fitted]
    if not children:
        return [(path, estimator)]
    out: list[tuple[str, Any]] = []
    for name, step in children:
        if step is None or isinstance(step, str):  # "drop" / "passthrough"
            continue
        out.extend(steps(step, f"{path} → {name!r}" if path else repr(name)))
    return out


def unsupported_steps(estimator: Any) -> list[str]:
    """Steps skl2onnx has no converter for, as "step 'name' (ClassName)"."""
    try:
        # The class -> converter map skl2onnx itself dispatches on (custom converters
        # registered with update_registered_converter land here too). It is private: if it
        # moves, skip the early check and let the conversion error name the step.
        from skl2onnx._supported_operators import sklearn_operator_name_map
    except ImportError:
        return []
    return [describe(path, step) for path, step in steps(estimator)
            if type(step) not in sklearn_operator_name_map]


def describe(path: str, step: Any) -> str:
    """"step 'scale' (StandardScaler)" inside a pipeline, "StandardScaler" for a bare one."""
    return f"step {path} ({type(step).__name__})" if path else type(step).__name__


def export_sklearn(estimator: Any, rows: np.ndarray) -> OnnxGraph:
    """Convert a fitted estimator or pipeline; raises ExportError naming the failing step."""
    missing = unsupported_steps(estimator)
    if missing:
        raise ExportError(
            f"skl2onnx cannot convert {', '.join(missing)}.", exporter=SKL2ONNX,
            step=missing[0],
            hint="Replace that step with a supported one (see skl2onnx's supported "
                 "converters), or register a converter with "
                 "skl2onnx.update_registered_converter.")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    task = task_of(estimator)
    options = {"zipmap": False} if task == "classification" else None
    try:
        model = convert_sklearn(
            estimator, initial_types=[(INPUT_NAME, FloatTensorType([None, *rows.shape[1:]]))],
            options=options)
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises bare RuntimeErrors and more
        step = _step_named_in(str(exc), estimator)
        where = f" at {step}" if step else ""
        raise ExportError(f"skl2onnx failed{where}: {str(exc).splitlines()[0]}",
                          exporter=SKL2ONNX, step=step,
                          hint="Ship exports pipelines that take one numeric matrix; select "
                               "columns by position, not by name.") from exc
    names = [str(o.name) for o in model.graph.output]
    return OnnxGraph(model=model, exporter=SKL2ONNX, input_name=INPUT_NAME, output_names=names)


def _step_named_in(message: str, estimator: Any) -> str | None:
    """The pipeline step whose class skl2onnx's message mentions, if any."""
    mentioned = set(re.findall(r"\.(\w+)'>", message))
    for path, step in steps(estimator):
        if type(step).__name__ in mentioned:
            return describe(path, step)
    return None
