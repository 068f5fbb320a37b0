"""Resource metering for one cell: wall, CPU and GPU seconds, and peak memory, and
their price under the workspace's price table (``run_cost``).

CPU seconds come from ``os.times()`` (all threads of the kernel plus finished
child processes such as data-loader workers). Peak memory is the kernel's
high-water RSS during the cell: Linux lets a process reset its own peak by
writing 5 to ``/proc/self/clear_refs``; where that is not allowed, a sampler
thread reads the RSS every 20 ms instead. GPU seconds are allocation time
(wall time × GPUs the process has initialised), which is what a GPU is billed by.

    cost = cpu_s/3600 × cpu_core_hour + gpu_s/3600 × gpu_hour
         + peak_GB × wall_s/3600 × memory_gb_hour

The resources are measured; the money is always an estimate (list prices, and
memory billed at its peak), and every figure says so.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from ..workspace import PriceTable
from .record import Cost, Resources

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _rss_bytes(field: str) -> int:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _gpus_in_use() -> int:
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    try:
        if torch.cuda.is_initialized():
            return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - a broken CUDA setup must not fail the user's cell
        return 0
    return 0


class ResourceMeter:
    """Start before the cell, `stop()` after it."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        times = os.times()
        self._cpu = times.user + times.system + times.children_user + times.children_system
        self._hwm = _reset_peak()
        self._peak = _rss_bytes("VmRSS:")
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        if not self._hwm:
            self._sampler = threading.Thread(target=self._sample, name="ship-rss", daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, _rss_bytes("VmRSS:"))

    def stop(self) -> Resources:
        wall = time.perf_counter() - self._wall
        times = os.times()
        cpu = times.user + times.system + times.children_user + times.children_system - self._cpu
        self._stop.set()
        peak = _rss_bytes("VmHWM:") if self._hwm else max(self._peak, _rss_bytes("VmRSS:"))
        gpus = _gpus_in_use()
        return Resources(wall_s=round(wall, 6), cpu_s=round(max(cpu, 0.0), 6),
                         gpu_s=round(wall * gpus, 6), peak_memory_bytes=peak,
                         gpu_source=f"allocation: wall x {gpus} GPU(s)" if gpus else "none")


def run_cost(resources: Resources, prices: PriceTable) -> Cost:
    """The estimated price of one tracked cell."""
    hours = resources.wall_s / 3600
    amount = (resources.cpu_s / 3600 * prices.cpu_core_hour
              + resources.gpu_s / 3600 * prices.gpu_hour
              + resources.peak_memory_bytes / 1e9 * hours * prices.memory_gb_hour)
    basis = (f"estimate: {resources.cpu_s:.2f} CPU s x {prices.cpu_core_hour}/core-h"
             f" + {resources.gpu_s:.2f} GPU s x {prices.gpu_hour}/GPU-h"
             f" + peak memory x {prices.memory_gb_hour}/GB-h ({prices.currency})")
    return Cost(amount=round(amount, 8), currency=prices.currency, estimated=True, basis=basis)
