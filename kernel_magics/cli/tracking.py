"""`ship runs` and `ship sync`: tracked runs, listed and written to MLflow (tracking/)."""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime

import click

from .output import emit_json


@click.command("runs")
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
    from ..errors import NotFoundError
    from ..tracking.catalog import filter_runs, list_experiments, list_runs
    from ..workspace import find_workspace

    workspace = find_workspace()
    if experiment and experiment not in {e.name for e in list_experiments(workspace)}:
        raise NotFoundError("experiment", experiment,
                            hint="`ship runs` without --experiment lists all of them.")
    rows = filter_runs(list_runs(workspace, experiment=experiment, limit=limit).runs,
                       where=where, sort=sort_key)
    if as_json:
        emit_json([{**dataclasses.asdict(r), "duration_s": _duration(r.start_time_ms,
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


@click.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sync_cmd(as_json: bool) -> None:
    """Write every spooled run record to MLflow now."""
    from tqdm import tqdm

    from ..tracking import daemon
    from ..tracking.spool import Spool
    from ..workspace import find_workspace

    workspace = find_workspace()
    spool = Spool(workspace.spool_dir)
    spool.ensure()
    total = len(list(spool.pending()))
    with tqdm(total=total, desc="sync", unit="run", file=sys.stderr,
              disable=as_json or total == 0) as bar, daemon.exclusive(workspace.spool_dir):
        result = daemon.drain(spool, force=True, on_record=lambda _: bar.update())
    if as_json:
        emit_json({"written": result.written, "failed": result.failed,
                    "waiting": result.waiting})
    else:
        click.echo(f"{len(result.written)} run(s) written to {workspace.tracking_uri()}")
        for record_id in result.waiting:
            click.echo(f"still running in a live kernel: {record_id}")
        for record_id, reason in result.failed.items():
            click.echo(f"not written: {record_id}: {reason}", err=True)
    sys.exit(1 if result.failed else 0)
