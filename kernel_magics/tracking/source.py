"""Static reading of a cell: its parameters, the names it binds and the names it reads.

The rules (documented in docs/tracking.md):

- A **param** is a name every one of whose assignments in the cell is a literal
  (number, string, bool, None, or a list/tuple/set/dict of literals, negative
  numbers included), at any depth outside function and class bodies.
- A **metric candidate** is any other name bound by an assignment (``=``, ``+=``,
  annotated, walrus) outside function and class bodies; loop and comprehension
  variables are not candidates. Whether it becomes a metric depends on its value
  after the cell (see metrics.py).
- A **read** is a name the cell loads anywhere, function bodies included.
  Reads split in two for data fingerprints: **inputs**, read before the cell
  binds them (so their value from before the cell is what was read), and
  **produced** data, bound by the cell outside any loop and read afterwards
  (fingerprinted as the cell leaves them). Names bound only inside loops
  (batches, shuffles) are temporaries and are not fingerprinted.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAPERMILL_MARKER = "# Parameters"


@dataclass
class CellAnalysis:
    """What the cell assigns and reads, by name."""

    params: dict[str, Any] = field(default_factory=dict)
    assigned: list[str] = field(default_factory=list)
    loop_vars: set[str] = field(default_factory=set)
    reads: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    produced: list[str] = field(default_factory=list)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


class _Visitor(ast.NodeVisitor):
    """Visits in evaluation order (a value before its targets) to see what is read first."""

    def __init__(self) -> None:
        self.literal: dict[str, list[tuple[bool, Any]]] = {}
        self.order: list[str] = []
        self.loop_vars: set[str] = set()
        self.reads: list[str] = []
        self.first_event: dict[str, str] = {}  # name -> "load" | "store"
        self.bound_outside_loops: set[str] = set()
        self._depth = 0  # >0 inside function/class bodies
        self._loops = 0  # >0 inside for/while bodies

    def _bind(self, name: str, value: ast.expr | None) -> None:
        if self._depth:
            return
        self.first_event.setdefault(name, "store")
        if not self._loops:
            self.bound_outside_loops.add(name)
        if name not in self.literal:
            self.literal[name] = []
            self.order.append(name)
        self.literal[name].append(_literal(value) if value is not None else (False, None))

    def _bind_targets(self, target: ast.expr, value: ast.expr | None) -> None:
        names = _target_names(target)
        single = len(names) == 1 and isinstance(target, ast.Name)
        for name in names:
            self._bind(name, value if single else None)
        # Subscript/attribute targets (df["x"] = ...) read their base object.
        if not isinstance(target, ast.Name | ast.Tuple | ast.List | ast.Starred):
            self.visit(target)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                if not isinstance(elt, ast.Name | ast.Starred):
                    self.visit(elt)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self._bind_targets(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._bind_targets(node.target, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        for name in _target_names(node.target):
            self._load(name)
            self._bind(name, None)
        if not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id, None)

    def _loop(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        for name in _target_names(node.target):
            self.first_event.setdefault(name, "store")
            if not self._depth:
                self.loop_vars.add(name)
        self._loops += 1
        for child in [*node.body, *node.orelse]:
            self.visit(child)
        self._loops -= 1

    visit_For = _loop
    visit_AsyncFor = _loop

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self._loops += 1
        for child in [*node.body, *node.orelse]:
            self.visit(child)
        self._loops -= 1

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.iter)
        for name in _target_names(node.target):
            # Local to the comprehension (Python 3): it never binds the cell's name, so it
            # must not turn a same-named param (`lr = 0.1`, `{lr: ... for lr in grid}`) off.
            self.first_event.setdefault(name, "store")
        for condition in node.ifs:
            self.visit(condition)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        for generator in node.generators:
            self.visit(generator)
        self.visit(node.elt)

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_GeneratorExp = _comprehension

    def visit_DictComp(self, node: ast.DictComp) -> None:
        for generator in node.generators:
            self.visit(generator)
        self.visit(node.key)
        self.visit(node.value)

    def _scope(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = _scope
    visit_AsyncFunctionDef = _scope
    visit_ClassDef = _scope
    visit_Lambda = _scope

    def _load(self, name: str) -> None:
        self.first_event.setdefault(name, "load")
        if name not in self.reads:
            self.reads.append(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._load(node.id)


def analyse(source: str) -> CellAnalysis:
    """Params, bound names and read names of Python `source` (IPython syntax removed)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return CellAnalysis()
    visitor = _Visitor()
    visitor.visit(tree)
    params: dict[str, Any] = {}
    assigned: list[str] = []
    for name in visitor.order:
        bindings = visitor.literal[name]
        if name.startswith("_"):
            continue
        if name in visitor.loop_vars:
            continue  # a loop variable is neither a param nor a metric, even if also assigned
        if all(ok for ok, _ in bindings):
            params[name] = bindings[-1][1]
        else:
            assigned.append(name)
    inputs = [n for n in visitor.reads if visitor.first_event.get(n) == "load"]
    produced = [n for n in visitor.reads if visitor.first_event.get(n) == "store"
                and n in visitor.bound_outside_loops and n not in visitor.loop_vars]
    return CellAnalysis(params=params, assigned=assigned, loop_vars=visitor.loop_vars,
                        reads=visitor.reads, inputs=inputs, produced=produced)


def papermill_parameters(history: list[str]) -> dict[str, Any]:
    """Parameters papermill injected into this kernel, read from its `# Parameters` cell."""
    for cell in reversed(history):
        if cell.lstrip().startswith(PAPERMILL_MARKER):
            return analyse(cell).params
    return {}


_tagged_cache: dict[Path, tuple[float, list[str]]] = {}


def tagged_parameter_names(notebook: Path) -> list[str]:
    """Names assigned in the notebook's cells tagged `parameters` (papermill's convention).

    Cached per file modification time: parsing a large saved notebook costs more
    than the rest of the capture.
    """
    try:
        mtime = notebook.stat().st_mtime
    except OSError:
        return []
    cached = _tagged_cache.get(notebook)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    names = _tagged_names(notebook)
    _tagged_cache[notebook] = (mtime, names)
    return names


def _tagged_names(notebook: Path) -> list[str]:
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return []
    names: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get(
                "tags", []):
            continue
        text = cell.get("source", "")
        names += list(analyse(text if isinstance(text, str) else "".join(text)).params)
    return names


def is_param_value(value: Any) -> bool:
    """Whether a runtime value is simple enough to log as a param (what a literal can build)."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple | set):
        return all(is_param_value(v) for v in value)
    if isinstance(value, dict):
        return all(is_param_value(k) and is_param_value(v) for k, v in value.items())
    return False


def format_param(value: Any) -> str:
    """A param value as MLflow stores it: strings bare, everything else as Python repr."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
