"""One tracked cell, from `begin()` before it runs to `finish()` after it.

This is the core behind `%%ship track`; it never imports IPython or MLflow.
`begin()` spools a RUNNING record before the user's code runs, so a crash
mid-cell still leaves a trace; `finish()` measures, collects and spools the
final record. Writing to MLflow happens elsewhere (writer.py, in another process).
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import queue
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from .._version import __version__
from ..workspace import Workspace, slug
from . import datafiles, environment, fingerprint, gitinfo, metrics, source
from .metrics import StepLog
from .record import (
    MODEL_DIR,
    PROFILES_DIR,
    STEPS_FILE,
    DataFingerprint,
    ModelRef,
    RunRecord,
    Status,
)
from .resources import ResourceMeter, run_cost
from .spool import Spool, new_record_id

_PROCESS_STARTED = psutil.Process().create_time()
# Rows of a tracked DataFrame its profile is made from (a seeded sample beyond): the
# profile is a drift reference; a million rows took 4.2 s, 100,000 take 0.45 s.
PROFILE_ROWS = 100_000
# Earlier cells whose string literals may name the data files the run read.
HISTORY_CELLS = 200


@dataclass
class TrackOptions:
    """What the user asked for on the `%%ship track` line."""

    experiment: str | None = None
    run_name: str | None = None
    model: str | None = None
    metrics: list[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    batch_id: str | None = None


@dataclass
class CellContext:
    """What the kernel knows about the cell being tracked."""

    source: str
    python_source: str
    history: list[str]
    notebook: Path | None
    execution_count: int | None
    namespace: Mapping[str, Any]


_active: StepLog | None = None
_incomplete: set[TrackedCell] = set()


class _Worker:
    """One long-lived thread per kernel runs completions in order (a thread start per
    cell would cost the cell more than the completion itself)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self._queue.put(job)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ship-background",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                job()
            except Exception:  # noqa: BLE001 - the record stays in the spool; sync reports it
                traceback.print_exc()


_background = _Worker()
_env_memory = environment.PreviousEnvironments()


@atexit.register
def wait_for_background(timeout: float = 10.0) -> None:
    """Join background completions (a kernel exiting right after a cell still spools it)."""
    for tracked in list(_incomplete):
        tracked.wait(timeout=timeout)


def active_step_log() -> StepLog | None:
    """The step log of the tracked cell now running, for `ship.log`."""
    return _active


def default_experiment(workspace: Workspace, notebook: Path | None) -> str:
    configured = str(workspace.setting("tracking", "experiment")).strip()
    if configured:
        return configured
    # Not MLflow's "Default": its artifact root is wherever the store was first created.
    return notebook.stem if notebook is not None else workspace.root.name or "notebooks"


class TrackedCell:
    """Capture of one cell execution; see the module docstring."""

    def __init__(self, workspace: Workspace, options: TrackOptions, cell: CellContext) -> None:
        self.workspace = workspace
        self.options = options
        self.cell = cell
        self.spool = Spool(workspace.spool_dir)
        self.analysis = source.analyse(cell.python_source)
        self.warnings: list[str] = []
        self.record: RunRecord | None = None
        self.folder: Path | None = None
        self._pre_data: list[DataFingerprint] = []
        self._meter: ResourceMeter | None = None
        self._steps: StepLog | None = None
        self._done = threading.Event()
        self._done.set()
        self._pending_files: tuple[dict[str, str], str | None] = ({}, None)
        self._frames: dict[str, Any] = {}  # sampled copies, profiled in the background
        self._path_values: list[str] = []  # string values the cell read: data file names?
        self._cwd = workspace.root

    # -- before the user's code ----------------------------------------------------
    def begin(self) -> RunRecord:
        global _active
        now = time.time()
        experiment = self.options.experiment or default_experiment(self.workspace,
                                                                   self.cell.notebook)
        stem = self.cell.notebook.stem if self.cell.notebook else "cell"
        papermill = source.papermill_parameters(self.cell.history)
        # A run of a grid is told apart by its parameters: "train lr=0.1 epochs=5".
        given = " ".join(f"{k}={source.format_param(v)}" for k, v in papermill.items())
        run_name = self.options.run_name or (f"{stem} {given}"[:120] if given else
                                             f"{stem}-{datetime.now():%Y%m%d-%H%M%S}")
        params = {k: source.format_param(v) for k, v in self._notebook_parameters().items()}
        params.update({k: source.format_param(v) for k, v in self.analysis.params.items()})
        params.update({k: source.format_param(v) for k, v in papermill.items()})
        record = RunRecord(
            record_id=new_record_id(),
            experiment=experiment,
            run_name=run_name,
            tracking_uri=self.workspace.tracking_uri(),
            workspace=str(self.workspace.root),
            status="RUNNING",
            start_time_ms=int(now * 1000),
            notebook_path=str(self.cell.notebook) if self.cell.notebook else None,
            execution_count=self.cell.execution_count,
            params=params,
            papermill_params={k: source.format_param(v) for k, v in papermill.items()},
            tags={**self.options.tags, "mlflow.user": _user()},
            kernel_pid=os.getpid(),
            kernel_started=_PROCESS_STARTED,
            batch_id=self.options.batch_id,
            ship_version=__version__,
        )
        self.spool.ensure()
        self.folder = self.spool.open_record(record)
        self.record = record
        # Inputs are fingerprinted now, as the cell is about to read them.
        for name in self.analysis.inputs:
            value = self.cell.namespace.get(name)
            if value is not None and fingerprint.is_data(value):
                fp = fingerprint.fingerprint(name, value)
                if fp is not None:
                    self._pre_data.append(fp)
        self._steps = StepLog(self.folder / STEPS_FILE)
        _active = self._steps
        self._meter = ResourceMeter()
        return record

    def _notebook_parameters(self) -> dict[str, Any]:
        """Current values of the names the notebook's `parameters` cell assigns."""
        if self.cell.notebook is None:
            return {}
        values = {}
        for name in source.tagged_parameter_names(self.cell.notebook):
            value = self.cell.namespace.get(name)
            if name in self.cell.namespace and source.is_param_value(value):
                values[name] = value
        return values

    # -- after the user's code -----------------------------------------------------
    def finish(self, status: Status, error: BaseException | None = None,
               end_reason: str | None = None) -> RunRecord:
        """Capture what the next cell could change: status, metrics, data, the model.

        Then call `complete()`: git, the captured files and the final spool write run
        in a background thread, so the user's next cell need not wait for them.
        """
        global _active
        assert self.record is not None and self.folder is not None
        assert self._meter is not None and self._steps is not None
        record = self.record
        record.resources = self._meter.stop()
        record.end_time_ms = int(time.time() * 1000)
        _active = None
        self._steps.close()
        record.status = status
        record.end_reason = end_reason
        traceback_text = None
        if error is not None:
            traceback_text = "".join(traceback.format_exception(error))
            lines = traceback_text.strip().splitlines()
            record.error = lines[-1] if lines else repr(error)
        candidates = [n for n in self.analysis.assigned if n not in self.analysis.params]
        try:
            record.metrics, record.skipped_metrics = metrics.collect(
                self.cell.namespace, candidates, self.options.metrics,
                int(self.workspace.setting("tracking", "max_metrics")))
        except Exception as exc:  # noqa: BLE001 - recorded, shown in the summary
            self.warnings.append(str(exc))
        record.data = self._collect_data()
        self._path_values = datafiles.string_values(self.analysis.reads, self.cell.namespace)
        with contextlib.suppress(OSError):  # relative names are the kernel's cwd's
            self._cwd = Path.cwd()
        if status == "FINISHED":
            self._capture_state()
            self._frames = self._sample_frames(record.data)
        if status == "FINISHED" and self.options.model:
            record.model = self._save_model(self.options.model)
        env, packages = environment.capture()
        env.change = _env_memory.diff(
            self.spool.directory / "env" / f"{slug(record.experiment)}.json",
            record.record_id, env.python, packages)
        record.environment = env
        record.cost = run_cost(record.resources, self.workspace.prices())
        if self.warnings:
            record.tags["ship.warnings"] = " | ".join(self.warnings)[:5000]
        self._pending_files = (packages, traceback_text)
        # The outcome reaches the spool now, before git and the files (seconds in a large
        # repository): a kernel killed in between still leaves a FINISHED run with metrics.
        record.completing = True
        self.spool.save_record(record)
        return record

    def complete(self, on_complete: Callable[[RunRecord], None] | None = None) -> None:
        """Finish the record in the background; `on_complete(record)` runs there after."""
        self._done.clear()
        _incomplete.add(self)
        _background.submit(lambda: self._complete(on_complete))

    def _complete(self, on_complete: Callable[[RunRecord], None] | None) -> None:
        """Everything the next cell cannot change: files, git, the final spool write."""
        assert self.record is not None and self.folder is not None
        record, folder = self.record, self.folder
        packages, traceback_text = self._pending_files
        try:
            (folder / "cell.py").write_text(self.cell.source, encoding="utf-8")
            if traceback_text is not None:
                (folder / "traceback.txt").write_text(traceback_text, encoding="utf-8")
            (folder / "requirements.lock").write_text(environment.lock_text(packages),
                                                     encoding="utf-8")
            (folder / "history.py").write_text(_history_text(self.cell.history),
                                              encoding="utf-8")
            if self.cell.notebook is not None and self.cell.notebook.is_file():
                shutil.copyfile(self.cell.notebook, folder / "notebook.ipynb")
            self._profile_frames(self._frames)
            self._frames = {}
            self._digest_data_files()
            start = self.cell.notebook.parent if self.cell.notebook else self.workspace.root
            record.git, diff = gitinfo.capture(start, self.cell.notebook)
            if diff:
                (folder / "git.diff").write_text(diff, encoding="utf-8")
            record.completing = False
            self.spool.save_record(record)
            if on_complete is not None:
                on_complete(record)
        finally:
            _incomplete.discard(self)
            self._done.set()

    def _digest_data_files(self) -> None:
        """Digests of the existing files the code names (datafiles.py), for `ship reproduce`
        to tell a changed data file before running anything."""
        assert self.record is not None
        record = self.record
        try:
            names = [*datafiles.literals(self.cell.python_source), *self._path_values,
                     *record.params.values()]
            for cell in reversed(self.cell.history[-HISTORY_CELLS:]):
                names += datafiles.literals(cell)
            record.data_files = datafiles.capture(names, cwd=self._cwd,
                                                  started_ms=record.start_time_ms,
                                                  exclude=self.workspace.ship_dir)
        except Exception as exc:  # noqa: BLE001 - recorded, the run itself is complete
            record.tags["ship.warnings"] = " | ".join(filter(None, [
                record.tags.get("ship.warnings"), f"data files not digested ({exc})."]))[:5000]

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the background completion has spooled the final record."""
        self._done.wait(timeout)

    def _collect_data(self) -> list[DataFingerprint]:
        seen = {fp.name for fp in self._pre_data}
        found = list(self._pre_data)
        for name in self.analysis.produced:
            if name in seen:
                continue
            value = self.cell.namespace.get(name)
            if value is not None and fingerprint.is_data(value):
                fp = fingerprint.fingerprint(name, value)
                if fp is not None:
                    found.append(fp)
        return found

    def _capture_state(self) -> None:
        """Values of the names serve cells take from the notebook, as they are now."""
        assert self.folder is not None
        from .serve_state import capture, free_names, kernel_serve_source

        try:
            handler = kernel_serve_source(self.cell.notebook, self.cell.history)
            names = free_names(handler) if handler else []
            refused = capture(self.cell.namespace, names, self.folder).refused if names else {}
        except Exception as exc:  # noqa: BLE001 - recorded, shown in the summary
            self.warnings.append(f"the serve cells' state was not captured ({exc}).")
            return
        self.warnings.extend(f"serve state {why}" for why in refused.values())

    def _sample_frames(self, data: list[DataFingerprint]) -> dict[str, Any]:
        """The tracked DataFrames to profile, sampled to at most ``PROFILE_ROWS`` rows: a
        copy now (the next cell may change them in place), profiled in the background."""
        frames: dict[str, Any] = {}
        for fp in data:
            frame = self.cell.namespace.get(fp.name)
            columns = list(getattr(frame, "columns", []))
            if fp.kind != "pandas" or len(fp.shape) != 2 or not columns or \
                    not all(isinstance(c, str) for c in columns):
                continue
            assert frame is not None
            frames[fp.name] = frame.sample(n=PROFILE_ROWS, random_state=0) \
                if len(frame) > PROFILE_ROWS else frame.copy()
        if frames:
            # imported here, in the kernel's thread: an import in the background thread
            # would race the next cell's (a half-initialised numpy there broke a run)
            import kernel_magics.monitor.reference  # noqa: F401
        return frames

    def _profile_frames(self, frames: dict[str, Any]) -> None:
        """Profile each sampled DataFrame (kilobytes): a bundle built from this run's model
        takes its drift reference and warm-up rows from them (bundle/reference.py)."""
        assert self.folder is not None
        if not frames:
            return
        from ..monitor.reference import build_profile, write_reference  # already imported

        target = self.folder / PROFILES_DIR
        for name, frame in frames.items():
            try:
                target.mkdir(exist_ok=True)
                writing = target / f".{name}.parquet.tmp"  # whole, or not there
                write_reference(build_profile(frame, list(frame.columns)), writing)
                writing.replace(target / f"{name}.parquet")
            except Exception as exc:  # noqa: BLE001 - a build then asks for --reference
                assert self.record is not None
                tags = self.record.tags  # saved with the record right after this
                tags["ship.warnings"] = " | ".join(filter(None, [
                    tags.get("ship.warnings"), f"{name} could not be profiled ({exc})."]))[:5000]

    def _save_model(self, variable: str) -> ModelRef | None:
        assert self.folder is not None
        if variable not in self.cell.namespace:
            self.warnings.append(f"--model {variable}: no variable of that name after the cell;"
                                 " the model was not logged.")
            return None
        from .models import save_model

        try:
            return save_model(self.cell.namespace[variable], variable, self.folder / MODEL_DIR)
        except Exception as exc:  # noqa: BLE001 - recorded, shown in the summary
            self.warnings.append(f"--model {variable}: could not be saved ({exc}).")
            return None


def _history_text(history: list[str]) -> str:
    return "".join(f"# In[{i}]:\n{cell}\n\n" for i, cell in enumerate(history, start=1))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
