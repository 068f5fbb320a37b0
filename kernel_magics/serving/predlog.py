"""The prediction log: every request, appended off the request path as Parquet segments.

    LOG/predictions/date=YYYY-MM-DD/part-<utc time>-<pid>-<seq>.parquet   one per flush
    LOG/feedback/date=YYYY-MM-DD/part-<utc time>-<pid>-<seq>.parquet      ground truth

A request appends one tuple to an in-memory deque (no lock, no I/O, no serialization).
Every ``compact_interval`` (100 ms) what accumulated becomes Arrow tables, which lets go
of the requests' objects early: holding a second of requests (inputs, outputs, ids)
alive costs the event loop more than building columns, because every request then
allocates fresh, cold memory instead of reusing what the previous one freed. Every
``flush_interval`` seconds (default 1 s) the tables built since the last write become one
new segment (written under a hidden temporary name, then renamed, so readers never see
half a file). Shutdown (uvicorn's lifespan on SIGTERM/SIGINT) flushes what is left.
After ``kill -9`` what was not yet written is lost: at most the last flush interval (plus
the write in progress).

Where that work runs (:meth:`PredictionLog.start`): a server hands over its event loop,
and for a local log folder both steps run there as callbacks between requests. Timed in
the server at 7,000 requests/s (``cpu_s``, also in /metrics): about 2.4 us of CPU per
record to build (under 2 ms every 100 ms) and 2.2 us to write (about 15 ms once a
second). Measured on the bench (docs/serving.md), the same work in a second thread costs
the event loop two to three times the work itself: pyarrow releases and re-takes the GIL
around each call, and every hand-off interrupts the loop. Without a loop (scripts,
tests), or for an object store, whose writes wait on the network, a background thread
does it.

LOG is a path, a ``file://`` URL, or any URL pyarrow's filesystems understand
(``s3://``, ``gs://``, ``hdfs://``); other schemes go through fsspec when it is
installed, or through a factory given to :func:`register_filesystem`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import repeat
from operator import is_, itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .inputs import Inputs
from .loglayout import FeatureLayout
from .schema import Schema

logger = logging.getLogger(__name__)

BASE_FIELDS = [
    pa.field("request_id", pa.string()), pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("model", pa.string()), pa.field("version", pa.string()),
    pa.field("endpoint", pa.string()), pa.field("status", pa.int16()),
    pa.field("latency_ms", pa.float64()), pa.field("rows", pa.int32()),
    pa.field("client_id", pa.string()), pa.field("raw_inputs", pa.string()),
    pa.field("outputs", pa.string()), pa.field("error", pa.string()),
    pa.field("shadow", pa.string()),
]
FEEDBACK_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()), ("ground_truth", pa.string()),
])
# Measured on 64-feature records: snappy, dictionaries only for the low-cardinality
# columns and statistics only on `time` (for range pruning) cost ~1.5 us per record to
# write; zstd is ~40% smaller and ~30% slower.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy", "write_statistics": ["time"],
    "use_dictionary": ["model", "version", "endpoint", "status", "error", "client_id"],
}
MAX_UNWRITTEN = 600  # segments (flushes) kept while storage fails: 10 minutes at 1 s
COMPACT_INTERVAL = 0.1  # seconds between turning queued records into Arrow tables
FilesystemFactory = Callable[[str], tuple[pafs.FileSystem, str]]
_FACTORIES: dict[str, FilesystemFactory] = {}


class Prediction(NamedTuple):
    """One logged request. ``inputs`` becomes typed feature columns; ``raw`` (a body that
    did not parse, or model tensors of a bundle with preprocess) and ``outputs`` become
    JSON (``bytes``: JSON already)."""

    request_id: str
    time: float
    model: str
    version: str
    endpoint: str
    status: int
    latency_ms: float
    rows: int
    client_id: str | None
    inputs: Inputs | None
    raw: Any
    outputs: Any
    error: str | None


def register_filesystem(scheme: str, factory: FilesystemFactory) -> None:
    """Use ``factory(url) -> (pyarrow filesystem, path)`` for log URLs with ``scheme``."""
    _FACTORIES[scheme] = factory


def open_filesystem(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path for a log location (path or URL)."""
    text = os.fspath(location)
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme in ("", "file"):
        path = text[len("file://"):] if scheme else text
        return pafs.LocalFileSystem(), os.path.abspath(path)
    if scheme in _FACTORIES:
        return _FACTORIES[scheme](text)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
        return fs, str(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec  # optional: only for schemes pyarrow lacks

        fs, path = fsspec.core.url_to_fs(text)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), str(path)


def _default(value: Any) -> Any:
    for convert in ("tolist", "to_dict"):
        if hasattr(value, convert):
            return getattr(value, convert)()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return orjson.dumps(value, default=_default,
                            option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except Exception as exc:  # a value the log cannot render must not lose the segment
        return orjson.dumps({"unrenderable": f"{type(exc).__name__}: {exc}"}).decode()


_BYTES_OR_NONE = {bytes, type(None)}


def _repeated(values: tuple[Any, ...], type_: pa.DataType) -> pa.Array:
    """A column that is usually one value throughout (model, version, status, no error):
    checked and built in C instead of converting every Python object."""
    first = values[0]
    if values.count(first) == len(values) and (first is None or type(first) in (str, int)):
        return pa.nulls(len(values), type_) if first is None else \
            pa.repeat(pa.scalar(first, type_), len(values))
    return pa.array(values, type_)


def _outputs(outputs: tuple[Any, ...]) -> pa.Array:
    """The outputs column: bytes (JSON rendered for the answer) go to Arrow as they are,
    anything else is rendered as JSON (a ``str`` too: it becomes a JSON string)."""
    if set(map(type, outputs)) <= _BYTES_OR_NONE:
        try:
            return pa.array(outputs, pa.string())  # Arrow checks the UTF-8
        except pa.ArrowInvalid:
            pass
    return pa.array([_json(o) for o in outputs], pa.string())


class PredictionLog:
    """Buffers requests and feedback in memory; writes them as Parquet segments from the
    server's event loop (local folders) or a background thread."""

    def __init__(self, location: str | os.PathLike[str] | None, *,
                 flush_interval: float = 1.0, compact_interval: float = COMPACT_INTERVAL
                 ) -> None:
        self.enabled = location is not None
        self.flush_interval = flush_interval
        self.compact_interval = min(compact_interval, flush_interval)
        self.fs, self.root = open_filesystem(location) if location is not None \
            else (pafs.LocalFileSystem(), "")
        self._local = isinstance(self.fs, pafs.LocalFileSystem)
        self._layouts: dict[tuple[str, str], FeatureLayout] = {}
        self._pending: deque[Prediction] = deque()
        self._feedback: deque[tuple[str, float, str, Any]] = deque()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_flush = 0.0
        self._seq = 0
        self._unwritten: list[pa.Table] = []
        self._built: dict[tuple[str, str] | None, list[pa.Table]] = {}  # compacted, unwritten
        self._built_rows = 0
        self.written = 0
        self.dropped = 0
        # CPU seconds of the background work (thread time: measured in either mode)
        self.cpu_s = {"build": 0.0, "write": 0.0}

    def register(self, model: str, version: str, schema: Schema, *, identity: bool) -> None:
        """Declare a model version's features (its typed ``inputs`` columns)."""
        self._layouts[(model, version)] = FeatureLayout(schema, identity, BASE_FIELDS)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start building and writing in the background (idempotent).

        With ``loop`` (the server's running event loop) and a local log folder, the work
        runs on that loop as timed callbacks; otherwise in a daemon thread."""
        if not self.enabled or self._thread is not None or self._timer is not None:
            return
        self._stop.clear()
        self._next_flush = time.monotonic() + self.flush_interval
        if loop is not None and self._local:
            self._loop = loop
            self._timer = loop.call_later(self.compact_interval, self._tick)
            return
        self._thread = threading.Thread(target=self._run, name="ship-predlog", daemon=True)
        self._thread.start()

    def warm_up(self) -> None:
        """Pay the first build's one-time cost now (call it before the server is ready):
        pyarrow imports its pandas shim on its first conversion, 0.2-0.4 s that would
        otherwise stall the event loop on the first requests' build."""
        if self.enabled:
            pa.array(["warm-up"], pa.string())

    def record(self, request_id: str, started: float, model: str, version: str,
               endpoint: str, status: int, latency_ms: float, client_id: str | None,
               inputs: Inputs | None, raw: Any, outputs: Any, error: str | None) -> None:
        """Queue one request for the next segment (no I/O, no serialization).

        A plain tuple in :class:`Prediction`'s field order, holding the request's objects
        by reference (the decoded inputs, the already encoded outputs): the background
        step builds every column."""
        if not self.enabled:
            return
        self._pending.append((request_id, started, model, version, endpoint, status,  # type: ignore[arg-type]
                              latency_ms, 0 if inputs is None else inputs.rows,
                              client_id, inputs, raw, outputs, error))

    def feedback(self, request_id: str, model: str, ground_truth: Any) -> None:
        """Queue ground truth for a request id."""
        if self.enabled:
            self._feedback.append((request_id, time.time(), model, ground_truth))

    def close(self) -> None:
        """Stop the background work and write whatever is buffered."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _step(self) -> None:
        """Build tables from what requests queued; write a segment when one is due."""
        if time.monotonic() >= self._next_flush:
            self._next_flush = time.monotonic() + self.flush_interval
            self.flush()
        else:
            with self._write_lock:
                self._compact()

    def _tick(self) -> None:
        """One step as an event-loop callback, then the next one scheduled."""
        try:
            self._step()
        finally:
            if not self._stop.is_set() and self._loop is not None:
                self._timer = self._loop.call_later(self.compact_interval, self._tick)

    def _run(self) -> None:
        while not self._stop.wait(self.compact_interval):
            self._step()

    def _compact(self) -> None:
        """Turn queued records into Arrow tables (per model version); caller holds the lock."""
        pending = self._pending  # popleft: safe against appends from the event loop
        items = [pending.popleft() for _ in range(len(pending))]
        if not items:
            return
        started = time.thread_time()
        try:
            for key, table in self._prediction_tables(items):
                self._built.setdefault(key, []).append(table)
            self._built_rows += len(items)
        except Exception:  # a bug in rendering must not stop the log
            logger.exception("prediction log: %d records could not be rendered", len(items))
            self.dropped += len(items)
        self.cpu_s["build"] += time.thread_time() - started

    def flush(self) -> int:
        """Write buffered records now; the number of predictions written."""
        if not self.enabled:
            return 0
        with self._write_lock:
            self._compact()
            feedback = [self._feedback.popleft() for _ in range(len(self._feedback))]
            tables = [pa.concat_tables(group) if len(group) > 1 else group[0]
                      for group in self._built.values()]
            count, self._built, self._built_rows = self._built_rows, {}, 0
            written = self._store("predictions", tables, count) \
                if tables or self._unwritten else 0
            if feedback:
                self._store("feedback", self._feedback_tables(feedback), len(feedback),
                            retry=feedback)
            self.written += written
            return written

    def _store(self, stream: str, tables: list[pa.Table], count: int,
               retry: list[Any] | None = None) -> int:
        """Write tables; on failure keep them (bounded) for the next flush."""
        try:
            for table in tables:
                self._write(stream, table)
        except Exception:  # storage down or full
            logger.exception("prediction log: writing %d %s failed; will retry", count,
                             stream)
            if retry is not None:
                self._feedback.extendleft(reversed(retry))
            elif len(self._unwritten) < MAX_UNWRITTEN:
                self._unwritten.extend(tables)
            else:
                self.dropped += count
            return 0
        if stream == "predictions" and self._unwritten:
            retried, self._unwritten = self._unwritten, []
            return self._store(stream, retried, sum(t.num_rows for t in retried)) + count
        return count

    def _write(self, stream: str, table: pa.Table) -> None:
        started = time.thread_time()
        try:
            self._write_segment(stream, table)
        finally:
            self.cpu_s["write"] += time.thread_time() - started

    def _write_segment(self, stream: str, table: pa.Table) -> None:
        now = datetime.now(UTC)
        self._seq += 1
        folder = f"{self.root}/{stream}/date={now:%Y-%m-%d}"
        name = f"part-{now:%Y%m%dT%H%M%S.%f}-{os.getpid()}-{self._seq:06d}.parquet"
        self.fs.create_dir(folder, recursive=True)
        if not self._local:  # object stores publish whole objects atomically
            pq.write_table(table, f"{folder}/{name}", filesystem=self.fs, **PARQUET_OPTIONS)
            return
        temporary = f"{folder}/.{name}.tmp"
        pq.write_table(table, temporary, filesystem=self.fs, **PARQUET_OPTIONS)
        self.fs.move(temporary, f"{folder}/{name}")

    def _prediction_tables(self, items: list[Prediction]
                           ) -> list[tuple[tuple[str, str] | None, pa.Table]]:
        """One table per model version (each has its own typed ``inputs`` struct), keyed by
        the version when it has registered features (None: the base columns only)."""
        groups: dict[tuple[str, str], list[Prediction]] = {}
        key_of = itemgetter(2, 3)  # (model, version): records are plain tuples
        keys = set(map(key_of, items))
        if len(keys) == 1:
            groups[keys.pop()] = items
        else:
            for item in items:
                groups.setdefault(key_of(item), []).append(item)
        # One table per group, not chunks: Python code yields the GIL to the event loop
        # every switch interval anyway, and each chunk would repeat 2 Arrow calls per feature.
        return [(key if key in self._layouts else None, self._table(key, group))
                for key, group in groups.items()]

    def _table(self, key: tuple[str, str], items: list[Prediction]) -> pa.Table:
        layout = self._layouts.get(key)
        (ids, times, models, versions, endpoints, statuses, latencies, rows, clients,
         inputs, raws, outputs, errors) = zip(*items, strict=True)
        n = len(items)
        if raws.count(None) == n and layout is not None and layout.identity and \
                not any(map(is_, inputs, repeat(None))):
            raw_json: list[str | None] | pa.Array = pa.nulls(n, pa.string())
        else:
            raw_json = [
                _json(raw) if raw is not None else
                _json(x.loggable(layout.schema if layout else None))
                if x is not None and (layout is None or not layout.loggable(x)) else None
                for raw, x in zip(raws, inputs, strict=True)]
        micros = (np.array(times, dtype=np.float64) * 1e6).astype(np.int64)
        arrays = [
            pa.array(ids, pa.string()), pa.array(micros, pa.timestamp("us", tz="UTC")),
            _repeated(models, pa.string()), _repeated(versions, pa.string()),
            _repeated(endpoints, pa.string()), _repeated(statuses, pa.int16()),
            pa.array(latencies, pa.float64()), _repeated(rows, pa.int32()),
            _repeated(clients, pa.string()), pa.array(raw_json, pa.string()),
            _outputs(outputs), _repeated(errors, pa.string()), pa.nulls(n, pa.string()),
        ]
        if layout is None:
            return pa.Table.from_arrays(arrays, schema=pa.schema(BASE_FIELDS))
        arrays.append(layout.column(list(inputs)))
        return pa.Table.from_arrays(arrays, schema=layout.arrow_schema)

    @staticmethod
    def _feedback_tables(items: list[tuple[str, float, str, Any]]) -> list[pa.Table]:
        ids, times, models, truth = zip(*items, strict=True)
        return [pa.Table.from_pydict({
            "request_id": ids, "time": [int(t * 1e6) for t in times], "model": models,
            "ground_truth": [_json(v) for v in truth]}, schema=FEEDBACK_SCHEMA)]


class RequestIndex:
    """Which request ids exist: this process's own (``issued``, which the id generator
    answers without storing anything per request), others from the log's segments."""

    def __init__(self, log: PredictionLog, issued: Callable[[str], bool]) -> None:
        self.log = log
        self.issued = issued
        self._on_disk: set[str] = set()
        self._scanned: set[str] = set()
        self._lock = threading.Lock()

    def known(self, request_id: str) -> bool:
        """True if this process issued the id or a flushed segment holds it (does I/O)."""
        if self.issued(request_id) or request_id in self._on_disk:
            return True
        if not self.log.enabled:
            return False
        with self._lock:
            selector = pafs.FileSelector(f"{self.log.root}/predictions", recursive=True,
                                         allow_not_found=True)
            for info in self.log.fs.get_file_info(selector):
                path = info.path
                if not path.endswith(".parquet") or path in self._scanned:
                    continue
                try:
                    ids = pq.read_table(path, columns=["request_id"], filesystem=self.log.fs)
                except (OSError, pa.ArrowInvalid):
                    continue  # being written by another worker; next call sees it
                self._on_disk.update(ids.column(0).to_pylist())
                self._scanned.add(path)
        return request_id in self._on_disk
