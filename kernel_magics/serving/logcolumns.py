"""Prediction-log records gathered column by column until the next segment is written.

A request's objects (its id, decoded inputs, encoded answer) held until the segment is
written cost the event loop more than what is done with them: while they are alive,
new requests allocate memory that is not in the CPU's caches. Measured with the
bench/serving.py load, records queued and then dropped unwritten cost: held 10 ms,
nothing measurable; 50 ms, about 1.7 % of throughput; 100 ms, 2 %; 1 s, 5 %. Each copy
has a fixed cost too (every 10 ms costs more than it saves; every 100 ms, 0.3-0.6 us of
CPU per record less than every 50 ms, for no more throughput). So every 100 ms
:meth:`Columns.add` copies the queued records into a few flat pieces per column and
lets the records go:

- a run (``_Run``) for a value repeated throughout (model, version, status, no error);
- a numpy array for numbers (time, latency);
- joined UTF-8 bytes and their lengths (``_Text``) for ids and encoded answers;
- the inputs' values, written into one feature-major buffer
  (:class:`~.loglayout.InputColumns`);
- an Arrow array for anything else (mixed statuses, error messages, odd inputs).

At flush time :meth:`Columns.table` makes each column one Arrow array, so the Arrow
calls (two per feature) happen once per segment, not once per copy.
"""

from __future__ import annotations

from itertools import repeat
from operator import is_
from typing import Any, NamedTuple, TypeAlias, cast

import numpy as np
import orjson
import pyarrow as pa

from .inputs import Inputs
from .loglayout import FeatureLayout, InputColumns

NDArray = np.ndarray[Any, Any]
BASE_FIELDS = [
    pa.field("request_id", pa.string()), pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("model", pa.string()), pa.field("version", pa.string()),
    pa.field("endpoint", pa.string()), pa.field("status", pa.int16()),
    pa.field("latency_ms", pa.float64()), pa.field("rows", pa.int32()),
    pa.field("client_id", pa.string()), pa.field("raw_inputs", pa.string()),
    pa.field("outputs", pa.string()), pa.field("error", pa.string()),
    pa.field("shadow", pa.string()),
]
_BASE_SCHEMA = pa.schema(BASE_FIELDS)


class Prediction(NamedTuple):
    """One logged request. ``inputs`` becomes typed feature columns; ``raw`` (a body that
    did not parse, or model tensors of a bundle with preprocess) and ``outputs`` become
    JSON (``bytes``: JSON already). The log queues plain tuples in this field order."""

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


class _Run(NamedTuple):
    """``length`` values, all ``value`` (a str, an int or None)."""

    value: Any
    length: int


class _Text(NamedTuple):
    """Values of a string column, their UTF-8 bytes joined."""

    data: bytes
    lengths: NDArray  # int32, bytes per value


Piece: TypeAlias = "_Run | _Text | NDArray | pa.Array"


def _default(value: Any) -> Any:
    for convert in ("tolist", "to_dict"):
        if hasattr(value, convert):
            return getattr(value, convert)()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def render_json(value: Any) -> str | None:
    """``value`` as JSON text for a log column (bytes: JSON already); never raises."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return orjson.dumps(value, default=_default,
                            option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except Exception as exc:  # a value the log cannot render must not lose the segment
        return orjson.dumps({"unrenderable": f"{type(exc).__name__}: {exc}"}).decode()


def _repeated(values: tuple[Any, ...], type_: pa.DataType) -> Piece:
    """A column that is usually one value throughout (model, status, no error)."""
    first = values[0]
    if values.count(first) == len(values) and (first is None or type(first) in (str, int)):
        return _Run(first, len(values))
    return pa.array(values, type_)


def _text(values: tuple[Any, ...]) -> Piece:
    """Strings (request ids) joined, when all are ASCII; else an Arrow array."""
    try:
        joined = "".join(values)
    except TypeError:  # a None or a non-str among them
        return pa.array(values, pa.string())
    if not joined.isascii():  # character counts are not byte counts
        return pa.array(values, pa.string())
    return _Text(joined.encode("ascii"), np.fromiter(map(len, values), np.int32, len(values)))


_BYTES = {bytes}
_BYTES_OR_NONE = {bytes, type(None)}


def _answers(values: tuple[Any, ...]) -> Piece:
    """The outputs column: bytes (JSON rendered for the answer) joined as they are (their
    UTF-8 is checked when the segment is assembled), anything else rendered as JSON (a
    ``str`` too: it becomes a JSON string)."""
    types = set(map(type, values))
    if types == _BYTES:  # not b"".join on anything else: it takes numpy arrays' memory
        return _Text(b"".join(values), np.fromiter(map(len, values), np.int32, len(values)))
    if types <= _BYTES_OR_NONE:
        try:
            return pa.array(values, pa.string())  # Arrow checks the UTF-8
        except pa.ArrowInvalid:
            pass
    return pa.array([render_json(v) for v in values], pa.string())


def _text_array(data: bytes, lengths: NDArray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, dtype=np.int32, out=offsets[1:])
    array = pa.Array.from_buffers(pa.string(), len(lengths),
                                  [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        array.validate(full=True)  # UTF-8: outputs arrive as bytes
    except pa.ArrowInvalid:
        return pa.array([data[a:b].decode("utf-8", "replace") for a, b in
                         zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)],
                        pa.string())
    return array


def _arrow(piece: Piece, type_: pa.DataType) -> pa.Array:
    if isinstance(piece, _Run):
        return pa.nulls(piece.length, type_) if piece.value is None else \
            pa.repeat(pa.scalar(piece.value, type_), piece.length)
    if isinstance(piece, _Text):
        return _text_array(piece.data, piece.lengths)
    if isinstance(piece, np.ndarray):
        return pa.array(piece, type_)
    return piece


def _column(pieces: list[Piece], type_: pa.DataType) -> pa.Array:
    """One Arrow array from a column's pieces, joined before conversion when they are
    all of one kind (one Arrow call per segment)."""
    kinds = set(map(type, pieces))
    if kinds == {_Run}:
        runs = cast("list[_Run]", pieces)
        if len({r.value for r in runs}) == 1:
            return _arrow(_Run(runs[0].value, sum(r.length for r in runs)), type_)
    elif kinds == {np.ndarray}:
        return pa.array(np.concatenate(cast("list[NDArray]", pieces)), type_)
    elif kinds == {_Text}:
        texts = cast("list[_Text]", pieces)
        return _text_array(b"".join(t.data for t in texts),
                           np.concatenate([t.lengths for t in texts]))
    return pa.concat_arrays([_arrow(p, type_) for p in pieces])


class Columns:
    """The requests of one model version since the last segment, column by column."""

    def __init__(self, layout: FeatureLayout | None) -> None:
        self.layout = layout
        self.schema = layout.arrow_schema if layout is not None else _BASE_SCHEMA
        self.rows = 0
        self._pieces: list[list[Piece]] = [[] for _ in BASE_FIELDS]
        self._inputs = InputColumns(layout) if layout is not None else None

    def add(self, items: list[Prediction]) -> None:
        """Copy records into the columns (all of them or, when one fails, none)."""
        layout = self.layout
        (ids, times, models, versions, endpoints, statuses, latencies, rows, clients,
         inputs, raws, outputs, errors) = zip(*items, strict=True)
        n = len(items)
        if raws.count(None) == n and layout is not None and layout.identity and \
                not any(map(is_, inputs, repeat(None))):
            raw: Piece = _Run(None, n)
        else:
            raw = pa.array([
                render_json(r) if r is not None else
                render_json(x.loggable(layout.schema if layout else None))
                if x is not None and (layout is None or not layout.loggable(x)) else None
                for r, x in zip(raws, inputs, strict=True)], pa.string())
        pieces: list[Piece] = [
            _text(ids), (np.array(times, dtype=np.float64) * 1e6).astype(np.int64),
            _repeated(models, pa.string()), _repeated(versions, pa.string()),
            _repeated(endpoints, pa.string()), _repeated(statuses, pa.int16()),
            np.array(latencies, dtype=np.float64), _repeated(rows, pa.int32()),
            _repeated(clients, pa.string()), raw, _answers(outputs),
            _repeated(errors, pa.string()), _Run(None, n),
        ]
        if self._inputs is not None:  # last: it keeps its copy only when all went well
            self._inputs.add(inputs)
        for column, piece in zip(self._pieces, pieces, strict=True):
            column.append(piece)
        self.rows += n

    def release(self) -> None:
        """The last :meth:`table` was written and let go: its memory may be reused."""
        if self._inputs is not None:
            self._inputs.release()

    def table(self) -> pa.Table:
        """All requests added since the last call, as one table (it uses memory of these
        columns until :meth:`release`); starts over."""
        pieces, self._pieces = self._pieces, [[] for _ in BASE_FIELDS]
        self.rows = 0
        # the inputs start over here too, before anything can raise: a segment that
        # fails to render is lost whole, never misaligned with the next one
        inputs = [self._inputs.array()] if self._inputs is not None else []
        arrays = [_column(p, field.type) for p, field in zip(pieces, BASE_FIELDS, strict=True)]
        return pa.Table.from_arrays([*arrays, *inputs], schema=self.schema)

