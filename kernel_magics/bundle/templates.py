"""Where Ship's templates are (nbconvert's for serve cells, Jinja2's for deployment
files): a module of its own, so rendering a manifest does not import nbconvert."""

from __future__ import annotations

import sys
from pathlib import Path


def templates_dir() -> Path:
    """Ship's templates: the checkout's `templates/`, else the installed shared data."""
    checkout = Path(__file__).resolve().parents[2] / "templates"
    if (checkout / "ship" / "conf.json").is_file():
        return checkout
    return Path(sys.prefix) / "share" / "jupyter" / "nbconvert" / "templates"
