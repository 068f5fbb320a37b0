"""The historical holdout: the `--eval` rows an export was checked on, kept with its version.

`%ship export VAR --name N --example X --eval X_test y_test` checks the ONNX graph on the
eval rows; with labels, those rows (as the model receives them) and their labels are
stored next to model.onnx as ``holdout.npz``, in the registry's artifacts. Retraining
(retrain/gate.py) scores a champion and a challenger on its champion's holdout: a
challenger that got better on new data by forgetting old data fails there.

The file is numpy's npz, read with ``allow_pickle=False``: ``input.<name>`` per model
input, ``labels``, and ``meta`` (JSON: task, label output, rows kept of rows given).
At most :data:`MAX_ROWS` rows are kept (evenly spread) so it stays kilobytes to
megabytes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .parity import CLASSIFICATION, REGRESSION, Task

HOLDOUT_FILE = "holdout.npz"
MAX_ROWS = 50_000


@dataclass(frozen=True)
class Holdout:
    """Eval rows as the model receives them, with their labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    task: Task
    given_rows: int  # rows given to --eval; more than ``rows`` when sampled down

    @property
    def rows(self) -> int:
        return int(len(self.labels))


def holdout_of(held: Any, task: Task, features: Any, input_names: list[str]) -> Holdout | None:
    """The holdout of an export: its labelled eval rows (None without labels, or for a
    model that is neither a classifier nor a regressor)."""
    if held.labels is None or held.n_eval == 0 or task.kind not in (CLASSIFICATION,
                                                                     REGRESSION):
        return None
    n_eval = int(held.n_eval)
    keep = np.arange(n_eval) if n_eval <= MAX_ROWS else \
        np.linspace(0, n_eval - 1, MAX_ROWS).astype(np.int64)
    rows = keep + int(held.n_example)
    if isinstance(features, dict):
        inputs = {name: np.asarray(features[name])[rows] for name in input_names}
    else:
        inputs = {input_names[0]: np.asarray(features)[rows]}
    inputs = {name: _plain(values) for name, values in inputs.items()}
    return Holdout(inputs=inputs, labels=_plain(np.asarray(held.labels)[keep]), task=task,
                   given_rows=n_eval)


def _plain(values: np.ndarray) -> np.ndarray:
    """Text as numpy strings: object arrays would need pickle to be stored."""
    return values.astype(str) if values.dtype == object else values


def write_holdout(folder: Path, holdout: Holdout) -> Path:
    path = folder / HOLDOUT_FILE
    meta = {"task": holdout.task.kind, "label_output": holdout.task.label_output,
            "rows": holdout.rows, "given_rows": holdout.given_rows}
    arrays: dict[str, Any] = {f"input.{name}": values for name, values in holdout.inputs.items()}
    arrays.update(labels=holdout.labels, meta=np.array(json.dumps(meta)))
    np.savez_compressed(path, **arrays)
    return path


def read_holdout(path: Path) -> Holdout:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        inputs = {key.removeprefix("input."): data[key] for key in data.files
                  if key.startswith("input.")}
        return Holdout(inputs=inputs, labels=data["labels"],
                       task=Task(meta["task"], int(meta["label_output"])),
                       given_rows=int(meta["given_rows"]))


def load_holdout(version_source: str, tracking_uri: str) -> Holdout | None:
    """The holdout stored with a model version (its ``source`` URI); None when the export
    had no labelled `--eval` rows."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="ship-holdout-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{version_source.rstrip('/')}/{HOLDOUT_FILE}", dst_path=tmp,
                tracking_uri=tracking_uri)
        except (MlflowException, OSError):
            return None
        return read_holdout(Path(local))
