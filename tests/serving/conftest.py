"""Fixtures for the serving runtime: real bundles from tiny models, real servers on 127.0.0.1.

- ``digits_bundle``: LogisticRegression on sklearn's bundled digits (64 float32 pixel
  features), no handler.py: the identity handler stacks the features.
- ``tabular_bundle``: a handler.py with preprocess(df)/postprocess over a nullable
  numeric, a plain numeric and a string feature.
- ``server`` / ``start_server``: uvicorn in a thread on a free port
  (``tests/live_server.py``), stopped (and its prediction log flushed) after the test.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import RunningServer, serve_in_thread
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.serving.bundle import Bundle, Lineage, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.schema import Feature

TABULAR_HANDLER = textwrap.dedent('''
    import numpy as np

    CITIES = ["paris", "lyon"]

    def preprocess(df):
        age = df["age"].fillna(30.0).to_numpy() / 100.0
        income = df["income"].to_numpy() / 1000.0
        paris = (df["city"] == "paris").to_numpy().astype(np.float32)
        with np.errstate(over="ignore"):  # fuzzed incomes overflow float32: inf is fine
            return np.stack([age, income, paris], axis=1).astype(np.float32)

    def postprocess(outputs):
        labels = outputs["label"]
        probs = outputs["probabilities"][:, 1]
        return [{"label": "yes" if l == 1 else "no", "p": round(float(p), 4)}
                for l, p in zip(labels, probs)]
''')


@pytest.fixture(scope="session")
def digits_data() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="session")
def digits_bundle(tmp_path_factory: pytest.TempPathFactory,
                  digits_data: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> Bundle:
    from sklearn.linear_model import LogisticRegression

    x, y = digits_data
    model = LogisticRegression(max_iter=300).fit(x, y)
    root = tmp_path_factory.mktemp("services") / "digits" / "3"
    return write_bundle(
        root,
        manifest=Manifest(name="digits", version="3",
                          lineage=Lineage("digits", "3", "run-abc"),
                          runtime=RuntimeSettings(max_body_bytes=256 * 1024,
                                                  log_flush_interval_s=0.2)),
        schema=classifier_schema([Feature(f"pixel_{i}") for i in range(64)], 64),
        model=sklearn_onnx(model, 64))


@pytest.fixture(scope="session")
def tabular_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    root = tmp_path_factory.mktemp("services") / "churn" / "1"
    features = [Feature("age", "float64", nullable=True), Feature("income", "float64"),
                Feature("city", "string")]
    return write_bundle(root, manifest=Manifest(name="churn", version="1"),
                        schema=classifier_schema(features, 3),
                        model=sklearn_onnx(LogisticRegression().fit(x, y), 3),
                        handler_source=TABULAR_HANDLER)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def start(bundle: Bundle, *, log: bool = True, log_dir: Path | None = None
              ) -> RunningServer:
        if log_dir is None and log:
            log_dir = tmp_path / f"log-{len(started)}"
        running = serve_in_thread(bundle.path, log_dir)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def server(start_server: Callable[..., RunningServer], digits_bundle: Bundle) -> RunningServer:
    """The digits bundle, served with its prediction log under tmp_path."""
    return start_server(digits_bundle)
