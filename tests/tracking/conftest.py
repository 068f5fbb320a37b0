"""Fixtures for the tracking tests: a real IPython shell, a workspace in tmp_path, a real
sqlite MLflow store, and the spool drained the way `ship sync` drains it.

Every tracked cell starts a background writer process; the `shell` fixture stops the
writers of its workspace and waits for them, so no test leaves a process behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SUMMARY_MIME = "application/vnd.ship.run-summary+json"
WRITER_MODULE = "kernel_magics.tracking.daemon"


@pytest.fixture(autouse=True)
def ship_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean environment: no tracking URI, no notebook, a writer that exits soon."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("SHIP_WRITER_IDLE_S", "2")
    # The background writer runs `python -m kernel_magics.tracking.daemon`: it must
    # import this checkout, not a copy installed in the venv.
    inherited = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), *filter(None, [inherited])]))
    for name in ("MLFLOW_TRACKING_URI", "SHIP_NOTEBOOK", "JPY_SESSION_NAME", "SHIP_BATCH_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _package_under_test() -> None:
    import kernel_magics

    where = Path(kernel_magics.__file__).resolve()
    if REPO not in where.parents:
        pytest.exit(f"kernel_magics is imported from {where}, not from {REPO}: run the tests "
                    f"with PYTHONPATH={REPO} or after `pip install -e .`.", returncode=4)


# -- the workspace and its MLflow store ------------------------------------------------
@dataclass
class ShipWorkspace:
    """A workspace folder, its spool and its default sqlite MLflow store."""

    root: Path

    @property
    def ship_dir(self) -> Path:
        return self.root / ".ship"

    @property
    def spool_dir(self) -> Path:
        return self.ship_dir / "spool"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.ship_dir / 'mlflow.db'}"

    def client(self, uri: str | None = None) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=uri or self.tracking_uri)

    def pending(self) -> list[str]:
        from kernel_magics.tracking.spool import Spool

        return list(Spool(self.spool_dir).pending())

    def done(self) -> list[str]:
        """Ids of the records written to MLflow."""
        from kernel_magics.tracking.spool import Spool

        return [w.record_id for w in Spool(self.spool_dir).all_written()]

    def sync(self) -> Any:
        """Stop the background writer and write everything now, as `ship sync` does."""
        from kernel_magics.tracking.daemon import drain, exclusive
        from kernel_magics.tracking.spool import Spool

        settle()
        with exclusive(self.spool_dir, timeout=120):
            return drain(Spool(self.spool_dir), force=True)

    def sync_cleanly(self) -> None:
        """sync(), asserting that every record was written: none failed, none pending."""
        result = self.sync()
        assert not result.failed and not self.pending(), result.failed

    def wait_written(self, count: int, timeout: float = 180.0) -> None:
        """Wait until the background writer has written `count` records."""
        settle()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.done()) >= count and not self.pending():
                return
            time.sleep(0.2)
        log = self.spool_dir / "writer.log"
        tail = log.read_text()[-3000:] if log.exists() else "(no writer.log)"
        raise AssertionError(f"{len(self.done())}/{count} records written after {timeout} s; "
                             f"pending: {self.pending()}\nwriter.log:\n{tail}")

    def runs(self, uri: str | None = None) -> list[Any]:
        """Every run in every experiment of the store, oldest first."""
        client = self.client(uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(ids, order_by=["attributes.start_time ASC"]) if ids else []
        return list(runs)

    def only_run(self, uri: str | None = None) -> Any:
        runs = self.runs(uri)
        assert len(runs) == 1, [r.data.tags.get("mlflow.runName") for r in runs]
        return runs[0]

    def artifact_text(self, run_id: str, path: str, uri: str | None = None) -> str:
        local = self.client(uri).download_artifacts(run_id, path, str(self.root.parent))
        return Path(local).read_text(encoding="utf-8")

    def artifact_paths(self, run_id: str, uri: str | None = None) -> set[str]:
        client = self.client(uri)
        found: set[str] = set()
        todo = [None]
        while todo:
            folder = todo.pop()
            for item in client.list_artifacts(run_id, folder):
                (todo.append(item.path) if item.is_dir else found.add(item.path))
        return found


@pytest.fixture
def workspace(tmp_path: Path) -> ShipWorkspace:
    root = tmp_path / "ws"
    root.mkdir()
    return ShipWorkspace(root)


def settle() -> None:
    """Wait for the kernel side: tracked cells finish their records in a background thread."""
    from kernel_magics.tracking.capture import wait_for_background

    wait_for_background(timeout=120)


def stop_writers(spool_dir: Path) -> None:
    """Stop this spool's background writer the way `ship sync` does, then reap writers."""
    from kernel_magics.tracking.daemon import exclusive

    settle()  # a completing cell starts a writer when it is done
    if spool_dir.is_dir():
        with exclusive(spool_dir, timeout=120):
            pass
    for child in psutil.Process().children(recursive=True):
        try:
            if WRITER_MODULE not in child.cmdline():
                continue
        except psutil.ZombieProcess:
            continue
        except psutil.Error:
            continue
        try:
            child.wait(60)
        except psutil.TimeoutExpired:
            child.kill()
            child.wait(10)


# -- the shell ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ipython() -> Any:
    """One real InteractiveShell for the session (IPython allows one per process)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if InteractiveShell.initialized():
        return InteractiveShell.instance()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    return InteractiveShell.instance(config=config)


@dataclass
class Tracked:
    """One executed cell: IPython's result and everything it displayed or printed."""

    result: Any
    stdout: str
    outputs: list[Any] = field(default_factory=list)

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [o.data for o in self.outputs if SUMMARY_MIME in o.data]

    @property
    def summary(self) -> str:
        """The text summary this cell displayed (pending: the writer updates it later)."""
        mine = [s for s in self.summaries if s[SUMMARY_MIME]["state"] == "pending"]
        assert len(mine) == 1, self.summaries
        return str(mine[0]["text/plain"])

    @property
    def record_id(self) -> str:
        mine = [s for s in self.summaries if s[SUMMARY_MIME]["state"] == "pending"]
        assert len(mine) == 1, self.summaries
        return str(mine[0][SUMMARY_MIME]["record_id"])


class Notebook:
    """Runs cells in the shell like a notebook front end does (history stored)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def execute(self, code: str) -> Tracked:
        from IPython.utils.capture import capture_output

        with capture_output(display=True) as captured:
            result = self.shell.run_cell(code, store_history=True)
        return Tracked(result=result, stdout=captured.stdout, outputs=list(captured.outputs))

    def run(self, code: str) -> Tracked:
        """Run a cell that must succeed."""
        out = self.execute(code)
        assert out.result.success, f"{out.result.error_in_exec!r}\n{out.stdout}"
        return out

    def track(self, code: str, args: str = "") -> Tracked:
        """Run `code` under `%%ship track ARGS`; it may fail (see `.result`)."""
        return self.execute(f"%%ship track {args}".rstrip() + "\n" + code)

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[no-any-return]


def write_notebook(path: Path, sources: list[str]) -> Path:
    """A minimal valid .ipynb with the given code cells."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
              "outputs": [], "source": src} for i, src in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def make_notebook() -> Any:
    """`write_notebook(path, sources)`, for tests that write their own notebooks."""
    return write_notebook


@pytest.fixture
def notebook_path(workspace: ShipWorkspace) -> Path:
    """The notebook the shell pretends to run (what Jupyter would tell the kernel)."""
    return write_notebook(workspace.root / "train.ipynb", ["# training notebook"])


@pytest.fixture
def shell(ipython: Any, workspace: ShipWorkspace, notebook_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shell, in the workspace, with `%load_ext kernel_magics` done like a fresh kernel."""
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("SHIP_NOTEBOOK", str(notebook_path))
    ipython.reset(new_session=True)
    ipython.extension_manager.loaded.discard("kernel_magics")
    assert ipython.run_line_magic("load_ext", "kernel_magics") is None
    try:
        yield ipython
    finally:
        stop_writers(workspace.spool_dir)
        _forget_summaries()
        ipython.reset(new_session=True)
        ipython.extension_manager.loaded.discard("kernel_magics")


def _forget_summaries() -> None:
    """Like a kernel restart: no summary of this test's runs is updated during the next test."""
    from kernel_magics.display.summary import _watcher

    with _watcher._lock:
        _watcher._items.clear()


@pytest.fixture
def nb(shell: Any) -> Notebook:
    return Notebook(shell)
