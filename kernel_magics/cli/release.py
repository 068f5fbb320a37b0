"""`ship ps`, `ship stop` and `ship deploy`: the workspace's local services and their
releases (release/)."""

from __future__ import annotations

import dataclasses

import click

from .output import emit_json


@click.command("ps")
@click.option("--json", "as_json", is_flag=True, help="Print the services as JSON.")
def ps_cmd(as_json: bool) -> None:
    """Services of this workspace that run locally (started from the sidebar or `ship
    serve` in the background): version, port, pid, health."""
    from ..services import list_services
    from ..workspace import find_workspace

    running = [s for s in list_services(find_workspace())
               if s.running is not None and s.running.alive]
    if as_json:
        emit_json([{"name": s.name, **dataclasses.asdict(s.running)} for s in running
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


@click.command("stop")
@click.argument("name")
def stop_cmd(name: str) -> None:
    """Stop a local service gracefully (its prediction log is flushed)."""
    from ..services import stop_service
    from ..workspace import find_workspace

    stopped = stop_service(find_workspace(), name)
    click.echo(f"stopped {name} (pid {stopped.pid}, port {stopped.port})")


@click.command("deploy")
@click.argument("name")
@click.option("--version", "version", default=None, metavar="V",
              help="The built version to release (`ship ps`, the Services panel).")
@click.option("--canary", "percent", type=float, default=None, metavar="PCT",
              help="Send PCT % of requests to --version; the gate steps it up, promotes "
                   "or rolls it back.")
@click.option("--steps", default=None, metavar="5,25,50,100",
              help="With --canary: the shares the gate moves it through.")
@click.option("--shadow/--no-shadow", "shadow", default=None,
              help="--version scores a copy of each request, answering none "
                   "(--no-shadow: stop).")
@click.option("--promote", is_flag=True,
              help="Make the canary the champion now (with --version and no canary: that "
                   "version).")
@click.option("--rollback", is_flag=True, help="Take the canary out now.")
@click.option("--json", "as_json", is_flag=True, help="Print the release as JSON.")
def deploy_cmd(name: str, version: str | None, percent: float | None, steps: str | None,
               shadow: bool | None, promote: bool, rollback: bool, as_json: bool) -> None:
    """Release versions of a service gradually: a canary the gate watches, shadows that
    see copies, promote or roll back by hand. Alone: the release and its decisions."""
    from ..release.controller import release_view
    from ..release.report import render_text
    from ..release.rollout import change, parse_steps
    from ..workspace import find_workspace

    actions = [a for a, on in (("canary", percent is not None), ("promote", promote),
                               ("rollback", rollback), ("shadow", shadow is True),
                               ("unshadow", shadow is False)) if on]
    if len(actions) > 1:
        raise click.UsageError(f"pick one of --canary, --shadow, --no-shadow, --promote, "
                               f"--rollback (got {', '.join(actions)}).")
    if steps is not None and actions != ["canary"]:
        raise click.UsageError("--steps goes with --canary.")
    if version is not None and not actions:
        raise click.UsageError("--version goes with --canary PCT, --shadow or --promote.")
    if version is not None and rollback:
        raise click.UsageError("--rollback takes the canary out; it needs no --version.")
    workspace = find_workspace()
    if actions:
        change(workspace, name, actions[0], version=version, percent=percent,
               steps=parse_steps(steps))
    view = release_view(workspace, name)
    if as_json:
        emit_json(view)
    else:
        click.echo(render_text(view))
