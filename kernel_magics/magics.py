"""`%%ship` / `%ship`: parse arguments, run the cell, call the tracking core.

This is a thin adapter: `tracking.capture.TrackedCell` does the work. The cell
body runs like `%%time` runs it (compiled in the user's namespace, the last
expression displayed), so the user's exception propagates unchanged to the
kernel, papermill sees a failing cell, and nothing here is in its traceback.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import os
import shlex
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display, update_display

from .errors import ShipError
from .tracking.capture import CellContext, TrackedCell, TrackOptions
from .tracking.daemon import ensure_writer
from .tracking.record import RunRecord
from .tracking.spool import Spool
from .tracking.summary import render_html, render_text
from .workspace import SHIP_DIR, Workspace, find_workspace, init_workspace

SUBCOMMANDS = {"track": "%%ship track [--experiment E] [--name R] [--model VAR] "
                        "[--metrics a,b] [--tag k=v]..."}
SUMMARY_MIME = "application/vnd.ship.run-summary+json"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nUsage: {self.usage}")


@functools.cache
def _track_parser() -> _Parser:
    parser = _Parser(prog="%%ship track", usage=SUBCOMMANDS["track"], add_help=False)
    parser.add_argument("--experiment", "-e")
    parser.add_argument("--name", "-n")
    parser.add_argument("--model", "-m")
    parser.add_argument("--metrics")
    parser.add_argument("--tag", "-t", action="append", default=[])
    return parser


def parse_track_args(line: str) -> TrackOptions:
    """`%%ship track` options from the magic line; UsageError says what to type instead."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"Could not parse {line!r}: {exc}. Quote values with spaces.") from exc
    args = _track_parser().parse_args(words)
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag {item!r} is not KEY=VALUE. Example: --tag team=vision")
        tags[key] = value
    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        if not metrics:
            raise UsageError("--metrics needs names, e.g. --metrics accuracy,loss")
    if args.model is not None and not args.model.isidentifier():
        raise UsageError(f"--model takes a variable name, got {args.model!r}.")
    return TrackOptions(experiment=args.experiment, run_name=args.name, model=args.model,
                        metrics=metrics, tags=tags, batch_id=os.environ.get("SHIP_BATCH_ID"))


def notebook_path(user_ns: dict[str, Any]) -> Path | None:
    """The notebook this kernel runs, from `ship run`, Jupyter Server or VS Code."""
    for candidate in (os.environ.get("SHIP_NOTEBOOK"), user_ns.get("__session__"),
                      os.environ.get("JPY_SESSION_NAME"), user_ns.get("__vsc_ipynb_file__")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            path = Path(candidate)
            return path if path.is_absolute() else Path.cwd() / path
    return None


@magics_class
class ShipMagics(Magics):
    """The `%ship` line magic and `%%ship` cell magic."""

    @line_cell_magic
    def ship(self, line: str, cell: str | None = None) -> None:
        """Ship: track this cell as an MLflow run. `%%ship track --help`-style usage on error."""
        __tracebackhide__ = True
        command, _, rest = line.strip().partition(" ")
        if command not in SUBCOMMANDS:
            known = "\n  ".join(SUBCOMMANDS.values())
            raise UsageError(f"Unknown ship command {command!r}. Available:\n  {known}")
        if command == "track":
            if cell is None:
                raise UsageError("track is a cell magic: put `%%ship track` on the first line "
                                 "of the cell to track.")
            self._track(parse_track_args(rest), cell)

    # -- %%ship track ----------------------------------------------------------------
    def _track(self, options: TrackOptions, cell: str) -> None:
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        try:
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            if not (workspace.root / SHIP_DIR).is_dir():
                workspace = init_workspace(workspace.root)
            workspace.prices()  # a bad price table fails before the cell runs, not after
        except ShipError as exc:
            raise UsageError(str(exc)) from None
        # A leading newline keeps traceback line numbers equal to the cell's own.
        python_source = "\n" + shell.transform_cell(cell)
        manager = shell.history_manager
        history = list(manager.input_hist_raw[1:]) if manager is not None else [cell]
        context = CellContext(source=cell, python_source=python_source, history=history,
                              notebook=notebook, execution_count=shell.execution_count,
                              namespace=shell.user_ns)
        tracked = TrackedCell(workspace, options, context)
        tracked.begin()
        status: Any = "FINISHED"
        error: BaseException | None = None
        reason = None
        try:
            self._run(python_source)
        except KeyboardInterrupt as exc:
            status, error, reason = "KILLED", exc, "interrupted by the user"
            raise
        except BaseException as exc:
            status, error = "FAILED", exc
            raise
        finally:
            self._finish(workspace, tracked, status, error, reason)

    def _run(self, source: str) -> None:
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        filename = shell.compile.cache(source, shell.execution_count, raw_code=source)
        tree = shell.compile.ast_parse(source, filename=filename)
        tree = shell.transform_ast(tree)
        last: ast.Expression | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        ns = shell.user_ns
        exec(shell.compile(tree, filename, "exec"), shell.user_global_ns, ns)
        if last is not None:
            code = shell.compile(last, filename, "eval")  # type: ignore[arg-type]
            value = eval(code, shell.user_global_ns, ns)
            if value is not None:
                shell.displayhook(value)

    def _finish(self, workspace: Workspace, tracked: TrackedCell, status: Any,
                error: BaseException | None, reason: str | None) -> None:
        spool_dir = workspace.spool_dir

        def start_writer(_: RunRecord) -> None:
            try:
                ensure_writer(spool_dir)
            except OSError as exc:
                print(f"ship: the background writer did not start ({exc}); run `ship sync`.",
                      file=sys.stderr)

        try:
            record = tracked.finish(status, error, reason)
        except Exception as exc:  # noqa: BLE001 - never mask the user's own outcome
            print(f"ship: this run could not be recorded completely ({exc!r}); it stays in "
                  f"{spool_dir} and `ship sync` reports it.", file=sys.stderr)
            return
        _show_summary(self.shell, workspace, record, tracked.warnings)
        tracked.complete(on_complete=start_writer)


def _bundle(record: RunRecord, written: Any, warnings: list[str]) -> dict[str, Any]:
    return {"text/plain": render_text(record, written, warnings),
            "text/html": render_html(record, written, warnings),
            SUMMARY_MIME: {"record_id": record.record_id,
                           "state": "written" if written else "pending"}}


def _show_summary(shell: Any, workspace: Workspace, record: RunRecord,
                  warnings: list[str]) -> None:
    display_id = f"ship-{record.record_id}-{uuid.uuid4().hex[:6]}"
    bundle = _bundle(record, None, warnings)
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
        bundle = _bundle(final, written, warnings)
        if widget is not None:
            widget.value = bundle["text/html"]
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "model_id": widget.model_id, "version_major": 2, "version_minor": 0}
        update_display(bundle, raw=True, display_id=display_id,
                       metadata={"ship": {"record_id": record.record_id}})
        return True


_watcher = _SummaryWatcher()


def summary_bundle_json(record: RunRecord, written: Any) -> str:
    """The final summary as JSON (used by `ship run` to rewrite batch outputs)."""
    return json.dumps(_bundle(record, written, []))
