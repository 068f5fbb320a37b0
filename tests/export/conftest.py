"""Fixtures for the export tests: digits data, small trained torch models, a workspace with
a real sqlite MLflow store in tmp_path.

Training is brief (full-batch Adam, a few dozen steps) and seeded, so the models are the
same on every run; each is trained once per session. Creating MLflow's sqlite schema
takes seconds, so one empty store is created per session and copied into each workspace.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from kernel_magics.workspace import Workspace, init_workspace

TEST_TOML = """\
[export]
# Few timed calls: the tests check the figures exist and make sense, not their precision.
profile_repeats = 10
"""


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1]: a training split and a held-out split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype(np.int64), test_size=0.25, random_state=0, stratify=y)
    return Digits(x_train, y_train, x_test, y_test)


def train(model: nn.Module, data: Digits, steps: int, lr: float = 0.02) -> nn.Module:
    """Full-batch Adam on the training split; returns the model in eval mode.

    One torch thread: the machines running the tests have few cores, often shared, and
    OpenMP threads competing for them make a 0.2 s loop take seconds.
    """
    torch.manual_seed(0)
    xs, ys = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xs), ys).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="session")
def mlp(digits: Digits) -> nn.Module:
    """The demo's architecture (examples/train.ipynb): 64 -> 64 -> 10."""
    torch.manual_seed(0)
    return train(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), digits, 60)


@pytest.fixture(scope="session")
def wide_mlp(digits: Digits) -> nn.Module:
    """A MatMul-heavy MLP: almost all of its bytes are Linear weights."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    return train(model, digits, 40, lr=0.005)


@pytest.fixture(scope="session")
def cnn(digits: Digits) -> nn.Module:
    """Two Conv layers on the 8x8 image, then two Linear layers."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
    return train(model, digits, 40, lr=0.01)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite database with its schema created, to copy into workspaces."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def workspace(tmp_path: Path, empty_store: Path) -> Workspace:
    """A fresh workspace whose default sqlite store is ready (and empty)."""
    root = tmp_path / "ws"
    root.mkdir()
    init_workspace(root)
    (root / ".ship" / "ship.toml").write_text(TEST_TOML, encoding="utf-8")
    shutil.copy(empty_store, root / ".ship" / "mlflow.db")
    return init_workspace(root)


@pytest.fixture
def mlflow_client(workspace: Workspace) -> Any:
    """An MlflowClient on the workspace's store: a reader independent of Ship's code."""
    from mlflow.tracking import MlflowClient

    uri = workspace.tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def store_contents(mlflow_client: Any) -> Callable[[], tuple[list[Any], list[Any]]]:
    """A function returning all registered models and all runs of the store."""

    def contents() -> tuple[list[Any], list[Any]]:
        experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
        runs = mlflow_client.search_runs(experiments) if experiments else []
        return list(mlflow_client.search_registered_models()), list(runs)

    return contents
