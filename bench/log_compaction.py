"""Benchmark: reading the prediction log before and after compaction.

    .venv/bin/python bench/log_compaction.py [--segments 3600] [--requests 20]

A serving process writes a segment a second whenever it logged anything, so an hour of
light traffic is 3,600 files. This writes ``segments`` real segments (the log's own
writer, ``requests`` single-row requests of 64 float32 features each), names them in the
hour that ended an hour ago, and times, before and after ``compact_log``: a plain DuckDB
query over the folder (what users type), ``read_log`` (``ship logs``), and the drift
scan itself (``monitor.scan.LogScanner`` over a day's window, all 64 features against
a reference profiled from 10,000 rows). Prints the times, their ratios, the
compaction's own time and the bytes on disk.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernel_magics.monitor.reference import build_profile  # noqa: E402
from kernel_magics.monitor.scan import LogScanner, Target, Windows  # noqa: E402
from kernel_magics.serving.inputs import Inputs  # noqa: E402
from kernel_magics.serving.predlog import (  # noqa: E402
    Prediction,
    PredictionLog,
    compact_log,  # noqa: E402
    read_log,  # noqa: E402
)
from kernel_magics.serving.predlog.format import PART_NAME  # noqa: E402
from kernel_magics.serving.schema import Feature, Schema, TensorSpec  # noqa: E402

NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)  # closed


def schema() -> Schema:
    features = tuple(Feature(f"pixel_{j}", "float32") for j in range(64))
    return Schema(features=features,
                  inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                  outputs=(TensorSpec("label", "INT64", (-1,)),))


def write(log_dir: Path, segments: int, requests: int) -> None:
    log = PredictionLog(log_dir)
    log.register("digits", "1", schema(), identity=True)
    rng = np.random.default_rng(0)
    for s in range(segments):
        for r in range(requests):
            log.append(Prediction(f"r-{s}-{r}", time.time(), "digits", "1", "invocations", 200, 1.0,
                       None, Inputs(rows=1, matrix=rng.integers(0, 17, (1, 64)).astype(
                           np.float32)), None, b"[3]", None))
        log.flush()
    log.close()
    for path in list(log_dir.rglob("part-*.parquet")):  # into a closed hour
        match = PART_NAME.match(path.name)
        assert match is not None
        folder = path.parent.parent / f"date={HOUR:%Y-%m-%d}"
        folder.mkdir(exist_ok=True)
        path.rename(folder / path.name.replace(match.group(1), f"{HOUR:%Y%m%dT%H}", 1))


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def readers(log_dir: Path) -> dict[str, Callable[[], object]]:
    names = schema().feature_names
    training = np.random.default_rng(1).integers(0, 17, (10_000, 64)).astype(np.float32)
    profiles = build_profile(training, names)
    day = 24 * 3600 * 10**6
    windows = Windows(end_us=int(time.time() * 1e6) + 60 * 10**6, length_us=day, count=1)
    target = Target(version="1", task="classification", class_labels=None, postprocess=False)

    def scan() -> int:
        found = LogScanner(log_dir, windows, profiles, None, target).run()
        assert int(found.requests.sum()) > 0, "the drift scan read no request"
        return int(found.requests.sum())

    glob = f"{log_dir}/predictions/*/*.parquet"
    return {
        "duckdb: count, avg(feature)": lambda: duckdb.sql(
            f"SELECT count(*), avg(inputs.pixel_3[1]) FROM read_parquet('{glob}')").fetchall(),
        "read_log (ship logs --limit 50)": lambda: read_log(log_dir, limit=50),
        "drift scan (LogScanner, 64 features)": scan,
    }


def size(log_dir: Path) -> int:
    return sum(p.stat().st_size for p in log_dir.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=3600)
    parser.add_argument("--requests", type=int, default=20, help="per segment")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp) / "log"
        started = time.perf_counter()
        write(log_dir, args.segments, args.requests)
        print(f"{args.segments} segments of {args.requests} requests written in "
              f"{time.perf_counter() - started:.1f} s ({size(log_dir) / 1e6:.1f} MB)")
        before = {name: timed(fn) for name, fn in readers(log_dir).items()}
        started = time.perf_counter()
        result = compact_log(log_dir)
        took = time.perf_counter() - started
        print(f"compaction: {took:.2f} s, {result.summary()} ({size(log_dir) / 1e6:.1f} MB)")
        after = {name: timed(fn) for name, fn in readers(log_dir).items()}
    print(f"\n{'reader':<34} {'segments s':>11} {'compacted s':>12} {'ratio':>7}")
    for name in before:
        print(f"{name:<34} {before[name]:>11.3f} {after[name]:>12.3f} "
              f"{before[name] / after[name]:>6.1f}x")


if __name__ == "__main__":
    main()
