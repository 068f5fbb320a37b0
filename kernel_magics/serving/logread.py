"""Reading the prediction log with DuckDB (for `ship logs`; not needed to serve).

DuckDB is imported when :func:`read_log` runs, so bundles without it still serve.
The same query works in any DuckDB shell:

    SELECT p.*, f.ground_truth
    FROM read_parquet('LOG/predictions/*/*.parquet') p
    LEFT JOIN read_parquet('LOG/feedback/*/*.parquet') f USING (request_id)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import InputError
from .logfiles import COMPACT_NAME, PART_NAME

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("request_id", "epoch_us(p.time)", "model", "version", "endpoint", "status",
           "latency_ms", "rows", "client_id", "inputs", "raw_inputs", "outputs", "error")


@dataclass(frozen=True)
class LogEntry:
    """One logged request, with the latest ground truth sent for it (if any)."""

    request_id: str
    time: datetime
    model: str
    version: str
    endpoint: str
    status: int
    latency_ms: float
    rows: int
    client_id: str | None
    inputs: dict[str, list[Any]] | None  # feature -> values, one per row
    raw_inputs: str | None  # JSON: a body that did not parse, or model tensors
    outputs: str | None  # JSON
    error: str | None
    ground_truth: str | None


def parse_duration(value: object) -> timedelta | None:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` as a timedelta; None if ``value``
    is not such a duration (or too long to represent)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        return None


def parse_since(value: str | datetime | None, *, now: datetime | None = None
                ) -> datetime | None:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` ago, or an ISO time (UTC if naive)."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    delta = parse_duration(value)
    if delta is not None:
        return (now or datetime.now(UTC)) - delta
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--since {value!r}: use a duration like 15m, 2h, 1d or an ISO "
                         "time like 2026-05-01T12:00.", field="since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def segment_files(root: Path, stream: str, since: datetime | None = None, *,
                  pattern: str = "*.parquet") -> list[str]:
    """Files of one stream of the log (``predictions``, ``feedback``, ``usage``), by date
    partition, skipping whole days before ``since``, and the segments of an hour that
    has been merged into one file (left over by a compaction that stopped half-way)."""
    folder = root / stream
    if not folder.is_dir():
        return []
    files = []
    first_day = None if since is None else since.astimezone(UTC).date().isoformat()
    for partition in sorted(folder.glob("date=*")):
        if first_day is not None and partition.name[len("date="):] < first_day:
            continue  # whole days before --since
        found = sorted(partition.glob(pattern))
        merged = {m.group(1) for m in map(COMPACT_NAME.match, (p.name for p in found)) if m}
        files += [str(p) for p in found if not merged or not _merged(p.name, merged)]
    return files


def _merged(name: str, hours: set[str]) -> bool:
    match = PART_NAME.match(name)
    return match is not None and match.group(1) in hours


def read_log(folder: str | Path, since: str | datetime | None = None, *,
             limit: int | None = None, errors_only: bool = False) -> list[LogEntry]:
    """The logged requests at or after ``since``, oldest first (the last ``limit``)."""
    import duckdb

    text = str(folder)
    root = Path(text[len("file://"):] if text.startswith("file://") else text)
    start = parse_since(since)
    predictions = segment_files(root, "predictions", start)
    if not predictions:
        return []
    feedback = segment_files(root, "feedback")
    conditions = ["TRUE"]
    params: list[Any] = [predictions]
    if start is not None:
        conditions.append("epoch_us(p.time) >= ?")
        params.append(int(start.timestamp() * 1e6))
    if errors_only:
        conditions.append("p.error IS NOT NULL")
    truth = ("(SELECT request_id, arg_max(ground_truth, time) AS ground_truth "
             "FROM read_parquet(?) GROUP BY request_id)") if feedback else \
        "(SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS ground_truth)"
    if feedback:
        params.insert(1, feedback)
    with duckdb.connect() as con:
        present = {row[0] for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [predictions]
        ).fetchall()}
        # segments written without a registered schema have no typed ``inputs``
        cols = ", ".join(c if "(" in c else f"p.{c}" if c in present else f"NULL AS {c}"
                         for c in COLUMNS)
        query = (f"SELECT {cols}, f.ground_truth FROM read_parquet(?, union_by_name=true) p "
                 f"LEFT JOIN {truth} f USING (request_id) WHERE {' AND '.join(conditions)} "
                 "ORDER BY p.time DESC" + (f" LIMIT {int(limit)}" if limit else ""))
        rows = con.execute(query, params).fetchall()
    entries = [LogEntry(row[0], datetime.fromtimestamp(row[1] / 1e6, UTC), *row[2:])
               for row in rows]
    entries.reverse()
    return entries
