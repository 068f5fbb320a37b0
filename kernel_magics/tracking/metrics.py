"""Metrics: numeric scalars the cell computed, and step series from `ship.log`.

A candidate name (see source.py) becomes a metric when, after the cell, its value
is a finite real number: ``int``, ``float``, a NumPy scalar or 0-d array, or a
one-element torch tensor. Booleans are not metrics. ``--metrics a,b`` replaces
the rule with exactly those names (an unknown or non-numeric name is an error).
"""

from __future__ import annotations

import json
import math
import numbers
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import ValidationError


def as_scalar(value: Any) -> float | None:
    """`value` as a finite float when it is a real numeric scalar, else None."""
    if isinstance(value, bool):
        return None
    result = float(value) if isinstance(value, numbers.Real) else _array_scalar(value)
    if result is None:
        return None
    return result if math.isfinite(result) else None


def _array_scalar(value: Any) -> float | None:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray | np.generic):
        if value.size != 1 or value.ndim != 0 or value.dtype.kind not in "iuf":
            return None
        return float(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            return None
        return float(value.detach().cpu().item())
    return None


def collect(namespace: Mapping[str, Any], candidates: Iterable[str],
            only: list[str] | None, limit: int) -> tuple[dict[str, float], list[str]]:
    """Metrics from the namespace after the cell, and the names beyond `limit`."""
    if only is not None:
        metrics: dict[str, float] = {}
        for name in only:
            if name not in namespace:
                raise ValidationError(f"--metrics names {name!r}, which the cell did not define.",
                                      field="metrics", hint="Check the spelling.")
            value = as_scalar(namespace[name])
            if value is None:
                raise ValidationError(
                    f"--metrics names {name!r}, which is {type(namespace[name]).__name__}, "
                    "not a finite number.", field="metrics")
            metrics[name] = value
        return metrics, []
    found: dict[str, float] = {}
    for name in candidates:
        if name in namespace:
            value = as_scalar(namespace[name])
            if value is not None:
                found[name] = value
    names = list(found)
    return {n: found[n] for n in names[:limit]}, names[limit:]


class StepLog:
    """Appends `ship.log(step=..., **values)` calls to the record's steps.jsonl.

    Lines are written unbuffered-ish (no fsync): a kernel crash keeps what was
    logged, and a call costs microseconds, so it is fine inside training loops.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None  # opened on the first call
        self._closed = False
        self._lock = threading.Lock()
        self.count = 0

    def log(self, step: int | None, values: Mapping[str, Any]) -> None:
        clean: dict[str, float] = {}
        for key, value in values.items():
            number = as_scalar(value)
            if number is None:
                raise ValidationError(
                    f"ship.log({key}=...) got {type(value).__name__}; pass a finite number.",
                    field=key)
            clean[key] = number
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise ValidationError(f"ship.log(step=...) must be an int, got {step!r}.",
                                  field="step")
        line = json.dumps({"t": int(time.time() * 1000), "step": step, "values": clean})
        with self._lock:
            if self._closed:
                raise ValidationError("ship.log() was called after its tracked cell ended.")
            if self._fh is None:
                # Kept open across calls (closed by close()); line-buffered, no fsync.
                self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._fh.write(line + "\n")
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_steps(path: Path) -> list[tuple[int, int, str, float]]:
    """(timestamp_ms, step, key, value) rows from a steps.jsonl; auto-numbered when no step."""
    rows: list[tuple[int, int, str, float]] = []
    counters: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return rows
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line after a crash
        for key, value in entry["values"].items():
            step = entry["step"]
            if step is None:
                step = counters.get(key, 0)
            counters[key] = step + 1
            rows.append((entry["t"], step, key, value))
    return rows
