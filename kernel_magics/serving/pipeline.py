"""handler.py + model: validated inputs -> model feeds -> outputs -> predictions.

    preprocess(df) -> array | dict[str, array]     optional; absent: the features, in
                                                   schema order, stacked into the single
                                                   model input with its dtype
    postprocess(outputs: dict[str, np.ndarray])    optional; absent: class labels
                                                   (classification) or the first output
                                                   flattened (regression)

The same pipeline answers /invocations, V2 /infer (which returns the model's tensors,
not postprocess's result) and batch scoring, so online and batch agree.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .bundle import Bundle
from .errors import BundleError, HandlerError, InputError
from .inputs import Inputs, NDArray, from_columns
from .model import Model
from .schema import TensorSpec
from .state import STATE_DIR, StateError, load_state

Preprocess = Callable[[Any], Any]
Postprocess = Callable[[dict[str, NDArray]], Any]


def load_handler(bundle: Bundle) -> tuple[Preprocess | None, Postprocess | None]:
    """Import handler.py, its state/ values already in its namespace; return its preprocess
    and postprocess (None when absent)."""
    path = bundle.handler_path
    if path is None:
        return None, None
    name = f"ship_handler_{abs(hash((str(path), bundle.manifest.version)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BundleError("cannot be imported.", path=str(path))
    module = importlib.util.module_from_spec(spec)
    try:  # the names serve cells take from the rest of the notebook, before their code runs
        module.__dict__.update(load_state(bundle.path))
    except (StateError, OSError, ValueError, ImportError, AttributeError) as exc:
        raise BundleError(f"could not be loaded: {type(exc).__name__}: {exc}",
                          path=str(bundle.path / STATE_DIR)) from exc
    sys.modules[name] = module
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a bundle is immutable: no __pycache__ beside handler.py
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise BundleError(f"raised on import: {type(exc).__name__}: {exc}",
                          path=str(path)) from exc
    finally:
        sys.dont_write_bytecode = writes_bytecode
    pre = getattr(module, "preprocess", None)
    post = getattr(module, "postprocess", None)
    return (pre if callable(pre) else None), (post if callable(post) else None)


class Pipeline:
    """One bundle's handler and model, ready to predict."""

    def __init__(self, bundle: Bundle, *, workers: int = 1) -> None:
        self.bundle = bundle
        self.schema = bundle.schema
        self.preprocess, self.postprocess = load_handler(bundle)
        self.model = Model(bundle, workers=workers)
        self.identity = self.preprocess is None
        # The DataFrame preprocess gets: nullable integer features stay float (NaN), the
        # others take their schema dtype; one dtype throughout allows the fast path.
        self._frame_casts = {f.name: f.dtype for f in self.schema.features
                             if not (f.nullable and f.dtype[0] in "iub")}
        kinds = set(self._frame_casts.values())
        self._frame_dtype = kinds.pop() if len(kinds) == 1 and \
            len(self._frame_casts) == len(self.schema.features) else None

    def feeds(self, inputs: Inputs) -> dict[str, NDArray]:
        """Model feeds for validated inputs, through preprocess or the identity stacking."""
        if inputs.tensors is not None:
            return inputs.tensors
        if self.preprocess is None and self.schema.inputs_by_feature:
            return self._feeds_by_feature(inputs)
        if self.preprocess is None:
            spec = self.schema.inputs[0]
            matrix = inputs.matrix
            if matrix is None:
                assert inputs.columns is not None
                matrix = np.column_stack(list(inputs.columns.values()))
            return {spec.name: np.ascontiguousarray(matrix, dtype=spec.numpy_dtype)}
        try:
            produced = self.preprocess(self.frame(inputs))
        except InputError:
            raise
        except Exception as exc:
            raise HandlerError(f"handler.py preprocess failed: {type(exc).__name__}: {exc}"
                               ) from exc
        return self._check_feeds(produced)

    def _feeds_by_feature(self, inputs: Inputs) -> dict[str, NDArray]:
        """A tabular model's feeds: each feature as its own input, shaped and typed as the
        graph declares it (strings as str objects)."""
        feeds: dict[str, NDArray] = {}
        for spec in self.schema.inputs:
            if inputs.matrix is not None:
                index = self.schema.feature_names.index(spec.name)
                values: Any = inputs.matrix[:, index]
            else:
                assert inputs.columns is not None
                values = inputs.columns[spec.name]
            feeds[spec.name] = column_feed(spec, values)
        return feeds

    def frame(self, inputs: Inputs) -> Any:
        """The pandas DataFrame preprocess(df) receives, columns in schema order."""
        import pandas as pd

        names = self.schema.feature_names
        matrix = inputs.matrix
        if matrix is None:
            return pd.DataFrame(inputs.columns, columns=names)
        if self._frame_dtype is not None:
            # one dtype throughout: one block, no per-column astype (which costs ~5 ms
            # for 64 columns in pandas)
            return pd.DataFrame(matrix.astype(self._frame_dtype, copy=False), columns=names)
        df = pd.DataFrame(matrix, columns=names)
        changed = {name: dtype for name, dtype in self._frame_casts.items()
                   if dtype != matrix.dtype}
        return df.astype(changed) if changed else df

    def _check_feeds(self, produced: Any) -> dict[str, NDArray]:
        specs = self.schema.inputs
        if hasattr(produced, "columns") and self.schema.inputs_by_feature:
            # a DataFrame for a model with an input per column: each column to its input
            missing = [s.name for s in specs if s.name not in produced.columns]
            if missing:
                raise HandlerError(f"handler.py preprocess returned a DataFrame without "
                                   f"{missing}; the model takes {[s.name for s in specs]}.")
            try:
                return {s.name: column_feed(s, produced[s.name].to_numpy()) for s in specs}
            except (TypeError, ValueError) as exc:
                raise HandlerError(f"handler.py preprocess output does not fit the model's "
                                   f"inputs: {exc}") from exc
        if not isinstance(produced, dict):
            produced = {specs[0].name: produced} if len(specs) == 1 else {}
        feeds: dict[str, NDArray] = {}
        for spec in specs:
            if spec.name not in produced:
                raise HandlerError(f"handler.py preprocess returned no {spec.name!r}; the "
                                   f"model takes {[s.name for s in specs]}.")
            try:
                value = produced[spec.name]
                if hasattr(value, "to_numpy"):  # a pandas Series or DataFrame
                    value = value.to_numpy()
                array = np.ascontiguousarray(value, dtype=spec.numpy_dtype)
            except (TypeError, ValueError) as exc:
                raise HandlerError(f"handler.py preprocess output {spec.name!r} is not "
                                   f"{spec.datatype}: {exc}") from exc
            if array.ndim != len(spec.shape) or any(
                    w not in (-1, g) for w, g in zip(spec.shape, array.shape, strict=True)):
                raise HandlerError(f"handler.py preprocess output {spec.name!r} has shape "
                                   f"{list(array.shape)}, the model takes {list(spec.shape)}.")
            feeds[spec.name] = array
        return feeds

    def infer(self, inputs: Inputs, outputs: list[str] | None = None) -> dict[str, NDArray]:
        """Raw model outputs for validated inputs."""
        return self.model.run(self.feeds(inputs), outputs)

    def predict(self, inputs: Inputs) -> Any:
        """Predictions (postprocess, or the default) for validated inputs."""
        return self.predict_outputs(inputs)[0]

    def predict_outputs(self, inputs: Inputs) -> tuple[Any, dict[str, NDArray]]:
        """Predictions for validated inputs, and the raw model outputs they came from
        (which the log scores for review)."""
        outputs = self.infer(inputs)
        if self.postprocess is None:
            return default_postprocess(self.schema.task, self.schema.class_labels,
                                       outputs), outputs
        try:
            return self.postprocess(outputs), outputs
        except Exception as exc:
            raise HandlerError(f"handler.py postprocess failed: {type(exc).__name__}: {exc}"
                               ) from exc

    def warm_up(self) -> Any:
        """One inference on the bundle's warm-up input (or synthetic rows); its predictions."""
        settings = self.bundle.manifest.runtime
        if settings.warmup_input is not None:
            from .mlflow_codec import parse_invocation

            body = (self.bundle.path / settings.warmup_input).read_bytes()
            inputs = parse_invocation(self.schema, json.loads(body), identity=self.identity)
        else:
            rows = settings.warmup_rows
            inputs = from_columns(self.schema, {
                f.name: ["0"] * rows if not f.numeric else [0] * rows
                for f in self.schema.features})
        return self.predict(inputs)


def column_feed(spec: TensorSpec, values: Any) -> NDArray:
    """One feature's values as the model input of its name takes them: typed as declared
    (strings as str objects), shaped [-1, 1] or [-1]."""
    if spec.datatype == "BYTES":
        column = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                           for v in np.asarray(values, dtype=object)], dtype=object)
    else:
        column = np.ascontiguousarray(values, dtype=spec.numpy_dtype)
    return column.reshape(-1, 1) if len(spec.shape) == 2 else column


def default_postprocess(task: str, labels: tuple[Any, ...] | None,
                        outputs: dict[str, NDArray]) -> NDArray:
    """Class labels for classification, the first output flattened for regression."""
    values = list(outputs.values())
    if task == "regression":
        first = values[0]
        return first.reshape(len(first), -1)[:, 0] if first.ndim == 2 and \
            first.shape[1] == 1 else first
    for value in values:  # a label tensor (skl2onnx's output_label)
        if value.dtype.kind in "iuOSU" and (value.ndim == 1 or value.shape[1:] == (1,)):
            flat = value.reshape(len(value))
            if labels is not None and flat.dtype.kind in "iu":
                return np.asarray(labels, dtype=object)[flat]
            return flat
    scores = next((v for v in values if v.dtype.kind == "f"), values[0])
    if scores.ndim == 1 or scores.shape[1] == 1:
        index = (scores.reshape(len(scores)) >= 0.5).astype(np.int64)
    else:
        index = np.argmax(scores, axis=1)
    return index if labels is None else np.asarray(labels, dtype=object)[index]
