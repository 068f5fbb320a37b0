"""`ship demo`: the whole loop on examples/ (kernel_magics/demo.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--examples", type=click.Path(path_type=Path, file_okay=False),
              default=Path("examples"), show_default=True,
              help="Folder holding the example notebooks.")
def demo_cmd(examples: Path) -> None:
    """The loop on examples/: train, export, build, serve, predict, read the log."""
    from ..demo import run_demo

    run_demo(examples, echo=click.echo)
