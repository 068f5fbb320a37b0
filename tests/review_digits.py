"""The `digits` service the human-review tests serve: a LogisticRegression of
scikit-learn's 8 x 8 digits as ONNX, its 64 features named pixel_R_C (an image to the
Review panel), with the reference profile of its training rows; and shifted digits
(brightened, corners lit: pixels training kept dark) for unfamiliar traffic.
tests/review/, tests/server/test_review_api.py and tests/ui/seed_review.py use it."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.bundle.reference import from_data, write_reference_file
from kernel_magics.serving.bundle import Lineage, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace

NAME = "digits"
FEATURES = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
TRAIN_ROWS = 1200  # the model's; the rest are test digits


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits (float32) and their truth."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


@functools.cache
def model_bytes() -> bytes:
    from sklearn.linear_model import LogisticRegression

    x, y = digits()
    model = LogisticRegression(max_iter=300).fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    return sklearn_onnx(model, 64)


def write_service(workspace: Workspace) -> Path:
    """Version 1 of the service in ``workspace``, as `ship build --reference` lays it
    out; its folder."""
    folder = workspace.services_dir / NAME / "1"
    write_bundle(folder, manifest=Manifest(
        name=NAME, version="1", lineage=Lineage(NAME, "1", "run"),
        runtime=RuntimeSettings(log_flush_interval_s=0.2)),
        schema=classifier_schema([Feature(f, "float32") for f in FEATURES], 64,
                                 class_labels=tuple(range(10))),
        model=model_bytes())
    write_reference_file(folder, from_data(FEATURES, digits()[0][:TRAIN_ROWS]))
    return folder


def shifted(rows: np.ndarray) -> np.ndarray:
    """Brighter digits with the corners lit: pixels training kept dark."""
    out = np.clip(rows + 6, 0, 16).astype(np.float32)
    out[:, [0, 7, 56, 63]] = 16
    return out
