"""Parameters for batch runs: `-p NAME VALUE` pairs and `--grid NAME=V1,V2` sweeps."""

from __future__ import annotations

import ast
import itertools
from typing import Any

from ..errors import ValidationError


def parse_value(text: str) -> Any:
    """A command-line value as Python: numbers, bools, None, lists... else the string itself."""
    lowered = text.strip()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(lowered)
    except (ValueError, SyntaxError):
        return text


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """`NAME=V1,V2,...` specs as {name: [values]}; each name once."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not values.strip():
            raise ValidationError(f"--grid {spec!r} is not NAME=V1,V2,...",
                                  field="grid", hint="Example: --grid lr=0.1,0.01")
        if name in grid:
            raise ValidationError(f"--grid names {name!r} twice; list all its values once.",
                                  field="grid")
        grid[name] = [parse_value(v) for v in values.split(",")]
    return grid


def expand(fixed: dict[str, Any], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """One parameter set per point of the grid (the cartesian product), fixed values added."""
    overlap = set(fixed) & set(grid)
    if overlap:
        raise ValidationError(f"{', '.join(sorted(overlap))} given both with -p and --grid; "
                              "use one.", field="grid")
    if not grid:
        return [dict(fixed)]
    names = list(grid)
    return [{**fixed, **dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*(grid[n] for n in names))]
