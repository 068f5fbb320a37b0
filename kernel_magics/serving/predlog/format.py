"""The prediction log's contract: the record, the files, their schema and its version.

A log is a folder (local, ``file://``, ``s3://``, ``gs://``, anything pyarrow or fsspec
opens) of three streams and a key::

    LOG/predictions/date=YYYY-MM-DD/part-<UTC time>-<pid>-<seq>.parquet   a segment
    LOG/predictions/date=YYYY-MM-DD/compact-<YYYYmmddTHH>.parquet          an hour merged
    LOG/feedback/date=YYYY-MM-DD/…                                         the same names
    LOG/usage/date=YYYY-MM-DD/usage-<host>-<pid>-<start>[-<seq>].jsonl     usage.py
    LOG/request-key                                                        signs request ids
    …/.<name>.tmp                                                          being written

``date=`` is the UTC day the file was written. Readers list a stream's files, skip whole
days before the window they want, skip hidden files, and skip the segments of an hour
that already has its ``compact-`` file (:func:`stale_segments`). Every Parquet file
carries ``ship.log.version`` in its key-value metadata (:data:`SCHEMA_VERSION`).

``predictions``, one row per request (:data:`BASE_FIELDS`, then the typed inputs):

=============  ======================  =================================================
request_id     string                  32 hex digits (wire.py), also in ``x-request-id``
time           timestamp[us, UTC]      when the request arrived
model          string                  the model that answered (or failed)
version        string                  its bundle version
endpoint       string                  ``invocations``, ``v2_infer`` or ``grpc_infer``
status         int16                   the HTTP status answered (gRPC: the same
                                       error's HTTP status)
latency_ms     float64                 time spent in the server
rows           int32                   rows in the request (0: it did not parse)
client_id      string                  V2 ``id`` sent by the client
raw_inputs     string                  JSON: a body that did not parse
outputs        string                  JSON: what was answered
error          string                  the error message answered (status >= 400)
shadow         string                  a shadow's copy of a request (release.json): the
                                       version that answered it; null for answers
inputs         struct<f: list<T>, …>   one list per feature, one value per row
tensors        struct<t: list<T>, …>   model tensors (a bundle with ``preprocess`` that
                                       was sent tensors), flattened row-major
review         binary                  review scores (serving/review.py): a float32
                                       block, rows x (confidence, margin, entropy, ood,
                                       ood_feature's index, each class's probability),
                                       row-major (NaN: not known); null for errors and
                                       shadows' copies (:func:`decode_review`)
review_layout  string                  JSON: the scores, the classes' count, the
                                       features ``ood_feature`` indexes
=============  ======================  =================================================

``inputs`` and ``tensors`` are absent from segments of a version whose schema the
writer did not know; readers fill what a file lacks with nulls (DuckDB's
``union_by_name``). ``feedback``: request_id, time, model, ground_truth (JSON).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from ..inputs import Inputs
from ..review import SCORES
from ..schema import Schema

SCHEMA_VERSION = "2"
VERSION_KEY = b"ship.log.version"
STREAMS = ("predictions", "feedback", "usage")

BASE_FIELDS = (
    pa.field("request_id", pa.string()), pa.field("time", pa.timestamp("us", tz="UTC")),
    pa.field("model", pa.string()), pa.field("version", pa.string()),
    pa.field("endpoint", pa.string()), pa.field("status", pa.int16()),
    pa.field("latency_ms", pa.float64()), pa.field("rows", pa.int32()),
    pa.field("client_id", pa.string()), pa.field("raw_inputs", pa.string()),
    pa.field("outputs", pa.string()), pa.field("error", pa.string()),
    pa.field("shadow", pa.string()),
)
# all-numeric inputs as written by the server: a request's rows x features matrix,
# row-major little-endian, and its layout (JSON: the matrix dtype, each feature's name
# and dtype; one dictionary value per segment). Readers and compaction turn them into
# ``inputs`` (with_inputs).
MATRIX_FIELDS = (pa.field("matrix", pa.binary()),
                 pa.field("matrix_layout", pa.dictionary(pa.int32(), pa.string())))
FEEDBACK_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()), ("ground_truth", pa.string()),
], metadata={VERSION_KEY: SCHEMA_VERSION.encode()})
# snappy; dictionaries only for the low-cardinality columns; statistics only on `time`
# (readers prune row groups by it). Compaction recompresses with zstd.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy", "write_statistics": ["time"],
    "use_dictionary": ["model", "version", "endpoint", "status", "error", "client_id",
                       "matrix_layout", "review_layout"],
}

HOUR_FORMAT = "%Y%m%dT%H"  # an hour's key in file names, UTC
# group 1: the hour the segment was written in
PART_NAME = re.compile(r"^part-(\d{8}T\d{2})\d{4}\.\d{6}-\d+-\d+\.parquet$")
# group 1: the hour merged
COMPACT_NAME = re.compile(r"^compact-(\d{8}T\d{2})\.parquet$")


@dataclass(slots=True)
class Prediction:
    """One request, as the request path hands it to the log: what it already holds (the
    decoded inputs, the answer's JSON), nothing rendered. ``raw`` is a body that did not
    parse; ``outputs`` is JSON bytes, or anything :func:`render_json` renders."""

    request_id: str
    time: float  # epoch seconds
    model: str
    version: str
    endpoint: str
    status: int
    latency_ms: float
    client_id: str | None = None
    inputs: Inputs | None = None
    raw: Any = None
    outputs: Any = None
    error: str | None = None
    shadow: str | None = None  # a shadow's copy: the version that answered the client
    # the model's raw outputs (name -> array), which the writer scores for review
    model_outputs: dict[str, np.ndarray[Any, Any]] | None = None


def segment_name(written: datetime, seq: int) -> str:
    """A segment's name: when it was written (UTC), this process and its sequence number
    (so names never collide between processes, and sort by time)."""
    return f"part-{written:%Y%m%dT%H%M%S.%f}-{os.getpid()}-{seq:06d}.parquet"


def compact_name(hour: str) -> str:
    """The name of the file one hour (``HOUR_FORMAT``) is merged into."""
    return f"compact-{hour}.parquet"


def is_temporary(name: str) -> bool:
    """True for a file still being written (or one a killed writer left)."""
    return name.startswith(".") and name.endswith(".tmp")


def stale_segments(files: dict[str, datetime | None]) -> set[str]:
    """The segments among one folder's files (name -> modification time) that are
    already in their hour's ``compact-`` file: written before it (a compaction stopped
    between writing it and deleting them). A segment written after it (a host whose clock
    was behind) is not in it, and is kept."""
    merged = {m.group(1): when for name, when in files.items()
              if (m := COMPACT_NAME.match(name))}
    if not merged:
        return set()
    stale = set()
    for name in files:
        match = PART_NAME.match(name)
        if match is None or match.group(1) not in merged:
            continue
        compacted = merged[match.group(1)]
        if compacted is None or written_at(name) <= compacted:
            stale.add(name)
    return stale


def written_at(segment: str) -> datetime:
    """When a segment was written, from its name."""
    stamp = segment[len("part-"):].split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)


# -- typed inputs -------------------------------------------------------------------------
class Columns:
    """How one model version's inputs become a struct column: a list per name."""

    def __init__(self, names: list[str], dtypes: list[np.dtype[Any]]) -> None:
        self.names = names
        self.dtypes = dtypes
        self.struct = pa.struct([pa.field(n, pa.list_(_arrow_type(d)))
                                 for n, d in zip(names, dtypes, strict=True)])
        # all-numeric features share a rows x features matrix in this dtype
        self.matrix_dtype = np.result_type(*dtypes) \
            if dtypes and all(d.kind in "biuf" for d in dtypes) else None

    @classmethod
    def features(cls, schema: Schema) -> Columns:
        """The ``inputs`` struct: features; nullable integers as float64 (NaN: null)."""
        return cls(list(schema.feature_names), [
            np.dtype(object) if not f.numeric else
            np.dtype(np.float64) if f.nullable and f.dtype[0] in "iub" else np.dtype(f.dtype)
            for f in schema.features])

    @classmethod
    def tensors(cls, schema: Schema) -> Columns:
        """The ``tensors`` struct: the model's inputs, flattened."""
        return cls([t.name for t in schema.inputs],
                   [np.dtype(object) if t.numpy_dtype.kind in "OSU" else t.numpy_dtype
                    for t in schema.inputs])

    def array(self, values: list[dict[str, np.ndarray[Any, Any]] | None]) -> pa.StructArray:
        """The struct column of records' values (name -> 1-D array; None: null)."""
        present = [v for v in values if v is not None]
        lists = []
        for name, dtype in zip(self.names, self.dtypes, strict=True):
            counts = [0 if v is None else len(v[name]) for v in values]
            child = np.concatenate([v[name] for v in present]) if present \
                else np.empty(0, dtype)
            lists.append(pa.ListArray.from_arrays(_offsets(counts), _values(child, dtype)))
        mask = pa.array([v is None for v in values], pa.bool_())
        return pa.StructArray.from_arrays(lists, fields=list(self.struct), mask=mask)

    # -- matrices: all-numeric features, written as bytes, typed when read -------------
    @property
    def layout(self) -> str:
        """The ``matrix_layout`` of this version: the matrix dtype and each feature's."""
        assert self.matrix_dtype is not None
        return json.dumps({"dtype": self.matrix_dtype.name,
                           "features": [[n, d.name] for n, d in
                                        zip(self.names, self.dtypes, strict=True)]})

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def from_layout(layout: str) -> Columns:
        """The columns a ``matrix_layout`` describes."""
        doc = json.loads(layout)
        return Columns([n for n, _ in doc["features"]],
                       [np.dtype(d) for _, d in doc["features"]])

    def matrix_block(self, matrices: list[np.ndarray[Any, Any] | None]
                     ) -> np.ndarray[Any, Any]:
        """The records' matrices (None: none) one after another, in the matrix dtype."""
        assert self.matrix_dtype is not None
        present = [m for m in matrices if m is not None]
        return np.ascontiguousarray(np.concatenate(present), self.matrix_dtype) \
            if present else np.empty((0, len(self.names)), self.matrix_dtype)

    def matrix_columns(self, matrices: list[np.ndarray[Any, Any] | None],
                       block: np.ndarray[Any, Any] | None = None
                       ) -> tuple[pa.Array, pa.Array]:
        """``matrix`` and ``matrix_layout`` of records' rows x features matrices (None:
        null): one concatenation (``block``, when the caller made it), no per-feature
        work."""
        assert self.matrix_dtype is not None
        present = [m for m in matrices if m is not None]
        if block is None:
            block = self.matrix_block(matrices)
        width = len(self.names) * self.matrix_dtype.itemsize
        sizes = [0 if m is None else len(m) * width for m in matrices]
        offsets = np.zeros(len(sizes) + 1, np.int32)
        np.cumsum(sizes, out=offsets[1:])
        validity = None if len(present) == len(matrices) else \
            pa.array([m is not None for m in matrices], pa.bool_()).buffers()[1]
        blobs = pa.Array.from_buffers(pa.binary(), len(matrices), [
            validity, pa.py_buffer(offsets), pa.py_buffer(block.view(np.uint8).ravel())],
            null_count=len(matrices) - len(present))
        layouts = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(len(matrices), np.int32)), pa.array([self.layout]))
        return blobs, layouts

    def from_matrix(self, blobs: pa.Array) -> pa.StructArray:
        """The ``inputs`` struct of a ``matrix`` column written with this layout."""
        assert self.matrix_dtype is not None
        blobs = blobs.cast(pa.binary())
        offsets = np.frombuffer(blobs.buffers()[1], np.int32)[
            blobs.offset:blobs.offset + len(blobs) + 1]
        data = blobs.buffers()[2]
        raw = np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]] if data is not None \
            else np.empty(0, np.uint8)
        values = raw.view(self.matrix_dtype).reshape(-1, len(self.names))
        counts = np.diff(offsets) // (len(self.names) * self.matrix_dtype.itemsize)
        row_offsets = _offsets(counts.tolist())
        lists = [pa.ListArray.from_arrays(row_offsets, _values(values[:, j], d))
                 for j, d in enumerate(self.dtypes)]
        mask = pa.compute.invert(blobs.is_valid()) if blobs.null_count else None
        return pa.StructArray.from_arrays(lists, fields=list(self.struct), mask=mask)


def _offsets(counts: list[int]) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.array(offsets)


def with_inputs(data: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
    """``data`` with its ``matrix`` and ``matrix_layout`` columns (a segment's
    all-numeric inputs as written) replaced by the typed ``inputs`` struct; as it is
    when it has none. A batch or table of one segment: one layout."""
    names = data.schema.names
    if "matrix" not in names:
        return data
    blobs, layouts = data.column("matrix"), data.column("matrix_layout")
    if isinstance(blobs, pa.ChunkedArray):
        blobs, layouts = blobs.combine_chunks(), layouts.combine_chunks()
    found = {v for v in layouts.dictionary.to_pylist() if v is not None} \
        if pa.types.is_dictionary(layouts.type) else set(layouts.drop_null().to_pylist())
    if len(found) > 1:
        raise ValueError("prediction log: one segment holds two matrix layouts")
    keep = [i for i, n in enumerate(names) if n not in ("matrix", "matrix_layout")]
    kept = data.select(keep)
    if not found:  # no request had typed inputs
        return kept
    inputs = Columns.from_layout(found.pop()).from_matrix(blobs)
    return kept.append_column(pa.field("inputs", inputs.type), inputs)


def typed_schema(schema: pa.Schema, layouts: pa.ChunkedArray | pa.Array) -> pa.Schema:
    """A segment's schema as :func:`with_inputs` makes it, from its ``matrix_layout``
    column alone."""
    found = {v for v in layouts.to_pylist() if v is not None}
    keep = [f for f in schema if f.name not in ("matrix", "matrix_layout")]
    if len(found) != 1:  # none: no request had typed inputs
        return pa.schema(keep, metadata=schema.metadata)
    struct = Columns.from_layout(found.pop()).struct
    return pa.schema([*keep, pa.field("inputs", struct)], metadata=schema.metadata)


def decode_matrix(blob: bytes | None, layout: str | None) -> dict[str, list[Any]] | None:
    """One request's inputs, feature -> values, from its ``matrix`` and ``matrix_layout``."""
    if blob is None or layout is None:
        return None
    columns = Columns.from_layout(layout)
    assert columns.matrix_dtype is not None
    values = np.frombuffer(blob, columns.matrix_dtype).reshape(-1, len(columns.names))
    return {n: values[:, j].astype(d).tolist()
            for j, (n, d) in enumerate(zip(columns.names, columns.dtypes, strict=True))}


def _arrow_type(dtype: np.dtype[Any]) -> pa.DataType:
    return pa.string() if dtype.kind == "O" else pa.from_numpy_dtype(dtype)


def _values(values: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> pa.Array:
    if dtype.kind == "O":
        return pa.array([None if v is None else
                         v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                         for v in values.tolist()], pa.string())
    return pa.array(np.ascontiguousarray(values, dtype=dtype))


# -- review scores -------------------------------------------------------------------------
# Per request, its rows' scores as one float32 block, rows x (SCORES + classes),
# row-major, written as bytes as the matrix is (Parquet's nested lists cost more to write
# than the scores to compute); ``review_layout`` (JSON, dictionary-encoded) names the
# classes' count and the features ``ood_feature`` indexes.
REVIEW_FIELDS = (pa.field("review", pa.binary()), pa.field("review_layout", pa.string()))


def review_columns(counts: list[int], block: np.ndarray[Any, Any] | None, layout: str
                   ) -> tuple[pa.Array, pa.Array]:
    """``review`` and ``review_layout`` of records with ``counts`` scored rows each (0:
    null), ``block`` their rows' scores one after another (float32)."""
    width = 0 if block is None else block.shape[1] * 4
    sizes = [c * width for c in counts]
    offsets = np.zeros(len(sizes) + 1, np.int32)
    np.cumsum(sizes, out=offsets[1:])
    present = [c > 0 for c in counts]
    validity = None if all(present) else pa.array(present, pa.bool_()).buffers()[1]
    data = np.empty(0, np.uint8) if block is None else \
        np.ascontiguousarray(block, np.float32).view(np.uint8).ravel()
    blobs = pa.Array.from_buffers(pa.binary(), len(counts), [
        validity, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=present.count(False))
    layouts = pa.array([layout if c else None for c in counts], pa.string())
    return blobs, layouts


def decode_review(blob: bytes | None, layout: str | None) -> dict[str, list[Any]] | None:
    """One request's review scores, name -> one value per row (NaN: not known;
    ``ood_feature`` a name or None; ``probabilities`` rows x classes, flattened)."""
    if blob is None or layout is None:
        return None
    doc = json.loads(layout)
    block = np.frombuffer(blob, np.float32).reshape(-1, len(SCORES) + doc["classes"])
    return {**review_scores(block, doc),
            "probabilities": block[:, len(SCORES):].ravel().tolist()}


def review_scores(block: np.ndarray[Any, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A block's score columns by name (lists); ``ood_feature`` as feature names."""
    names = doc["features"]
    found = {name: block[:, j].tolist() for j, name in enumerate(SCORES)}
    found["ood_feature"] = [None if v != v or v < 0 else names[int(v)]
                            for v in found["ood_feature"]]
    return found


# -- JSON columns ---------------------------------------------------------------------------
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
