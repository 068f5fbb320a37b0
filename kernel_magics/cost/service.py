"""What runs and services cost: measured resources, money estimated from the price table.

    service_cost(workspace, name, since=None)            -> ServiceCost
    run_costs(workspace, notebook=None, run_id=None, ...) -> [RunCost]   newest first
    cost_summary(workspace, notebook=None, since=None)    -> dict        runs + services

A **service**'s figures come from the usage records its serving processes append under
``.ship/services/NAME/log/usage/`` (see ``serving/usage.py``): CPU seconds (user +
system of every worker process, start-up and idle time included), wall seconds,
requests and predictions (rows answered), all measured. CPU seconds per 1,000
predictions is the ratio of two measured figures. Money is always an estimate:

    amount = cpu_s / 3600 x cpu_core_hour + peak_GB x wall_s / 3600 x memory_gb_hour

A **run**'s figures come from tracking (``ship.wall_s``, ``ship.cpu_s``, ``ship.gpu_s``,
``ship.peak_memory_mb`` measured in the kernel; ``ship.cost_estimate`` priced when the
run was recorded).

Every answer lists its figures by kind: ``measured`` (read from the operating system),
``estimated`` (money; or CPU split between versions that shared a process) and ``basis``
says how the money was computed. Shapes are in each class's ``to_json`` docstring.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StorageError, ValidationError
from ..services import service_log, service_names
from ..workspace import PriceTable, Workspace

USAGE_STREAM = "usage"
SERIES_BUCKETS_S = (10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_POINTS = 120
PER = 1000  # predictions per figure

SERVICE_MEASURED = ["requests", "errors", "predictions", "cpu_s", "cpu_user_s", "cpu_system_s",
                    "startup_cpu_s", "process_wall_s", "peak_rss_mb",
                    "cpu_s_per_1k_predictions"]
MONEY = ["amount", "amount_per_1k_predictions"]
RUN_MEASURED = ["wall_s", "cpu_s", "gpu_s", "peak_memory_mb"]


# -- answers -------------------------------------------------------------------------------
@dataclass
class UsagePoint:
    """One bucket of a service's time series (records by the end of their interval)."""

    start: str
    end: str
    requests: int
    predictions: int
    cpu_s: float
    cpu_s_per_1k_predictions: float | None
    amount: float


@dataclass
class VersionCost:
    """One model version of a service."""

    model: str
    version: str
    requests: int
    errors: int
    predictions: int
    cpu_s: float
    process_wall_s: float
    cpu_s_per_1k_predictions: float | None
    amount: float
    amount_per_1k_predictions: float | None
    measured: list[str]
    estimated: list[str]


@dataclass
class ServiceCost:
    """A service's usage and estimated price over a window (all its versions, all workers)."""

    name: str
    since: str | None
    first: str | None  # start of the first interval covered (UTC ISO)
    last: str | None  # end of the last interval covered
    processes: int  # serving processes that wrote records (workers x restarts)
    records: int
    requests: int
    errors: int
    predictions: int
    cpu_s: float
    cpu_user_s: float
    cpu_system_s: float
    startup_cpu_s: float  # part of cpu_s: the processes' first records (imports, load, warm-up)
    process_wall_s: float
    peak_rss_mb: float
    cpu_s_per_1k_predictions: float | None
    amount: float
    amount_per_1k_predictions: float | None
    currency: str
    basis: str
    measured: list[str]
    estimated: list[str]
    versions: list[VersionCost] = field(default_factory=list)
    bucket_s: int = 60
    series: list[UsagePoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form::

            {"name": "digits", "since": "2026-05-01T11:00:00+00:00" | null,
             "first": "...", "last": "...", "processes": 2, "records": 14,
             "requests": 20000, "errors": 0, "predictions": 20000,
             "cpu_s": 9.8, "cpu_user_s": 8.9, "cpu_system_s": 0.9, "startup_cpu_s": 2.1,
             "process_wall_s": 120.0, "peak_rss_mb": 150.3,
             "cpu_s_per_1k_predictions": 0.49,
             "amount": 0.000131, "amount_per_1k_predictions": 6.5e-06, "currency": "USD",
             "basis": "estimate: 9.80 CPU s (measured) x 0.048 USD/core-h + ...",
             "measured": ["requests", ..., "cpu_s_per_1k_predictions"],
             "estimated": ["amount", "amount_per_1k_predictions"],
             "versions": [{"model": "digits", "version": "3", "requests": ..., "errors": ...,
                           "predictions": ..., "cpu_s": ..., "process_wall_s": ...,
                           "cpu_s_per_1k_predictions": ..., "amount": ...,
                           "amount_per_1k_predictions": ..., "measured": [...],
                           "estimated": [...]}],
             "bucket_s": 60,
             "series": [{"start": "...", "end": "...", "requests": ..., "predictions": ...,
                         "cpu_s": ..., "cpu_s_per_1k_predictions": ..., "amount": ...}],
             "notes": ["..."], "log_dir": "/.../.ship/services/digits/log"}

        Per-1k figures are null when there were no predictions. A version's CPU is in
        ``estimated`` when it shared its processes with another version (split by share
        of predictions).
        """
        return dataclasses.asdict(self)


@dataclass
class RunCost:
    """One tracked run: resources measured in the kernel, money estimated."""

    id: str
    run_id: str | None
    record_id: str | None
    name: str
    experiment: str
    notebook: str | None
    status: str
    start_time_ms: int
    end_time_ms: int | None
    written: bool
    wall_s: float | None
    cpu_s: float | None
    gpu_s: float | None
    peak_memory_mb: float | None
    amount: float | None
    currency: str | None
    basis: str | None
    measured: list[str]
    estimated: list[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON form::

            {"id": "<run id, or record id while pending>", "run_id": ..., "record_id": ...,
             "name": "train-20260501-120000", "experiment": "train",
             "notebook": "/.../train.ipynb", "status": "FINISHED",
             "start_time_ms": 1777636800000, "end_time_ms": ..., "written": true,
             "wall_s": 12.3, "cpu_s": 20.1, "gpu_s": 0.0, "peak_memory_mb": 812.5,
             "amount": 0.000268, "currency": "USD",
             "basis": "estimate: 20.10 CPU s x 0.048/core-h + ...",
             "measured": ["wall_s", "cpu_s", "gpu_s", "peak_memory_mb"],
             "estimated": ["amount"]}

        A figure the run lacks (a run tracked before cost capture) is null and in
        neither list.
        """
        return dataclasses.asdict(self)


# -- services --------------------------------------------------------------------------------
def parse_time(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``--since``: ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` ago, or an ISO time (UTC if naive)."""
    from ..serving.errors import RuntimeServingError
    from ..serving.predlog import parse_since

    try:
        return parse_since(value, now=now)
    except RuntimeServingError as exc:
        raise ValidationError(exc.message, field="since") from None


def read_usage(log: str | Path, since: datetime | None = None) -> list[dict[str, Any]]:
    """Usage records (``serving/usage.py``) whose interval ends at or after ``since``,
    oldest first, each with its end as ``_end`` (epoch seconds); ``log``: a folder or URL."""
    from ..serving.predlog import read_usage as read

    return [{**record, "_end": end.timestamp()} for end, record in read(log, since)]


def _number(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def _per_1k(value: float, predictions: int) -> float | None:
    return round(value / predictions * PER, 9) if predictions else None


def _record_amount(record: dict[str, Any], prices: PriceTable) -> float:
    cpu = _number(record, "cpu_user_s") + _number(record, "cpu_system_s")
    wall = _number(record, "interval_s") * (_number(record, "share") or 1.0)
    gb = _number(record, "max_rss_mb") * 2**20 / 1e9
    return cpu / 3600 * prices.cpu_core_hour + gb * wall / 3600 * prices.memory_gb_hour


def _bucket(span_s: float) -> int:
    for size in SERIES_BUCKETS_S:
        if span_s / size <= MAX_POINTS:
            return size
    return SERIES_BUCKETS_S[-1]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _basis(cpu_s: float, prices: PriceTable) -> str:
    return (f"estimate: {cpu_s:.3f} CPU s measured in the serving processes x "
            f"{prices.cpu_core_hour} {prices.currency}/core-h + peak RSS x wall time x "
            f"{prices.memory_gb_hour} {prices.currency}/GB-h (list prices from [cost] in "
            ".ship/ship.toml)")


def service_cost(workspace: Workspace, name: str, *, since: str | None = None,
                 log_dir: str | None = None) -> ServiceCost:
    """CPU seconds per 1,000 predictions (measured) and their price (estimated) of a service.

    ``since``: only records whose interval ends at or after it (``15m``, ``2h``, ``1d``, an
    ISO time). Unknown service: NotFoundError naming the services there are. No usage
    records yet: zeros and a note. See :meth:`ServiceCost.to_json` for the shape.
    ``log_dir``: the prediction log's folder or URL (default: the service's own).
    """
    log_dir = service_log(workspace, name, log_dir)
    start = parse_time(since)
    prices = workspace.prices()
    try:
        records = read_usage(log_dir, start)
    except OSError as exc:
        raise StorageError(f"cannot read the usage records of {log_dir}: {exc}") from None
    notes: list[str] = []

    versions: dict[tuple[str, str], dict[str, Any]] = {}
    processes: dict[tuple[str, int, str], float] = {}
    totals = {"requests": 0, "errors": 0, "predictions": 0, "cpu_user_s": 0.0,
              "cpu_system_s": 0.0, "startup_cpu_s": 0.0, "process_wall_s": 0.0,
              "amount": 0.0}
    peak = 0.0
    begin: float | None = None
    for record in records:
        requests, errors = int(_number(record, "requests")), int(_number(record, "errors"))
        predictions = int(_number(record, "predictions"))
        user, system = _number(record, "cpu_user_s"), _number(record, "cpu_system_s")
        share = _number(record, "share") or 1.0
        wall = _number(record, "interval_s") * share
        amount = _record_amount(record, prices)
        process = (str(record.get("host", "")), int(_number(record, "pid")),
                   str(record.get("started", "")))
        processes[process] = max(processes.get(process, 0.0), _number(record, "max_rss_mb"))
        if record.get("seq") == 1:  # a process's first record: its start-up
            totals["startup_cpu_s"] += user + system
        totals["requests"] += requests
        totals["errors"] += errors
        totals["predictions"] += predictions
        totals["cpu_user_s"] += user
        totals["cpu_system_s"] += system
        totals["process_wall_s"] += wall
        totals["amount"] += amount
        peak = max(peak, _number(record, "max_rss_mb"))
        starts = record["_end"] - _number(record, "interval_s")
        begin = starts if begin is None else min(begin, starts)
        key = (str(record.get("model", "")), str(record.get("version", "")))
        entry = versions.setdefault(key, {"requests": 0, "errors": 0, "predictions": 0,
                                          "cpu_s": 0.0, "process_wall_s": 0.0, "amount": 0.0,
                                          "shared": False})
        entry["requests"] += requests
        entry["errors"] += errors
        entry["predictions"] += predictions
        entry["cpu_s"] += user + system
        entry["process_wall_s"] += wall
        entry["amount"] += amount
        entry["shared"] = entry["shared"] or share < 1.0

    cpu_s = totals["cpu_user_s"] + totals["cpu_system_s"]
    predictions = int(totals["predictions"])
    version_costs = []
    for (model, version), entry in sorted(versions.items()):
        cpu_measured = ["cpu_s", "process_wall_s", "cpu_s_per_1k_predictions"]
        version_costs.append(VersionCost(
            model=model, version=version, requests=entry["requests"], errors=entry["errors"],
            predictions=entry["predictions"], cpu_s=round(entry["cpu_s"], 6),
            process_wall_s=round(entry["process_wall_s"], 3),
            cpu_s_per_1k_predictions=_per_1k(entry["cpu_s"], entry["predictions"]),
            amount=round(entry["amount"], 10),
            amount_per_1k_predictions=_per_1k(entry["amount"], entry["predictions"]),
            measured=["requests", "errors", "predictions"]
            + ([] if entry["shared"] else cpu_measured),
            estimated=(cpu_measured if entry["shared"] else []) + MONEY))

    bucket = 60
    series: list[UsagePoint] = []
    if records:
        span = records[-1]["_end"] - (begin if begin is not None else records[0]["_end"])
        bucket = _bucket(span)
        points: dict[int, list[float]] = {}
        for record in records:
            slot = int(record["_end"] // bucket) * bucket
            point = points.setdefault(slot, [0, 0, 0.0, 0.0])
            point[0] += _number(record, "requests")
            point[1] += _number(record, "predictions")
            point[2] += _number(record, "cpu_user_s") + _number(record, "cpu_system_s")
            point[3] += _record_amount(record, prices)
        series = [UsagePoint(start=_iso(slot), end=_iso(slot + bucket), requests=int(p[0]),
                             predictions=int(p[1]), cpu_s=round(p[2], 6),
                             cpu_s_per_1k_predictions=_per_1k(p[2], int(p[1])),
                             amount=round(p[3], 10))
                  for slot, p in sorted(points.items())]
    else:
        window = f" since {start.isoformat(timespec='seconds')}" if start else ""
        notes.append(f"no usage records{window} in {log_dir}/{USAGE_STREAM}: the service has "
                     "not run (or ran on a runtime without usage accounting); figures are "
                     "zero.")
    if records and not predictions:
        notes.append("no predictions in this window: CPU per 1,000 predictions is undefined.")
    if records and totals["startup_cpu_s"]:
        notes.append("cpu_s includes start-up (imports, model load, warm-up) and idle time: "
                     "what the serving processes consumed, not only inference.")

    return ServiceCost(
        name=name, since=start.isoformat(timespec="seconds") if start else None,
        first=_iso(begin) if begin is not None else None,
        last=_iso(records[-1]["_end"]) if records else None,
        processes=len(processes), records=len(records), requests=int(totals["requests"]),
        errors=int(totals["errors"]), predictions=predictions, cpu_s=round(cpu_s, 6),
        cpu_user_s=round(totals["cpu_user_s"], 6), cpu_system_s=round(totals["cpu_system_s"], 6),
        startup_cpu_s=round(totals["startup_cpu_s"], 6),
        process_wall_s=round(totals["process_wall_s"], 3), peak_rss_mb=round(peak, 3),
        cpu_s_per_1k_predictions=_per_1k(cpu_s, predictions),
        amount=round(totals["amount"], 10),
        amount_per_1k_predictions=_per_1k(totals["amount"], predictions),
        currency=prices.currency, basis=_basis(cpu_s, prices),
        measured=list(SERVICE_MEASURED), estimated=list(MONEY), versions=version_costs,
        bucket_s=bucket, series=series, notes=notes, log_dir=log_dir)


# -- runs ------------------------------------------------------------------------------------
def _notebook_spellings(workspace: Workspace, notebook: str) -> tuple[str, ...]:
    from ..tracking.catalog import notebook_spellings

    path = Path(notebook)
    if path.is_absolute():
        return notebook_spellings(path)
    return notebook_spellings(workspace.root / path, Path.cwd() / path)


def _run_cost(row: Any, prices: PriceTable) -> RunCost:
    """A RunCost from a catalog RunRow (pending or written)."""
    cost = row.cost
    values: dict[str, float | None] = {k: None for k in RUN_MEASURED}
    amount = currency = basis = None
    if cost is not None:
        values = {k: getattr(cost, k) for k in RUN_MEASURED}
        amount, currency, basis = cost.amount, cost.currency, cost.basis
    if amount is None and values["cpu_s"] is not None:
        # recorded without a price: priced now, and said so
        from ..tracking.record import Resources
        from ..tracking.resources import run_cost

        priced = run_cost(Resources(
            wall_s=values["wall_s"] or 0.0, cpu_s=values["cpu_s"] or 0.0,
            gpu_s=values["gpu_s"] or 0.0,
            peak_memory_bytes=int((values["peak_memory_mb"] or 0.0) * 2**20)), prices)
        amount, currency = priced.amount, priced.currency
        basis = priced.basis + " (priced now: the run recorded no price)"
    return RunCost(
        id=row.id, run_id=row.run_id, record_id=row.record_id, name=row.name,
        experiment=row.experiment, notebook=row.notebook, status=row.status,
        start_time_ms=row.start_time_ms, end_time_ms=row.end_time_ms, written=row.written,
        wall_s=values["wall_s"], cpu_s=values["cpu_s"], gpu_s=values["gpu_s"],
        peak_memory_mb=values["peak_memory_mb"], amount=amount,
        currency=currency or (prices.currency if amount is not None else None), basis=basis,
        measured=[k for k in RUN_MEASURED if values[k] is not None],
        estimated=["amount"] if amount is not None else [])


def run_costs(workspace: Workspace, *, notebook: str | None = None, run_id: str | None = None,
              limit: int = 200, since: str | None = None) -> list[RunCost]:
    """Tracked runs' cost, newest first: the one ``run_id`` (MLflow run id or spool record
    id; NotFoundError if unknown), else the runs of ``notebook`` (a path; None: every
    notebook), at most ``limit``, started at or after ``since``. Pending records (not yet
    written to MLflow) count too. See :meth:`RunCost.to_json` for the shape.
    """
    from ..tracking import catalog, detail

    prices = workspace.prices()
    ui_url = workspace.ui_url()
    if run_id is not None:
        located = detail.locate(workspace, run_id)
        row = catalog.pending_row(located, ui_url) if isinstance(located, catalog.PendingRun) \
            else catalog.stored_row(located, ui_url)
        return [_run_cost(row, prices)]
    spellings = _notebook_spellings(workspace, notebook) if notebook else ()
    rows = catalog.list_runs(workspace, spellings, limit=limit).runs
    start = parse_time(since)
    if start is not None:
        floor = start.timestamp() * 1000
        rows = [r for r in rows if r.start_time_ms >= floor]
    return [_run_cost(row, prices) for row in rows]


# -- both --------------------------------------------------------------------------------------
def cost_summary(workspace: Workspace, *, notebook: str | None = None,
                 since: str | None = None, limit: int = 200) -> dict[str, Any]:
    """Runs (of ``notebook``, or all) and every service of the workspace, with totals::

        {"runs": [RunCost.to_json(), ...],            newest first, at most ``limit``
         "services": [ServiceCost.to_json(), ...],    by name
         "totals": {"runs": {"count": 3, "wall_s": ..., "cpu_s": ..., "gpu_s": ...,
                             "amount": ...},
                    "services": {"count": 1, "cpu_s": ..., "predictions": ...,
                                 "cpu_s_per_1k_predictions": ..., "amount": ...},
                    "amount": ...,
                    "measured": ["runs.wall_s", "runs.cpu_s", "runs.gpu_s",
                                 "services.cpu_s", "services.predictions",
                                 "services.cpu_s_per_1k_predictions"],
                    "estimated": ["runs.amount", "services.amount", "amount"]},
         "currency": "USD", "notebook": "..." | null, "since": "..." | null,
         "notes": [...]}

    Amounts in another currency than the price table's (runs priced before it changed)
    are left out of the totals, with a note.
    """
    prices = workspace.prices()
    runs = run_costs(workspace, notebook=notebook, limit=limit, since=since)
    services = [service_cost(workspace, name, since=since) for name in service_names(workspace)]
    notes: list[str] = []
    other = [r for r in runs if r.amount is not None and r.currency not in (None, prices.currency)]
    if other:
        notes.append(f"{len(other)} run(s) priced in another currency are not in the totals.")
    run_amount = sum(r.amount for r in runs
                     if r.amount is not None and r.currency in (None, prices.currency))
    service_cpu = sum(s.cpu_s for s in services)
    service_predictions = sum(s.predictions for s in services)
    service_amount = sum(s.amount for s in services)
    totals = {
        "runs": {"count": len(runs),
                 "wall_s": round(sum(r.wall_s or 0.0 for r in runs), 6),
                 "cpu_s": round(sum(r.cpu_s or 0.0 for r in runs), 6),
                 "gpu_s": round(sum(r.gpu_s or 0.0 for r in runs), 6),
                 "amount": round(run_amount, 10)},
        "services": {"count": len(services), "cpu_s": round(service_cpu, 6),
                     "predictions": service_predictions,
                     "cpu_s_per_1k_predictions": _per_1k(service_cpu, service_predictions),
                     "amount": round(service_amount, 10)},
        "amount": round(run_amount + service_amount, 10),
        "measured": ["runs.wall_s", "runs.cpu_s", "runs.gpu_s", "services.cpu_s",
                     "services.predictions", "services.cpu_s_per_1k_predictions"],
        "estimated": ["runs.amount", "services.amount", "amount"],
    }
    return {"runs": [r.to_json() for r in runs], "services": [s.to_json() for s in services],
            "totals": totals, "currency": prices.currency, "notebook": notebook,
            "since": since, "notes": notes}
