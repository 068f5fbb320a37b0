"""Cost: what runs and services cost under the workspace's price table.

A run is priced when it is tracked (tracking/resources.py ``run_cost``); this stage reads
those figures back, and measures and prices services from their usage records.
"""

from .service import cost_summary, run_costs, service_cost

__all__ = ["cost_summary", "run_costs", "service_cost"]
