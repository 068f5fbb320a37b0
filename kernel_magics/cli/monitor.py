"""`ship drift`: a service's traffic against its training-data reference (monitor/)."""

from __future__ import annotations

from pathlib import Path

import click

from .output import emit_json
from .serving import LOG_DIR_HELP, check_log


@click.command("drift")
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
@click.option("--log-dir", default=None, metavar="URL", help=LOG_DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def drift_cmd(name: str, window: str | None, history: int | None, html_file: Path | None,
              version: str | None, log_dir: str | None, as_json: bool) -> None:
    """Drift of a service's recent traffic against its training-data reference."""
    from ..monitor.report import drift_report
    from ..workspace import find_workspace

    if log_dir is not None:
        check_log(log_dir)
    report = drift_report(find_workspace(), name, window=window, history=history,
                          version=version, log_dir=log_dir)
    if html_file is not None:
        html_file.write_text(report.to_html(), encoding="utf-8")
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(report.to_text())
    if html_file is not None:
        click.echo(f"  html: {html_file}")
