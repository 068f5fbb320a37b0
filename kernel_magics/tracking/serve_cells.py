"""Serve cells: the notebook cells whose definitions go into the service.

A code cell is a serve cell when its first line is ``%%ship serve`` or its tags
include ``ship:serve``. The handler is those cells' source, in notebook order,
with the magic line removed. `undefined_names` checks the handler statically: a
function that refers to a name no serve cell defines would fail at request time.
"""

from __future__ import annotations

import builtins
import symtable
from typing import Any

SERVE_MAGIC = "%%ship serve"
SERVE_TAG = "ship:serve"
_ANONYMOUS = {"listcomp", "dictcomp", "setcomp", "genexpr", "lambda"}


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def is_serve_cell(cell: Any) -> bool:
    """Whether a notebook cell (nbformat node or dict) is marked for the service."""
    if cell.get("cell_type") != "code":
        return False
    if SERVE_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    first = _source(cell).lstrip().split("\n", 1)[0].strip()
    return first == SERVE_MAGIC or first.startswith(SERVE_MAGIC + " ")


def serve_source(cell: Any) -> str:
    """The cell's code without a leading `%%ship serve` line."""
    text = _source(cell)
    stripped = text.lstrip()
    if stripped.startswith(SERVE_MAGIC):
        return stripped.split("\n", 1)[1] if "\n" in stripped else ""
    return text


def undefined_names(source: str, filename: str = "handler.py") -> dict[str, list[str]]:
    """{function: [global names it reads that the module never binds]} (builtins allowed)."""
    table = symtable.symtable(source, filename, "exec")
    module_names = {s.get_name() for s in table.get_symbols()
                    if s.is_assigned() or s.is_imported() or s.is_namespace()}
    known = module_names | set(dir(builtins)) | {"__name__", "__file__", "__doc__"}
    missing: dict[str, list[str]] = {}

    def visit(scope: symtable.SymbolTable, label: str) -> None:
        for symbol in scope.get_symbols():
            if (symbol.is_global() and symbol.is_referenced()
                    and symbol.get_name() not in known):
                missing.setdefault(label, []).append(symbol.get_name())
        for child in scope.get_children():
            if child.get_name() in _ANONYMOUS:  # a comprehension reads on behalf of `label`
                visit(child, label)
            else:
                visit(child, child.get_name() if label == "<module>"
                      else f"{label}.{child.get_name()}")

    for symbol in table.get_symbols():
        if symbol.is_referenced() and not symbol.is_assigned() and not symbol.is_imported() \
                and symbol.get_name() not in known:
            missing.setdefault("<module>", []).append(symbol.get_name())
    for child in table.get_children():
        visit(child, child.get_name())
    return {k: sorted(set(v)) for k, v in missing.items()}
