"""`%%ship` / `%ship`: parse arguments, run the cell, call the stages.

This is a thin adapter: `tracking.capture.TrackedCell` does the work. The cell
body runs like `%%time` runs it (compiled in the user's namespace, the last
expression displayed), so the user's exception propagates unchanged to the
kernel, papermill sees a failing cell, and nothing here is in its traceback.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .display.summary import show_summary
from .errors import ShipError, ValidationError
from .tracking.capture import CellContext, TrackedCell, TrackOptions
from .tracking.daemon import ensure_writer
from .tracking.record import RunRecord
from .tracking.spool import Spool
from .workspace import SHIP_DIR, Workspace, find_workspace, init_workspace

SUBCOMMANDS = {
    "track": "%%ship track [--experiment E] [--name R] [--model VAR] [--metrics a,b] "
             "[--tag k=v]... [--export NAME --example X [--eval X [y]] [--quantize int8]]",
    "export": "%ship export VAR --name NAME --example X [--eval X [y]] [--quantize int8] "
              "[--force] [--rtol R] [--atol A]",
    "serve": "%%ship serve   (a cell whose definitions go into the service)",
    "build": "%ship build NAME [--model-version V] [--reference TRAINING_DATA] "
             "[--log-dir URL]",
    "drift": "%ship drift NAME [--window W] [--history N] [--version V]   (W: a duration "
             "like 15m, 1h, 1d)",
    "deploy": "%ship deploy NAME [--version V --canary PCT [--steps 5,25,50,100] | "
              "--version V --shadow | --version V --no-shadow | --promote | --rollback]",
    "retrain": "%ship retrain NAME [--notebook NB] [--since T] [--no-release]   (T: 2h, 1d "
               "or an ISO time)",
    "watch": "%ship watch NAME --status   (the watcher itself runs in a terminal: ship "
             "watch NAME)",
}
# How long `%ship export` waits for the run that produced the model to reach MLflow.
RUN_LINK_TIMEOUT_S = 120.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nUsage: {self.usage}")


@contextlib.contextmanager
def usage_errors(usage: str | None = None) -> Iterator[None]:
    """The one place where the core's errors become IPython's UsageError: the message
    (and, for bad input, the magic's ``usage`` when given), without a traceback."""
    try:
        yield
    except ShipError as exc:
        hint = f"\nUsage: {usage}" if usage and isinstance(exc, ValidationError) else ""
        raise UsageError(f"{exc}{hint}") from None


@functools.cache
def _track_parser() -> _Parser:
    parser = _Parser(prog="%%ship track", usage=SUBCOMMANDS["track"], add_help=False)
    parser.add_argument("--experiment", "-e")
    parser.add_argument("--name", "-n")
    parser.add_argument("--model", "-m")
    parser.add_argument("--metrics")
    parser.add_argument("--tag", "-t", action="append", default=[])
    parser.add_argument("--export", dest="export_name")
    _add_export_options(parser)
    return parser


def _add_export_options(parser: _Parser) -> None:
    parser.add_argument("--example")
    parser.add_argument("--eval", nargs="+", metavar="X [y]")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--rtol", type=float)
    parser.add_argument("--atol", type=float)


@functools.cache
def _export_parser() -> _Parser:
    parser = _Parser(prog="%ship export", usage=SUBCOMMANDS["export"], add_help=False)
    parser.add_argument("variable")
    parser.add_argument("--name", "-n", required=True)
    _add_export_options(parser)
    return parser


@dataclass
class ExportRequest:
    """`%ship export` (or `%%ship track --export`) options; expressions not yet evaluated."""

    variable: str
    name: str
    example: str
    eval_exprs: list[str]
    quantize: str | None
    force: bool
    rtol: float | None
    atol: float | None


def _export_request(variable: str, name: str, args: argparse.Namespace,
                    prog: str) -> ExportRequest:
    if not variable.isidentifier():
        raise UsageError(f"{prog} takes a variable name, got {variable!r}.")
    if not args.example:
        raise UsageError(f"{prog} needs --example ROWS: held-out input rows for the parity "
                         "gate, e.g. --example X_test[:5]")
    eval_exprs = _rows_and_labels(list(args.eval or []))
    return ExportRequest(variable=variable, name=name, example=args.example,
                         eval_exprs=eval_exprs, quantize=args.quantize, force=args.force,
                         rtol=args.rtol, atol=args.atol)


def parse_export_args(line: str) -> ExportRequest:
    """`%ship export` options from the magic line."""
    args = _export_parser().parse_args(_join_expression(_split(line), "--example"))
    return _export_request(args.variable, args.name, args, "%ship export")


@functools.cache
def _drift_parser() -> _Parser:
    parser = _Parser(prog="%ship drift", usage=SUBCOMMANDS["drift"], add_help=False)
    parser.add_argument("name")
    parser.add_argument("--window")
    parser.add_argument("--history", type=int)
    parser.add_argument("--version")
    return parser


def parse_drift_args(line: str) -> tuple[str, str | None, int | None, str | None]:
    """`%ship drift NAME [--window W] [--history N] [--version V]`: the service, window,
    history and version (checked by the report, as for `ship drift`)."""
    args = _drift_parser().parse_args(_split(line))
    return (args.name, args.window.strip() if args.window else None, args.history,
            args.version)


@functools.cache
def _deploy_parser() -> _Parser:
    parser = _Parser(prog="%ship deploy", usage=SUBCOMMANDS["deploy"], add_help=False)
    parser.add_argument("name")
    parser.add_argument("--version")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--canary", type=float, dest="percent")
    actions.add_argument("--shadow", action="store_const", const="shadow", dest="action")
    actions.add_argument("--no-shadow", action="store_const", const="unshadow",
                         dest="action")
    actions.add_argument("--promote", action="store_const", const="promote", dest="action")
    actions.add_argument("--rollback", action="store_const", const="rollback",
                         dest="action")
    parser.add_argument("--steps")
    return parser


def parse_deploy_args(line: str) -> tuple[str, str | None, str | None, float | None,
                                          str | None]:
    """`%ship deploy NAME ...`: (service, action or None to show, version, percent,
    steps), the same choices as `ship deploy`."""
    args = _deploy_parser().parse_args(_split(line))
    action = "canary" if args.percent is not None else args.action
    if args.steps is not None and action != "canary":
        raise UsageError(f"--steps goes with --canary.\nUsage: {SUBCOMMANDS['deploy']}")
    if args.version is not None and action is None:
        raise UsageError("--version goes with --canary PCT, --shadow or --promote.\n"
                         f"Usage: {SUBCOMMANDS['deploy']}")
    return args.name, action, args.version, args.percent, args.steps


@functools.cache
def _retrain_parser() -> _Parser:
    parser = _Parser(prog="%ship retrain", usage=SUBCOMMANDS["retrain"], add_help=False)
    parser.add_argument("name")
    parser.add_argument("--notebook")
    parser.add_argument("--since")
    parser.add_argument("--no-release", action="store_false", dest="release")
    return parser


def parse_retrain_args(line: str) -> tuple[str, Path | None, str | None, bool]:
    """`%ship retrain NAME ...`: (service, training notebook or None for the champion's,
    since, release), the same choices as `ship retrain`."""
    args = _retrain_parser().parse_args(_split(line))
    notebook = None
    if args.notebook is not None:
        notebook = Path(args.notebook).expanduser()
        if not notebook.is_file():
            raise UsageError(f"--notebook {args.notebook}: no such notebook (from "
                             f"{Path.cwd()}); give the training notebook's path, e.g. "
                             f"--notebook train.ipynb, or leave it out to retrain with the "
                             f"notebook that trained the champion.")
    since = args.since.strip() if args.since else None
    return args.name, notebook, since, args.release


@functools.cache
def _watch_parser() -> _Parser:
    parser = _Parser(prog="%ship watch", usage=SUBCOMMANDS["watch"], add_help=False)
    parser.add_argument("name")
    parser.add_argument("--status", action="store_true")
    return parser


def parse_watch_args(line: str) -> str:
    """`%ship watch NAME --status`: the service. The watcher itself runs until stopped, so
    it belongs in a terminal, not in a kernel."""
    args = _watch_parser().parse_args(_split(line))
    if not args.status:
        raise UsageError(f"`%ship watch {args.name} --status` shows the loop's state and "
                         f"events; the watcher itself runs until stopped, so start it in a "
                         f"terminal: ship watch {args.name}")
    return str(args.name)


def parse_track_args(line: str) -> tuple[TrackOptions, ExportRequest | None]:
    """`%%ship track` options from the magic line; UsageError says what to type instead."""
    args = _track_parser().parse_args(_join_expression(_split(line), "--example"))
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
    export = None
    if args.export_name is not None:
        if args.model is None:
            raise UsageError("--export needs --model VAR: the variable holding the model.")
        export = _export_request(args.model, args.export_name, args, "--export")
    elif args.example or args.eval or args.quantize:
        raise UsageError("--example, --eval and --quantize go with --export NAME.")
    options = TrackOptions(experiment=args.experiment, run_name=args.name, model=args.model,
                           metrics=metrics, tags=tags, batch_id=os.environ.get("SHIP_BATCH_ID"))
    return options, export


def _split(line: str) -> list[str]:
    """The words of a magic line; a Python expression stays one word, spaces and all.

    Whitespace separates words only outside brackets and quotes, so
    ``--example Xte[:16].reshape(16, -1)`` and ``--example df.loc[:, cols]`` are one word
    each. A word wholly in quotes loses them, as in a shell.
    """
    words: list[str] = []
    current: list[str] = []
    closing = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for char in line:
        if quote is not None:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in closing:
            stack.append(closing[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                raise _unparsable(line, f"unmatched {char!r}")
        elif char.isspace() and not stack:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if quote is not None or stack:
        raise _unparsable(line, "an unterminated string" if quote else f"an unclosed "
                          f"{ {v: k for k, v in closing.items()}[stack[-1]]!r}")
    if current:
        words.append("".join(current))
    return [_unquote(word) for word in words]


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        try:
            (inner,) = shlex.split(word)
            return inner
        except ValueError:
            return word
    return word


def _unparsable(line: str, what: str) -> UsageError:
    return UsageError(f"Could not parse {line!r}: {what}. Quote values with spaces, and "
                      "close every bracket: --example \"X_test[:5]\".")


def _join_expression(words: list[str], option: str) -> list[str]:
    """``option`` takes one expression: the words up to the next option are it."""
    if option not in words:
        return words
    start = words.index(option) + 1
    end = start
    while end < len(words) and not words[end].startswith("--"):
        end += 1
    if end - start <= 1:
        return words
    return [*words[:start], " ".join(words[start:end]), *words[end:]]


def _rows_and_labels(words: list[str]) -> list[str]:
    """--eval's words as [rows] or [rows, labels]: the one split where both parse."""
    if len(words) <= 2:
        return words
    splits = [[" ".join(words[:i]), " ".join(words[i:])] for i in range(1, len(words))]
    valid = [pair for pair in splits if all(_is_expression(e) for e in pair)]
    joined = " ".join(words)
    if len(valid) == 1:
        return valid[0]
    if not valid and _is_expression(joined):
        return [joined]
    raise UsageError("--eval takes the rows and optionally their labels: --eval X_test "
                     "y_test (quote an expression with spaces: --eval \"X[:100]\" y[:100]).")


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True


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
            options, export = parse_track_args(rest)
            record = self._track(options, cell)
            if export is not None and record is not None and record.status == "FINISHED":
                self._export(export, record_id=record.record_id)
        elif command == "export":
            if cell is not None:
                raise UsageError("export is a line magic: `%ship export VAR --name NAME "
                                 "--example X`.")
            self._export(parse_export_args(rest))
        elif command == "serve":
            if cell is None or rest.strip():
                raise UsageError("serve is a cell magic without options: put `%%ship serve` "
                                 "on the first line of a cell defining preprocess/postprocess.")
            # Runs like any cell; `ship build` reads it from the saved notebook.
            self._run("\n" + self.shell.transform_cell(cell))  # type: ignore[union-attr]
        elif command == "build":
            self._build(rest)
        elif command == "drift":
            if cell is not None:
                raise UsageError("drift is a line magic: `%ship drift NAME [--window 1h]`.")
            self._drift(rest)
        elif command == "deploy":
            if cell is not None:
                raise UsageError("deploy is a line magic: `%ship deploy NAME`.")
            self._deploy(rest)
        elif command in ("retrain", "watch"):
            if cell is not None:
                raise UsageError(f"{command} is a line magic: `%ship {command} NAME`.")
            if command == "retrain":
                self._retrain(rest)
            else:
                self._watch(rest)

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        # variable -> record id of the tracked cell that last bound it (export lineage)
        self._producers: dict[str, str] = {}

    # -- %%ship track ----------------------------------------------------------------
    def _track(self, options: TrackOptions, cell: str) -> RunRecord | None:
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        with usage_errors():
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            if not (workspace.root / SHIP_DIR).is_dir():
                workspace = init_workspace(workspace.root)
            workspace.prices()  # a bad price table fails before the cell runs, not after
        # A leading newline keeps traceback line numbers equal to the cell's own.
        python_source = "\n" + shell.transform_cell(cell)
        manager = shell.history_manager
        history = list(manager.input_hist_raw[1:]) if manager is not None else [cell]
        context = CellContext(source=cell, python_source=python_source, history=history,
                              notebook=notebook, execution_count=shell.execution_count,
                              namespace=shell.user_ns)
        tracked = TrackedCell(workspace, options, context)
        tracked.begin()
        # The writer starts now, not when the cell ends: its imports and a new store's
        # schema (seconds) overlap the cell, and the run reaches MLflow sooner after it.
        with contextlib.suppress(OSError):
            ensure_writer(workspace.spool_dir)
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
            record = self._finish(workspace, tracked, status, error, reason)
        if record is not None:
            for name in [*tracked.analysis.assigned, *tracked.analysis.params]:
                self._producers[name] = record.record_id
        return record

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
                error: BaseException | None, reason: str | None) -> RunRecord | None:
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
            return None
        show_summary(self.shell, workspace, record, tracked.warnings)
        tracked.complete(on_complete=start_writer)
        return record

    # -- %ship export ----------------------------------------------------------------
    def _export(self, request: ExportRequest, record_id: str | None = None) -> None:
        """Export a model variable to ONNX behind the parity gate and register it."""
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        ns = shell.user_ns
        if request.variable not in ns:
            raise UsageError(f"No variable {request.variable!r} in this kernel; train the "
                             "model first, or check the name.")
        example = self._evaluate(request.example, "--example")
        eval_x = self._evaluate(request.eval_exprs[0], "--eval") if request.eval_exprs else None
        eval_y = (self._evaluate(request.eval_exprs[1], "--eval")
                  if len(request.eval_exprs) > 1 else None)
        notebook = notebook_path(ns)
        from .export.api import export_model
        from .export.report import render_export

        with usage_errors():
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            producer = record_id or self._producers.get(request.variable)
            # The wait for the training run (written by the background writer) happens
            # after the conversion and the parity gate, which run meanwhile.
            result = export_model(ns[request.variable], request.name, example, eval_X=eval_x,
                                  eval_y=eval_y, quantize=request.quantize,
                                  run_id=lambda: self._run_of(workspace, producer),
                                  workspace=workspace, force=request.force,
                                  rtol=request.rtol, atol=request.atol)
        print(render_export(result))
        self._capture_state(workspace, result.run_id)

    def _capture_state(self, workspace: Workspace, run_id: str) -> None:
        """Keep the serve cells' state with the run the new model version links to, so
        `ship build` from a terminal serves the notebook as this kernel has it."""
        shell = self.shell
        assert shell is not None
        from .tracking.local_store import mlflow_client
        from .tracking.serve_state import capture_to_run, free_names, kernel_serve_source

        manager = shell.history_manager
        history = list(manager.input_hist_raw[1:]) if manager is not None else []
        handler = kernel_serve_source(notebook_path(shell.user_ns), history)
        names = free_names(handler) if handler else []
        if not names:
            return
        client = mlflow_client(workspace.tracking_uri())
        captured = capture_to_run(client, run_id, shell.user_ns, names)
        for why in captured.refused.values():
            print(f"ship: serve state {why}", file=sys.stderr)

    # -- %ship build -----------------------------------------------------------------
    def _build(self, line: str) -> None:
        """Build the service bundle from this (saved) notebook."""
        words = _split(line)
        if not words or words[0].startswith("-") or len(words) % 2 != 1:
            raise UsageError(f"Usage: {SUBCOMMANDS['build']}")
        options = dict(zip(words[1::2], words[2::2], strict=True))
        unknown = set(options) - {"--model-version", "--reference", "--log-dir"}
        if unknown:
            raise UsageError(f"Unknown option {sorted(unknown)[0]}. Usage: {SUBCOMMANDS['build']}")
        version = options.get("--model-version")
        reference = (self._evaluate(options["--reference"], "--reference")
                     if "--reference" in options else None)
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        if notebook is None:
            raise UsageError("This kernel does not know its notebook; run `ship build "
                             "NOTEBOOK --name NAME` in a terminal instead.")
        from .bundle.build import build_service, describe

        with usage_errors():
            result = build_service(notebook, words[0], model_version=version,
                                   reference=reference, log_dir=options.get("--log-dir"),
                                   namespace=shell.user_ns)
        print(describe(result))

    # -- %ship drift -----------------------------------------------------------------
    def _drift(self, line: str) -> None:
        """The drift report of a service as a widget (text and HTML elsewhere)."""
        name, window, history, version = parse_drift_args(line)
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        from .display.drift import show_drift
        from .monitor.report import drift_report

        with usage_errors(SUBCOMMANDS["drift"]):
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            report = drift_report(workspace, name, window=window, history=history,
                                  version=version)
        show_drift(shell, report)

    def _deploy(self, line: str) -> None:
        """Change a service's release (or only show it), as `ship deploy` does."""
        name, action, version, percent, steps = parse_deploy_args(line)
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        from .display.release import show_release
        from .release.controller import release_view
        from .release.rollout import change, parse_steps

        with usage_errors(SUBCOMMANDS["deploy"]):
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            if action is not None:
                change(workspace, name, action, version=version, percent=percent,
                       steps=parse_steps(steps))
            view = release_view(workspace, name)
        show_release(view)

    # -- %ship retrain, %ship watch --status ----------------------------------------
    def _retrain(self, line: str) -> None:
        """Retrain, gate and release as `ship retrain` does, saying each step; the decision
        and the gate's checks as a table."""
        name, training, since, release = parse_retrain_args(line)
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        from .display.retrain import show_retrain
        from .retrain.retrain import retrain

        with usage_errors(SUBCOMMANDS["retrain"]):
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            result = retrain(workspace, name, notebook=training, since=since,
                             release=release,
                             progress=lambda text: print(f"... {text}", flush=True))
        show_retrain(result.to_json())

    def _watch(self, line: str) -> None:
        """The loop's state and latest events, as `ship watch NAME --status`."""
        name = parse_watch_args(line)
        shell = self.shell
        assert shell is not None
        notebook = notebook_path(shell.user_ns)
        from .display.retrain import show_loop_status
        from .retrain.watch import watch_status

        with usage_errors(SUBCOMMANDS["watch"]):
            workspace = find_workspace(notebook.parent if notebook else Path.cwd())
            status = watch_status(workspace, name)
        show_loop_status(status)

    def _evaluate(self, expression: str, option: str) -> Any:
        shell = self.shell
        assert shell is not None
        try:
            return eval(expression, shell.user_global_ns, shell.user_ns)
        except Exception as exc:
            raise UsageError(f"{option} {expression!r} could not be evaluated: "
                             f"{type(exc).__name__}: {exc}") from None

    def _run_of(self, workspace: Workspace, record_id: str | None) -> str | None:
        """The MLflow run id of a tracked cell, waiting for the writer if needed."""
        if record_id is None:
            return None
        from .tracking.capture import wait_for_background

        wait_for_background()
        spool = Spool(workspace.spool_dir)
        started = time.monotonic()
        deadline = started + RUN_LINK_TIMEOUT_S
        said = False
        while time.monotonic() < deadline:
            written = spool.written(record_id)
            if written is not None:
                if said:
                    print(f"ship: the run is in MLflow ({time.monotonic() - started:.1f} s).",
                          file=sys.stderr)
                return str(written.run_id)
            if not said and time.monotonic() - started > 1.0:
                said = True  # say what the export is waiting for, once
                print("ship: waiting for the training run to reach MLflow (the background "
                      "writer is writing it; a new workspace's store is created first)...",
                      file=sys.stderr)
            ensure_writer(workspace.spool_dir)
            time.sleep(0.2)
        print("ship: the run that produced this model is not in MLflow yet (see `ship sync`); "
              "the export gets a run of its own.", file=sys.stderr)
        return None


