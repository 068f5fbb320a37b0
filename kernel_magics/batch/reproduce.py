"""`ship reproduce RUN`: name what differs from a run's record, re-run it, compare metrics.

    reproduce(workspace, "RUN")
    ├── recorded.load_run           the run's tags, metrics and artifacts
    ├── precheck.differences        seconds, nothing runs: commit, diff, packages, data
    │                               files, Python, kernel, parameters
    ├── freshenv.create             a throwaway venv over this environment, holding the
    │                               lock's version of every package that differs
    ├── execute.py (papermill)      the notebook with the run's parameters, in a kernel of
    │                               that venv; runner.complete_runs writes its runs
    └── compare_metrics             every metric of the run, within a tolerance

The re-run is an MLflow run like any other, tagged ``ship.reproduces=<RUN>``.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..tracking.detail import read_artifact
from ..tracking.environment import installed_packages
from ..tracking.mlflow_store import reader_for
from ..tracking.stored import StoredRun
from ..workspace import Workspace
from . import freshenv
from .precheck import Difference, differences, rerun_parameters
from .recorded import LOCK_PATH, RecordedRun, load_run, notebook_now
from .runner import NotebookRun, complete_runs, execute_run

# Metrics match when |a - b| <= max(REL_TOL * max(|a|, |b|), ABS_TOL) (math.isclose):
# a re-run with the same seeds on the same machine gives the same bits; another BLAS or
# CPU can move the last few digits.
REL_TOL = 1e-6
ABS_TOL = 1e-12
TAG = "ship.reproduces"


@dataclass
class MetricResult:
    """One metric of the run, and the re-run's value of it."""

    name: str
    original: float | None
    reproduced: float | None
    matched: bool


@dataclass
class RerunEnvironment:
    """Where the re-run ran: the fresh venv and what it installed from the lock."""

    python: str
    installed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_in_lock: list[str] = field(default_factory=list)
    fresh: bool = True
    base: str = ""
    kept: str | None = None


@dataclass
class Rerun:
    """The notebook run again: its MLflow run, output notebook and how it went."""

    run_id: str | None
    output: str
    seconds: float
    environment: RerunEnvironment
    parameters: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    error: str | None = None
    new_metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ReproduceReport:
    """``ship reproduce --json``."""

    run: str
    run_name: str
    notebook: str | None
    differences: list[Difference]
    notes: list[str]
    check_seconds: float
    rerun: Rerun | None = None
    metrics: list[MetricResult] = field(default_factory=list)
    # True only when the notebook ran again and every metric of the run matched.
    reproduced: bool = False
    tolerance: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_metrics(original: dict[str, float | None], reproduced: dict[str, float | None],
                    rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> list[MetricResult]:
    """Each original metric against the re-run's; two missing or non-finite values match."""
    results = []
    for name in sorted(original):
        a, b = original[name], reproduced.get(name)
        finite = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
        if finite:
            assert a is not None and b is not None
            matched = math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
        else:
            matched = name in reproduced and a is None and b is None
        results.append(MetricResult(name=name, original=a, reproduced=b, matched=matched))
    return results


def reproduce(workspace: Workspace, ref: str, *, check_only: bool = False,
              rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL, keep_env: bool = False,
              log: Callable[[str], None] = lambda _: None,
              show_cells: bool = False) -> ReproduceReport:
    """Check what differs from the run's record; unless ``check_only``, re-run and compare."""
    if rel_tol < 0 or abs_tol < 0:
        raise ValidationError("tolerances must be zero or more.", field="tolerance")
    start = time.perf_counter()
    run = load_run(workspace, ref)
    notebook = notebook_now(workspace, run)
    found, notes = differences(workspace, run, notebook)
    report = ReproduceReport(run=run.id, run_name=run.name,
                             notebook=str(notebook) if notebook else None,
                             differences=found, notes=notes,
                             check_seconds=round(time.perf_counter() - start, 3),
                             tolerance={"relative": rel_tol, "absolute": abs_tol})
    if notebook is None:
        if check_only:
            notes.append("the run was not made in a notebook: nothing could be re-run.")
            return report
        raise ValidationError(
            f"run {ref!r} was tracked outside a notebook (a plain IPython session or a "
            "script): there is no notebook to re-execute.", field="run",
            hint="`ship reproduce --check-only` still lists what differs from its record.")
    if check_only:
        return report
    if not notebook.is_file():
        raise NotFoundError("notebook", str(notebook), hint="The run's notebook is gone from "
                            "there; restore it (`git checkout`) and run this again.")
    log(f"{len(found)} difference(s) from the record; building the environment")
    report.rerun = _rerun(workspace, run, notebook, keep_env=keep_env, log=log,
                          show_cells=show_cells)
    _compare(workspace, run, report, rel_tol, abs_tol)
    return report


def _rerun(workspace: Workspace, run: RecordedRun, notebook: Path, *, keep_env: bool,
           log: Callable[[str], None], show_cells: bool) -> Rerun:
    lock = freshenv.parse_lock(run.lock)[1] if run.lock is not None else None
    env = freshenv.create(lock, installed_packages(), log=log)
    parameters = rerun_parameters(run, notebook)
    output = workspace.ship_dir / "reproduce" / \
        f"{notebook.stem}-{datetime.now():%Y%m%d-%H%M%S}-{run.id[:8]}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    batch_id = f"reproduce-{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    job = NotebookRun(input=str(notebook), output=str(output), parameters=parameters,
                      batch_id=batch_id)
    environment = RerunEnvironment(python=_python_of(env.python), installed=env.installed,
                                   failed=env.failed, not_in_lock=env.not_in_lock,
                                   fresh=lock is not None, base=env.base,
                                   kept=str(env.root) if keep_env else None)
    try:
        log(f"running {notebook.name} in the fresh environment")
        # `ship run`'s worker, with the fresh environment's kernelspec and PATH
        execute_run(job, workspace, env.kernel, show_cells, env.environ(os.environ))
    finally:
        if not keep_env:
            freshenv.remove(env)
    unwritten = complete_runs(workspace, [job])
    rerun = Rerun(run_id=None, output=str(output), seconds=job.seconds,
                  environment=environment, parameters=parameters, error=job.error)
    if unwritten:
        rerun.error = "; ".join(f"not written to MLflow: {why}" for why in unwritten.values())
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    for written in job.runs:
        client.set_tag(written.run_id, TAG, run.id)
    match = _matching_run(workspace, run, [w.run_id for w in job.runs])
    if match is not None:
        rerun.run_id, rerun.status = match.run_id, match.status
    elif rerun.error is None:
        rerun.error = ("the re-run made no tracked run: the notebook no longer has the "
                       "`%%ship track` cell that made the original")
    return rerun


def _python_of(python: Path) -> str:
    try:
        out = subprocess.run([str(python), "-c", "import platform; "
                              "print(platform.python_version())"],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return out.strip() or "unknown"


def _matching_run(workspace: Workspace, run: RecordedRun,
                  run_ids: list[str]) -> StoredRun | None:
    """The re-run's run of the cell that made the original: same cell source, else the
    one sharing most metric names."""
    reader = reader_for(workspace.tracking_uri())
    stored = [s for s in (reader.get(r) for r in run_ids) if s is not None]
    if not stored:
        return None
    if run.cell is not None:
        for candidate in stored:
            cell = read_artifact(workspace, candidate, "code/cell.py")
            if cell is not None and cell.decode("utf-8", "replace").strip() == run.cell.strip():
                return candidate
    return max(stored, key=lambda s: len(set(s.metrics) & set(run.metrics)))


def _compare(workspace: Workspace, run: RecordedRun, report: ReproduceReport,
             rel_tol: float, abs_tol: float) -> None:
    rerun = report.rerun
    assert rerun is not None
    if rerun.run_id is None:
        report.metrics = compare_metrics(run.metrics, {}, rel_tol, abs_tol)
        return
    new = reader_for(workspace.tracking_uri()).get(rerun.run_id)
    assert new is not None
    metrics = {k: v for k, v in new.metrics.items() if not k.startswith("ship.")}
    report.metrics = compare_metrics(run.metrics, metrics, rel_tol, abs_tol)
    rerun.new_metrics = {k: v for k, v in metrics.items() if k not in run.metrics}
    data_now = {d.name: d.digest for d in new.datasets}
    for name in sorted(set(run.data) | set(data_now)):
        if run.data.get(name) != data_now.get(name):
            report.differences.append(Difference(
                "data", name, run.data.get(name), data_now.get(name),
                "in-memory fingerprint: the re-run's cell read other data", stage="rerun"))
    report.differences += _lock_misses(workspace, run, new)
    report.reproduced = (rerun.error is None and rerun.status == "FINISHED"
                         and all(m.matched for m in report.metrics))


def _lock_misses(workspace: Workspace, run: RecordedRun, new: StoredRun) -> list[Difference]:
    """Packages of the run's lock whose version the re-run's kernel still did not have
    (local installs are code, compared through git)."""
    raw = read_artifact(workspace, new, LOCK_PATH)
    if run.lock is None or raw is None:
        return []
    locked = freshenv.parse_lock(run.lock)[1]
    used = freshenv.parse_lock(raw.decode("utf-8", "replace"))[1]
    skip = freshenv.TOOLING | freshenv.local_distributions()
    return [Difference("package", name, version, used.get(name),
                       "the re-run's kernel had another version", stage="rerun")
            for name, version in sorted(locked.items())
            if used.get(name) != version and name not in skip]
