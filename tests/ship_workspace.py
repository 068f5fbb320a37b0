"""A fresh workspace as the test's working folder, and the `ship` command line run in it
(a real process, as a user runs it): fixtures the bundle and release tests import into
their conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_files import Ship

from kernel_magics.workspace import init_workspace


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new workspace (no MLflow store yet), the test's working folder."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("SHIP_WRITER_IDLE_S", "2")
    monkeypatch.chdir(tmp_path)
    init_workspace(tmp_path)
    return tmp_path


@pytest.fixture
def ship() -> Ship:
    """``ship(root, *args)``: the `ship` command in ``root``, its output captured."""
    def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).with_name("ship")), *args], cwd=root,
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ})

    return run
