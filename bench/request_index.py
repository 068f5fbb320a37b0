"""Benchmark: how a worker learns the request ids other workers answered.

    .venv/bin/python bench/request_index.py [--segments 100] [--per-segment 10000]

Feedback may name an id another worker (or an earlier run) answered; the worker then
reads the log's segments. This writes ``segments`` real segments (the log's own writer)
for two workers taking turns, each with its own counter, and reads them both ways: the
ids into a Python set (what ``RequestIndex`` did before) and ``RequestIndex.known`` (runs
of counters per worker). Prints the time to read, the memory held afterwards
(tracemalloc), their ratios, and the time of one lookup.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel_magics.serving.predlog import LogLocation, Prediction, PredictionLog, RequestIndex  # noqa: E402  # noqa: E402
from kernel_magics.serving.wire import sign  # noqa: E402

WORKERS = ("0123456789ab", "ba9876543210")


def request_id(segment: int, i: int, per_segment: int) -> str:
    """The i-th id of a segment: workers take turns, each counting on from its last."""
    return sign(f"{WORKERS[segment % 2]}{(segment // 2) * per_segment + i:012x}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--per-segment", type=int, default=10_000)
    args = parser.parse_args()
    segments, per = args.segments, args.per_segment
    folder = Path(tempfile.mkdtemp(prefix="ship-bench-index-"))
    try:
        log = PredictionLog(folder)
        for s in range(segments):
            for i in range(per):
                log.append(Prediction(request_id(s, i, per), time.time(), "m", "1", "invocations",
                           200, 1.0, None, None, None, b"[1]", None))
            log.flush()
        last = request_id(segments - 1, per - 1, per)
        files = sorted((folder / "predictions").rglob("*.parquet"))

        tracemalloc.start()
        started = time.perf_counter()
        ids: set[str] = set()
        for path in files:
            ids.update(pq.read_table(path, columns=["request_id"]).column(0).to_pylist())
        set_s = time.perf_counter() - started
        set_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert last in ids and len(ids) == segments * per
        del ids

        tracemalloc.start()
        started = time.perf_counter()
        index = RequestIndex(LogLocation(folder), lambda _: False)
        assert index.known(last)
        runs_s = time.perf_counter() - started
        runs_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()

        probes = [request_id(s, i, per) for s in range(segments) for i in range(0, per, 97)]
        started = time.perf_counter()
        assert all(map(index.known, probes))
        lookup_us = (time.perf_counter() - started) / len(probes) * 1e6
    finally:
        shutil.rmtree(folder)
    print(f"{segments * per:,} ids of {len(WORKERS)} workers in {segments} segments")
    print(f"  ids in a set (before):  {set_s:6.2f} s  {set_bytes / 1e6:9.3f} MB held")
    print(f"  RequestIndex (runs):    {runs_s:6.2f} s  {runs_bytes / 1e6:9.3f} MB held "
          f"({len(index.runs)} runs)")
    print(f"  ratio: {set_s / runs_s:.1f}x faster, {set_bytes / runs_bytes:,.0f}x less memory; "
          f"a lookup {lookup_us:.2f} us")


if __name__ == "__main__":
    main()
