"""The package's layout holds what docs/architecture.md says of it.

- No import cycles between the parts of ``kernel_magics`` (the stage packages tracking,
  export, bundle, serving, monitor, cost, batch, release, server, cli, ... and the
  top-level modules), nor between the modules of any one package.
- Core code imports neither IPython nor ipywidgets nor tornado nor jupyter_server; only
  the adapters do (the magics, the notebook display, the CLI, the REST handlers, and the
  package's ``__init__`` with the Jupyter entry points).

Every import counts, wherever it is written: at the top, inside a function, or under
``if TYPE_CHECKING``; an import hidden in a function is a dependency all the same.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "kernel_magics"
# The adapters: they parse input, call a core function and map errors (DESIGN.md). The
# package's own __init__ (the Jupyter entry points) is one too.
ADAPTERS = tuple(f"{PACKAGE}.{name}" for name in ("magics", "display", "cli", "server"))
UI_FRAMEWORKS = ("IPython", "ipykernel", "ipywidgets", "tornado", "jupyter_server")


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported (``path`` relative to the root)."""

    importer: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file of every module of ``package`` under ``root``; a package's
    ``__init__.py`` is named like the package."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if not all(p.isidentifier() for p in parts):
            continue  # not importable (e.g. a bundled front end's files)
        if any(not (root.joinpath(*parts[:i]) / "__init__.py").is_file()
               for i in range(1, len(parts))):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(root: Path, package: str = PACKAGE) -> list[Import]:
    """Every import in ``package``'s modules, relative ones resolved; ``from X import y``
    counts as an import of the module ``X.y`` where there is one, else of ``X``."""
    known = modules(root, package)
    found: list[Import] = []
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source
                           for a in node.names]
            for target in dict.fromkeys(targets):
                found.append(Import(importer=name, target=target,
                                    path=path.relative_to(root), line=node.lineno))
    return found


def _child(package: str, module: str) -> str | None:
    """The direct child of ``package`` that holds ``module`` (the package itself for its
    ``__init__``), or None outside ``package``."""
    if module == package:
        return package
    if not module.startswith(package + "."):
        return None
    return f"{package}.{module[len(package) + 1:].split('.')[0]}"


def cycles(package: str, edges: list[Import]) -> list[list[Import]]:
    """Import cycles between the direct children of ``package`` (its modules, and its
    sub-packages taken whole): the imports that make up each strongly connected group."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for edge in edges:
        source, target = _child(package, edge.importer), _child(package, edge.target)
        if source is None or target is None or source in (target, package):
            continue  # a package's __init__ gathering its own modules is no cycle
        graph.setdefault(source, {}).setdefault(target, []).append(edge)
    groups = _strongly_connected(graph)
    return [[e for source in sorted(group) for target, found in sorted(graph[source].items())
             if target in group for e in found] for group in groups if len(group) > 1]


def _strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[set[str]]:
    """Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def packages(root: Path, package: str = PACKAGE) -> list[str]:
    """``package`` and every package below it."""
    return sorted(name for name, path in modules(root, package).items()
                  if path.name == "__init__.py")


def _report(found: list[list[Import]]) -> str:
    return "\n\n".join("cycle:\n  " + "\n  ".join(map(str, group)) for group in found)


def _is_adapter(module: str) -> bool:
    return module == PACKAGE or any(module == a or module.startswith(a + ".")
                                    for a in ADAPTERS)


def ui_imports(root: Path, package: str = PACKAGE) -> Iterator[Import]:
    """Imports of IPython, ipywidgets, tornado or jupyter_server outside the adapters."""
    for edge in imports(root, package):
        if edge.target.split(".")[0] in UI_FRAMEWORKS and not _is_adapter(edge.importer):
            yield edge


# -- the package -------------------------------------------------------------------------
@functools.cache
def _ours() -> list[Import]:
    return imports(ROOT)


def test_no_import_cycle_between_stages() -> None:
    """Stage packages (and top-level modules) import each other in one direction only."""
    found = cycles(PACKAGE, _ours())
    assert not found, _report(found)


@pytest.mark.parametrize("package", [p for p in packages(ROOT) if p != PACKAGE])
def test_no_import_cycle_between_modules_of_a_package(package: str) -> None:
    found = cycles(package, _ours())
    assert not found, _report(found)


def test_core_stages_import_no_notebook_or_web_framework() -> None:
    found = list(ui_imports(ROOT))
    assert not found, "only the adapters (" + ", ".join(ADAPTERS) + ") may:\n  " + \
        "\n  ".join(map(str, found))


def test_the_adapters_exist() -> None:
    """An adapter renamed away would exempt nothing and hide nothing: each one is there."""
    known = modules(ROOT)
    for adapter in ADAPTERS:
        assert adapter in known, f"{adapter} is listed as an adapter but is not a module"


# -- the checks themselves, on a small package -------------------------------------------
FAKE = {
    "kernel_magics/__init__.py": "def load():\n    from IPython import get_ipython\n",
    "kernel_magics/magics.py": "from IPython.core.magic import Magics\n",
    "kernel_magics/server/__init__.py": "import tornado.web\n",
    "kernel_magics/workspace.py": "from jupyter_server.utils import url_path_join\n",
    # a package's __init__ gathering its modules makes no cycle with them
    "kernel_magics/alpha/__init__.py": "from .one import x\n",
    "kernel_magics/alpha/one.py": "x = 1\n\ndef f():\n    from ..beta import two\n",
    "kernel_magics/alpha/two.py": "from . import three\nfrom kernel_magics.alpha import x\n",
    "kernel_magics/alpha/three.py": "from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from .two import y\n",
    "kernel_magics/beta/__init__.py": "",
    "kernel_magics/beta/two.py": "import kernel_magics.alpha.two\n",
    "kernel_magics/beta/view.py": "def show():\n    import ipywidgets\n",
}


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    """A root holding a small ``kernel_magics`` with known cycles and UI imports."""
    for relative, text in FAKE.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_cycles_through_function_level_and_relative_imports_are_found(fake: Path) -> None:
    edges = imports(fake)

    [stages] = cycles(PACKAGE, edges)
    assert {(e.importer, e.target) for e in stages} == {
        ("kernel_magics.alpha.one", "kernel_magics.beta.two"),
        ("kernel_magics.beta.two", "kernel_magics.alpha.two")}
    [inner] = cycles("kernel_magics.alpha", edges)
    assert {(e.importer, e.target) for e in inner} == {
        ("kernel_magics.alpha.two", "kernel_magics.alpha.three"),
        ("kernel_magics.alpha.three", "kernel_magics.alpha.two")}
    assert cycles("kernel_magics.beta", edges) == []


def test_ui_imports_outside_the_adapters_are_found(fake: Path) -> None:
    assert sorted((e.importer, e.target) for e in ui_imports(fake)) == [
        ("kernel_magics.beta.view", "ipywidgets"),
        ("kernel_magics.workspace", "jupyter_server.utils")]


def test_test_files_have_unique_names() -> None:
    """tests/ has no __init__.py files: pytest imports each test file by its base name,
    and a second file of the same name fails the whole run's collection."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    for path in sorted(tests.rglob("test_*.py")):
        if "node_modules" in path.parts:
            continue
        assert path.name not in seen, f"{path} and {seen[path.name]} share a name"
        seen[path.name] = path
