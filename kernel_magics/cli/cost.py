"""`ship cost`: what runs and services cost (cost/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from .output import emit_json
from .serving import LOG_DIR_HELP, check_log


@click.command("cost")
@click.option("--run", "run_id", default=None, metavar="R", help="One run (MLflow or record id).")
@click.option("--service", default=None, metavar="NAME", help="One service, per version.")
@click.option("--notebook", default=None, metavar="NB", help="Only runs of this notebook.")
@click.option("--since", default=None, metavar="T",
              help="15m, 2h, 1d or an ISO time (UTC unless it says otherwise).")
@click.option("--log-dir", default=None, metavar="URL",
              help="With --service: " + LOG_DIR_HELP[0].lower() + LOG_DIR_HELP[1:])
@click.option("--json", "as_json", is_flag=True, help="Print the costs as JSON.")
def cost_cmd(run_id: str | None, service: str | None, notebook: str | None, since: str | None,
             log_dir: str | None, as_json: bool) -> None:
    """Cost of runs (from tracking) and services (CPU s per 1,000 predictions x price).

    Resources are measured; money is an estimate from [cost] in .ship/ship.toml.
    """
    from ..cost.service import cost_summary, run_costs, service_cost
    from ..workspace import find_workspace

    if run_id is not None and service is not None:
        raise click.UsageError("--run and --service are mutually exclusive: ask for one.")
    if run_id is not None and (notebook is not None or since is not None):
        raise click.UsageError("--run names one run: --notebook and --since do not apply.")
    if service is not None and notebook is not None:
        raise click.UsageError("--notebook selects runs; it does not apply to --service.")
    if log_dir is not None and service is None:
        raise click.UsageError("--log-dir goes with --service: it says where that "
                               "service's log is.")
    workspace = find_workspace()
    if run_id is not None:
        [run] = run_costs(workspace, run_id=run_id)
        emit_json(run.to_json()) if as_json else _echo_runs([run.to_json()])
    elif service is not None:
        if log_dir is not None:
            check_log(log_dir)
        result = service_cost(workspace, service, since=since, log_dir=log_dir)
        emit_json(result.to_json()) if as_json else _echo_service(result.to_json())
    else:
        summary = cost_summary(workspace, notebook=notebook, since=since)
        if as_json:
            emit_json(summary)
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
