"""`ship ps` and `ship stop`: the workspace's local services (release/)."""

from __future__ import annotations

import dataclasses

import click

from .output import emit_json


@click.command("ps")
@click.option("--json", "as_json", is_flag=True, help="Print the services as JSON.")
def ps_cmd(as_json: bool) -> None:
    """Services of this workspace that run locally (started from the sidebar or `ship
    serve` in the background): version, port, pid, health."""
    from ..release.services import list_services
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
    from ..release.services import stop_service
    from ..workspace import find_workspace

    stopped = stop_service(find_workspace(), name)
    click.echo(f"stopped {name} (pid {stopped.pid}, port {stopped.port})")
