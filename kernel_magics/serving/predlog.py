"""The prediction log: every request, appended off the request path as Parquet segments.

    LOG/predictions/date=YYYY-MM-DD/part-<utc time>-<pid>-<seq>.parquet   one per flush
    LOG/feedback/date=YYYY-MM-DD/part-<utc time>-<pid>-<seq>.parquet      ground truth

A request appends one tuple to an in-memory deque (no lock, no I/O, no serialization).
Every ``compact_interval`` (100 ms) what accumulated is copied into flat columns
(:mod:`.logcolumns`: numpy arrays, joined bytes, the inputs in one buffer) and the
requests' objects are let go: objects held alive cost the event loop more than copying
them, because new requests then allocate memory that is not in the CPU's caches. Every
``flush_interval`` seconds (default 1 s) the columns become Arrow arrays and one new
segment (written under a hidden temporary name, then renamed, so readers never see half
a file). Shutdown (uvicorn's lifespan on SIGTERM/SIGINT) flushes what is left. After
``kill -9`` what was not yet written is lost: at most the last flush interval (plus the
write in progress).

Where that work runs (:meth:`PredictionLog.start`): a server hands over its event loop,
and for a local log folder both steps run there as callbacks between requests. Timed in
the server at 7,000 requests/s (``cpu_s``, also in /metrics): about 1.6 us of CPU per
record to build (the copies and the flush's Arrow arrays) and 2.1 us to write (about
15 ms once a second). Measured on the bench (bench/README.md), the same work in a second
thread costs the event loop two to three times the work itself: pyarrow releases and
re-takes the GIL around each call, and every hand-off interrupts the loop. Without a loop
(scripts, tests), or for an object store, whose writes wait on the network, a background
thread does it.

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
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .inputs import Inputs
from .logcolumns import BASE_FIELDS, Columns, Prediction, render_json
from .logfiles import published, segment_name
from .loglayout import FeatureLayout
from .schema import Schema

logger = logging.getLogger(__name__)

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
# seconds between copying queued records into columns: on the bench, copying every 100 ms
# cost 0.3-0.6 us less log CPU per record than every 50 ms, and no more throughput
COMPACT_INTERVAL = 0.1
FilesystemFactory = Callable[[str], tuple[pafs.FileSystem, str]]
_FACTORIES: dict[str, FilesystemFactory] = {}


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


class PredictionLog:
    """Buffers requests and feedback in memory; writes them as Parquet segments from the
    server's event loop (local folders) or a background thread."""

    def __init__(self, location: str | os.PathLike[str] | None, *,
                 flush_interval: float = 1.0, compact_interval: float | None = None
                 ) -> None:
        self.enabled = location is not None
        self.flush_interval = flush_interval
        self.compact_interval = min(compact_interval or COMPACT_INTERVAL, flush_interval)
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
        # copied out of the queue, not yet written: per model version (None: unregistered)
        self._columns: dict[tuple[str, str] | None, Columns] = {}
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
        """Pay the first segment's one-time costs now (call it before the server is ready):
        pyarrow imports its pandas shim on its first conversion (0.2-0.4 s), and the first
        table assembled and written for a layout takes about 35 ms more than the next
        ones. Both would otherwise stall the event loop on the first flush. Writes to
        memory only: the log folder and the counters are untouched."""
        if not self.enabled:
            return
        pa.array(["warm-up"], pa.string())
        for (model, version), layout in self._layouts.items():
            inputs = None if layout.buffer_dtype is None else \
                Inputs(rows=1, matrix=np.zeros((1, len(layout.names)), layout.buffer_dtype))
            columns = Columns(layout)
            columns.add([Prediction("warm-up", time.time(), model, version, "invocations",
                                    200, 0.0, 1, None, inputs, None, b"[0]", None)] * 2)
            pq.write_table(columns.table(), pa.BufferOutputStream(), **PARQUET_OPTIONS)

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
        """Copy what requests queued into columns; write a segment when one is due."""
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
        """Copy queued records into columns (per model version) and let them go; caller
        holds the lock."""
        pending = self._pending  # popleft: safe against appends from the event loop
        items = [pending.popleft() for _ in range(len(pending))]
        if not items:
            return
        started = time.thread_time()
        for key, group in self._groups(items):
            columns = self._columns.get(key)
            if columns is None:
                columns = self._columns[key] = Columns(self._layouts.get(key)
                                                       if key is not None else None)
            try:
                columns.add(group)
            except Exception:  # a bug in rendering must not stop the log
                logger.exception("prediction log: %d records could not be rendered",
                                 len(group))
                self.dropped += len(group)
        self.cpu_s["build"] += time.thread_time() - started

    def _groups(self, items: list[Prediction]
                ) -> Iterable[tuple[tuple[str, str] | None, list[Prediction]]]:
        """Records per model version with registered features (None: the others, which
        get the base columns only)."""
        key_of = itemgetter(2, 3)  # (model, version): records are plain tuples
        keys = set(map(key_of, items))
        if len(keys) == 1:
            key = keys.pop()
            return [(key if key in self._layouts else None, items)]
        groups: dict[tuple[str, str] | None, list[Prediction]] = {}
        for item in items:
            key = key_of(item)
            groups.setdefault(key if key in self._layouts else None, []).append(item)
        return groups.items()

    def _tables(self) -> tuple[list[pa.Table], int]:
        """The columns gathered since the last segment as tables (one per model version),
        and how many records they hold."""
        started = time.thread_time()
        tables, count = [], 0
        for columns in self._columns.values():
            rows = columns.rows
            if not rows:
                continue
            try:
                tables.append(columns.table())
                count += rows
            except Exception:  # a bug in rendering must not stop the log
                logger.exception("prediction log: %d records could not be rendered", rows)
                self.dropped += rows
        self.cpu_s["build"] += time.thread_time() - started
        return tables, count

    def flush(self) -> int:
        """Write buffered records now; the number of predictions written."""
        if not self.enabled:
            return 0
        with self._write_lock:
            self._compact()
            feedback = [self._feedback.popleft() for _ in range(len(self._feedback))]
            tables, count = self._tables()
            written = self._store("predictions", tables, count) \
                if tables or self._unwritten else 0
            del tables
            if not self._unwritten:  # every table was written: their memory is free
                for columns in self._columns.values():
                    columns.release()
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
        self.fs.create_dir(folder, recursive=True)
        with published(self.fs, f"{folder}/{segment_name(now, self._seq)}") as path:
            pq.write_table(table, path, filesystem=self.fs, **PARQUET_OPTIONS)

    @staticmethod
    def _feedback_tables(items: list[tuple[str, float, str, Any]]) -> list[pa.Table]:
        ids, times, models, truth = zip(*items, strict=True)
        return [pa.Table.from_pydict({
            "request_id": ids, "time": [int(t * 1e6) for t in times], "model": models,
            "ground_truth": [render_json(v) for v in truth]}, schema=FEEDBACK_SCHEMA)]

