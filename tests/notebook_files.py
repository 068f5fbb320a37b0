"""Notebook files for tests that run them through `ship run` / `ship build` (papermill).

Imported as ``notebook_files``: pytest puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import nbformat

# ``ship(root, *args)``: the `ship` command run in ``root`` (tests/bundle's fixture).
Ship = Callable[..., subprocess.CompletedProcess[str]]


def write_notebook(path: Path, *cells: str | tuple[str, list[str]]) -> Path:
    """Write a python3 notebook of code cells: (source, tags) pairs; a str is untagged."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    nbformat.write(nb, path)
    return path
