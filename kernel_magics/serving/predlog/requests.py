"""Which request ids feedback may name: those a prediction was answered with.

A process knows its own ids without storing anything (:func:`.wire.issued_here`). The
ids of other workers, and of earlier runs, are found in the prediction log's segments,
read when feedback names an id the index does not know yet (new segments only).

An id is a worker's 12-hex-digit prefix and a counter that goes up by one per
prediction (:func:`.wire.new_request_id`), so the ids of a log reduce to a few runs of
consecutive counters per prefix: one per worker and run, plus one more for each id
that was handed out and never logged (a prediction lost to ``kill -9``) or where the
40-bit counter wrapped. The index keeps those runs, not the ids: at 7,000 predictions
a second, a day of log is a few runs instead of 600 million strings held in memory.
Each id ends in a keyed hash of prefix and counter (:func:`.wire.sign`): an id named in
feedback must carry the right one, so the next counter cannot be guessed into ground
truth. Ids of any other shape, or whose hash does not hold, are no Ship server's: they
are unknown without reading.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..wire import ID_LENGTH, ID_PREFIX_LENGTH, REQUEST_ID_LENGTH, split_request_id
from .storage import LogLocation

NDArray = np.ndarray[Any, Any]
_BATCH = 131_072  # ids read at a time: an hour's compacted file is never read whole
# hex digit values by byte; 255 for a byte that is no lowercase hex digit
_HEX_VALUE = np.full(256, 255, np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_COUNTER_DIGITS = ID_LENGTH - ID_PREFIX_LENGTH
_PLACES = 16 ** np.arange(_COUNTER_DIGITS - 1, -1, -1, dtype=np.int64)


class CounterRuns:
    """Per prefix, disjoint runs ``[first, last]`` of counters, sorted by ``first``."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[list[int], list[int]]] = {}

    def __contains__(self, parts: tuple[str, int]) -> bool:
        prefix, counter = parts
        runs = self._runs.get(prefix)
        if runs is None:
            return False
        firsts, lasts = runs
        i = bisect.bisect_right(firsts, counter) - 1
        return i >= 0 and counter <= lasts[i]

    def __len__(self) -> int:
        """How many runs are kept (all prefixes)."""
        return sum(len(firsts) for firsts, _ in self._runs.values())

    def add(self, prefix: str, counters: NDArray) -> None:
        """Add counters (int64, any order, repeats allowed) of one prefix."""
        values = np.unique(counters)
        if not len(values):
            return
        breaks = np.flatnonzero(np.diff(values) != 1) + 1
        firsts = values[np.concatenate(([0], breaks))].tolist()
        lasts = values[np.concatenate((breaks - 1, [len(values) - 1]))].tolist()
        old_firsts, old_lasts = self._runs.get(prefix, ([], []))
        merged_firsts: list[int] = []
        merged_lasts: list[int] = []
        for first, last in sorted(zip(old_firsts + firsts, old_lasts + lasts, strict=True)):
            if merged_lasts and first <= merged_lasts[-1] + 1:  # overlaps or touches
                merged_lasts[-1] = max(merged_lasts[-1], last)
            else:
                merged_firsts.append(first)
                merged_lasts.append(last)
        self._runs[prefix] = (merged_firsts, merged_lasts)

    def add_ids(self, ids: pa.Array) -> None:
        """Add the ids of a string column; ids of another shape are ignored."""
        for prefix, counters in _split_ids(ids):
            self.add(prefix, counters)


def _split_ids(ids: pa.Array) -> Iterator[tuple[str, NDArray]]:
    """(prefix, counters) per prefix among ``ids``, parsed without a Python object per id."""
    if not pa.types.is_string(ids.type):  # large_string, string_view: 32-bit offsets
        ids = ids.cast(pa.string())
    # the log's own ids (genuine, their hash is not checked here); nulls dropped too
    ids = ids.filter(pc.equal(pc.binary_length(ids), REQUEST_ID_LENGTH))
    if not len(ids):
        return
    start = int(np.frombuffer(ids.buffers()[1], np.int32)[ids.offset])
    chars = np.frombuffer(ids.buffers()[2], np.uint8)[
        start:start + len(ids) * REQUEST_ID_LENGTH].reshape(-1, REQUEST_ID_LENGTH)[:, :ID_LENGTH]
    digits = _HEX_VALUE[chars]
    valid = (digits != 255).all(axis=1)
    if not valid.all():
        chars, digits = chars[valid], digits[valid]
    counters = digits[:, ID_PREFIX_LENGTH:].astype(np.int64) @ _PLACES
    prefixes = np.ascontiguousarray(chars[:, :ID_PREFIX_LENGTH]).view(
        f"S{ID_PREFIX_LENGTH}").ravel()
    unique, which = np.unique(prefixes, return_inverse=True)
    for i, prefix in enumerate(unique.tolist()):
        yield prefix.decode("ascii"), counters[which == i]


class RequestIndex:
    """Which request ids exist: this process's own (``issued``, which the id generator
    answers without storing anything per request), others as runs of counters read from
    the log's segments."""

    def __init__(self, log: LogLocation | None, issued: Callable[[str], bool]) -> None:
        self.log = log
        self.issued = issued
        self.runs = CounterRuns()
        self._scanned: set[str] = set()
        self._lock = threading.Lock()

    def known(self, request_id: str) -> bool:
        """True if this process issued the id or a flushed segment holds it (reads the
        segments not read yet when it is neither: call it off the event loop)."""
        if self.issued(request_id):
            return True
        parts = split_request_id(request_id)
        if parts is None:
            return False  # no Ship server hands out such an id
        if parts in self.runs:
            return True
        if self.log is None:
            return False
        with self._lock:
            if parts not in self.runs:  # another thread may have read it meanwhile
                self._read_new_segments()
        return parts in self.runs

    def _read_new_segments(self) -> None:
        assert self.log is not None
        listed = set(self.log.files("predictions"))
        self._scanned &= listed  # forget segments compaction has merged away
        for path in sorted(listed - self._scanned):
            try:
                with self.log.open(path) as source:
                    for batch in pq.ParquetFile(source).iter_batches(
                            batch_size=_BATCH, columns=["request_id"]):
                        self.runs.add_ids(batch.column(0))
            except (OSError, pa.ArrowInvalid):
                continue  # removed by compaction meanwhile; the next call lists again
            self._scanned.add(path)
