"""Reading runs back from the MLflow store, fast enough for a panel that polls.

MLflow's ``search_runs`` builds one ORM object per run, param, tag and metric:
about 1 s for 1,000 runs on sqlite, nearly all of it SQLAlchemy bookkeeping. The
sidebar must list that many in well under 200 ms, so for a ``sqlite:///`` store
Ship reads MLflow's tables directly, read-only, in a handful of set-based queries.
The tables it reads (runs, experiments, params, tags, latest_metrics, inputs,
datasets, input_tags) have kept these columns since MLflow 2.4; they are checked
before use, and a store whose schema lacks one goes through ``MlflowClient``.
``tests/tracking/test_mlflow_store.py`` holds both readers to the same answers.

    reader_for(uri)
    ├── sqlite_store.SqliteReader   sqlite:///… stores: direct, read-only SQL; a missing
    │                               file is an empty store
    └── client_store.ClientReader   anything else (an MLflow server, PostgreSQL): one
                                    search_runs call per query, answers cached for a few
                                    seconds so a polling panel costs one call

What both readers answer (StoredRun, …) and the query (RunQuery) are in stored.py.
"""

from __future__ import annotations

from pathlib import Path

from .client_store import ClientReader
from .sqlite_store import SqliteReader
from .stored import StoreReader


def reader_for(uri: str) -> StoreReader:
    """The fastest correct reader for a tracking URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and "?" not in uri:
        return SqliteReader(Path(uri[len(prefix):]), fallback_uri=uri)
    return ClientReader(uri)
