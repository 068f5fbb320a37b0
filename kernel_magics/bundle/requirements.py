"""What a bundle's requirements.txt adds to the runtime's own pins: the distributions its
serve cells' state and its handler's imports need (tracking/serve_state.py captured the
state; serving/requirements.py pins the runtime)."""

from __future__ import annotations

import sys

from ..serving.state import StateEntry


def requirements_for(entries: dict[str, StateEntry], handler: str | None) -> list[str]:
    """requirements.txt lines the state and the handler's imports add to the runtime's.

    Versions are the ones installed where the bundle is built, which is where the state
    was written and the handler was tried."""
    from ..serving.requirements import PANDAS_PIN, PINS

    modules = {e.module.split(".", 1)[0] for e in entries.values()
               if e.kind in ("module", "import") and e.module}
    modules |= _imported_modules(handler or "")
    if any(e.kind in ("parquet", "index") for e in entries.values()):
        modules.add("pandas")
    if any(e.kind == "skops" for e in entries.values()):
        modules |= {"sklearn", "skops"}
    return _distributions(modules - set(sys.stdlib_module_names),
                          skip={*(n.lower() for n in PINS), PANDAS_PIN[0]})


def _imported_modules(source: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".", 1)[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".", 1)[0])
    return found


def _distributions(modules: set[str], skip: set[str]) -> list[str]:
    from importlib import metadata

    owners = metadata.packages_distributions()
    lines: set[str] = set()
    for module in sorted(modules):
        for dist in owners.get(module, []):
            if dist.lower() in skip:
                continue
            try:
                lines.add(f"{dist}=={metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                continue
    return sorted(lines)
