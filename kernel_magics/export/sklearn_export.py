"""scikit-learn → ONNX through skl2onnx, with errors that name the step skl2onnx cannot convert.

The graph takes one float32 tensor named "input"; tabular rows (a DataFrame with string
columns, or a ColumnTransformer that selects columns by name) give one [None, 1] input per
column instead, named and typed as the column (float, int64, bool, string), so encoders
inside the pipeline (OneHotEncoder, OrdinalEncoder) run in the graph on the strings
themselves. Classifiers export without skl2onnx's
ZipMap (a list of dicts per row) so their probabilities compare as a plain matrix:
outputs are `label` and `probabilities`; regressors output `variable`.

XGBoost's and LightGBM's scikit-learn estimators (``XGBClassifier``, ``LGBMRegressor``
...), alone or as the last step of a pipeline, convert through onnxmltools' converters,
registered with skl2onnx when those libraries are installed (:func:`register_boosters`).
The converters' deprecation chatter is silenced so the export's own report stays
readable; warnings that bear on correctness are the graph's ``warnings``.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Iterator
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


# Libraries whose warnings during a conversion are deprecation chatter, not findings.
_NOISY = ("skl2onnx", "onnxmltools", "onnxconverter_common", "xgboost", "lightgbm",
          "sklearn", "onnx")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the converters' FutureWarning / DeprecationWarning / UserWarning chatter."""
    with warnings.catch_warnings():
        for module in _NOISY:
            for category in (FutureWarning, DeprecationWarning, UserWarning):
                warnings.filterwarnings("ignore", category=category, module=module)
        yield


def _booster(step: Any) -> str | None:
    """'xgboost' or 'lightgbm' for those libraries' scikit-learn estimators."""
    root = type(step).__module__.split(".", 1)[0]
    return root if root in ("xgboost", "lightgbm") else None


# (library, classifier, regressor, module of onnxmltools' converter, its function, alias)
_BOOSTERS = (
    ("xgboost", "XGBClassifier", "XGBRegressor",
     "onnxmltools.convert.xgboost.operator_converters.XGBoost", "convert_xgboost", "XGBoost"),
    ("lightgbm", "LGBMClassifier", "LGBMRegressor",
     "onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm",
     "LightGbm"),
)


@functools.cache
def register_boosters() -> tuple[str, ...]:
    """Register onnxmltools' XGBoost and LightGBM converters with skl2onnx (once);
    the libraries it found."""
    import importlib

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    found = []
    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for library, classifier, regressor, module, function, alias in _BOOSTERS:
        with quiet():
            try:
                estimators = importlib.import_module(library)
                convert = getattr(importlib.import_module(module), function)
            except ImportError:
                continue
            update_registered_converter(getattr(estimators, classifier),
                                        f"{alias}{classifier}",
                                        calculate_linear_classifier_output_shapes, convert,
                                        options=classifier_options)
            update_registered_converter(getattr(estimators, regressor), f"{alias}{regressor}",
                                        calculate_linear_regressor_output_shapes, convert)
        found.append(library)
    return tuple(found)


def unsupported_steps(estimator: Any) -> list[str]:
    """Steps skl2onnx has no converter for, as "step 'name' (ClassName)"."""
    if any(_booster(step) for _, step in steps(estimator)):
        register_boosters()
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


def selects_by_name(model: Any) -> bool:
    """Whether a ColumnTransformer in the model picks columns by name (or by selector)."""
    for _, step in [("", model), *_containers(model)]:
        if hasattr(step, "transformers"):
            for _, _, columns in getattr(step, "transformers_", step.transformers):
                picked = columns if isinstance(columns, list | tuple) else [columns]
                if any(isinstance(c, str) or callable(c) for c in picked):
                    return True
    return False


def _containers(estimator: Any) -> list[tuple[str, Any]]:
    """Every Pipeline / FeatureUnion / ColumnTransformer inside ``estimator``."""
    found: list[tuple[str, Any]] = []
    children = list(getattr(estimator, "steps", None) or
                    getattr(estimator, "transformer_list", None) or [])
    if hasattr(estimator, "transformers"):
        children = [(n, t) for n, t, _ in getattr(estimator, "transformers_",
                                                  estimator.transformers)]
    for name, child in children:
        if child is None or isinstance(child, str):
            continue
        found.append((name, child))
        found.extend(_containers(child))
    return found


def tabular_types(columns: dict[str, np.ndarray]) -> list[tuple[str, Any]]:
    """skl2onnx initial types: one [None, 1] input per column, typed as the column is."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    kinds = {"f": FloatTensorType, "i": Int64TensorType, "b": BooleanTensorType,
             "O": StringTensorType}
    return [(name, kinds[values.dtype.kind]([None, 1])) for name, values in columns.items()]


def export_sklearn(estimator: Any, rows: np.ndarray | dict[str, np.ndarray]) -> OnnxGraph:
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
    boosted = any(_booster(step) for _, step in steps(estimator))
    initial = tabular_types(rows) if isinstance(rows, dict) else \
        [(INPUT_NAME, FloatTensorType([None, *rows.shape[1:]]))]
    try:
        with quiet():
            model = convert_sklearn(
                estimator, initial_types=initial,
                options=options,
                # onnxmltools' tree converters emit ai.onnx.ml 3 at the most
                target_opset={"": 17, "ai.onnx.ml": 3} if boosted else None)
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises bare RuntimeErrors and more
        step = _step_named_in(str(exc), estimator)
        where = f" at {step}" if step else ""
        raise ExportError(f"skl2onnx failed{where}: {str(exc).splitlines()[0]}",
                          exporter=SKL2ONNX, step=step,
                          hint="Pass the example as the DataFrame the model was fitted on "
                               "(its column names and dtypes become the ONNX inputs).") from exc
    names = [str(o.name) for o in model.graph.output]
    first = initial[0][0]
    return OnnxGraph(model=model, exporter=SKL2ONNX, input_name=first, output_names=names)


def _step_named_in(message: str, estimator: Any) -> str | None:
    """The pipeline step whose class skl2onnx's message mentions, if any."""
    mentioned = set(re.findall(r"\.(\w+)'>", message))
    for path, step in steps(estimator):
        if type(step).__name__ in mentioned:
            return describe(path, step)
    return None
