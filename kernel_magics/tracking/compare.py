"""Runs side by side: params, metrics, cost, environment, data and code differences.

``compare_runs`` is pure (runs and their captured files in, a comparison out);
``compare`` reads what it needs from the spool and MLflow. Every section keeps one
value per run in the order the runs were given, so a front end draws columns.

    params / metrics / cost   one row per key: the values and whether they differ
    environment               Python, platform, and the packages whose versions differ,
                              from each run's environment/requirements.lock
    data                      one row per dataset name: digest and shape per run
    code                      each run's cell, its unified diff against the first run,
                              and which of its lines differ (for highlighting)
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..workspace import Workspace
from .catalog import DataInput
from .detail import RunDetail, locate, read_artifact, run_detail

MAX_RUNS = 12
COST_FIELDS = ("wall_s", "cpu_s", "gpu_s", "peak_memory_mb", "amount")


@dataclass
class ComparedRun:
    """One run's side of a comparison: its detail and its lock file, if captured."""

    detail: RunDetail
    lock: str | None = None


@dataclass
class ValueRow:
    key: str
    values: list[Any]
    differs: bool


@dataclass
class PackageRow:
    """A package whose version is not the same in every run (None: not installed)."""

    name: str
    versions: list[str | None]


@dataclass
class EnvironmentComparison:
    python: ValueRow
    platform: ValueRow
    packages: list[PackageRow]
    # Packages at the same version in every run that has a lock file.
    same_count: int
    # Whether each run's lock file could be read; a run without one is left out of packages.
    locked: list[bool]


@dataclass
class DataRow:
    name: str
    values: list[DataInput | None]
    differs: bool


@dataclass
class CodeComparison:
    sources: list[str | None]
    # Unified diff of each run's cell against the first run's (None for the first).
    diffs: list[str | None]
    # 1-based numbers of each run's lines that differ from the other side.
    changed_lines: list[list[int]]
    identical: bool


@dataclass
class RunHeader:
    id: str
    name: str
    experiment: str
    status: str
    start_time_ms: int
    written: bool


@dataclass
class RunComparison:
    """``GET /ship/api/compare``."""

    runs: list[RunHeader]
    params: list[ValueRow]
    metrics: list[ValueRow]
    cost: list[ValueRow]
    environment: EnvironmentComparison
    data: list[DataRow]
    code: CodeComparison
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_lock(text: str) -> dict[str, str]:
    """``name==version`` lines of a lock file as {name: version}; comments skipped."""
    packages: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name:
            packages[name.strip().lower().replace("_", "-")] = version.strip()
    return packages


def _rows(per_run: Sequence[dict[str, Any]]) -> list[ValueRow]:
    keys = sorted({k for values in per_run for k in values})
    rows = []
    for key in keys:
        values = [values.get(key) for values in per_run]
        rows.append(ValueRow(key=key, values=values, differs=len({repr(v) for v in values}) > 1))
    return rows


def _changed_lines(a: list[str], b: list[str]) -> tuple[list[int], list[int]]:
    """Line numbers (1-based) in ``a`` and in ``b`` that are not common to both."""
    in_a: list[int] = []
    in_b: list[int] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            in_a += range(i1 + 1, i2 + 1)
            in_b += range(j1 + 1, j2 + 1)
    return in_a, in_b


def _code(runs: Sequence[ComparedRun]) -> CodeComparison:
    sources = [run.detail.cell_source for run in runs]
    base = (sources[0] or "").splitlines()
    base_changed: set[int] = set()
    diffs: list[str | None] = [None]
    changed: list[list[int]] = [[]]
    for run, source in zip(runs[1:], sources[1:], strict=True):
        lines = (source or "").splitlines()
        diff = difflib.unified_diff(base, lines, fromfile=f"{runs[0].detail.name}/cell.py",
                                    tofile=f"{run.detail.name}/cell.py", lineterm="")
        diffs.append("\n".join(diff) or None)
        in_base, in_other = _changed_lines(base, lines)
        base_changed.update(in_base)
        changed.append(in_other)
    changed[0] = sorted(base_changed)
    return CodeComparison(sources=sources, diffs=diffs, changed_lines=changed,
                          identical=len(set(sources)) == 1)


def _environment(runs: Sequence[ComparedRun]) -> EnvironmentComparison:
    envs = [run.detail.environment for run in runs]
    python = _rows([{"python": e.python if e else None} for e in envs])[0]
    platform = _rows([{"platform": e.platform if e else None} for e in envs])[0]
    locks = [parse_lock(run.lock) if run.lock is not None else None for run in runs]
    present = [lock for lock in locks if lock is not None]
    names = sorted({name for lock in present for name in lock})
    packages = []
    same = 0
    for name in names:
        versions = [lock.get(name) if lock is not None else None for lock in locks]
        if len({lock.get(name) for lock in present}) > 1:
            packages.append(PackageRow(name=name, versions=versions))
        else:
            same += 1
    return EnvironmentComparison(python=python, platform=platform, packages=packages,
                                 same_count=same, locked=[lock is not None for lock in locks])


def _data(runs: Sequence[ComparedRun]) -> list[DataRow]:
    per_run = [{d.name: d for d in run.detail.data} for run in runs]
    names = sorted({name for data in per_run for name in data})
    rows = []
    for name in names:
        values = [data.get(name) for data in per_run]
        fingerprints = {(v.digest, tuple(v.shape or ())) if v else None for v in values}
        rows.append(DataRow(name=name, values=values, differs=len(fingerprints) > 1))
    return rows


def compare_runs(runs: Sequence[ComparedRun]) -> RunComparison:
    """The differences between two or more runs, one column per run."""
    if len(runs) < 2:
        raise ValidationError("compare needs at least two runs.", field="ids")
    details = [run.detail for run in runs]
    notes = []
    if any(not d.written for d in details):
        notes.append("Some runs are still pending: their values are as captured in the kernel.")
    cost = [{f: getattr(d.cost, f) for f in COST_FIELDS} if d.cost else {} for d in details]
    return RunComparison(
        runs=[RunHeader(id=d.id, name=d.name, experiment=d.experiment, status=d.status,
                        start_time_ms=d.start_time_ms, written=d.written) for d in details],
        params=_rows([d.params for d in details]),
        metrics=_rows([d.metrics for d in details]),
        cost=_rows(cost),
        environment=_environment(runs),
        data=_data(runs),
        code=_code(runs),
        notes=notes,
    )


def parse_ids(raw: str) -> list[str]:
    """The ``ids`` query argument: comma-separated, two to MAX_RUNS distinct ids."""
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) < 2:
        raise ValidationError("ids needs at least two run ids, comma-separated: ?ids=a,b",
                              field="ids")
    if len(ids) > MAX_RUNS:
        raise ValidationError(f"compare at most {MAX_RUNS} runs at once, got {len(ids)}.",
                              field="ids")
    if len(set(ids)) != len(ids):
        raise ValidationError("ids lists the same run twice.", field="ids")
    return ids


def compare(workspace: Workspace, ids: Sequence[str]) -> RunComparison:
    """Read the runs (spool or MLflow) and compare them."""
    compared = []
    for run_id in ids:
        run = locate(workspace, run_id)
        lock = read_artifact(workspace, run, "environment/requirements.lock")
        compared.append(ComparedRun(detail=run_detail(workspace, run),
                                    lock=lock.decode("utf-8", errors="replace") if lock else None))
    return compare_runs(compared)
