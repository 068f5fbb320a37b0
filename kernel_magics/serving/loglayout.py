"""How one model version's inputs become typed columns of the prediction log.

Each logged request gets an ``inputs`` struct with one list per feature (one value per
row of the request), so DuckDB reads ``inputs.age`` as numbers, not JSON.

Every few milliseconds the log copies what requests queued into one rows x features
matrix (:meth:`FeatureLayout.gather`: all-numeric features, the common case) and lets
the requests go; the segment's struct is built once at flush (:meth:`assemble`): one
concatenate and one transpose, then two Arrow calls per feature, whatever the number of
requests.
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


class Rows(NamedTuple):
    """Logged inputs of consecutive records as one matrix."""

    values: NDArray  # rows x features, in schema order
    counts: NDArray | None  # int32 rows per record; None: one each


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
        self.uniform = len(set(self.dtypes)) == 1 and self.dtypes[0].kind in "fiu"

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

    def gather(self, items: Sequence[Inputs | None]) -> Rows | pa.StructArray:
        """The inputs of some records, for :meth:`assemble`: their rows x features matrix
        when every record has a numeric one (a copy: the records can go), else the
        struct column itself."""
        rows = self._uniform_rows(items)
        return rows if rows is not None else self._column(items)

    def assemble(self, pieces: list[Rows | pa.StructArray]) -> pa.Array:
        """One struct column from what :meth:`gather` returned, in order."""
        if all(isinstance(p, Rows) for p in pieces):
            matrices = cast("list[Rows]", pieces)
            return self._from_rows(Rows(
                np.concatenate([p.values for p in matrices]),
                None if all(p.counts is None for p in matrices) else
                np.concatenate([np.ones(len(p.values), np.int32) if p.counts is None
                                else p.counts for p in matrices])))
        return pa.concat_arrays([self._from_rows(p) if isinstance(p, Rows) else p
                                 for p in pieces])

    def _column(self, items: Sequence[Inputs | None]) -> pa.StructArray:
        """The struct column for any records (some without inputs, text features,
        columnar inputs): per record, one list of values per feature (null if none)."""
        kept = [x if x is not None and self.loggable(x) else None for x in items]
        counts = np.array([0 if x is None else x.rows for x in kept], dtype=np.int32)
        offsets = self._offsets(counts)
        mask = pa.array([x is None for x in kept], type=pa.bool_())
        present = [x for x in kept if x is not None]
        matrices = [m for m in map(self.matrix, present) if m is not None]
        if self.uniform and len(matrices) == len(present):
            values = np.concatenate(matrices) if matrices else \
                np.empty((0, len(self.names)), self.dtypes[0])
            columns = list(self._transpose(values))
        else:
            present = [x for x in items if isinstance(x, Inputs) and self.loggable(x)]
            columns = [np.concatenate([self._feature(x, j) for x in present]) if present
                       else np.empty(0) for j in range(len(self.names))]
        return self._struct(offsets, columns, mask)

    def _uniform_rows(self, items: Sequence[Inputs | None]) -> Rows | None:
        """The common case in one pass: every record has a numeric matrix (no nulls)."""
        if not self.uniform or not items:
            return None
        try:  # all in C: attribute access and identity checks mapped over the records
            found = list(map(_MATRIX, items))
        except AttributeError:  # a record without inputs
            return None
        if any(map(is_, found, repeat(None))):
            if not self.identity:
                return None
            present = cast("list[Inputs]", items)  # attrgetter raised on no record
            found = [m if m is not None else self.matrix(x)
                     for m, x in zip(found, present, strict=True)]
            if any(map(is_, found, repeat(None))):
                return None
        matrices: list[NDArray] = found
        values = np.concatenate(matrices)
        counts = None if len(values) == len(matrices) else \
            np.array([len(m) for m in matrices], dtype=np.int32)
        return Rows(values, counts)

    def _from_rows(self, rows: Rows) -> pa.StructArray:
        if rows.counts is None:  # one row per record: offsets 0..n
            offsets = pa.array(np.arange(len(rows.values) + 1, dtype=np.int32))
        else:
            offsets = self._offsets(rows.counts)
        return self._struct(offsets, list(self._transpose(rows.values)), None)

    def _transpose(self, rows: NDArray) -> NDArray:
        """rows x features -> features x rows, contiguous, in the log's dtype."""
        # cast first (contiguous), then transpose the narrower copy: measured fastest
        return np.ascontiguousarray(rows.astype(self.dtypes[0], copy=False).T)

    @staticmethod
    def _offsets(counts: NDArray) -> pa.Array:
        offsets = np.zeros(len(counts) + 1, dtype=np.int32)  # int32: no cast per feature
        np.cumsum(counts, dtype=np.int32, out=offsets[1:])
        return pa.array(offsets)

    def _struct(self, offsets: pa.Array, values: list[NDArray],
                mask: pa.Array | None) -> pa.StructArray:
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
