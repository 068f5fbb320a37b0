"""The run summary in the notebook: a live widget with text and HTML fallbacks.

`show_summary` displays a tracked cell's summary (tracking/summary.py) as "pending"; one
watcher thread per kernel rewrites it as "written" (with the run link) when the
background writer is done. In JupyterLab the ipywidgets HTML widget updates live;
papermill and nbconvert keep the text/HTML fallbacks, which `ship run` rewrites once the
runs are written.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from IPython.display import display, update_display

from ..tracking.record import RunRecord
from ..tracking.spool import Spool
from ..tracking.summary import summary_bundle
from ..workspace import Workspace


def show_summary(shell: Any, workspace: Workspace, record: RunRecord,
                  warnings: list[str]) -> None:
    display_id = f"ship-{record.record_id}-{uuid.uuid4().hex[:6]}"
    bundle = summary_bundle(record, None, warnings)
    widget = None
    if getattr(shell, "kernel", None) is not None:
        try:
            import ipywidgets

            widget = ipywidgets.HTML(value=bundle["text/html"])
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "model_id": widget.model_id, "version_major": 2, "version_minor": 0}
        except ImportError:
            widget = None
    display(bundle, raw=True, display_id=display_id,
            metadata={"ship": {"record_id": record.record_id}})
    if type(shell).__name__ != "TerminalInteractiveShell":
        # A front end updates a display in place; a terminal would print it all again.
        _watcher.watch(Spool(workspace.spool_dir), record, warnings, display_id, widget)


class _SummaryWatcher:
    """One long-lived thread per kernel that updates summaries when their runs are written."""

    TIMEOUT_S = 900.0
    POLL_S = 0.25

    def __init__(self) -> None:
        self._items: list[tuple[Spool, RunRecord, list[str], str, Any, float]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, spool: Spool, record: RunRecord, warnings: list[str], display_id: str,
              widget: Any) -> None:
        with self._lock:
            self._items.append((spool, record, warnings, display_id, widget, time.monotonic()))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ship-summary",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.POLL_S)
            with self._lock:
                items, self._items = self._items, []
            keep = [item for item in items if not self._update(item)]
            with self._lock:
                self._items.extend(keep)
                if not self._items:
                    self._wake.clear()

    def _update(self, item: tuple[Spool, RunRecord, list[str], str, Any, float]) -> bool:
        """Refresh one summary if its run is written; True when it needs no more watching."""
        spool, record, warnings, display_id, widget, since = item
        written = spool.written(record.record_id)
        if written is None:
            return time.monotonic() - since > self.TIMEOUT_S
        final = spool.written_record(record.record_id) or record
        bundle = summary_bundle(final, written, warnings)
        if widget is not None:
            widget.value = bundle["text/html"]
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "model_id": widget.model_id, "version_major": 2, "version_minor": 0}
        update_display(bundle, raw=True, display_id=display_id,
                       metadata={"ship": {"record_id": record.record_id}})
        return True


_watcher = _SummaryWatcher()

