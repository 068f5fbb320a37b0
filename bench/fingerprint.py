"""Benchmark: full-content data fingerprints, Ship against pandas' and MLflow's digests.

    .venv/bin/python bench/fingerprint.py [--gb 1.0]

On the same DataFrames (numeric columns totalling --gb GB; a string and a float column
with half as many rows), in one run:

- Ship: `kernel_magics.tracking.fingerprint.fingerprint` (XXH3-128 over every buffer);
- pandas: `pd.util.hash_pandas_object(df)` hashed to one digest (the usual way to
  fingerprint every row);
- MLflow: `mlflow.data.from_pandas(df).digest`, which hashes a sample of rows.

Each is timed (best of 3) and checked for whether it notices a change to the last value
only. The goal for Ship: well under a second per GB, and every change noticed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xxhash


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def ship_digest(df: pd.DataFrame) -> str:
    from kernel_magics.tracking.fingerprint import fingerprint

    fp = fingerprint("df", df)
    assert fp is not None
    return fp.digest


def pandas_digest(df: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(df, index=True).to_numpy()
    return xxhash.xxh3_128_hexdigest(hashed.tobytes())


def mlflow_digest(df: pd.DataFrame) -> str:
    import mlflow.data

    return str(mlflow.data.from_pandas(df).digest)


def frames(gb: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = 100
    rows = int(gb * 1e9 / 8 / columns)
    rng = np.random.default_rng(0)
    numeric = pd.DataFrame(rng.standard_normal((rows, columns)),
                           columns=[f"f{i}" for i in range(columns)])
    n = max(rows // 2, 1)
    mixed = pd.DataFrame({"city": pd.Series(rng.choice(["Lyon", "Oslo", "Lima", "Pune"], n),
                                            dtype="str"),
                          "x": rng.standard_normal(n)})
    return numeric, mixed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    numeric, mixed = frames(args.gb)
    peers = {"ship": ship_digest, "pandas hash_pandas_object": pandas_digest,
             "mlflow from_pandas": mlflow_digest}
    for label, df, column in (("numeric", numeric, "f99"), ("string+float", mixed, "city")):
        size = df.memory_usage(deep=True).sum() / 1e9
        print(f"\n{label}: {df.shape[0]:,} rows x {df.shape[1]} columns, {size:.2f} GB in memory")
        changed = df.copy()
        last = changed.index[-1]
        changed.loc[last, column] = changed.loc[last, column] + ("x" if column == "city" else 1.0)
        times: dict[str, float] = {}
        for name, fn in peers.items():
            seconds, digest = best_of(lambda fn=fn, df=df: fn(df))
            notices = digest != fn(changed)
            times[name] = seconds
            print(f"  {name:<28} {seconds:8.3f} s  {size / seconds:6.2f} GB/s  "
                  f"last-value change noticed: {'yes' if notices else 'NO'}")
        for name in list(peers)[1:]:
            print(f"  ratio {name} / ship: {times[name] / times['ship']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
