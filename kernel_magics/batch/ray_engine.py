"""`ship run --engine ray`: each notebook run a Ray task.

:func:`map_on_ray` runs a function over items as Ray tasks and hands each result back
to the caller as it comes. `ship run` gives it the local engine's own step (runner.py:
the same ``python -m kernel_magics.batch.execute`` process with papermill and the same
``SHIP_*`` variables), so the kernel tracks and spools exactly as it does locally, and
`ship run` completes the runs afterwards as it always does (drains the spool, attaches
the executed notebooks). Each task asks Ray for one CPU (the kernel's); Ray runs as many
at once as the cluster has CPUs for, or ``parallel`` at most.

A task writes into the workspace (its output notebook, the spool), so every node must
see the workspace at the same path: a local Ray (the default: started for the batch,
shut down after it) or a cluster on a shared filesystem. Tasks see the driver's
``MLFLOW_*``, ``SHIP_*`` and ``AWS_*`` variables (:func:`forwarded_environment`) on top
of their own.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ValidationError

INSTALL = "pip install 'kernel-magics[ray]'"
FORWARDED = ("MLFLOW_", "SHIP_", "AWS_")
T = TypeVar("T")
R = TypeVar("R")


def available() -> bool:
    """Whether Ray is installed (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def require() -> Any:
    """The ``ray`` module; ValidationError saying what to install when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ValidationError(f"--engine ray needs Ray, which is not installed here "
                              f"({exc}): {INSTALL}.", field="engine") from None
    return ray


def forwarded_environment() -> dict[str, str]:
    """The driver's variables a task sees on top of its worker's own environment."""
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}


def _call(work: Callable[[T], R], item: T) -> R:
    """A task: ``work`` may be any picklable callable (Ray's remote takes functions)."""
    return work(item)


def map_on_ray(work: Callable[[T], R], items: list[T], *,
               on_done: Callable[[int, R | BaseException], None],
               address: str | None = None, parallel: int | None = None,
               num_cpus: float = 1.0) -> None:
    """``work(item)`` for each item as a Ray task (``address`` None: on a local Ray
    started for them and shut down after); ``on_done(index, result)`` in this process as
    each finishes, with the task's exception (a Ray error) when it failed."""
    ray = require()
    own = address is None
    if own:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local" if own else address, include_dashboard=False if own else None,
             log_to_driver=False, logging_level=logging.WARNING)
    try:
        task = ray.remote(num_cpus=num_cpus, max_retries=0)(_call)
        waiting = list(enumerate(items))
        running: dict[Any, int] = {}
        limit = parallel or len(items)
        while waiting or running:
            while waiting and len(running) < limit:
                index, item = waiting.pop(0)
                running[task.remote(work, item)] = index
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                index = running.pop(ref)
                try:
                    result: R | BaseException = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    result = exc
                on_done(index, result)
    finally:
        ray.shutdown()
