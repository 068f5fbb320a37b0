"""Helpers for the drift tests: synthetic tables, a real bundle (ONNX model, handler,
reference profile with the model's predictions) in a workspace, and requests recorded
by the real PredictionLog."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from onnx_models import sklearn_onnx

from kernel_magics.bundle.reference import from_data, write_reference_file
from kernel_magics.serving.bundle import Bundle, Lineage, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import Prediction, PredictionLog
from kernel_magics.serving.schema import Feature, Schema, TensorSpec
from kernel_magics.workspace import Workspace

NUMERIC = ["age", "income", "score"]
FEATURES = [*NUMERIC, "city"]
CITIES = ["paris", "lyon", "nice", "lille"]
CITY_P = [0.4, 0.3, 0.2, 0.1]
HANDLER = textwrap.dedent('''
    import numpy as np

    def preprocess(df):
        paris = (df["city"] == "paris").to_numpy().astype(np.float32)
        return np.stack([df["age"].fillna(40.0).to_numpy() / 100.0,
                         df["income"].to_numpy() / 1000.0, df["score"].to_numpy(), paris],
                        axis=1).astype(np.float32)

    def postprocess(outputs):
        return [{"label": "yes" if int(v) == 1 else "no",
                 "p": round(float(p), 3)} for v, p in
                zip(outputs["label"], outputs["probabilities"][:, 1])]
''')


def table(rng: np.random.Generator, n: int, *, shift: dict[str, float] | None = None,
          cities: list[float] | None = None) -> pd.DataFrame:
    """Synthetic rows; ``shift`` moves numeric features by that many std units."""
    shift = shift or {}
    return pd.DataFrame({
        "age": rng.normal(40 + 12 * shift.get("age", 0.0), 12, n),
        "income": rng.normal(1000 + 300 * shift.get("income", 0.0), 300, n),
        "score": rng.normal(shift.get("score", 0.0), 1, n),
        "city": rng.choice(CITIES, n, p=cities or CITY_P).astype(object),
    })


def onnx_model() -> bytes:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 2] + 0.3 * x[:, 3] > 0).astype(int)
    return sklearn_onnx(LogisticRegression().fit(x, y), 4)


SCHEMA = Schema(features=(Feature("age", "float64", nullable=True), Feature("income", "float64"),
                          Feature("score", "float64"), Feature("city", "string")),
                inputs=(TensorSpec("float_input", "FP32", (-1, 4)),),
                outputs=(TensorSpec("label", "INT64", (-1,)),
                         TensorSpec("probabilities", "FP32", (-1, 2))))


def make_bundle(workspace: Workspace, name: str, model: bytes, reference: pd.DataFrame | None,
                *, handler: str | None = HANDLER, schema: Schema = SCHEMA,
                version: str = "1") -> Bundle:
    """A real bundle in the workspace (as `ship build` lays it out), with its reference."""
    folder = workspace.services_dir / name / version
    bundle = write_bundle(folder, manifest=Manifest(
        name=name, version=version, lineage=Lineage(name, version, "run"),
        runtime=RuntimeSettings(log_flush_interval_s=0.2)), schema=schema, model=model,
        handler_source=handler)
    if reference is not None:
        write_reference_file(folder, from_data(schema.feature_names, reference))
    return bundle


Writer = Callable[..., list[str]]


def log_rows(log: PredictionLog, frame: pd.DataFrame, *, when: float, per_request: int = 10,
             version: str = "1", outputs: Callable[[pd.DataFrame], Any] | None = None,
             endpoint: str = "invocations", model: str = "churn") -> list[str]:
    """Record ``frame`` as requests of ``per_request`` rows at time ``when``; their ids."""
    ids = []
    for start in range(0, len(frame), per_request):
        part = frame.iloc[start:start + per_request]
        columns = {c: part[c].to_numpy() if c != "city" else part[c].to_numpy(dtype=object)
                   for c in part.columns}
        answer = outputs(part) if outputs is not None else \
            [{"label": "yes" if s > 0 else "no", "p": 0.5} for s in part["score"]]
        rid = f"r{when:.0f}-{start}-{version}"
        log.append(Prediction(rid, when, model, version, endpoint, 200, 1.0, None,
                   Inputs(rows=len(part), columns=columns), None, answer, None))
        ids.append(rid)
    return ids


def now() -> float:
    return time.time()
