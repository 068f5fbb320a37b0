"""The log writer: requests appended in memory, written as Parquet segments off the
request path.

A request appends one :class:`~.format.Prediction` to a deque: no I/O, no rendering.
Every ``batch_interval`` (100 ms) the writer turns what accumulated into one Arrow
record batch per model version (:func:`record_batch`) and lets the requests' objects
go; every ``flush_interval`` (1 s) it writes the batches as one segment per version,
under a hidden temporary name then renamed (object stores publish whole objects), so
readers never see half a file. Shutdown (uvicorn's lifespan on SIGTERM) flushes what is
left; ``kill -9`` loses at most the last flush interval.

Why batches every 100 ms and not once a second: a request's objects held until the
segment is written make new requests allocate memory that is no longer in the CPU's
caches (bench/README.md: requests held 1 s cost 5 % of throughput, 100 ms 2 %).

Where the work runs (:meth:`PredictionLog.start`): given the server's event loop and a
local folder, as callbacks on that loop between requests (pyarrow in a second thread
costs the loop more than the work itself: it releases and re-takes the GIL around
every call); otherwise (scripts, object stores whose writes wait on the network) in a
daemon thread. Storage that fails keeps the batches (up to ``MAX_UNWRITTEN`` flushes)
and retries them with the next flush.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..inputs import Inputs
from ..review import Reviewer
from ..schema import Schema
from .format import (
    BASE_FIELDS,
    FEEDBACK_SCHEMA,
    MATRIX_FIELDS,
    PARQUET_OPTIONS,
    REVIEW_FIELDS,
    SCHEMA_VERSION,
    VERSION_KEY,
    Columns,
    Prediction,
    render_json,
    review_columns,
    segment_name,
)
from .storage import LogLocation

logger = logging.getLogger(__name__)

MAX_UNWRITTEN = 600  # flushes kept while storage fails: 10 minutes at 1 s
BATCH_INTERVAL = 0.1
_METADATA = {VERSION_KEY: SCHEMA_VERSION.encode()}


class Layout:
    """One model version's columns: the base fields, then its typed inputs."""

    def __init__(self, schema: Schema | None, identity: bool = True,
                 reviewer: Reviewer | None = None) -> None:
        self.schema = schema
        self.identity = identity
        self.reviewer = reviewer
        self.features = Columns.features(schema) if schema is not None else None
        self.tensors = Columns.tensors(schema) if schema is not None and not identity \
            else None
        # all-numeric features: the rows x features matrices as bytes (the common case,
        # and the cheap one: readers and compaction make them the ``inputs`` struct)
        self.matrix = self.features is not None and self.features.matrix_dtype is not None
        extra = [*MATRIX_FIELDS] if self.matrix else \
            [pa.field("inputs", self.features.struct)] if self.features else []
        if self.tensors is not None:
            extra.append(pa.field("tensors", self.tensors.struct))
        if reviewer is not None:
            extra.extend(REVIEW_FIELDS)
        self.arrow_schema = pa.schema([*BASE_FIELDS, *extra], metadata=_METADATA)
        self.parquet_options = _parquet_options(self.arrow_schema)

    def record_batch(self, records: list[Prediction]) -> pa.RecordBatch:
        """The records as one record batch of this layout."""
        times = np.fromiter((r.time for r in records), np.float64, len(records))
        arrays: list[pa.Array] = [
            pa.array([r.request_id for r in records], pa.string()),
            pa.array((times * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
            pa.array([r.model for r in records], pa.string()),
            pa.array([r.version for r in records], pa.string()),
            pa.array([r.endpoint for r in records], pa.string()),
            pa.array([r.status for r in records], pa.int16()),
            pa.array([r.latency_ms for r in records], pa.float64()),
            pa.array([0 if r.inputs is None else r.inputs.rows for r in records], pa.int32()),
            pa.array([r.client_id for r in records], pa.string()),
            pa.array([self._raw(r) for r in records], pa.string()),
            _outputs([r.outputs for r in records]),
            pa.array([r.error for r in records], pa.string()),
            pa.array([r.shadow for r in records], pa.string()),
        ]
        matrices: list[np.ndarray[Any, Any] | None] = []
        block = None
        if self.matrix:  # all-numeric features: one block, for the log and the scores
            assert self.features is not None
            matrices = [self._matrix(r.inputs) for r in records]
            block = self.features.matrix_block(matrices)
            arrays.extend(self.features.matrix_columns(matrices, block))
        elif self.features is not None:
            arrays.extend(self._inputs([r.inputs for r in records]))
        if self.tensors is not None:
            arrays.append(self.tensors.array([
                None if x is None or x.tensors is None else
                {n: a.reshape(-1) for n, a in x.tensors.items()}
                for x in (r.inputs for r in records)]))
        if self.reviewer is not None:
            arrays.extend(self._review(records, matrices, block))
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _review(self, records: list[Prediction], matrices: list[np.ndarray[Any, Any] | None],
                block: np.ndarray[Any, Any] | None) -> tuple[pa.Array, pa.Array]:
        """``review`` and ``review_layout``: the answered requests' rows scored together
        (format.review_columns); ``matrices`` and ``block``: the records' all-numeric
        inputs as the ``matrix`` column took them (none for other layouts)."""
        reviewer = self.reviewer
        assert reviewer is not None
        scored = [r.status < 400 and r.shadow is None and r.inputs is not None
                  and r.inputs.rows > 0 for r in records]
        counts = [r.inputs.rows if s and r.inputs is not None else 0
                  for r, s in zip(records, scored, strict=True)]
        chosen = [r for r, s in zip(records, scored, strict=True) if s]
        if not chosen:
            return review_columns(counts, None, "")
        outputs = [r.model_outputs for r in chosen]
        rows = [c for c in counts if c]
        if block is not None and all(m is not None for m, s in zip(matrices, scored,
                                                                   strict=True) if s):
            if any(m is not None and not s for m, s in zip(matrices, scored, strict=True)):
                block = np.concatenate([m for m, s in zip(matrices, scored, strict=True)
                                        if s])
            scores = reviewer.block(outputs, None, rows, matrix=block)
        else:
            scores = reviewer.block(outputs, self._feature_columns(
                [r.inputs for r in chosen]), rows)
        return review_columns(counts, scores, reviewer.layout(scores.shape[1]))

    def _feature_columns(self, inputs: list[Inputs | None]) -> dict[str, Any] | None:
        """Every request's features, one after another (feature -> values); None when
        a request's features are not at hand (model tensors of a bundle with
        preprocess)."""
        features = self.features
        if features is None:
            return None
        parts = [None if x is None else x.columns if x.tensors is None else
                 self._tensor_columns(x) for x in inputs]
        if any(p is None for p in parts):
            return None
        return {n: np.concatenate([p[n] for p in parts])  # type: ignore[index]
                for n in features.names}

    def _raw(self, record: Prediction) -> str | None:
        """JSON for what no typed column holds: a body that did not parse, or inputs of a
        version without a schema."""
        if record.raw is not None:
            return render_json(record.raw)
        if self.features is None and record.inputs is not None:
            return render_json(record.inputs.loggable(None))
        return None

    def _inputs(self, inputs: list[Inputs | None]) -> list[pa.Array]:
        """The ``inputs`` struct of a version with text features."""
        features = self.features
        assert features is not None
        return [features.array([None if x is None else x.columns if x.tensors is None else
                                self._tensor_columns(x) for x in inputs])]

    def _matrix(self, inputs: Inputs | None) -> np.ndarray[Any, Any] | None:
        """A request's rows x features matrix (None: no typed inputs)."""
        if inputs is None:
            return None
        if inputs.matrix is not None:
            return inputs.matrix
        assert self.features is not None
        if inputs.tensors is not None and self.identity and len(inputs.tensors) == 1:
            matrix = next(iter(inputs.tensors.values()))  # the features, as the model takes
            if matrix.ndim == 2 and matrix.shape[1] == len(self.features.names):
                return matrix
        columns = inputs.columns if inputs.tensors is None else self._tensor_columns(inputs)
        if columns is None:
            return None
        return np.column_stack([columns[n] for n in self.features.names])

    def _tensor_columns(self, inputs: Inputs) -> dict[str, np.ndarray[Any, Any]] | None:
        """The features in model tensors sent to a version without preprocess: one
        rows x features tensor, or one tensor per feature named as it is (a tabular
        model). None for model tensors of a bundle with preprocess (they go to
        ``tensors``) or of any other shape."""
        assert self.features is not None and inputs.tensors is not None
        if not self.identity:
            return None
        names, tensors = self.features.names, inputs.tensors
        if len(tensors) == 1:
            matrix = next(iter(tensors.values()))
            if matrix.ndim == 2 and matrix.shape[1] == len(names):
                return dict(zip(names, matrix.T, strict=True))
        if set(tensors) == set(names):
            return {n: tensors[n].reshape(len(tensors[n]), -1)[:, 0] for n in names}
        return None


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """PARQUET_OPTIONS with the matrix and the review scores left uncompressed: numbers
    compress little and cost the most to compress (at 100 rows of 64 float32 features,
    snappy made writing three times slower); compaction recompresses everything with
    zstd."""
    empty = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), empty)
    leaves = [c.path for c in pq.ParquetFile(pa.BufferReader(empty.getvalue())).schema]
    return {**PARQUET_OPTIONS, "compression": {
        leaf: "none" if leaf in ("matrix", "review") else PARQUET_OPTIONS["compression"]
        for leaf in leaves}}


def _outputs(values: list[Any]) -> pa.Array:
    """The answers: JSON bytes as they are (Arrow checks their UTF-8), others rendered."""
    if all(type(v) is bytes for v in values):
        try:
            return pa.array(values, pa.string())
        except pa.ArrowInvalid:
            pass
    return pa.array([render_json(v) for v in values], pa.string())


def _feedback_table(items: list[tuple[str, float, str, Any]]) -> pa.Table:
    ids, times, models, truth = zip(*items, strict=True)
    return pa.Table.from_pydict({
        "request_id": ids, "time": [int(t * 1e6) for t in times], "model": models,
        "ground_truth": [render_json(v) for v in truth]}, schema=FEEDBACK_SCHEMA)


def _drain(queue: deque[Any]) -> list[Any]:
    """What a deque holds now (popleft: safe against appends from another thread)."""
    return [queue.popleft() for _ in range(len(queue))]


class PredictionLog:
    """Buffers requests and feedback in memory; writes them as Parquet segments."""

    def __init__(self, location: str | os.PathLike[str] | LogLocation | None, *,
                 flush_interval: float = 1.0, batch_interval: float = BATCH_INTERVAL
                 ) -> None:
        self.enabled = location is not None
        self.location = None if location is None else \
            location if isinstance(location, LogLocation) else LogLocation(location)
        self.flush_interval = flush_interval
        self.batch_interval = min(batch_interval, flush_interval)
        self._layouts: dict[tuple[str, str], Layout] = {}
        self._plain = Layout(None)  # versions nobody registered: base columns only
        # deques: appended on the event loop, emptied by popleft from the writer's thread
        self._pending: deque[Prediction] = deque()
        self._feedback: deque[tuple[str, float, str, Any]] = deque()
        self._batches: dict[Layout, list[pa.RecordBatch]] = {}
        self._unwritten: list[tuple[Layout, list[pa.RecordBatch]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_flush = 0.0
        self._seq = 0
        self.written = 0
        self.dropped = 0
        self.cpu_s = {"build": 0.0, "write": 0.0}  # thread CPU seconds, for /metrics

    @property
    def root(self) -> str:
        return "" if self.location is None else self.location.root

    def register(self, model: str, version: str, schema: Schema, *, identity: bool,
                 reviewer: Reviewer | None = None) -> None:
        """Declare a model version's features (its typed ``inputs`` columns) and its
        review scorer (its ``review`` column)."""
        self._layouts[(model, version)] = Layout(schema, identity, reviewer)

    def append(self, record: Prediction) -> None:
        """Queue one request for the next segment (a list append)."""
        if self.enabled:
            self._pending.append(record)

    def feedback(self, request_id: str, model: str, ground_truth: Any) -> None:
        """Queue ground truth for a request id."""
        if self.enabled:
            self._feedback.append((request_id, time.time(), model, ground_truth))

    # -- running --------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the background work (idempotent): on ``loop`` for a local folder, else
        in a thread."""
        if not self.enabled or self._thread is not None or self._timer is not None:
            return
        self._stop.clear()
        self._next_flush = time.monotonic() + self.flush_interval
        if loop is not None and self.location is not None and self.location.local:
            self._loop = loop
            self._timer = loop.call_later(self.batch_interval, self._tick)
            return
        self._thread = threading.Thread(target=self._run, name="ship-predlog", daemon=True)
        self._thread.start()

    def warm_up(self) -> None:
        """Pay the first segment's one-time costs (pyarrow's lazy imports, about 0.3 s)
        before the server is ready, in memory: the log folder is untouched."""
        if not self.enabled:
            return
        for (model, version), layout in self._layouts.items():
            features = layout.features
            inputs = Inputs(rows=1, matrix=np.zeros((1, len(features.names)),
                                                    features.matrix_dtype)) \
                if features is not None and features.matrix_dtype is not None else None
            batch = layout.record_batch([Prediction("warm-up", time.time(), model, version,
                                                    "invocations", 200, 0.0, None, inputs,
                                                    None, b"[0]")])
            pq.write_table(pa.Table.from_batches([batch]), pa.BufferOutputStream(),
                           **layout.parquet_options)

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

    def _tick(self) -> None:
        try:
            self._step()
        finally:
            if not self._stop.is_set() and self._loop is not None:
                self._timer = self._loop.call_later(self.batch_interval, self._tick)

    def _run(self) -> None:
        while not self._stop.wait(self.batch_interval):
            self._step()

    def _step(self) -> None:
        if time.monotonic() >= self._next_flush:
            self._next_flush = time.monotonic() + self.flush_interval
            self.flush()
        else:
            with self._lock:
                self._batch()

    # -- building and writing -------------------------------------------------------------
    def _batch(self) -> None:
        """Turn queued requests into record batches (caller holds the lock)."""
        pending = _drain(self._pending)
        if not pending:
            return
        started = time.thread_time()
        groups: dict[Layout, list[Prediction]] = {}
        for record in pending:
            layout = self._layouts.get((record.model, record.version), self._plain)
            groups.setdefault(layout, []).append(record)
        for layout, records in groups.items():
            try:
                batch = layout.record_batch(records)
            except Exception:  # a bug in rendering must not stop the log
                logger.exception("prediction log: %d records could not be rendered",
                                 len(records))
                self.dropped += len(records)
                continue
            self._batches.setdefault(layout, []).append(batch)
        self.cpu_s["build"] += time.thread_time() - started

    def flush(self) -> int:
        """Write what is buffered now; the number of predictions written."""
        if not self.enabled:
            return 0
        with self._lock:
            self._batch()
            batches, self._batches = list(self._batches.items()), {}
            written = self._write_predictions(self._unwritten + batches)
            feedback = _drain(self._feedback)
            if feedback and not self._write_feedback(feedback):
                self._feedback.extendleft(reversed(feedback))
            self.written += written
            return written

    def _write_predictions(self, batches: list[tuple[Layout, list[pa.RecordBatch]]]) -> int:
        """Write each version's batches as a segment; keep what fails for the next flush."""
        self._unwritten, written = [], 0
        for i, (layout, group) in enumerate(batches):
            rows = sum(b.num_rows for b in group)
            try:
                self._write("predictions", pa.Table.from_batches(group, layout.arrow_schema),
                            layout.parquet_options)
            except Exception:  # storage down or full
                logger.exception("prediction log: writing %d predictions failed; will retry",
                                 rows)
                kept = batches[i:]
                if len(kept) > MAX_UNWRITTEN:
                    self.dropped += sum(b.num_rows for _, g in kept[MAX_UNWRITTEN:] for b in g)
                    kept = kept[:MAX_UNWRITTEN]
                self._unwritten = kept
                return written
            written += rows
        return written

    def write_feedback(self, items: list[tuple[str, str, Any]]) -> None:
        """Write ground truth (request_id, model, ground truth) now, as one segment,
        from outside a service (``ship review --label``); raises when storage fails."""
        now = time.time()
        self._write("feedback", _feedback_table([(r, now, m, v) for r, m, v in items]))

    def _write_feedback(self, items: list[tuple[str, float, str, Any]]) -> bool:
        table = _feedback_table(items)
        try:
            self._write("feedback", table)
        except Exception:
            logger.exception("prediction log: writing %d feedback failed; will retry",
                             len(items))
            return False
        return True

    def _write(self, stream: str, table: pa.Table,
               options: dict[str, Any] = PARQUET_OPTIONS) -> None:
        assert self.location is not None
        started = time.thread_time()
        try:
            now = datetime.now(UTC)
            self._seq += 1
            folder = f"{self.location.root}/{stream}/date={now:%Y-%m-%d}"
            self.location.fs.create_dir(folder, recursive=True)
            with self.location.published(f"{folder}/{segment_name(now, self._seq)}") as path:
                pq.write_table(table, path, filesystem=self.location.fs, **options)
        finally:
            self.cpu_s["write"] += time.thread_time() - started
