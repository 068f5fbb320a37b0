"""Cost: the price table and what runs and services cost under it."""

from .prices import run_cost

__all__ = ["run_cost"]
