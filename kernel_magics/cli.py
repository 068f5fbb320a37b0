"""The `ship` command line: parses arguments, calls the core, prints tables or JSON.

Errors from the core (`ShipError`) print as ``error: ...`` and exit 1; every
command takes `--json` for scripts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ._version import __version__
from .errors import ShipError

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

F = TypeVar("F", bound=Callable[..., Any])


def _emit_json(data: Any) -> None:
    def default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return dataclasses.asdict(obj)
        return str(obj)

    click.echo(json.dumps(data, indent=2, default=default))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class ShipGroup(click.Group):
    """Turns ShipError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShipError as exc:
            _fail(str(exc))
        except TimeoutError as exc:
            _fail(str(exc))


@click.group(cls=ShipGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ship")
def main() -> None:
    """Ship: from a notebook cell to a tracked, monitored model."""


# -- ship run ----------------------------------------------------------------------------
@main.command("run")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True,
              metavar="NAME VALUE", help="Set a papermill parameter (repeatable).")
@click.option("--grid", multiple=True, metavar="NAME=V1,V2",
              help="Sweep a parameter; several --grid run their cartesian product.")
@click.option("--parallel", default=1, show_default=True, help="Notebooks run at once.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local"]),
              help="Where notebooks run.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Executed notebook (default: .ship/batch/NAME-TIME.ipynb).")
@click.option("--kernel", default=None, help="Kernel name (default: the notebook's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_cmd(notebook: Path, parameters: tuple[tuple[str, str], ...], grid: tuple[str, ...],
            parallel: int, engine: str, output: Path | None, kernel: str | None,
            as_json: bool) -> None:
    """Run NOTEBOOK with papermill; every %%ship track cell becomes an MLflow run."""
    from tqdm import tqdm

    from .batch.parameters import expand, parse_grid, parse_value
    from .batch.runner import run_notebooks

    fixed = {}
    for name, value in parameters:
        if not name.isidentifier():
            raise click.BadParameter(f"{name!r} is not a Python name.", param_hint="-p")
        fixed[name] = parse_value(value)
    sets = expand(fixed, parse_grid(list(grid)))
    bar = None
    if len(sets) > 1 and not as_json:
        bar = tqdm(total=len(sets), desc="notebooks", unit="run", file=sys.stderr)
    result = run_notebooks(notebook, sets, output=output, parallel=parallel, engine=engine,
                           kernel=kernel, progress=not as_json and len(sets) == 1,
                           on_done=(lambda _: bar.update()) if bar else None)
    if bar:
        bar.close()
    if as_json:
        _emit_json({"ok": result.ok, "runs": result.runs, "unwritten": result.unwritten})
    else:
        for nb_run in result.runs:
            state = "ok" if nb_run.ok else f"FAILED ({nb_run.error})"
            params = " ".join(f"{k}={v!r}" for k, v in nb_run.parameters.items())
            click.echo(f"{state}  {nb_run.seconds:.1f}s  {params}".rstrip())
            click.echo(f"  output notebook: {nb_run.output}")
            for written in nb_run.runs:
                where = written.url or f"run {written.run_id}"
                click.echo(f"  {written.status:<8} {written.run_name}  ({written.experiment}) "
                           f"{where}")
        for record_id, reason in result.unwritten.items():
            click.echo(f"not yet in MLflow: {record_id}: {reason} (retry with `ship sync`)",
                       err=True)
    sys.exit(0 if result.ok else 1)


# -- ship runs ---------------------------------------------------------------------------
@main.command("runs")
@click.option("--experiment", "-e", default=None, help="Only this experiment.")
@click.option("--limit", default=50, show_default=True)
@click.option("--where", "where", multiple=True, metavar="KEY=VALUE",
              help="Only runs whose param (or status) KEY is VALUE; repeatable.")
@click.option("--sort", "sort_key", default=None, metavar="[-]KEY",
              help="Order by a metric or param (-KEY: largest first), e.g. --sort -accuracy.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def runs_cmd(experiment: str | None, limit: int, where: tuple[str, ...],
             sort_key: str | None, as_json: bool) -> None:
    """List runs, newest first, with their params and metrics; records not yet written to
    MLflow are marked *."""
    from .errors import NotFoundError
    from .tracking.catalog import filter_runs, list_experiments, list_runs
    from .workspace import find_workspace

    workspace = find_workspace()
    if experiment and experiment not in {e.name for e in list_experiments(workspace)}:
        raise NotFoundError("experiment", experiment,
                            hint="`ship runs` without --experiment lists all of them.")
    rows = filter_runs(list_runs(workspace, experiment=experiment, limit=limit).runs,
                       where=where, sort=sort_key)
    if as_json:
        _emit_json([{**dataclasses.asdict(r), "duration_s": _duration(r.start_time_ms,
                                                                      r.end_time_ms)}
                    for r in rows])
        return
    if not rows:
        click.echo("No runs yet. Put `%%ship track` on a cell, or `ship run NOTEBOOK`.")
        return
    click.echo(f"{'START':<17} {'STATUS':<9} {'RUN':<28} {'TIME':>7}  "
               f"{'PARAMS':<30} METRICS")
    for r in rows:
        start = datetime.fromtimestamp(r.start_time_ms / 1000).strftime("%Y-%m-%d %H:%M")
        status = r.status if r.written else f"{r.status}*"
        took = _duration(r.start_time_ms, r.end_time_ms)
        params = ", ".join(f"{k}={v}" for k, v in list(r.params.items())[:4])
        click.echo(f"{start:<17} {status:<9} {r.name[:28]:<28} "
                   f"{'-' if took is None else f'{took:.1f}s':>7}  {params[:30]:<30} "
                   f"{_metrics_text(r.metrics)}")
    if any(not r.written for r in rows):
        click.echo("* pending: not yet written to MLflow (`ship sync` writes them now)")


def _duration(start_ms: int, end_ms: int | None) -> float | None:
    return None if end_ms is None else (end_ms - start_ms) / 1000


def _metrics_text(metrics: dict[str, float | None], count: int = 4) -> str:
    shown = [(k, v) for k, v in metrics.items() if v is not None and not k.startswith("ship.")]
    return ", ".join(f"{k}={v:.4g}" for k, v in shown[:count])


# -- ship sync ---------------------------------------------------------------------------
@main.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sync_cmd(as_json: bool) -> None:
    """Write every spooled run record to MLflow now."""
    from tqdm import tqdm

    from .tracking import daemon
    from .tracking.spool import Spool
    from .workspace import find_workspace

    workspace = find_workspace()
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    total = len(list(spool.pending()))
    with tqdm(total=total, desc="sync", unit="run", file=sys.stderr,
              disable=as_json or total == 0) as bar, daemon.exclusive(workspace.spool_dir):
        result = daemon.drain(spool, force=True, on_record=lambda _: bar.update())
    if as_json:
        _emit_json({"written": result.written, "failed": result.failed,
                    "waiting": result.waiting})
    else:
        click.echo(f"{len(result.written)} run(s) written to {workspace.tracking_uri()}")
        for record_id in result.waiting:
            click.echo(f"still running in a live kernel: {record_id}")
        for record_id, reason in result.failed.items():
            click.echo(f"not written: {record_id}: {reason}", err=True)
    sys.exit(1 if result.failed else 0)


# -- ship export / ship models -------------------------------------------------------------
@main.command("export")
@click.argument("ref", metavar="RUN_OR_MODEL")
@click.option("--name", "-n", required=True, help="Registered model name.")
@click.option("--example", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Held-out input rows (.npy, .csv, .parquet, .pt) for the parity gate.")
@click.option("--eval", "eval_files", nargs=2, type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="XFILE YFILE", help="More rows and their labels.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None)
@click.option("--force", is_flag=True, help="Register int8 even past the accuracy bound.")
@click.option("--rtol", type=float, default=None, help="Parity relative tolerance.")
@click.option("--atol", type=float, default=None, help="Parity absolute tolerance.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_cmd(ref: str, name: str, example: str, eval_files: tuple[str, str] | None,
               quantize: str | None, force: bool, rtol: float | None, atol: float | None,
               as_json: bool) -> None:
    """Export a model (run id, runs:/ or models:/ URI, .pt/.pkl file) to ONNX and register it."""
    from .export.api import export_from
    from .export.report import render_export
    from .export.sources import load_rows

    eval_x = eval_y = None
    if eval_files:
        eval_x, eval_y = load_rows(eval_files[0], "eval"), load_rows(eval_files[1], "eval")
    result = export_from(ref, name, load_rows(example, "example"), eval_X=eval_x,
                         eval_y=eval_y, quantize=quantize, force=force, rtol=rtol, atol=atol)
    if as_json:
        _emit_json(result.to_json())
    else:
        click.echo(render_export(result))


@main.command("models", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, metavar="[NAME | alias NAME VERSION ALIAS]")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models_cmd(args: tuple[str, ...], as_json: bool) -> None:
    """Registered models; with NAME its leaderboard; `alias NAME VERSION ALIAS` sets an alias."""
    from .export.api import leaderboard, list_models, set_alias
    from .export.report import render_alias, render_leaderboard, render_models

    if args and args[0] == "alias":
        if len(args) != 4:
            raise click.UsageError("usage: ship models alias NAME VERSION ALIAS "
                                   "(e.g. ship models alias digits 2 champion)")
        change = set_alias(args[1], args[2], args[3])
        _emit_json(change) if as_json else click.echo(render_alias(change))
    elif len(args) == 1:
        rows = leaderboard(args[0])
        _emit_json(rows) if as_json else click.echo(render_leaderboard(args[0], rows))
    elif not args:
        models = list_models()
        _emit_json(models) if as_json else click.echo(render_models(models))
    else:
        raise click.UsageError("ship models takes one NAME, or `alias NAME VERSION ALIAS`.")


# -- ship build ----------------------------------------------------------------------------
@main.command("build")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Service name (also the model's, by default).")
@click.option("--model", "model_name", default=None,
              help="Registered model to serve (default: the service name).")
@click.option("--model-version", default=None,
              help="Model version (default: the `champion` alias, else the newest).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Training data (.parquet or .csv) to profile for drift monitoring.")
@click.option("--log-dir", default=None, metavar="URL",
              help="Object-store URL (s3://bucket/prefix, gs://...) for the prediction log "
                   "of every replica in k8s/ and kserve.yaml, compacted hourly by "
                   "k8s/compact-log.yaml (default: each pod keeps its own).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build_cmd(notebook: Path, name: str, model_name: str | None, model_version: str | None,
              reference: Path | None, log_dir: str | None, as_json: bool) -> None:
    """Build a service bundle from NOTEBOOK's serve cells and a registered model version."""
    from .bundle.build import build_service, describe
    from .monitor.reference import load_reference_data

    data = load_reference_data(reference) if reference is not None else None
    result = build_service(notebook, name, model_name=model_name, model_version=model_version,
                           reference=data, log_dir=log_dir)
    if as_json:
        _emit_json(result)
    else:
        click.echo(describe(result))


# -- ship serve / ship score / ship logs -------------------------------------------------
@contextlib.contextmanager
def _runtime_errors() -> Iterator[None]:
    """The serving runtime cannot import ShipError (it ships inside bundles): map its errors."""
    from .serving.errors import RuntimeServingError

    try:
        yield
    except RuntimeServingError as exc:
        raise ShipError(exc.message) from None


def _service(name_or_bundle: str) -> tuple[Path, Path]:
    """(bundle folder, prediction log folder) for a service name or a bundle folder."""
    from .release.services import latest_bundle
    from .workspace import find_workspace

    path = Path(name_or_bundle)
    if (path / "ship.yaml").is_file():
        return path, path.resolve().parent / "log"
    return latest_bundle(find_workspace(), name_or_bundle)


@main.command("serve")
@click.argument("name_or_bundle")
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the service to the network.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve_cmd(name_or_bundle: str, port: int, workers: int, host: str, log_level: str) -> None:
    """Serve a built service (latest version) or a bundle folder until Ctrl-C."""
    from .serving.server import serve

    bundle, log_dir = _service(name_or_bundle)
    _port_free(host, port)  # say "serving" only where it can
    click.echo(f"serving {bundle} on http://{host}:{port} (V2: /v2, MLflow: /invocations); "
               f"prediction log: {log_dir}", err=True)
    with _runtime_errors():
        serve(bundle, host=host, port=port, workers=workers, log_dir=str(log_dir),
              log_level=log_level)


def _port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            _fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}. Pick another port "
                  "with --port, or stop what serves there (`ship ps`, `ship stop NAME`).")


@main.command("ps")
@click.option("--json", "as_json", is_flag=True, help="Print the services as JSON.")
def ps_cmd(as_json: bool) -> None:
    """Services of this workspace that run locally (started from the sidebar or `ship
    serve` in the background): version, port, pid, health."""
    from .release.services import list_services
    from .workspace import find_workspace

    running = [s for s in list_services(find_workspace())
               if s.running is not None and s.running.alive]
    if as_json:
        _emit_json([{"name": s.name, **dataclasses.asdict(s.running)} for s in running
                    if s.running is not None])
        return
    if not running:
        click.echo("no local service is running; start one with `ship serve NAME`.")
        return
    click.echo(f"{'NAME':<20} {'VERSION':<8} {'PORT':<6} {'PID':<8} {'READY':<6} STARTED")
    for s in running:
        r = s.running
        assert r is not None
        click.echo(f"{s.name:<20} {r.version or '-':<8} {r.port:<6} {r.pid:<8} "
                   f"{'yes' if r.ready else 'no':<6} {r.started}")


@main.command("stop")
@click.argument("name")
def stop_cmd(name: str) -> None:
    """Stop a local service gracefully (its prediction log is flushed)."""
    from .release.services import stop_service
    from .workspace import find_workspace

    stopped = stop_service(find_workspace(), name)
    click.echo(f"stopped {name} (pid {stopped.pid}, port {stopped.port})")


@main.command("score")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, exists=True))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def score_cmd(bundle: Path, input_path: Path, output_path: Path, as_json: bool) -> None:
    """Score a Parquet or CSV file with a bundle (or a service name's latest bundle)."""
    from .serving.batch import score_file

    folder, _ = _service(str(bundle))
    with _runtime_errors():
        result = score_file(folder, input_path, output_path)
    if as_json:
        _emit_json(result)
    else:
        click.echo(f"{result.rows} rows scored in {result.seconds:.2f}s -> {result.output}")


@main.command("logs")
@click.argument("name")
@click.option("--since", default=None, metavar="T",
              help="15m, 2h, 1d or an ISO time (UTC unless it says otherwise).")
@click.option("--limit", default=50, show_default=True, help="The most recent N requests.")
@click.option("--errors", "errors_only", is_flag=True, help="Only failed requests.")
@click.option("--json", "as_json", is_flag=True, help="Print the requests as JSON.")
@click.option("--compact", is_flag=True,
              help="Merge each closed hour's segments into one file instead of showing "
                   "requests (safe beside running services).")
@click.option("--older-than", default="1h", show_default=True, metavar="T",
              help="With --compact: only hours that ended at least this long ago.")
@click.pass_context
def logs_cmd(ctx: click.Context, name: str, since: str | None, limit: int, errors_only: bool,
             as_json: bool, compact: bool, older_than: str) -> None:
    """Recent predictions and errors of a service, oldest first; or, with --compact,
    merge the log's segments (one a second per serving process) into a file per hour."""
    from .serving.logread import read_log

    _, log_dir = _service(name)
    if compact:
        flags = {"since": "--since", "limit": "--limit", "errors_only": "--errors"}
        given = [flag for name, flag in flags.items()
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise click.UsageError(f"--compact merges the whole log: {', '.join(given)} "
                                   f"{verb} not apply. Run `ship logs` again without them.")
        _compact_log(log_dir, older_than, as_json)
        return
    if ctx.get_parameter_source("older_than") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--older-than goes with --compact.")
    with _runtime_errors():
        entries = read_log(log_dir, since=since, limit=limit, errors_only=errors_only)
    if as_json:
        _emit_json(entries)
        return
    if not entries:
        click.echo(f"No requests logged in {log_dir}" + (f" since {since}." if since else "."))
        return
    click.echo(f"{'TIME (UTC)':<23} {'VERSION':<8} {'ENDPOINT':<12} {'STATUS':>6} {'MS':>7} "
               f"{'ROWS':>5}  {'REQUEST ID':<24}  OUTPUT / ERROR")
    for e in entries:
        detail = e.error or (e.outputs or "")
        detail = detail if len(detail) <= 60 else detail[:57] + "..."
        truth = f"  (truth: {e.ground_truth})" if e.ground_truth is not None else ""
        click.echo(f"{e.time:%Y-%m-%d %H:%M:%S.%f}"[:23] + f" {e.version:<8} {e.endpoint:<12} "
                   f"{e.status:>6} {e.latency_ms:>7.2f} {e.rows:>5}  {e.request_id:<24}  "
                   f"{detail}{truth}")


def _compact_log(log_dir: Path, older_than: str, as_json: bool) -> None:
    from tqdm import tqdm

    from .serving.logcompact import compact_log

    with _runtime_errors():
        result = compact_log(log_dir, older_than=older_than, progress=lambda hours: tqdm(
            hours, desc="compact", unit="hour", file=sys.stderr,
            disable=as_json or len(hours) < 2))
    if as_json:
        _emit_json(result.to_json())
    else:
        click.echo(result.summary())


# -- ship cost ---------------------------------------------------------------------------
@main.command("cost")
@click.option("--run", "run_id", default=None, metavar="R", help="One run (MLflow or record id).")
@click.option("--service", default=None, metavar="NAME", help="One service, per version.")
@click.option("--notebook", default=None, metavar="NB", help="Only runs of this notebook.")
@click.option("--since", default=None, metavar="T",
              help="15m, 2h, 1d or an ISO time (UTC unless it says otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the costs as JSON.")
def cost_cmd(run_id: str | None, service: str | None, notebook: str | None, since: str | None,
             as_json: bool) -> None:
    """Cost of runs (from tracking) and services (CPU s per 1,000 predictions x price).

    Resources are measured; money is an estimate from [cost] in .ship/ship.toml.
    """
    from .cost.service import cost_summary, run_costs, service_cost
    from .workspace import find_workspace

    if run_id is not None and service is not None:
        raise click.UsageError("--run and --service are mutually exclusive: ask for one.")
    if run_id is not None and (notebook is not None or since is not None):
        raise click.UsageError("--run names one run: --notebook and --since do not apply.")
    if service is not None and notebook is not None:
        raise click.UsageError("--notebook selects runs; it does not apply to --service.")
    workspace = find_workspace()
    if run_id is not None:
        [run] = run_costs(workspace, run_id=run_id)
        _emit_json(run.to_json()) if as_json else _echo_runs([run.to_json()])
    elif service is not None:
        result = service_cost(workspace, service, since=since)
        _emit_json(result.to_json()) if as_json else _echo_service(result.to_json())
    else:
        summary = cost_summary(workspace, notebook=notebook, since=since)
        if as_json:
            _emit_json(summary)
            return
        _echo_runs(summary["runs"])
        click.echo("")
        _echo_services(summary["services"])
        totals, currency = summary["totals"], summary["currency"]
        click.echo(f"\ntotal: {totals['amount']:.6f} {currency} (estimate): runs "
                   f"{totals['runs']['amount']:.6f}, services "
                   f"{totals['services']['amount']:.6f}")
        for note in summary["notes"]:
            click.echo(f"note: {note}")


def _opt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _echo_heading(rows: list[dict[str, Any]], empty: str, title: str, columns: str) -> bool:
    """A table's title and column heads; `empty` instead when there are no rows (False)."""
    if not rows:
        click.echo(empty)
        return False
    click.echo(title)
    click.echo(columns)
    return True


def _echo_runs(runs: list[dict[str, Any]]) -> None:
    if not _echo_heading(
            runs, "No runs yet. Put `%%ship track` on a cell, or `ship run NOTEBOOK`.",
            "RUNS: wall, CPU, GPU seconds and peak memory measured in the kernel; "
            "cost estimated",
            f"{'START':<17} {'STATUS':<9} {'RUN':<28} {'WALL s':>8} {'CPU s':>8} "
            f"{'GPU s':>7} {'PEAK MB':>8}  COST (estimate)"):
        return
    for r in runs:
        start = datetime.fromtimestamp(r["start_time_ms"] / 1000).strftime("%Y-%m-%d %H:%M")
        status = r["status"] if r["written"] else f"{r['status']}*"
        cost = "-" if r["amount"] is None else f"{r['amount']:.6f} {r['currency']}"
        click.echo(f"{start:<17} {status:<9} {r['name'][:28]:<28} {_opt(r['wall_s'], '.2f'):>8} "
                   f"{_opt(r['cpu_s'], '.2f'):>8} {_opt(r['gpu_s'], '.2f'):>7} "
                   f"{_opt(r['peak_memory_mb'], '.1f'):>8}  {cost}")


def _echo_services(services: list[dict[str, Any]]) -> None:
    if not _echo_heading(
            services, "No services yet. Build one with `ship build NOTEBOOK --name NAME`.",
            "SERVICES: CPU seconds and predictions measured in the serving processes; "
            "cost estimated",
            f"{'SERVICE':<16} {'VERSION':<8} {'PREDICTIONS':>11} {'CPU s':>9} "
            f"{'CPU s/1k pred':>13}  {'COST (estimate)':<22} COST/1k pred (estimate)"):
        return
    for s in services:
        rows = s["versions"] or [{**s, "version": "-"}]
        for v in rows:
            cost = f"{v['amount']:.6f} {s['currency']}"
            per_1k = _opt(v["amount_per_1k_predictions"], ".8f")
            click.echo(f"{s['name'][:16]:<16} {v['version'][:8]:<8} {v['predictions']:>11} "
                       f"{v['cpu_s']:>9.3f} {_opt(v['cpu_s_per_1k_predictions'], '.4f'):>13}  "
                       f"{cost:<22} {per_1k}")
        for note in s["notes"]:
            click.echo(f"  note ({s['name']}): {note}")


def _echo_service(s: dict[str, Any]) -> None:
    window = f"since {s['since']}" if s["since"] else "all records"
    click.echo(f"service {s['name']} ({window}; {s['first'] or '-'} .. {s['last'] or '-'}), "
               f"{s['processes']} process(es), usage in {s['log_dir']}/usage")
    click.echo(f"measured:  {s['requests']} requests ({s['errors']} errors), "
               f"{s['predictions']} predictions; {s['cpu_s']:.3f} CPU s "
               f"(user {s['cpu_user_s']:.3f}, system {s['cpu_system_s']:.3f}; start-up "
               f"{s['startup_cpu_s']:.3f}) over {s['process_wall_s']:.1f} process-s, "
               f"peak RSS {s['peak_rss_mb']:.1f} MB")
    click.echo(f"measured:  {_opt(s['cpu_s_per_1k_predictions'], '.4f')} CPU s per 1,000 "
               "predictions")
    click.echo(f"estimated: {s['amount']:.8f} {s['currency']}, "
               f"{_opt(s['amount_per_1k_predictions'], '.8f')} {s['currency']} per 1,000 "
               f"predictions ({s['basis']})")
    _echo_services([s])
    if s["series"]:
        click.echo(f"\n{'FROM (UTC)':<26} {'PREDICTIONS':>11} {'CPU s':>9} {'CPU s/1k':>9}"
                   f"   per {s['bucket_s']} s")
        for p in s["series"][-24:]:
            click.echo(f"{p['start']:<26} {p['predictions']:>11} {p['cpu_s']:>9.3f} "
                       f"{_opt(p['cpu_s_per_1k_predictions'], '.4f'):>9}")


# -- ship drift --------------------------------------------------------------------------
@main.command("drift")
@click.argument("name")
@click.option("--window", default=None, metavar="W",
              help="Window length: 15m, 1h, 1d (default: [drift] window of ship.toml).")
@click.option("--history", type=click.IntRange(1, 10_000), default=None, metavar="N",
              help="Windows scored for the history (default: [drift] history).")
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Also write the report as a self-contained HTML page.")
@click.option("--version", "version", default=None, metavar="V",
              help="The built version to compare (default: the one that answered most of "
                   "the window).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift_cmd(name: str, window: str | None, history: int | None, html_file: Path | None,
              version: str | None, as_json: bool) -> None:
    """Drift of a service's recent traffic against its training-data reference."""
    from .monitor.report import drift_report
    from .workspace import find_workspace

    report = drift_report(find_workspace(), name, window=window, history=history,
                          version=version)
    if html_file is not None:
        html_file.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        _emit_json(report.to_json())
        return
    click.echo(report.to_text())
    if html_file is not None:
        click.echo(f"  html: {html_file}")


# -- ship demo ---------------------------------------------------------------------------
@main.command("demo")
@click.option("--examples", type=click.Path(path_type=Path, file_okay=False),
              default=Path("examples"), show_default=True,
              help="Folder holding the example notebooks.")
def demo_cmd(examples: Path) -> None:
    """The loop on examples/: train, export, build, serve, predict, read the log."""
    from .demo import run_demo

    run_demo(examples, echo=click.echo)


if __name__ == "__main__":
    main()
