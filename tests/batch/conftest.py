"""Fixtures for batch tests: tiny notebooks in a fresh workspace, run through `ship run`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from notebook_files import write_notebook


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder with `.ship/`, the default sqlite store, quick writers."""
    (tmp_path / ".ship").mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("SHIP_WRITER_IDLE_S", "2")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def make_notebook(workspace: Path) -> Callable[..., Path]:
    """Write a notebook from (source, tags) pairs; a str is an untagged code cell."""

    def make(name: str, *cells: str | tuple[str, list[str]]) -> Path:
        return write_notebook(workspace / name, *cells)

    return make


@pytest.fixture
def ship(workspace: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `ship` command line in the workspace."""

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("ship")
        return subprocess.run([str(exe), *args], cwd=workspace, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ})

    return run
