"""What the commands print besides their own text: JSON for scripts, and errors."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, NoReturn

import click


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON; dataclasses as dicts, anything else as its str."""
    def default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        return str(obj)

    click.echo(json.dumps(data, indent=2, default=default))


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
