"""The notebook's state a service needs: captured from the kernel, kept with the run.

Serve cells may use names the rest of the notebook defines (fitted statistics, column
lists, encoders). Their values are captured three times, each in the same safe formats
(``serving/state.py``):

- when a ``%%ship track`` cell ends: into the spooled record, logged as the run's
  artifacts under ``ship/state/``;
- at ``%ship export``: logged to the run the model version links to, so the version
  carries the state of the kernel that exported it;
- at ``%ship build`` in the kernel: the kernel's values, straight into the bundle.

``ship build`` from a terminal reads the state of the run that produced the model
version it builds. A name no serve cell defines and no capture holds fails the build,
with the variable, its type and what to do.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..serving.state import STATE_DIR, STATE_FILE, StateEntry, write_state
from .serve_cells import SERVE_MAGIC, is_serve_cell, serve_source, undefined_names

RUN_STATE_PATH = "ship/state"


@dataclass
class Captured:
    """What a capture stored and what it could not store, by variable name."""

    entries: dict[str, StateEntry] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def free_names(handler: str) -> list[str]:
    """Names the serve cells read but never define (builtins excluded), sorted."""
    try:
        missing = undefined_names(handler)
    except SyntaxError:
        return []
    return sorted({name for names in missing.values() for name in names})


def kernel_serve_source(notebook: Path | None, history: list[str]) -> str:
    """The serve cells a kernel knows: the saved notebook's, then `%%ship serve` cells it ran.

    The saved notebook may lag the kernel (autosave), so serve cells found only in the
    execution history count too; names defined twice do no harm to the analysis."""
    sources: list[str] = []
    if notebook is not None and notebook.is_file():
        try:
            cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            cells = []
        sources += [serve_source(c) for c in cells if isinstance(c, dict) and is_serve_cell(c)]
    for cell in history:
        if cell.lstrip().startswith(SERVE_MAGIC):
            sources.append(serve_source({"cell_type": "code", "source": cell}))
    return "\n\n".join(sources)


def capture(namespace: Mapping[str, Any], names: list[str], folder: Path) -> Captured:
    """Store the values of ``names`` found in ``namespace`` under ``folder/state``.

    A value without a safe format is left out and its reason kept in state.json, so the
    build that needs it can say why: capturing never fails the user's cell."""
    values = {name: namespace[name] for name in names if name in namespace}
    result = Captured()
    if values:
        result.entries = write_state(values, folder, refused=result.refused)
    return result


def capture_to_run(client: Any, run_id: str, namespace: Mapping[str, Any],
                   names: list[str]) -> Captured:
    """Capture ``names`` and log them as the run's ``ship/state`` artifacts."""
    with tempfile.TemporaryDirectory() as tmp:
        captured = capture(namespace, names, Path(tmp))
        if (Path(tmp) / STATE_DIR).is_dir():
            client.log_artifacts(run_id, str(Path(tmp) / STATE_DIR), RUN_STATE_PATH)
    return captured


def download_run_state(client: Any, run_id: str | None, dest: Path) -> bool:
    """The run's ``ship/state`` into ``dest/state``; False when the run captured none."""
    if not run_id:
        return False
    try:
        listed = client.list_artifacts(run_id, RUN_STATE_PATH)
    except Exception:  # noqa: BLE001 - a run without artifacts, or a deleted one
        return False
    if not any(Path(item.path).name == STATE_FILE for item in listed):
        return False
    dest.mkdir(parents=True, exist_ok=True)
    local = Path(client.download_artifacts(run_id, RUN_STATE_PATH, str(dest)))
    target = dest / STATE_DIR
    if local != target:
        local.rename(target)
    return True


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
