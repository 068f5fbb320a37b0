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
version it builds (``download_run_state``). A name no serve cell defines and no capture
holds fails the build (bundle/build.py), with the variable, its type and what to do.
"""

from __future__ import annotations

import json
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
