"""What an MLflow tracking store answers, and the query for it.

Both readers (sqlite_store.SqliteReader, client_store.ClientReader; mlflow_store.reader_for
picks one) answer in these types, so the catalog, the REST API and the CLI never see
which one read the store.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Protocol

NOTEBOOK_TAG = "ship.notebook"


@dataclass
class StoredDataset:
    """One dataset input of a run, as MLflow stores it."""

    name: str
    digest: str
    source_type: str
    context: str | None = None
    shape: list[int] | None = None


@dataclass
class StoredRun:
    """A run as the store holds it; ``tags`` may be a subset (see ``RunQuery.tags``)."""

    run_id: str
    name: str
    experiment_id: str
    experiment: str
    status: str
    start_time_ms: int
    end_time_ms: int | None
    artifact_uri: str | None
    params: dict[str, str] = field(default_factory=dict)
    # Latest value per key; NaN and infinities become None (JSON has no NaN).
    metrics: dict[str, float | None] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[StoredDataset] = field(default_factory=list)


@dataclass
class StoredExperiment:
    """An active experiment; ``run_count`` is None where counting would cost a search."""

    experiment_id: str
    name: str
    artifact_location: str | None
    run_count: int | None
    last_start_time_ms: int | None


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list: newest first, at most ``limit``."""

    # Exact values of the ship.notebook tag to match; empty: runs of every notebook.
    notebooks: tuple[str, ...] = ()
    experiment: str | None = None
    limit: int = 100
    # Tag keys to return per run (all tags of 1,000 runs is most of the cost).
    tags: tuple[str, ...] = ()


@dataclass
class SearchResult:
    """A page of runs and how many matched (None when the store cannot say cheaply)."""

    runs: list[StoredRun]
    total: int | None


class StoreReader(Protocol):
    """Read access to one MLflow tracking store."""

    def experiments(self) -> list[StoredExperiment]:
        """Active experiments, most recently used first."""
        ...

    def search(self, query: RunQuery) -> SearchResult:
        """Active runs matching ``query``, newest first."""
        ...

    def get(self, run_id: str) -> StoredRun | None:
        """One active run with all its tags, or None."""
        ...


def finite(value: float) -> float | None:
    """``value``, or None for NaN and infinities."""
    return value if math.isfinite(value) else None


def dataset_shape(profile: str | None) -> list[int] | None:
    """The shape from a dataset profile: Ship's ``shape``, or MLflow's ``num_rows``."""
    if not profile:
        return None
    try:
        data = json.loads(profile)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    shape = data.get("shape")
    if isinstance(shape, list) and all(isinstance(n, int) for n in shape):
        return shape
    rows = data.get("num_rows")
    return [rows] if isinstance(rows, int) else None
