"""One streaming pass over the prediction log: windows of sketches, predictions, feedback.

The log is ``LOG/predictions/date=YYYY-MM-DD/*.parquet`` (kernel_magics.serving.predlog):
a row per request, ``time``, ``rows``, and ``inputs``, a struct with one list per feature
(that request's values). The pass

1. skips whole days before the first window (a segment is written after its requests)
   and segments whose ``time`` statistics miss the windows;
2. reads only the columns it needs (``time``, ``rows``, the reference's features; the
   answers only for prediction drift; request ids only when feedback exists), batch by
   batch, gathering batches of one schema into chunks of about ``CHUNK_ROWS`` requests;
3. gives each request its window, ``(end - 1 - time) // length`` (0: the current one),
   flattens each feature's lists and adds each window's values to the feature's sketch.

Memory stays at a few chunks whatever the log's size. Features are processed by two
threads (numpy's sort and Arrow's kernels release the GIL) while a third reads ahead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..serving.predlog import LogLocation, read_feedback
from ..serving.predlog.format import with_inputs
from . import predictions as preds
from .reference import FeatureProfile
from .sketch import CategoricalSketch, NumericSketch, Sketch, sketch_for

Array = np.ndarray[Any, Any]
CHUNK_ROWS = 65_536  # requests per chunk, at most ...
CHUNK_VALUES = 262_144  # ... and logged rows per chunk: memory stays bounded
BATCH_ROWS = 8_192  # requests per batch read, at most ...
BATCH_BYTES = 32 << 20  # ... and about this many bytes of decoded columns
THREADS = 2
# An /invocations answer that is a flat list of plain scalars: split as text, no JSON parse.
_FLAT = r'^\[(-?[0-9][0-9.eE+-]*|"[^"\\,]*"|true|false)(,(-?[0-9][0-9.eE+-]*|"[^"\\,]*"|' \
    r'true|false))*\]$'
_TRAILING_ZEROS = re.compile(r"\.0+$")


@dataclass(frozen=True)
class Windows:
    """``count`` windows of ``length_us`` ending at ``end_us`` (window 0 is the latest)."""

    end_us: int
    length_us: int
    count: int

    @property
    def start_us(self) -> int:
        return self.end_us - self.length_us * self.count

    def index(self, times_us: Array) -> Array:
        """Each time's window, -1 outside them."""
        index = (self.end_us - 1 - times_us) // self.length_us
        index[(index < 0) | (index >= self.count) | (times_us >= self.end_us)] = -1
        return index

    def bounds(self, window: int) -> tuple[datetime, datetime]:
        end = self.end_us - window * self.length_us
        return _datetime(end - self.length_us), _datetime(end)


def _datetime(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1e6, UTC)


@dataclass
class Performance:
    """Feedback joined to predictions, per window."""

    classification: bool
    windows: int
    correct: Array = field(init=False)
    labelled: Array = field(init=False)
    squared: Array = field(init=False)

    def __post_init__(self) -> None:
        self.correct = np.zeros(self.windows, dtype=np.int64)
        self.labelled = np.zeros(self.windows, dtype=np.int64)
        self.squared = np.zeros(self.windows, dtype=np.float64)

    def add(self, window: int, predicted: list[Any], truth: list[Any]) -> None:
        for p, t in zip(predicted, truth, strict=True):
            if p is None or t is None:
                continue
            if self.classification:
                self.correct[window] += preds.label(p) == preds.label(t)
            else:
                try:
                    self.squared[window] += (float(p) - float(t)) ** 2
                except (TypeError, ValueError):
                    continue
            self.labelled[window] += 1

    def value(self, window: int) -> float | None:
        n = int(self.labelled[window])
        if n == 0:
            return None
        if self.classification:
            return float(self.correct[window] / n)
        return float(np.sqrt(self.squared[window] / n))


@dataclass
class Scan:
    """What one pass over the log found."""

    windows: Windows
    sketches: dict[str, Sketch]
    prediction: Sketch | None
    performance: Performance | None
    requests: Array
    rows: Array
    log_features: dict[str, str] = field(default_factory=dict)  # name -> Arrow type
    segments: int = 0
    segments_read: int = 0
    latest: datetime | None = None
    prediction_skipped: int = 0  # rows whose answers could not be read as predictions
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """Which service version's answers and bundle shape predictions come from."""

    version: str | None
    task: str
    class_labels: tuple[Any, ...] | None
    postprocess: bool


class LogScanner:
    """Feeds the sketches of a reference's features from the log's segments."""

    def __init__(self, log: LogLocation, windows: Windows, profiles: list[FeatureProfile],
                 prediction: FeatureProfile | None, target: Target) -> None:
        self.log = log
        self.windows = windows
        self.target = target
        count = windows.count
        self.feedback = read_feedback(log)
        self.scan = Scan(
            windows=windows,
            sketches={p.feature: sketch_for(p, count) for p in profiles},
            prediction=sketch_for(prediction, count) if prediction is not None else None,
            performance=Performance(target.task == "classification", count)
            if self.feedback else None,
            requests=np.zeros(count, dtype=np.int64), rows=np.zeros(count, dtype=np.int64))
        self._feedback_ids = pa.array(list(self.feedback), pa.string())

    # -- reading ---------------------------------------------------------------------
    def _wanted(self, schema: pa.Schema) -> list[str]:
        """The columns to read (and the logged features noted in ``log_features``)."""
        columns = [c for c in ("time", "rows", "shadow") if c in schema.names]
        if "inputs" in schema.names:
            self._note_features(schema)
            columns.append("inputs")  # the whole struct: selecting fields costs more
        elif "matrix" in schema.names:  # as the server wrote them: typed when read
            columns += ["matrix", "matrix_layout"]
        if self.scan.prediction is not None or self.feedback:
            columns += [c for c in ANSWER_COLUMNS if c in schema.names and
                        (c != "request_id" or self.feedback)]
        return columns

    def _note_features(self, schema: pa.Schema) -> None:
        """Note the logged features (``log_features``) of an ``inputs`` struct."""
        struct = schema.field("inputs").type
        for i in range(struct.num_fields):
            child = struct.field(i)
            self.scan.log_features.setdefault(child.name, str(child.type.value_type)
                                              if pa.types.is_list(child.type)
                                              else str(child.type))

    def _in_range(self, file: pq.ParquetFile, schema: pa.Schema) -> bool:
        """False when the segment's time statistics show no request in the windows."""
        metadata = file.metadata
        try:
            index = schema.get_field_index("time")
            low, high = None, None
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(index).statistics
                if stats is None or not stats.has_min_max:
                    return True
                low = stats.min_raw if low is None else min(low, stats.min_raw)
                high = stats.max_raw if high is None else max(high, stats.max_raw)
        except (IndexError, KeyError, ValueError):  # nested or odd layouts: read it
            return True
        if high is None or low is None:
            return False
        latest = _datetime(int(high))
        if self.scan.latest is None or latest > self.scan.latest:
            self.scan.latest = latest
        return int(high) >= self.windows.start_us and int(low) < self.windows.end_us

    def chunks(self) -> Iterator[Chunk]:
        """Chunks of about CHUNK_ROWS requests, each column concatenated once."""
        builder = _ChunkBuilder(
            {n for n, sk in self.scan.sketches.items() if isinstance(sk, NumericSketch)},
            set(self.scan.sketches))
        files = self.log.files("predictions", _datetime(self.windows.start_us))
        self.scan.segments = len(files)
        for path in files:
            try:
                with self.log.open(path) as handle:
                    file = pq.ParquetFile(handle)
                    schema = file.schema_arrow
                    if not self._in_range(file, schema):
                        continue
                    columns = self._wanted(schema)
                    if "time" not in columns:
                        continue
                    metadata = file.metadata
                    size = sum(metadata.row_group(g).total_byte_size
                               for g in range(metadata.num_row_groups))
                    # batches of about BATCH_BYTES decoded, whatever a request's row count
                    per_batch = int(BATCH_BYTES * metadata.num_rows / max(size, 1))
                    batches = file.iter_batches(batch_size=max(16, min(BATCH_ROWS, per_batch)),
                                                columns=columns, use_threads=False)
                    self.scan.segments_read += 1
                    for batch in batches:
                        if "shadow" in batch.schema.names:  # shadows' copies: not traffic
                            batch = batch.filter(pc.is_null(batch.column("shadow"))) \
                                .drop_columns(["shadow"])
                        if "matrix" in batch.schema.names:
                            batch = with_inputs(batch)
                            if "inputs" in batch.schema.names:
                                self._note_features(batch.schema)
                        builder.add(batch)
                        if builder.requests >= CHUNK_ROWS or builder.values >= CHUNK_VALUES:
                            yield builder.build()
            except (OSError, pa.ArrowInvalid) as exc:  # being written, or damaged
                self.scan.notes.append(f"segment {path.rpartition('/')[2]} skipped: {exc}")
                continue
        if builder.requests:
            yield builder.build()

    # -- one chunk --------------------------------------------------------------------
    def add(self, chunk: Chunk, pool: ThreadPoolExecutor) -> None:
        window = self.windows.index(chunk.times)
        keep = window >= 0
        if not keep.any():
            return
        if not keep.all():
            chunk = chunk.filter(keep)
            window = window[keep]
        count = self.windows.count
        self.scan.requests += np.bincount(window, minlength=count)
        present = [name for name in chunk.features if name in self.scan.sketches]
        self.scan.rows += np.bincount(window, weights=chunk.rows,
                                      minlength=count).astype(np.int64)
        if present:
            layout = _RowWindows(window, chunk.rows)
            jobs = [pool.submit(self._feature, name, chunk.features[name], layout)
                    for name in present]
            for job in jobs:
                job.result()
        if (self.scan.prediction is not None or self.feedback) and chunk.answers:
            self._answers(chunk.answers, window)

    def _feature(self, name: str, values: Values, layout: _RowWindows) -> None:
        sketch = self.scan.sketches[name]
        runs, order = layout.runs(values.lengths)
        data = values.values
        if isinstance(sketch, NumericSketch):
            numbers = np.asarray(data, dtype=np.float64)
            if order is not None:
                numbers = numbers[order]
            for w, start, stop in runs:
                sketch.add_sorted(w, np.sort(numbers[start:stop]))
        else:
            text = data if isinstance(data, pa.Array) else pa.array(data)
            if order is not None:
                text = text.take(pa.array(order))
            for w, start, stop in runs:
                sketch.add(w, text.slice(start, stop - start))

    # -- predictions and feedback -------------------------------------------------------
    def _answers(self, answers: dict[str, pa.Array], window: Array) -> None:
        if "outputs" not in answers:
            return
        mask = pc.is_valid(answers["outputs"])
        if "status" in answers:
            mask = pc.and_kleene(mask, pc.equal(answers["status"], 200))
        if self.target.version is not None and "version" in answers:
            mask = pc.and_kleene(mask, pc.equal(answers["version"], self.target.version))
        selected = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))
        if not selected.any():
            return
        keep = pa.array(selected)
        outputs = answers["outputs"].filter(keep)
        endpoints = answers["endpoint"].filter(keep) if "endpoint" in answers else \
            pa.nulls(len(outputs), pa.string())
        windows = window[selected]
        if self.scan.prediction is not None:
            self._predictions(outputs, endpoints, windows)
        if self.feedback and "request_id" in answers:
            ids = answers["request_id"].filter(keep)
            labelled = np.flatnonzero(np.asarray(pc.fill_null(
                pc.is_in(ids, value_set=self._feedback_ids), False)
                .to_numpy(zero_copy_only=False)))
            performance = self.scan.performance
            assert performance is not None
            for i in labelled.tolist():
                predicted = self._parse(outputs[i].as_py(), endpoints[i].as_py())
                truth = _truth(self.feedback[ids[i].as_py()])
                if predicted is not None and truth is not None and \
                        len(predicted) == len(truth):
                    performance.add(int(windows[i]), predicted, truth)

    def _parse(self, text: str, endpoint: str | None) -> list[Any] | None:
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if endpoint in ("v2_infer", "grpc_infer"):  # V2 outputs, over REST or gRPC
            if self.target.postprocess:
                return None  # V2 answers tensors; the reference holds postprocess's output
            return preds.from_v2(answer, self.target.task, self.target.class_labels)
        return preds.from_invocations(answer)

    def _predictions(self, outputs: pa.Array, endpoints: pa.Array, windows: Array) -> None:
        sketch = self.scan.prediction
        assert sketch is not None
        flat = np.asarray(pc.fill_null(pc.and_kleene(
            pc.equal(endpoints, "invocations"), pc.match_substring_regex(outputs, _FLAT)),
            False).to_numpy(zero_copy_only=False))
        if flat.any():
            fast = self._fast(outputs.filter(pa.array(flat)), windows[flat], sketch)
            if not fast:
                flat[:] = False
        slow = np.flatnonzero(~flat)
        if slow.size == 0:
            return
        per_window: dict[int, list[Any]] = {}
        for i in slow.tolist():
            values = self._parse(outputs[i].as_py(), endpoints[i].as_py())
            if values is None:
                self.scan.prediction_skipped += 1
                continue
            per_window.setdefault(int(windows[i]), []).extend(values)
        for w, values in per_window.items():
            if isinstance(sketch, NumericSketch):
                sketch.add(w, np.array([_float(v) for v in values], dtype=np.float64))
            else:
                sketch.add(w, pa.array([None if v is None else preds.label(v)
                                        for v in values], pa.string()))

    def _fast(self, outputs: pa.Array, windows: Array, sketch: Sketch) -> bool:
        """Flat scalar lists, split as text (no JSON parse); False: use the slow path."""
        parts = pc.split_pattern(pc.utf8_slice_codeunits(outputs, 1, -1), ",")
        lengths = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        tokens = pc.list_flatten(parts)
        quoted = pc.starts_with(tokens, '"')
        if isinstance(sketch, NumericSketch):
            if pc.any(quoted).as_py():
                return False
            tokens = pc.if_else(pc.equal(tokens, "true"), "1", tokens)
            tokens = pc.if_else(pc.equal(tokens, "false"), "0", tokens)
            try:
                values: Any = pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return False
        else:
            unquoted = pc.replace_substring_regex(tokens, _TRAILING_ZEROS.pattern, "")
            values = pc.if_else(quoted, pc.utf8_slice_codeunits(tokens, 1, -1), unquoted)
        row_windows = np.repeat(windows, lengths)
        for w in np.unique(row_windows).tolist():
            picked = np.flatnonzero(row_windows == w)
            if isinstance(sketch, NumericSketch):
                sketch.add(w, values[picked] if picked.size != len(row_windows) else values)
            else:
                sketch.add(w, values.take(pa.array(picked))
                           if picked.size != len(row_windows) else values)
        return True

    def run(self) -> Scan:
        """Read every chunk; the filled sketches."""
        with ThreadPoolExecutor(max_workers=THREADS) as pool, \
                ThreadPoolExecutor(max_workers=1) as reader:
            chunks = self.chunks()
            ahead = reader.submit(next, chunks, None)
            while True:
                item = ahead.result()
                if item is None:
                    break
                ahead = reader.submit(next, chunks, None)
                self.add(item, pool)
        return self.scan


ANSWER_COLUMNS = ("version", "status", "endpoint", "outputs", "request_id")


@dataclass
class Values:
    """One feature's values in a chunk, flattened (requests' lists one after another)."""

    values: Array | pa.Array  # float64 numbers (nulls as NaN), or an Arrow array of text
    lengths: Array | None  # values per request; None: the request's logged rows

    def filter(self, keep: Array, rows: Array) -> Values:
        lengths = rows if self.lengths is None else self.lengths
        mask = np.repeat(keep, lengths)
        values = self.values[mask] if isinstance(self.values, np.ndarray) else \
            self.values.filter(pa.array(mask))
        return Values(values, None if self.lengths is None else self.lengths[keep])


@dataclass
class Chunk:
    """Requests of one or more segments, each column in one piece."""

    times: Array  # microseconds
    rows: Array  # logged rows per request (0 without inputs)
    features: dict[str, Values]
    answers: dict[str, pa.Array]

    def filter(self, keep: Array) -> Chunk:
        mask = pa.array(keep)
        return Chunk(self.times[keep], self.rows[keep],
                     {n: v.filter(keep, self.rows) for n, v in self.features.items()},
                     {n: a.filter(mask) for n, a in self.answers.items()})


class _ChunkBuilder:
    """Gathers record batches (whatever their feature sets) into one Chunk.

    Each feature's lists are flattened batch by batch (numbers straight to numpy) and
    joined once per chunk: cheaper than concatenating the ``inputs`` struct, which
    copies offsets and validity field by field."""

    def __init__(self, numeric: set[str], wanted: set[str]) -> None:
        self.numeric = numeric
        self.wanted = wanted
        self._reset()

    def _reset(self) -> None:
        self.requests = 0
        self.values = 0
        self._times: list[Array] = []
        self._rows: list[Array] = []
        self._features: dict[str, list[tuple[int, Any, Array | None]]] = {}
        self._answers: dict[str, list[tuple[int, pa.Array]]] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        names = batch.schema.names
        self._times.append(batch.column(names.index("time")).cast(pa.int64())
                           .to_numpy(zero_copy_only=False))
        rows = np.zeros(n, dtype=np.int64)
        if "inputs" in names:
            if "rows" in names:
                rows = np.nan_to_num(np.asarray(batch.column(names.index("rows")).to_numpy(
                    zero_copy_only=False), dtype=np.float64)).astype(np.int64)
            struct = batch.column(names.index("inputs"))
            if struct.null_count:
                rows[~np.asarray(struct.is_valid().to_numpy(zero_copy_only=False))] = 0
            total = int(rows.sum())
            for field, child in zip(struct.type, struct.flatten(), strict=True):
                if field.name not in self.wanted:
                    continue
                if child.offset == 0 and child.null_count == 0 and \
                        len(child.values) == total:
                    flat = child.values  # offsets 0..total: the values as they are
                else:
                    flat = child.flatten()  # the lists' values (null lists hold none)
                lengths = None if child.null_count == 0 and len(flat) == total else \
                    pc.fill_null(pc.list_value_length(child), 0).to_numpy(
                        zero_copy_only=False).astype(np.int64)
                values: Any = flat
                if field.name in self.numeric:
                    values = _numbers(flat)
                    if values is None:  # text where numbers belong: left out
                        values = np.empty(0)
                        lengths = np.zeros(n, dtype=np.int64)
                self._features.setdefault(field.name, []).append(
                    (self.requests, values, lengths))
        self._rows.append(rows)
        self.values += int(rows.sum())
        for name in ANSWER_COLUMNS:
            if name in names:
                self._answers.setdefault(name, []).append(
                    (self.requests, batch.column(names.index(name))))
        self.requests += n

    def build(self) -> Chunk:
        total = self.requests
        rows = np.concatenate(self._rows)
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in self._rows])])
        features = {}
        for name, parts in self._features.items():
            features[name] = self._join(name, parts, rows, offsets)
        chunk = Chunk(np.concatenate(self._times), rows, features,
                      {n: _concat(parts, total, parts[0][1].type)
                       for n, parts in self._answers.items()})
        self._reset()
        return chunk

    def _join(self, name: str, parts: list[tuple[int, Any, Array | None]], rows: Array,
              offsets: Array) -> Values:
        numeric = name in self.numeric
        covered = len(parts) == len(self._rows) and all(p[2] is None for p in parts)
        if covered:
            lengths = None
        else:  # some batches lack the feature or have null lists: explicit lengths
            lengths = np.zeros(len(rows), dtype=np.int64)
            for start, _, part_lengths in parts:
                batch = int(np.searchsorted(offsets, start, "right")) - 1
                stop = int(offsets[batch + 1])
                lengths[start:stop] = rows[start:stop] if part_lengths is None \
                    else part_lengths
        pieces = [p[1] for p in parts]
        if numeric:
            joined: Any = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        else:
            kinds = {piece.type for piece in pieces}
            if len(kinds) > 1:
                pieces = [_as_string(piece) for piece in pieces]
            joined = pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)
        return Values(joined, lengths)


def _as_string(values: pa.Array) -> pa.Array:
    try:
        return values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()],
                        pa.string())


def _concat(parts: list[tuple[int, pa.Array]], total: int, kind: pa.DataType) -> pa.Array:
    """Arrays placed at their offsets among ``total`` requests, nulls in the gaps (batches
    without that column)."""
    pieces: list[pa.Array] = []
    at = 0
    for offset, array in parts:
        if offset > at:
            pieces.append(pa.nulls(offset - at, kind))
        if array.type != kind:
            try:
                array = array.cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # the type changed
                array = pa.nulls(len(array), kind)  # between versions: left out
        pieces.append(array)
        at = offset + len(array)
    if at < total:
        pieces.append(pa.nulls(total - at, kind))
    return pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)


class _RowWindows:
    """Each value's window for a chunk's list columns (shared by features of one layout)."""

    def __init__(self, window: Array, rows: Array) -> None:
        self.window = window
        self.rows = rows  # each request's logged rows: its list length in every feature
        self._cache: dict[bytes, tuple[list[tuple[int, int, int]], Array | None]] = {}
        self._lock = threading.Lock()

    def runs(self, lengths: Array | None) -> tuple[list[tuple[int, int, int]], Array | None]:
        """(window, start, stop) runs over a feature's values (``lengths`` per request,
        None: the logged rows), and the reordering that makes each window contiguous
        (None when they already are)."""
        if lengths is None:
            lengths = self.rows  # the log writes every feature with the request's rows
        key = b"rows" if lengths is self.rows else lengths.tobytes()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = self._runs(lengths)
        with self._lock:
            self._cache[key] = found
        return found

    def _runs(self, lengths: Array) -> tuple[list[tuple[int, int, int]], Array | None]:
        total = int(lengths.sum())
        window = self.window
        order: Array | None = None
        if window.size and window.min() == window.max():
            runs = [(int(window[0]), 0, total)]
        else:
            per_value = np.repeat(window, lengths)
            change = np.flatnonzero(np.diff(per_value)) + 1
            if change.size >= len(np.unique(window)):  # interleaved windows: regroup
                order = np.argsort(per_value, kind="stable")
                per_value = per_value[order]
                change = np.flatnonzero(np.diff(per_value)) + 1
            starts = np.concatenate([[0], change]).astype(np.int64)
            stops = np.concatenate([change, [total]]).astype(np.int64)
            runs = [(int(per_value[a]), int(a), int(b))
                    for a, b in zip(starts.tolist(), stops.tolist(), strict=True) if b > a]
        return runs, order


def _numbers(values: pa.Array) -> Array | None:
    """An Arrow array as float64 numbers (nulls as NaN); None when it holds text."""
    kind = values.type
    if pa.types.is_boolean(kind):
        values = pc.cast(values, pa.float64())
        kind = values.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        array = values.to_numpy(zero_copy_only=False)  # nulls become NaN
        return np.asarray(array, dtype=np.float64)
    try:
        return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False),
                          dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _truth(text: str) -> list[Any] | None:
    """Ground truth as one scalar per row (a list, or a scalar for a one-row request)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, list):
        return [preds.scalar(v) for v in value]
    if isinstance(value, dict):  # {"ground_truth": [...]} or {"label": ...}
        inner = preds.from_invocations(value)
        return inner if inner is not None else [preds.scalar(value)]
    return [preds.scalar(value)]


__all__ = ["CategoricalSketch", "LogScanner", "NumericSketch", "Scan", "Target", "Windows"]
