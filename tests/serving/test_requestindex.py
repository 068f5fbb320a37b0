"""Which request ids feedback may name: runs of counters read from the log, not the ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from kernel_magics.serving.predlog import LogLocation, Prediction, PredictionLog
from kernel_magics.serving.predlog import requests as requestindex
from kernel_magics.serving.predlog.compact import compact_log
from kernel_magics.serving.predlog.requests import CounterRuns, RequestIndex
from kernel_magics.serving.wire import sign

WORKER_A, WORKER_B = "0123456789ab", "ba9876543210"
TOP = 0xFFFFFFFFFF  # the 40-bit counter wraps after this


def rid(prefix: str, counter: int) -> str:
    """A request id as a server of this log signs it."""
    return sign(f"{prefix}{counter:012x}")


def write_segment(log: PredictionLog, ids: list[str]) -> None:
    for request_id in ids:
        log.append(Prediction(request_id, time.time(), "m", "1", "invocations", 200, 1.0, None,
                   None, None, b"[1]", None))
    assert log.flush() == len(ids)


def never_issued(_: str) -> bool:
    return False


def test_counter_runs_hold_holes_wraps_and_repeats_exactly() -> None:
    runs = CounterRuns()
    runs.add(WORKER_A, np.array([7, 5, 6, 6, 9, 10], np.int64))  # a hole at 8
    runs.add(WORKER_A, np.array([11, 12], np.int64))  # touches the last run: merged
    runs.add(WORKER_A, np.array([TOP - 1, TOP, 0, 1], np.int64))  # the counter wrapped
    runs.add(WORKER_B, np.array([5], np.int64))
    assert len(runs) == 5  # [5,7] [9,12] [TOP-1,TOP] [0,1] of A, [5] of B
    held = {5, 6, 7, 9, 10, 11, 12, TOP - 1, TOP, 0, 1}
    for counter in [*range(0, 20), TOP - 2, TOP - 1, TOP]:
        assert ((WORKER_A, counter) in runs) == (counter in held), counter
    assert (WORKER_B, 5) in runs and (WORKER_B, 6) not in runs
    assert ("ffffffffffff", 5) not in runs


def test_ids_of_other_shapes_are_skipped_when_read() -> None:
    runs = CounterRuns()
    runs.add_ids(pa.array([rid(WORKER_A, 1), None, "nope", rid(WORKER_A, 2).upper(),
                           rid(WORKER_A, 3) + "0", "g" * 32, rid(WORKER_B, 9)]))
    assert (WORKER_A, 1) in runs and (WORKER_B, 9) in runs
    assert (WORKER_A, 2) not in runs and len(runs) == 2
    runs.add_ids(pa.array([rid(WORKER_B, 20)], pa.large_string()))  # 64-bit offsets
    assert (WORKER_B, 20) in runs and len(runs) == 3
    sliced = pa.array([rid(WORKER_A, c) for c in range(10)]).slice(4, 3)  # an offset
    runs.add_ids(sliced)
    assert [(WORKER_A, c) in runs for c in range(10)] == \
        [False, True, False, False, True, True, True, False, False, False]


def test_other_workers_ids_are_known_from_the_log_and_kept_as_runs(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    first = [rid(WORKER_A, c) for c in range(TOP - 500, TOP + 1)]  # then it wraps
    second = [rid(WORKER_A, c) for c in range(0, 500)] + \
        [rid(WORKER_B, c) for c in range(1000, 1500)]
    lost = rid(WORKER_A, 500)  # issued, never logged (kill -9)
    third = [rid(WORKER_A, c) for c in range(501, 1000)]
    for ids in (first, second, third):
        write_segment(log, ids)
    index = RequestIndex(LogLocation(tmp_path), never_issued)
    assert all(index.known(i) for i in first + second + third)
    assert len(index.runs) == 4  # 2,000 ids: A before and after the wrap, A after the
    # lost id, B
    assert not index.known(lost)
    assert not index.known(rid(WORKER_A, 1000)) and not index.known(rid(WORKER_B, 999))
    assert not index.known(rid("ffffffffffff", 1))


def test_ids_no_server_hands_out_are_unknown_without_reading(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    write_segment(log, [rid(WORKER_A, 1)])
    index = RequestIndex(LogLocation(tmp_path), never_issued)
    for odd in ("nope", rid(WORKER_A, 1).upper(), rid(WORKER_A, 1)[:-1], ""):
        assert not index.known(odd)
    assert not index._scanned  # nothing was read for them
    assert index.known(rid(WORKER_A, 1)) and len(index._scanned) == 1


def test_segments_are_read_once_and_new_ones_when_needed(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    write_segment(log, [rid(WORKER_A, c) for c in range(10)])
    index = RequestIndex(LogLocation(tmp_path), never_issued)
    assert index.known(rid(WORKER_A, 3)) and not index.known(rid(WORKER_A, 10))
    write_segment(log, [rid(WORKER_A, c) for c in range(10, 20)])
    assert index.known(rid(WORKER_A, 15)) and len(index._scanned) == 2
    assert len(index.runs) == 1


def test_compaction_merges_segments_away_and_the_index_follows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requestindex, "_BATCH", 100)  # the compacted file in batches
    log = PredictionLog(tmp_path)
    for start in range(0, 1000, 250):
        write_segment(log, [rid(WORKER_A, c) for c in range(start, start + 250)])
    before = RequestIndex(LogLocation(tmp_path), never_issued)
    assert before.known(rid(WORKER_A, 0)) and len(before._scanned) == 4
    # segments are grouped by the hour in their names (written now): two hours on,
    # that hour is closed
    result = compact_log(tmp_path, older_than="5m",
                         now=datetime.now(UTC) + timedelta(hours=2))
    assert result.segments == 4
    write_segment(log, [rid(WORKER_A, 1000)])
    assert before.known(rid(WORKER_A, 1000))
    on_disk = {str(p) for p in (tmp_path / "predictions").rglob("*.parquet")}
    assert before._scanned == on_disk and len(on_disk) < 5  # merged-away ones forgotten
    after = RequestIndex(LogLocation(tmp_path), never_issued)
    assert all(after.known(rid(WORKER_A, c)) for c in range(0, 1001, 7))
    assert len(after.runs) == 1


def test_the_ids_servers_hand_out_have_the_shape_the_index_reads() -> None:
    from kernel_magics.serving.wire import (
        REQUEST_ID_LENGTH,
        new_request_id,
        new_response_id,
        split_request_id,
    )

    first, second = new_request_id(), new_request_id()
    assert len(first) == REQUEST_ID_LENGTH and len(new_response_id()) == REQUEST_ID_LENGTH
    one, two = split_request_id(first), split_request_id(second)
    assert one is not None and two is not None and one[0] == two[0]
    assert (two[1] - one[1]) & TOP == 1  # consecutive counters: one run
    runs = CounterRuns()
    runs.add_ids(pa.array([first, second]))
    assert one in runs and two in runs and len(runs) == 1


def test_without_a_log_only_own_ids_are_known() -> None:
    index = RequestIndex(None, lambda request_id: request_id == "mine")
    assert index.known("mine") and not index.known(rid(WORKER_A, 1))


def test_an_id_whose_hash_does_not_hold_is_unknown(tmp_path: Path) -> None:
    # The counters are sequential; the hash is what makes the next id unguessable.
    log = PredictionLog(tmp_path)
    write_segment(log, [rid(WORKER_A, c) for c in range(5)])
    index = RequestIndex(log.location, never_issued)
    assert index.known(rid(WORKER_A, 4))
    guessed = f"{WORKER_A}{4:012x}"
    for mac in ("00000000", "ffffffff", rid(WORKER_A, 5)[24:]):
        assert not index.known(guessed + mac)
    assert not index.known(guessed)  # an unsigned id of an older Ship is not taken
