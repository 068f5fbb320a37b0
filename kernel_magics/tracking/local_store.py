"""A sqlite MLflow store is created whole or not at all; a half-made one is repaired.

MLflow creates its schema on a store's first use: dozens of tables, then every migration
in turn. A process killed half-way (a kernel restarted, a writer stopped) used to leave a
database on which every later ``ship sync`` failed ("out-of-date database schema").
:func:`mlflow_client` is how Ship opens a store to write to it:

- a store that does not exist yet is made in a temporary file beside it and renamed into
  place once complete, under a lock, so no reader or writer ever sees half a schema;
- a store whose schema is incomplete and that holds no run (what such a crash leaves) is
  moved aside (``mlflow.db.incomplete-<time>``) and made again, saying so;
- one that holds runs is never touched here: at an older revision, MLflow itself upgrades
  it or says how (``mlflow db upgrade``).

Stores of other kinds (an MLflow server, PostgreSQL) are MLflow's own business.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
_checked: set[Path] = set()


def mlflow_client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """An MlflowClient, its sqlite store (if it is one) complete first."""
    from mlflow.tracking import MlflowClient

    path = sqlite_path(tracking_uri)
    if path is not None:
        ensure_store(path)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI (None for anything else)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def ensure_store(path: Path) -> None:
    """Make ``path`` a complete MLflow store (see the module docstring)."""
    if path in _checked:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in path.parent.glob(f".{path.name}.creating-*"):
            stale.unlink(missing_ok=True)  # left by a process killed while creating it
        exists = path.is_file() and path.stat().st_size > 0
        if exists and not complete(path) and not _holds_runs(path):
            _set_aside(path)
            exists = False
        if not exists:
            _create(path)
    _checked.add(path)


def complete(path: Path) -> bool:
    """Whether the store's schema is at MLflow's newest revision."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    head: str = _get_latest_schema_revision()  # type: ignore[no-untyped-call]
    return schema_revision(path) == head


def schema_revision(path: Path) -> str | None:
    """alembic_version of a sqlite store (None: no such table or row)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def _holds_runs(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM runs").fetchone()[0] > 0)
    except sqlite3.Error:
        return False  # no runs table: nothing was ever written


def _set_aside(path: Path) -> None:
    aside = path.with_name(f"{path.name}.incomplete-{int(time.time())}")
    path.rename(aside)
    log.warning("the MLflow store %s was incomplete (a process stopped while creating it) "
                "and held no run; moved it to %s and creating it again.", path, aside)


def _create(path: Path) -> None:
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    making = path.with_name(f".{path.name}.creating-{os.getpid()}")
    making.unlink(missing_ok=True)
    engine = create_sqlalchemy_engine(f"sqlite:///{making}")  # type: ignore[no-untyped-call]
    try:
        _initialize_tables(engine)  # type: ignore[no-untyped-call]
    finally:
        engine.dispose()
    os.replace(making, path)
