"""`ship retrain` and `ship watch`: the loop closes (retrain/)."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from .output import emit_json


@click.command("retrain")
@click.argument("name")
@click.option("--notebook", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="The training notebook (default: the one that trained the "
                                 "champion, from its run).")
@click.option("--since", default=None, metavar="T",
              help="Production rows at or after T only: 2h, 1d, or an ISO time.")
@click.option("--release/--no-release", default=True,
              help="Release a passing challenger as a canary (default) or only report.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def retrain_cmd(name: str, notebook: Path | None, since: str | None, release: bool,
                as_json: bool) -> None:
    """Retrain a service's model on its labelled production data, gate the challenger
    against the champion (recent rows and historical holdout), release it as a canary."""
    from ..retrain.report import render_text
    from ..retrain.retrain import retrain
    from ..workspace import find_workspace

    say = None if as_json else (lambda text: click.echo(f"... {text}", err=True))
    result = retrain(find_workspace(), name, notebook=notebook, since=since, release=release,
                     progress=say)
    doc = result.to_json()
    if as_json:
        emit_json(doc)
    else:
        click.echo(render_text(doc))


@click.command("watch")
@click.argument("name")
@click.option("--status", is_flag=True, help="Show the watcher's state and latest events, "
                                             "and exit.")
@click.option("--once", is_flag=True, help="Look once (and retrain if a trigger fires), "
                                           "then exit: for cron.")
@click.option("--window", default=None, metavar="W",
              help="The drift window looked at (default: [drift] window of ship.toml).")
@click.option("--notebook", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="The training notebook (default: the champion's).")
@click.option("--json", "as_json", is_flag=True, help="With --status: print it as JSON.")
def watch_cmd(name: str, status: bool, once: bool, window: str | None,
              notebook: Path | None, as_json: bool) -> None:
    """Run the loop by itself: on drift or low accuracy, retrain, gate, release as a
    canary; back off after a rejected challenger. Ctrl-C (SIGINT) or SIGTERM stops it."""
    import signal

    from ..retrain.report import render_status
    from ..retrain.watch import Watcher, watch_status
    from ..workspace import find_workspace

    workspace = find_workspace()
    if status:
        doc = watch_status(workspace, name)
        emit_json(doc) if as_json else click.echo(render_status(doc))
        return
    if as_json:
        raise click.UsageError("--json goes with --status.")
    watcher = Watcher(workspace, name, window=window, notebook=notebook,
                      progress=lambda text: click.echo(f"... {text}", err=True))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"watching {name} (every {watcher.settings.interval_s:g} s; events: "
               f"`ship watch {name} --status`)", err=True)
    watcher.run(stop, once=once)
