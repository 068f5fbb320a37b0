"""Latency and size of the original model, its ONNX export and the int8 variant, side by side.

All variants are timed in this one process, one after another, with the same thread count
for torch, the BLAS/OpenMP pools (threadpoolctl) and onnxruntime, so the ratios compare
like with like. Each figure is the p50 / p99 of `repeats` timed calls after a warm-up,
for one row and for a batch of 32 rows, inputs prepared before the clock starts.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BATCH = 32
ORIGINAL = "original"
ONNX_FP32 = "onnx-fp32"
ONNX_INT8 = "onnx-int8"

# make_call(rows) returns a zero-argument function that predicts on `rows` rows.
CallFactory = Callable[[int], Callable[[], object]]


@dataclass
class Latency:
    """p50 and p99 of repeated calls, in milliseconds."""

    p50_ms: float
    p99_ms: float
    calls: int


@dataclass
class VariantProfile:
    """One variant's file size and latencies."""

    name: str
    size_bytes: int
    one_row: Latency
    batch: Latency


@dataclass
class ProfileReport:
    """Every variant measured under the same conditions."""

    threads: int
    repeats: int
    batch_size: int
    variants: list[VariantProfile] = field(default_factory=list)

    def get(self, name: str) -> VariantProfile | None:
        """The named variant ('original', 'onnx-fp32', 'onnx-int8'), if measured."""
        return next((v for v in self.variants if v.name == name), None)

    def speedup(self, slow: str, fast: str, *, batch: bool = False) -> float | None:
        """p50 of `slow` / p50 of `fast`: above 1 means `fast` is faster."""
        a, b = self.get(slow), self.get(fast)
        if a is None or b is None:
            return None
        x, y = (a.batch, b.batch) if batch else (a.one_row, b.one_row)
        return x.p50_ms / y.p50_ms if y.p50_ms > 0 else None


def time_calls(call: Callable[[], object], repeats: int) -> Latency:
    """Warm up, then time `repeats` calls with the garbage collector paused."""
    for _ in range(max(5, repeats // 10)):
        call()
    samples = np.empty(repeats, dtype=np.float64)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeats):
            start = time.perf_counter_ns()
            call()
            samples[i] = time.perf_counter_ns() - start
    finally:
        if enabled:
            gc.enable()
    ms = samples / 1e6
    return Latency(p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
                   calls=repeats)


def measure(variants: list[tuple[str, int, CallFactory]], *, repeats: int,
            threads: int, batch_size: int = BATCH) -> ProfileReport:
    """Profile each (name, size in bytes, call factory) under one thread setting."""
    report = ProfileReport(threads=threads, repeats=repeats, batch_size=batch_size)
    with fixed_threads(threads):
        for name, size, make_call in variants:
            report.variants.append(VariantProfile(
                name=name, size_bytes=size, one_row=time_calls(make_call(1), repeats),
                batch=time_calls(make_call(batch_size), repeats)))
    return report


@contextlib.contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """torch intra-op threads and the native BLAS/OpenMP pools at `threads`, then restored.

    onnxruntime sessions get the same count through SessionOptions when they are created.
    """
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=threads))
        except ImportError:  # scikit-learn brings threadpoolctl; without it BLAS keeps its pool
            pass
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)


def take(rows: Any, count: int) -> Any:
    """The first `count` rows of an array, DataFrame or dict of columns, repeated when there
    are fewer."""
    if isinstance(rows, dict):
        return {name: take(column, count) for name, column in rows.items()}
    length = len(rows)
    reps = -(-count // length)
    if hasattr(rows, "iloc"):
        import pandas as pd

        frame = pd.concat([rows] * reps, ignore_index=True) if reps > 1 else rows
        return frame.iloc[:count]
    array = np.asarray(rows)
    return (np.concatenate([array] * reps) if reps > 1 else array)[:count]
