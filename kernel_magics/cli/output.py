"""What the commands print besides their own text: JSON for scripts, and errors."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any, NoReturn

import click


def emit_json(data: Any) -> None:
    """Print ``data`` as indented, standard JSON: dataclasses as dicts, NaN and infinity
    as null (a hole in a logged feature; JSON has no NaN, and jq refuses it), anything
    else as its str."""
    click.echo(json.dumps(_plain(data), indent=2, default=str, allow_nan=False))


def _plain(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    return obj


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
