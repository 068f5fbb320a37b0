"""Fixtures for cost: a workspace holding a real service bundle, served for real.

- ``cost_workspace``: a workspace in tmp_path with service ``digits`` (version 1: the
  serving tests' digits LogisticRegression as ONNX) under ``.ship/services/``.
- ``serve_in_thread``: uvicorn in a thread on 127.0.0.1 (``tests/live_server.py``) writing
  the service's prediction log and usage records (every 0.2 s), stopped gracefully
  (lifespan) on ``stop()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import live_server
import numpy as np
import pytest
from live_server import RunningServer
from onnx_models import classifier_schema, sklearn_onnx

from kernel_magics.serving.bundle import Bundle, Lineage, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.schema import Feature
from kernel_magics.workspace import Workspace, init_workspace


@pytest.fixture(scope="session")
def digits_onnx() -> bytes:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x.astype(np.float32), y)
    onnx: bytes = sklearn_onnx(model, 64)
    return onnx


def add_service_version(workspace: Workspace, onnx: bytes, name: str = "digits",
                        version: str = "1") -> Bundle:
    """A built service version, as `ship build` lays it out."""
    return write_bundle(
        workspace.services_dir / name / version,
        manifest=Manifest(name=name, version=version, lineage=Lineage(name, version, "run-x"),
                          runtime=RuntimeSettings(log_flush_interval_s=0.2)),
        schema=classifier_schema([Feature(f"pixel_{i}") for i in range(64)], 64),
        model=onnx)


@pytest.fixture
def cost_workspace(tmp_path: Path, digits_onnx: bytes, monkeypatch: pytest.MonkeyPatch
                   ) -> Workspace:
    for name in ("MLFLOW_TRACKING_URI", "SHIP_NOTEBOOK", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    workspace = init_workspace(tmp_path / "ws")
    add_service_version(workspace, digits_onnx)
    return workspace


@pytest.fixture
def serve_in_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RunningServer]]:
    monkeypatch.setenv("SHIP_USAGE_INTERVAL_S", "0.2")
    started: list[RunningServer] = []

    def start(bundle: Bundle, log_dir: Path) -> RunningServer:
        running = live_server.serve_in_thread(bundle.path, log_dir)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
