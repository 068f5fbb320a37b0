"""Scoring two versions on the gate's sets, the way each is served.

- Recent production rows are raw features, as clients sent them: each bundle scores them
  through its own handler and model (the serving pipeline), and its predictions are read
  as the prediction log reads answers (one scalar per row: monitor/predictions.py).
- The holdout holds rows as the model receives them (export/holdout.py): each bundle's
  ONNX model scores them, and the export's task reads its outputs (label or argmax).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..export.holdout import Holdout
from ..monitor.predictions import bundle_predictions


def predict_rows(bundle_dir: Path, frame: pd.DataFrame) -> list[Any]:
    """One scalar prediction per row of ``frame`` (raw features) by the bundle."""
    values = bundle_predictions(bundle_dir, frame)
    if values is None:
        raise ValidationError(f"the bundle at {bundle_dir} does not give one prediction per "
                              "row, so its predictions cannot be compared with ground truth.",
                              hint="Have postprocess return one value (or one dict) per row.")
    return values


def predict_holdout(bundle_dir: Path, holdout: Holdout) -> np.ndarray:
    """The bundle's model's predictions (labels or values) on the holdout's rows."""
    import onnxruntime as ort

    from ..serving.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    given = list(holdout.inputs)
    if set(names) == set(given):
        feeds = {name: holdout.inputs[name] for name in names}
    elif len(names) == len(given) == 1:  # one input, renamed by a newer exporter
        feeds = {names[0]: holdout.inputs[given[0]]}
    else:
        raise ValidationError(f"the model of {bundle_dir} takes inputs {names}, the holdout "
                              f"holds {given}: the two versions do not take the same inputs.")
    outputs = [np.asarray(o) for o in session.run(None, feeds)]
    predicted = holdout.task.predictions(outputs)
    if predicted is None:
        raise ValidationError(f"the holdout's task {holdout.task.kind!r} has no predictions.")
    return np.asarray(predicted).reshape(len(holdout.labels), -1)[:, 0]
