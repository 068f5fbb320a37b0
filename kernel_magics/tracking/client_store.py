"""Reads any MLflow tracking store through MlflowClient: one search_runs call per query.

For MLflow servers and database stores (the workspace's sqlite file goes through
sqlite_store instead). Answers are cached for a few seconds, so a panel that polls
costs the server one search per interval, not one per client request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from .stored import (
    NOTEBOOK_TAG,
    RunQuery,
    SearchResult,
    StoredDataset,
    StoredExperiment,
    StoredRun,
    dataset_shape,
    finite,
)

_CLIENT_TTL_S = 3.0


class ClientReader:
    """Reads through ``MlflowClient``: one ``search_runs`` per query, no per-run calls."""

    _cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def _client(self) -> Any:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def _cached(self, key: tuple[Any, ...], compute: Any) -> Any:
        """``compute()``, or its answer from less than a few seconds ago for the same key."""
        key = (self.uri, *key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < _CLIENT_TTL_S:
                return hit[1]
        value = compute()
        with self._lock:
            self._cache[key] = (now, value)
            for stale in [k for k, (t, _) in self._cache.items() if now - t >= _CLIENT_TTL_S]:
                del self._cache[stale]
        return value

    def _experiment_names(self) -> dict[str, str]:
        from mlflow.entities import ViewType

        return {e.experiment_id: e.name for e in
                self._client().search_experiments(view_type=ViewType.ACTIVE_ONLY)}

    def experiments(self) -> list[StoredExperiment]:
        def compute() -> list[StoredExperiment]:
            from mlflow.entities import ViewType

            found = self._client().search_experiments(view_type=ViewType.ACTIVE_ONLY)
            return [StoredExperiment(experiment_id=e.experiment_id, name=e.name,
                                     artifact_location=e.artifact_location, run_count=None,
                                     last_start_time_ms=None) for e in found]

        result: list[StoredExperiment] = self._cached(("experiments",), compute)
        return result

    def search(self, query: RunQuery) -> SearchResult:
        result: SearchResult = self._cached(("search", query), lambda: self._search(query))
        return result

    def _search(self, query: RunQuery) -> SearchResult:
        names = self._experiment_names()
        if query.experiment:
            names = {k: v for k, v in names.items() if v == query.experiment}
        if not names:
            return SearchResult(runs=[], total=0)
        client = self._client()
        # MLflow's search has no OR: one search per spelling of the notebook path.
        filters = [f"tags.`{NOTEBOOK_TAG}` = '{_quote(nb)}'" for nb in query.notebooks] or [""]
        runs: dict[str, StoredRun] = {}
        more = False
        for filter_string in filters:
            page = client.search_runs(list(names), filter_string=filter_string,
                                      max_results=query.limit,
                                      order_by=["attributes.start_time DESC"])
            more = more or bool(page.token)
            for run in page:
                runs[run.info.run_id] = _from_entity(run, names, keep_tags=query.tags)
        ordered = sorted(runs.values(), key=lambda r: (-r.start_time_ms, r.run_id))
        return SearchResult(runs=ordered[:query.limit],
                            total=None if more else len(ordered))

    def get(self, run_id: str) -> StoredRun | None:
        from mlflow.exceptions import MlflowException

        client = self._client()
        try:
            run = client.get_run(run_id)
        except MlflowException:
            return None
        if run.info.lifecycle_stage != "active":
            return None
        experiment = client.get_experiment(run.info.experiment_id)
        return _from_entity(run, {experiment.experiment_id: experiment.name}, keep_tags=None)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _from_entity(run: Any, experiments: dict[str, str],
                 keep_tags: Sequence[str] | None) -> StoredRun:
    tags = dict(run.data.tags)
    if keep_tags is not None:
        tags = {k: v for k, v in tags.items() if k in keep_tags}
    datasets = []
    for item in run.inputs.dataset_inputs if run.inputs else []:
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), None)
        ds = item.dataset
        datasets.append(StoredDataset(name=ds.name, digest=ds.digest, source_type=ds.source_type,
                                      context=context, shape=dataset_shape(ds.profile)))
    datasets.sort(key=lambda d: d.name)
    return StoredRun(run_id=run.info.run_id, name=run.info.run_name or "",
                     experiment_id=run.info.experiment_id,
                     experiment=experiments.get(run.info.experiment_id, "?"),
                     status=run.info.status, start_time_ms=int(run.info.start_time or 0),
                     end_time_ms=run.info.end_time, artifact_uri=run.info.artifact_uri,
                     params=dict(run.data.params),
                     metrics={k: finite(float(v)) for k, v in run.data.metrics.items()},
                     tags=tags, datasets=datasets)
