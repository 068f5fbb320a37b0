"""`ship reproduce RUN`: what differs from a run's record, then the run again (batch/).

Exit status 0 when every metric of the run was reproduced (with ``--check-only``: when
nothing differs from the record), 1 otherwise or on an error, like ``git diff --exit-code``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import ShipError
from .output import emit_json, fail


@click.command("reproduce")
@click.argument("run")
@click.option("--check-only", is_flag=True,
              help="Only name what differs from the run's record; run nothing.")
@click.option("--tolerance", "rel_tol", type=float, default=1e-6, show_default=True,
              help="Relative tolerance for metrics: |a - b| <= tol x max(|a|, |b|).")
@click.option("--abs-tolerance", "abs_tol", type=float, default=1e-12, show_default=True,
              help="Absolute tolerance for metrics near zero.")
@click.option("--keep-env", is_flag=True,
              help="Keep the throwaway environment (its folder is in the report).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reproduce_cmd(run: str, check_only: bool, rel_tol: float, abs_tol: float, keep_env: bool,
                  as_json: bool) -> None:
    """Name every difference from RUN's record (commit, diff, packages, data, Python,
    kernel), then re-run its notebook with its parameters in a fresh environment made
    from its lock file and compare every metric. RUN: a run id or a run's name."""
    from ..batch.reproduce import reproduce
    from ..workspace import find_workspace

    def log(message: str) -> None:
        if not as_json:
            click.echo(message, err=True)

    try:
        report = reproduce(find_workspace(), run, check_only=check_only, rel_tol=rel_tol,
                           abs_tol=abs_tol, keep_env=keep_env, log=log,
                           show_cells=not as_json)
    except ShipError as exc:
        fail(str(exc))
    if as_json:
        emit_json(report.to_json())
    else:
        _print(report, check_only)
    ok = not report.differences if check_only else report.reproduced
    sys.exit(0 if ok else 1)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.10g}"
    text = str(value)
    if len(text) >= 32 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # a digest or a commit
    return text if len(text) <= 44 else text[:41] + "..."


def _where(path: str | None) -> str:
    if not path:
        return "none"
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _print(report: Any, check_only: bool) -> None:
    click.echo(f"run {report.run} ({report.run_name}), notebook {_where(report.notebook)}")
    checked = [d for d in report.differences if d.stage == "check"]
    click.echo(f"checked in {report.check_seconds:.2f} s: "
               + (f"{len(checked)} difference(s) from the record" if checked
                  else "nothing differs from the record"))
    _differences(checked)
    for note in report.notes:
        click.echo(f"  note: {note}")
    rerun = report.rerun
    if rerun is None:
        if check_only:
            click.echo("nothing was run (--check-only)")
        return
    env = rerun.environment
    made = ("fresh environment from the lock" if env.fresh
            else "the current environment (no lock)")
    installed = f"; installed {', '.join(env.installed)}" if env.installed else ""
    click.echo(f"re-ran in {rerun.seconds:.1f} s: run {rerun.run_id or '-'} "
               f"({rerun.status or 'no run'}), Python {env.python}, {made}{installed}")
    for spec, why in env.failed.items():
        click.echo(f"  could not install {spec} ({why}); the base's version was used")
    if env.kept:
        click.echo(f"  environment kept: {env.kept}")
    click.echo(f"  output notebook: {_where(rerun.output)}")
    if rerun.error:
        click.echo(f"  error: {rerun.error}")
    found = [d for d in report.differences if d.stage == "rerun"]
    if found:
        click.echo("found by the re-run:")
        _differences(found)
    tol = report.tolerance
    click.echo(f"metrics (tolerance: relative {tol['relative']:g}, "
               f"absolute {tol['absolute']:g}):")
    for m in report.metrics:
        state = "matched    " if m.matched else "NOT matched"
        click.echo(f"  {state}  {m.name:<24} {_show(m.original)} -> {_show(m.reproduced)}")
    for name, value in rerun.new_metrics.items():
        click.echo(f"  new          {name:<24} - -> {_show(value)}")
    missed = sum(not m.matched for m in report.metrics)
    if report.reproduced:
        click.echo(f"reproduced: {len(report.metrics)} metric(s) matched")
    else:
        click.echo(f"NOT reproduced: {missed} of {len(report.metrics)} metric(s) differ"
                   + ("" if rerun.status == "FINISHED" else f"; the re-run is {rerun.status}"))


def _differences(found: list[Any]) -> None:
    for d in found:
        note = f"  ({d.note})" if d.note else ""
        click.echo(f"  {d.kind:<9} {_show(d.name):<28} {_show(d.recorded)} -> "
                   f"{_show(d.now)}{note}")
