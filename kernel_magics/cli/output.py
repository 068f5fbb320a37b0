"""What the commands print besides their own text: JSON for scripts, and errors."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from ..jsonable import dumps


def emit_json(data: Any) -> None:
    """Print ``data`` as indented, standard JSON (:mod:`..jsonable`)."""
    click.echo(dumps(data, indent=2))


def fail(message: str) -> NoReturn:
    """Print ``error: message`` and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
