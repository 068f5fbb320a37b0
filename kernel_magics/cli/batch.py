"""`ship run`: notebooks in batch through papermill (batch/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .output import emit_json


@click.command("run")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True,
              metavar="NAME VALUE", help="Set a papermill parameter (repeatable).")
@click.option("--grid", multiple=True, metavar="NAME=V1,V2",
              help="Sweep a parameter; several --grid run their cartesian product.")
@click.option("--parallel", type=click.IntRange(min=1), default=None,
              help="Notebooks run at once (default: 1 locally; on Ray, as many as it has "
                   "CPUs for).")
@click.option("--engine", default="local", show_default=True,
              type=click.Choice(["local", "ray"]),
              help="Where notebooks run: processes here, or Ray tasks "
                   "(pip install 'kernel-magics[ray]').")
@click.option("--address", default=None, metavar="ADDR",
              help="With --engine ray: the Ray cluster to join (host:port, or auto); "
                   "default: a local Ray started for this batch.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Executed notebook (default: .ship/batch/NAME-TIME.ipynb).")
@click.option("--kernel", default=None, help="Kernel name (default: the notebook's).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_cmd(notebook: Path, parameters: tuple[tuple[str, str], ...], grid: tuple[str, ...],
            parallel: int | None, engine: str, address: str | None, output: Path | None,
            kernel: str | None, as_json: bool) -> None:
    """Run NOTEBOOK with papermill; every %%ship track cell becomes an MLflow run."""
    from tqdm import tqdm

    from ..batch.parameters import expand, parse_grid, parse_value
    from ..batch.runner import run_notebooks

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
                           address=address, kernel=kernel, progress=not as_json and len(sets) == 1,
                           on_done=(lambda _: bar.update()) if bar else None)
    if bar:
        bar.close()
    if as_json:
        emit_json({"ok": result.ok, "runs": result.runs, "unwritten": result.unwritten})
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
