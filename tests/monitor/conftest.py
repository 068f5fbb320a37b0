"""Fixtures for the drift tests (helpers in drift_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from drift_fixtures import onnx_model, table

from kernel_magics.workspace import Workspace, init_workspace


@pytest.fixture(scope="session")
def model_bytes() -> bytes:
    return onnx_model()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path)


@pytest.fixture(scope="session")
def training() -> pd.DataFrame:
    return table(np.random.default_rng(1), 20_000)
