"""`ship run`: notebooks in batch through papermill, with every tracked run completed.

For each parameter set (one, or each point of a grid) a worker process runs the
notebook with papermill (see execute.py): started from a thread here (engine "local"),
or from a Ray task (engine "ray", ray_engine.py). Afterwards the spool is drained into
MLflow, and each run made by the notebook gets the executed notebook as an
artifact and its summary in the output notebook updated from "pending" to
"written" with its run id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import nbformat

from ..errors import NotFoundError, ValidationError
from ..tracking import daemon
from ..tracking.record import WrittenRun
from ..tracking.spool import Spool
from ..tracking.summary import summary_bundle
from ..workspace import SHIP_DIR, Workspace, find_workspace, init_workspace
from . import ray_engine

# "ray" when Ray is installed (the [ray] extra)
ENGINES = ("local", "ray") if ray_engine.available() else ("local",)


@dataclass
class NotebookRun:
    """One execution of a notebook with one parameter set."""

    input: str
    output: str
    parameters: dict[str, Any]
    batch_id: str
    exit_code: int = -1
    error: str | None = None
    seconds: float = 0.0
    runs: list[WrittenRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class BatchResult:
    """Every notebook run of one `ship run`, and records that could not be written yet."""

    runs: list[NotebookRun]
    unwritten: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs) and not self.unwritten


def _output_path(workspace: Workspace, notebook: Path, index: int, total: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-{index + 1}" if total > 1 else ""
    return workspace.ship_dir / "batch" / f"{notebook.stem}-{stamp}{suffix}.ipynb"


def execute_run(run: NotebookRun, workspace: Workspace, kernel: str | None, progress: bool,
             env: dict[str, str] | None = None) -> None:
    """Run the notebook once in a worker process (``env``: over this process's own)."""
    env = {**os.environ, **(env or {}), "SHIP_NOTEBOOK": run.input,
           "SHIP_BATCH_ID": run.batch_id, "SHIP_OUTPUT_NOTEBOOK": run.output}
    result_file = Path(run.output).with_suffix(".result.json")
    result_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "kernel_magics.batch.execute", run.input, run.output,
           "--parameters", json.dumps(run.parameters, default=list), "--result", str(result_file)]
    if kernel:
        cmd += ["--kernel", kernel]
    if not progress:
        cmd.append("--no-progress")
    start = time.perf_counter()
    # stderr passes through when it shows papermill's per-cell progress bar.
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                          stderr=None if progress else subprocess.DEVNULL, check=False,
                          cwd=workspace.root)
    run.seconds = round(time.perf_counter() - start, 3)
    run.exit_code = proc.returncode
    if proc.returncode != 0:
        try:
            run.error = json.loads(result_file.read_text(encoding="utf-8"))["error"]
        except (OSError, ValueError, KeyError):
            run.error = f"the notebook runner exited with status {proc.returncode}"
    result_file.unlink(missing_ok=True)


def _execute_task(run: NotebookRun, *, workspace: Workspace, kernel: str | None,
                  env: dict[str, str]) -> NotebookRun:
    """:func:`execute_run` in a Ray task: the run, with its outcome, goes back to `ship run`."""
    execute_run(run, workspace, kernel, False, env)
    return run


def run_notebooks(notebook: Path, parameter_sets: list[dict[str, Any]], *,
                  output: Path | None = None, parallel: int | None = None,
                  engine: str = "local", address: str | None = None,
                  kernel: str | None = None, progress: bool = True,
                  on_done: Callable[[NotebookRun], None] | None = None) -> BatchResult:
    """Run `notebook` once per parameter set, then write and complete its MLflow runs.

    ``parallel``: notebooks at once (default: 1 locally; on Ray, as many as it has CPUs
    for). ``address``: the Ray cluster to join with engine "ray" (default: a local Ray
    started for the batch)."""
    if engine == "ray" and engine not in ENGINES:
        ray_engine.require()  # says what to install
    if engine not in ENGINES:
        raise ValidationError(f"--engine {engine!r} is not available; choose from "
                              f"{', '.join(ENGINES)}.", field="engine")
    if address is not None and engine != "ray":
        raise ValidationError("--address names a Ray cluster: add --engine ray.",
                              field="address")
    if parallel is not None and parallel < 1:
        raise ValidationError("--parallel must be at least 1.", field="parallel")
    notebook = notebook.resolve()
    if not notebook.is_file():
        raise NotFoundError("notebook", str(notebook), hint="Check the path.")
    if notebook.suffix != ".ipynb":
        raise ValidationError(f"{notebook.name} is not a notebook (.ipynb).", field="notebook")
    if output is not None and len(parameter_sets) > 1:
        raise ValidationError("--output names one file but the grid has "
                              f"{len(parameter_sets)} points; leave --output out.",
                              field="output")
    workspace = find_workspace(notebook.parent)
    if not (workspace.root / SHIP_DIR).is_dir():
        workspace = init_workspace(workspace.root)
    batch_id = f"{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    runs = []
    for index, params in enumerate(parameter_sets):
        out = output or _output_path(workspace, notebook, index, len(parameter_sets))
        out.parent.mkdir(parents=True, exist_ok=True)
        runs.append(NotebookRun(input=str(notebook), output=str(out.resolve()),
                                parameters=params, batch_id=f"{batch_id}-{index + 1}"))
    if engine == "ray":
        _run_on_ray(runs, workspace, kernel, address, parallel, on_done)
    else:
        _run_here(runs, workspace, kernel, parallel or 1, progress, on_done)
    unwritten = complete_runs(workspace, runs)
    return BatchResult(runs=runs, unwritten=unwritten)


def _run_here(runs: list[NotebookRun], workspace: Workspace, kernel: str | None,
              parallel: int, progress: bool,
              on_done: Callable[[NotebookRun], None] | None) -> None:
    show_cells = progress and parallel == 1

    def work(run: NotebookRun) -> NotebookRun:
        execute_run(run, workspace, kernel, show_cells)
        if on_done is not None:
            on_done(run)
        return run

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(work, runs))


def _run_on_ray(runs: list[NotebookRun], workspace: Workspace, kernel: str | None,
                address: str | None, parallel: int | None,
                on_done: Callable[[NotebookRun], None] | None) -> None:
    def finished(index: int, result: NotebookRun | BaseException) -> None:
        run = runs[index]
        if isinstance(result, BaseException):
            run.exit_code = -1
            run.error = f"the Ray task failed: {type(result).__name__}: {result}"
        else:
            run.exit_code, run.error, run.seconds = result.exit_code, result.error, \
                result.seconds
        if on_done is not None:
            on_done(run)

    work = partial(_execute_task, workspace=workspace, kernel=kernel,
                   env=ray_engine.forwarded_environment())
    ray_engine.map_on_ray(work, runs, on_done=finished, address=address, parallel=parallel)


def complete_runs(workspace: Workspace, runs: list[NotebookRun]) -> dict[str, str]:
    """Write pending records, attach executed notebooks, finalise summaries in outputs."""
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    with daemon.exclusive(workspace.spool_dir):
        result = daemon.drain(spool, force=True)
    by_batch: dict[str, list[WrittenRun]] = {}
    for written in spool.all_written():
        if written.batch_id:
            by_batch.setdefault(written.batch_id, []).append(written)
    for run in runs:
        run.runs = by_batch.get(run.batch_id, [])
        if run.runs and Path(run.output).is_file():
            _finalise_summaries(Path(run.output), spool, run.runs)
            _attach_notebook(Path(run.output), run.runs)
    return result.failed


def _finalise_summaries(output: Path, spool: Spool, written: list[WrittenRun]) -> None:
    by_record = {w.record_id: w for w in written}
    nb = nbformat.read(output, as_version=4)
    changed = False
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record_id = out.get("metadata", {}).get("ship", {}).get("record_id")
            if record_id in by_record:
                record = spool.written_record(record_id)
                if record is None:
                    continue
                out["data"] = summary_bundle(record, by_record[record_id])
                changed = True
    if changed:
        nbformat.write(nb, output)


def _attach_notebook(output: Path, written: list[WrittenRun]) -> None:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "executed.ipynb"
        copy.write_bytes(output.read_bytes())
        for run in written:
            MlflowClient(tracking_uri=run.tracking_uri).log_artifact(run.run_id, str(copy),
                                                                     "code")

