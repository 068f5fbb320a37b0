"""The one reader of prediction logs, wherever they live (format.py is the contract).

``ship logs``, the Services panel's traffic and the demo read requests with
:func:`read_log` (DuckDB); drift streams segments through :meth:`LogLocation.open`
(monitor/scan.py); cost reads usage records with :func:`read_usage`. A local folder is
read by path; any other filesystem is handed to DuckDB through fsspec
(:func:`_duckdb_paths`), so the same query serves ``s3://`` and ``gs://``. DuckDB is
imported only here, when a reader runs: bundles without it still serve. The same query
works in any DuckDB shell on a local log:

    SELECT p.*, f.ground_truth
    FROM read_parquet('LOG/predictions/*/*.parquet', union_by_name=true) p
    LEFT JOIN read_parquet('LOG/feedback/*/*.parquet') f USING (request_id)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from ..errors import InputError
from .format import decode_matrix, decode_review, review_scores
from .storage import LogLocation

if TYPE_CHECKING:
    import duckdb

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("request_id", "epoch_us(p.time)", "model", "version", "endpoint", "status",
           "latency_ms", "rows", "client_id", "inputs", "tensors", "raw_inputs", "outputs",
           "error", "matrix", "matrix_layout", "shadow", "review", "review_layout")


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
    tensors: dict[str, list[Any]] | None  # model input -> values, flattened
    raw_inputs: str | None  # JSON: a body that did not parse
    outputs: str | None  # JSON
    error: str | None
    ground_truth: str | None
    shadow: str | None = None  # a shadow's copy: the version that answered the client
    # review scores, name -> one value per row (format.decode_review); None: not scored
    review: dict[str, list[Any]] | None = None


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


def as_location(log: str | os.PathLike[str] | LogLocation) -> LogLocation:
    """A log location from a path, a URL or a location."""
    return log if isinstance(log, LogLocation) else LogLocation(log)


@contextlib.contextmanager
def _duckdb(location: LogLocation) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
    """A DuckDB connection that reads ``location``'s files, and the prefix that turns a
    file's path into a name DuckDB opens (none for a local folder)."""
    import duckdb

    with duckdb.connect() as con:
        if location.local:
            yield con, ""
            return
        con.register_filesystem(_arrow_fsspec(location))
        try:
            yield con, f"{_PROTOCOL}://"
        finally:
            con.unregister_filesystem(_PROTOCOL)


_PROTOCOL = "shiplog"


def _arrow_fsspec(location: LogLocation) -> Any:
    """The log's pyarrow filesystem as an fsspec one, under its own protocol name."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    class LogFileSystem(ArrowFSWrapper):  # type: ignore[misc]
        protocol = _PROTOCOL

        @classmethod
        def _strip_protocol(cls, path: str) -> str:
            prefix = f"{_PROTOCOL}://"
            return (path[len(prefix):] if path.startswith(prefix) else path).rstrip("/")

    return LogFileSystem(location.fs)


def _truth(feedback: bool) -> str:
    """The subquery of each request's latest ground truth (one file list parameter), or
    an empty one where the log has no feedback yet."""
    if feedback:
        return ("(SELECT request_id, arg_max(ground_truth, time) AS ground_truth "
                "FROM read_parquet(?) GROUP BY request_id)")
    return "(SELECT NULL::VARCHAR AS request_id, NULL::VARCHAR AS ground_truth)"


def read_log(log: str | os.PathLike[str] | LogLocation, since: str | datetime | None = None,
             *, limit: int | None = None, errors_only: bool = False,
             shadows: bool = False, labelled: bool = False,
             request_ids: list[str] | None = None) -> list[LogEntry]:
    """The logged requests at or after ``since``, oldest first (the last ``limit``); with
    ``shadows``, shadow versions' copies too (their ``shadow`` names the answering one);
    with ``labelled``, only answered requests that have ground truth; with
    ``request_ids``, only those requests."""
    location = as_location(log)
    start = parse_since(since)
    predictions = location.files("predictions", start)
    if not predictions:
        return []
    feedback = location.files("feedback")
    if labelled and not feedback:
        return []
    conditions = ["TRUE"]
    params: list[Any] = [predictions]
    if start is not None:
        conditions.append("epoch_us(p.time) >= ?")
        params.append(int(start.timestamp() * 1e6))
    if errors_only:
        conditions.append("p.error IS NOT NULL")
    if request_ids is not None:
        conditions.append("list_contains(?, p.request_id)")
        params.append(list(request_ids))
    if not shadows:
        conditions.append("p.shadow IS NULL")
    if labelled:
        conditions.append("f.ground_truth IS NOT NULL AND p.error IS NULL AND p.status < 400")
    truth = _truth(bool(feedback))
    if feedback:
        params.insert(1, feedback)
    with _duckdb(location) as (con, prefix):
        files = 2 if feedback else 1  # the first parameters are file lists
        params = [[prefix + p for p in given] if i < files else given
                  for i, given in enumerate(params)]
        present = {row[0] for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [params[0]]
        ).fetchall()}
        # segments written without a registered schema have no typed ``inputs``
        cols = ", ".join(c if "(" in c else f"p.{c}" if c in present else f"NULL AS {c}"
                         for c in COLUMNS)
        query = (f"SELECT {cols}, f.ground_truth FROM read_parquet(?, union_by_name=true) p "
                 f"LEFT JOIN {truth} f USING (request_id) WHERE {' AND '.join(conditions)} "
                 "ORDER BY p.time DESC" + (f" LIMIT {int(limit)}" if limit else ""))
        rows = con.execute(query, params).fetchall()
    # all-numeric inputs as the server wrote them: typed here (format.decode_matrix)
    entries = []
    for row in rows:
        values = dict(zip(COLUMNS, row, strict=False))
        matrix, layout = values.pop("matrix"), values.pop("matrix_layout")
        if values["inputs"] is None:
            values["inputs"] = decode_matrix(matrix, layout)
        values["review"] = decode_review(values["review"], values.pop("review_layout"))
        values["time"] = datetime.fromtimestamp(values.pop("epoch_us(p.time)") / 1e6, UTC)
        entries.append(LogEntry(**values, ground_truth=row[len(COLUMNS)]))
    entries.reverse()
    return entries


def read_outcomes(log: str | os.PathLike[str] | LogLocation, since: str | datetime | None = None
                  ) -> list[tuple[float, bool]]:
    """(latency_ms, failed) of each request answered at or after ``since`` (shadows'
    copies left out): what a traffic summary needs, without reading inputs or answers."""
    location = as_location(log)
    start = parse_since(since)
    files = location.files("predictions", start)
    if not files:
        return []
    with _duckdb(location) as (con, prefix):
        rows = con.execute(
            "SELECT latency_ms, status >= 400 OR error IS NOT NULL "
            "FROM read_parquet(?, union_by_name=true) "
            "WHERE epoch_us(time) >= ? AND shadow IS NULL",
            [[prefix + f for f in files],
             0 if start is None else int(start.timestamp() * 1e6)]).fetchall()
    return [(float(latency), bool(failed)) for latency, failed in rows]


@dataclass(frozen=True)
class Answer:
    """One version's answer to a request, without its inputs (what a release compares)."""

    request_id: str
    version: str
    shadow: str | None  # a shadow's copy: the version that answered the client
    endpoint: str
    failed: bool
    latency_ms: float
    outputs: str | None
    ground_truth: str | None


def read_answers(log: str | os.PathLike[str] | LogLocation, since: str | datetime | None,
                 versions: list[str], *, latest: int | None = None) -> list[Answer]:
    """Answers of ``versions`` (and their shadows' copies) at or after ``since``, with
    the latest ground truth of each request, oldest first; with ``latest``, only the
    most recent ``latest`` of each version's answers and of each version's copies."""
    location = as_location(log)
    start = parse_since(since)
    files = location.files("predictions", start)
    if not files or not versions:
        return []
    feedback = location.files("feedback")
    truth = _truth(bool(feedback))
    with _duckdb(location) as (con, prefix):
        params: list[Any] = [[prefix + f for f in files]]
        if feedback:
            params.append([prefix + f for f in feedback])
        params += [0 if start is None else int(start.timestamp() * 1e6), versions]
        rows = con.execute(
            "SELECT p.request_id, p.version, p.shadow, p.endpoint, "
            "p.status >= 400 OR p.error IS NOT NULL, p.latency_ms, p.outputs, f.ground_truth "
            f"FROM read_parquet(?, union_by_name=true) p LEFT JOIN {truth} f "
            "USING (request_id) WHERE epoch_us(p.time) >= ? AND list_contains(?, p.version) "
            + ("" if latest is None else
               "QUALIFY row_number() OVER (PARTITION BY p.version, p.shadow IS NULL "
               f"ORDER BY p.time DESC) <= {int(latest)} ")
            + "ORDER BY p.time", params).fetchall()
    return [Answer(str(r[0]), str(r[1]), r[2], str(r[3]), bool(r[4]), float(r[5]), r[6],
                   r[7]) for r in rows]


def read_review_scores(log: str | os.PathLike[str] | LogLocation,
                       since: str | datetime | None) -> Any:
    """One row per scored input row of the answers at or after ``since`` (shadows'
    copies and errors left out), oldest first, as a pandas DataFrame: request_id, time
    (UTC), version, row, confidence, margin, entropy, ood, ood_feature, ground_truth
    (the request's latest, JSON). No request's inputs are read (the review queue reads
    those for the rows it routes only); the score blocks are decoded with numpy, one
    layout at a time."""
    import pandas as pd

    columns = ["request_id", "time", "version", "row", "confidence", "margin", "entropy",
               "ood", "ood_feature", "ground_truth"]
    location = as_location(log)
    start = parse_since(since)
    files = location.files("predictions", start)
    empty = pd.DataFrame(columns=columns)
    if not files:
        return empty
    feedback = location.files("feedback")
    truth = _truth(bool(feedback))
    with _duckdb(location) as (con, prefix):
        params: list[Any] = [[prefix + f for f in files]]
        present = {row[0] for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", params).fetchall()}
        if "review" not in present:  # a log written before review scores
            return empty
        if feedback:
            params.append([prefix + f for f in feedback])
        params.append(0 if start is None else int(start.timestamp() * 1e6))
        table = con.sql(
            "SELECT p.request_id, epoch_us(p.time) AS time, p.version, p.review, "
            "p.review_layout, f.ground_truth "
            f"FROM read_parquet(?, union_by_name=true) p LEFT JOIN {truth} f "
            "USING (request_id) WHERE p.review IS NOT NULL AND p.shadow IS NULL "
            "AND p.status < 400 AND p.error IS NULL AND epoch_us(p.time) >= ? "
            "ORDER BY p.time", params=params).to_arrow_table()
    parts = []
    layouts = table.column("review_layout").to_numpy(zero_copy_only=False)
    for layout in dict.fromkeys(layouts.tolist()):
        picked = table.filter(pa.array(layouts == layout))
        blobs = picked.column("review").combine_chunks()
        doc = json.loads(layout)
        width = (len(doc["scores"]) + doc["classes"]) * 4
        offsets = np.frombuffer(blobs.buffers()[1], np.int32)[
            blobs.offset:blobs.offset + len(blobs) + 1]
        data = np.frombuffer(blobs.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
        block = data.view(np.float32).reshape(-1, width // 4)
        counts = np.diff(offsets) // width
        owner = np.repeat(np.arange(len(blobs)), counts)  # each row's request
        frame = pd.DataFrame(review_scores(block, doc))
        for name in ("request_id", "time", "version", "ground_truth"):
            frame[name] = picked.column(name).to_numpy(zero_copy_only=False)[owner]
        frame["row"] = np.arange(len(owner)) - np.repeat((offsets[:-1] - offsets[0]) // width,
                                                         counts)
        parts.append(frame)
    if not parts:
        return empty
    frame = pd.concat(parts, ignore_index=True).sort_values(["time", "request_id", "row"],
                                                            kind="stable")
    frame["time"] = pd.to_datetime(frame["time"], unit="us", utc=True)
    return frame[columns].reset_index(drop=True)


def read_timeline(log: str | os.PathLike[str] | LogLocation, since: datetime,
                  bucket_s: int) -> list[tuple[datetime, str, int, float, float, int]]:
    """Per ``bucket_s`` seconds and version since ``since``, answered requests only:
    (bucket start, version, requests, p50 ms, p99 ms, errors), oldest first."""
    location = as_location(log)
    files = location.files("predictions", since)
    if not files:
        return []
    with _duckdb(location) as (con, prefix):
        rows = con.execute(
            "SELECT epoch_us(time) // ? AS bucket, version, count(*), "
            "quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.99), "
            "count(*) FILTER (WHERE status >= 400 OR error IS NOT NULL) "
            "FROM read_parquet(?, union_by_name=true) "
            "WHERE epoch_us(time) >= ? AND shadow IS NULL GROUP BY ALL ORDER BY ALL",
            [bucket_s * 1_000_000, [prefix + f for f in files],
             int(since.timestamp() * 1e6)]).fetchall()
    return [(datetime.fromtimestamp(b * bucket_s, UTC), str(v), int(n), float(p50),
             float(p99), int(e)) for b, v, n, p50, p99, e in rows]


def read_feedback(log: str | os.PathLike[str] | LogLocation) -> dict[str, str]:
    """The latest ground truth (JSON text) sent for each request id."""
    location = as_location(log)
    files = location.files("feedback")
    if not files:
        return {}
    with _duckdb(location) as (con, prefix):
        rows = con.execute(
            "SELECT request_id, arg_max(ground_truth, time) FROM read_parquet(?) "
            "WHERE request_id IS NOT NULL AND ground_truth IS NOT NULL GROUP BY request_id",
            [[prefix + f for f in files]]).fetchall()
    return dict(rows)


def read_usage(log: str | os.PathLike[str] | LogLocation, since: datetime | None = None
               ) -> list[tuple[datetime, dict[str, Any]]]:
    """Usage records (serving/usage.py) whose interval ends at or after ``since``, with
    that end, oldest first. A torn last line (a process killed mid-write) is skipped."""
    location = as_location(log)
    records: list[tuple[datetime, dict[str, Any]]] = []
    for path in location.files("usage", since, suffix=".jsonl"):
        try:
            with location.fs.open_input_stream(path) as stream:
                data = stream.read()
        except FileNotFoundError:  # compacted or rotated away meanwhile
            continue
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
                end = datetime.fromisoformat(record["time"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if isinstance(record, dict) and (since is None or end >= since):
                records.append((end, record))
    records.sort(key=lambda r: r[0])
    return records


def busiest_version(log: str | os.PathLike[str] | LogLocation, start: datetime,
                    stop: datetime) -> str | None:
    """The version that answered the most requests in [start, stop) (None: none did;
    shadows' copies answer nothing)."""
    location = as_location(log)
    files = location.files("predictions", start)
    if not files:
        return None
    with _duckdb(location) as (con, prefix):
        row = con.execute(
            "SELECT version, count(*) AS n FROM read_parquet(?, union_by_name=true) "
            "WHERE epoch_us(time) >= ? AND epoch_us(time) < ? AND version IS NOT NULL "
            "AND shadow IS NULL "
            "GROUP BY version ORDER BY n DESC, version DESC LIMIT 1",
            [[prefix + f for f in files], int(start.timestamp() * 1e6),
             int(stop.timestamp() * 1e6)]).fetchone()
    return None if row is None else str(row[0])
