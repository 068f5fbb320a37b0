"""Cost: the price table and what runs and services cost under it."""

from .prices import run_cost
from .service import cost_summary, run_costs, service_cost

__all__ = ["cost_summary", "run_cost", "run_costs", "service_cost"]
