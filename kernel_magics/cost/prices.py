"""Turning measured resources into money with the workspace price table.

    cost = cpu_s/3600 × cpu_core_hour + gpu_s/3600 × gpu_hour
         + peak_GB × wall_s/3600 × memory_gb_hour

The resources are measured; the money is always an estimate (list prices, and
memory billed at its peak), and every figure says so.
"""

from __future__ import annotations

from ..tracking.record import Cost, Resources
from ..workspace import PriceTable


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
