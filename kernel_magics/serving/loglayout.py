"""How one model version's inputs become typed columns of the prediction log.

Each logged request gets an ``inputs`` struct with one list per feature (one value per
row of the request), so DuckDB reads ``inputs.age`` as numbers, not JSON.

Every few milliseconds the log copies what requests queued (:meth:`InputColumns.add`)
and lets the requests go. All-numeric inputs, the common case, are copied straight into
one feature-major buffer (``values[j, :rows]`` is feature j of every row since the last
segment), so the segment's struct (:meth:`InputColumns.array`) is made of slices of it:
no concatenate, no transpose. Once the segment is written the same buffer takes the
next segment's rows, so its memory is not allocated and faulted in anew each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, is_
from typing import Any, NamedTuple, cast

import numpy as np
import pyarrow as pa

from .inputs import Inputs, NDArray
from .schema import Schema

_MATRIX = attrgetter("matrix")
MIN_CAPACITY = 1024  # rows a feature-major buffer starts with
# A buffer's rows are this many values longer than its capacity: with a power-of-two
# width, the features of one record fall into the same cache set (copying 350 records
# of 64 features took 90 us instead of 38)
_PAD = 16


class FeatureLayout:
    """The ``inputs`` struct type of one model version, and how records' inputs become it."""

    def __init__(self, schema: Schema, identity: bool, base: list[pa.Field]) -> None:
        self.schema = schema
        self.identity = identity
        self.names = schema.feature_names
        self.dtypes = [np.dtype(object) if not f.numeric else
                       np.dtype(np.float64) if f.nullable and f.dtype[0] in "iub" else
                       np.dtype(f.dtype) for f in schema.features]
        types = [pa.from_numpy_dtype(d) if d.kind != "O" else pa.string() for d in self.dtypes]
        self.struct = pa.struct([pa.field(n, pa.list_(t))
                                 for n, t in zip(self.names, types, strict=True)])
        self.arrow_schema = pa.schema([*base, pa.field("inputs", self.struct)])
        # all-numeric features share one buffer, in the dtype of the rows x features
        # matrices the request path builds for them (None: text features, no buffer)
        self.buffer_dtype = np.result_type(*self.dtypes) \
            if self.dtypes and all(d.kind in "biuf" for d in self.dtypes) else None

    def matrix(self, inputs: Inputs) -> NDArray | None:
        """The rows x features matrix of an input, when it has one."""
        if inputs.matrix is not None:
            return inputs.matrix
        if inputs.tensors is not None and self.identity:
            return next(iter(inputs.tensors.values()))
        return None

    def loggable(self, inputs: Inputs | None) -> bool:
        """True when the input fits the typed feature columns."""
        return inputs is not None and (inputs.tensors is None or self.identity)

    def matrices(self, items: Sequence[Inputs | None]) -> list[NDArray | None] | None:
        """Each record's rows x features matrix of an all-numeric layout, or None for a
        record without typed inputs (a failed request; model tensors of a bundle with
        preprocess, logged as JSON). None for all when the layout has text features or
        a record's inputs are columns: those take :meth:`column`."""
        if self.buffer_dtype is None or not items:
            return None
        try:  # all in C: attribute access mapped over the records (the common case)
            found: list[NDArray | None] = list(map(_MATRIX, items))
        except AttributeError:  # a record without inputs
            found = [None if x is None else x.matrix for x in items]
        if not any(map(is_, found, repeat(None))):
            return found
        resolved: list[NDArray | None] = []
        for m, x in zip(found, items, strict=True):
            if m is None and x is not None and self.loggable(x):
                m = self.matrix(x)  # model tensors of an identity handler
                if m is None:
                    return None
            resolved.append(m)
        return resolved

    def column(self, items: Sequence[Inputs | None]) -> pa.StructArray:
        """The struct column for records whose inputs have no shared numeric matrix
        (text features, columnar inputs): per record, one list of values per feature
        (null if no typed inputs), gathered feature by feature."""
        kept = [x if x is not None and self.loggable(x) else None for x in items]
        counts = np.array([0 if x is None else x.rows for x in kept], dtype=np.int32)
        mask = pa.array([x is None for x in kept], type=pa.bool_())
        present = [x for x in kept if x is not None]
        columns = [np.concatenate([self._feature(x, j) for x in present]) if present
                   else np.empty(0) for j in range(len(self.names))]
        return self.struct_array(offsets(counts), columns, mask)

    def struct_array(self, offsets: pa.Array, values: Sequence[NDArray],
                     mask: pa.Array | None = None) -> pa.StructArray:
        """The struct column of per-feature values (contiguous ones are not copied)."""
        children = [pa.ListArray.from_arrays(offsets, self._arrow(v, d))
                    for v, d in zip(values, self.dtypes, strict=True)]
        return pa.StructArray.from_arrays(children, fields=list(self.struct), mask=mask)

    def _feature(self, inputs: Inputs, j: int) -> NDArray:
        m = self.matrix(inputs)
        if m is not None:
            return m[:, j]
        assert inputs.columns is not None
        return inputs.columns[self.names[j]]

    @staticmethod
    def _arrow(values: NDArray, dtype: np.dtype[Any]) -> pa.Array:
        if dtype.kind == "O":
            return pa.array([None if v is None else str(v) for v in values.tolist()],
                            type=pa.string())
        return pa.array(np.ascontiguousarray(values, dtype=dtype))


def offsets(counts: NDArray) -> pa.Array:
    """List offsets for per-record row counts."""
    result = np.zeros(len(counts) + 1, dtype=np.int32)  # int32: no cast per feature
    np.cumsum(counts, dtype=np.int32, out=result[1:])
    return pa.array(result)


class _Span(NamedTuple):
    """Consecutive records whose inputs are rows ``start:stop`` of the buffer."""

    start: int
    stop: int
    counts: NDArray | None  # int32 rows per record (0: no typed inputs); None: one each
    missing: NDArray | None  # bool per record: no typed inputs (null); None: none missing

    @property
    def records(self) -> int:
        return self.stop - self.start if self.counts is None else len(self.counts)


class InputColumns:
    """The ``inputs`` column of one model version's records until the next segment.

    Numeric inputs are written into a feature-major buffer as they are added. After the
    segment made of it is written, :meth:`release` hands the buffer back for the next
    segment's rows: its memory is then already mapped (no page faults) and warm."""

    def __init__(self, layout: FeatureLayout) -> None:
        self.layout = layout
        self._values: NDArray | None = None  # features x (capacity + _PAD), log dtype
        self._rows = 0
        self._pieces: list[_Span | pa.StructArray] = []
        self._lent: NDArray | None = None  # the buffer of the segment being written
        self._lent_rows = 0
        self._spare: NDArray | None = None  # free for the next rows

    def add(self, items: Sequence[Inputs | None]) -> None:
        """Copy the inputs of consecutive records (all, or none when it raises)."""
        found = self.layout.matrices(items)
        if found is None:
            self._pieces.append(self.layout.column(items))
            return
        n = len(found)
        missing = np.fromiter(map(is_, found, repeat(None)), bool, n) \
            if any(map(is_, found, repeat(None))) else None
        matrices = cast("list[NDArray]", found if missing is None else
                        [m for m in found if m is not None])
        start = self._rows
        stop = start + sum(map(len, matrices))
        if matrices:
            values = self._reserve(stop)
            # rows x features written into the feature-major buffer in one pass
            np.concatenate(matrices, out=values[:, start:stop].T, casting="unsafe")
        counts = None if missing is None and stop - start == n else np.fromiter(
            (0 if m is None else len(m) for m in found), np.int32, n)
        self._rows = stop
        self._pieces.append(_Span(start, stop, counts, missing))

    def array(self) -> pa.Array:
        """The struct column of everything added since the last call, made of slices of
        the buffer (which is lent to it until :meth:`release`); starts over."""
        pieces, self._pieces = self._pieces, []
        values, rows = self._values, self._rows
        self._values, self._rows = None, 0
        self._lent, self._lent_rows = values, rows
        if not pieces:
            return self.layout.column([])
        if all(isinstance(p, _Span) for p in pieces):
            spans = cast("list[_Span]", pieces)
            counts = None if all(s.counts is None for s in spans) else np.concatenate([
                np.ones(s.records, np.int32) if s.counts is None else s.counts
                for s in spans])
            missing = None if all(s.missing is None for s in spans) else np.concatenate([
                np.zeros(s.records, bool) if s.missing is None else s.missing
                for s in spans])
            return self._struct(values, _Span(0, rows, counts, missing))
        return pa.concat_arrays([self._struct(values, p) if isinstance(p, _Span) else p
                                 for p in pieces])

    def release(self) -> None:
        """The last :meth:`array` was written and let go: its buffer may take new rows
        (unless it is far larger than that segment needed)."""
        lent, self._lent = self._lent, None
        if lent is not None and lent.shape[1] <= 4 * max(self._lent_rows, MIN_CAPACITY):
            self._spare = lent

    def _struct(self, values: NDArray | None, span: _Span) -> pa.StructArray:
        if values is None:  # no record had typed inputs
            values = np.empty((len(self.layout.names), 0), self.layout.buffer_dtype)
        offsets_ = pa.array(np.arange(span.records + 1, dtype=np.int32)) \
            if span.counts is None else offsets(span.counts)
        return self.layout.struct_array(
            offsets_, list(values[:, span.start:span.stop]),
            None if span.missing is None else pa.array(span.missing))

    def _reserve(self, rows: int) -> NDArray:
        """The buffer, with room for ``rows`` rows (the spare one, or grown by doubling)."""
        values = self._values
        if values is None and self._spare is not None:
            values, self._spare = self._spare, None
        if values is None or values.shape[1] - _PAD < rows:
            capacity = max(rows, MIN_CAPACITY, 0 if values is None
                           else 2 * (values.shape[1] - _PAD))
            grown = np.empty((len(self.layout.names), capacity + _PAD),
                             self.layout.buffer_dtype)
            if values is not None:
                grown[:, :self._rows] = values[:, :self._rows]
            values = grown
        self._values = values
        return values
