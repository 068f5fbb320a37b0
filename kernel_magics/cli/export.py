"""`ship export` and `ship models`: ONNX exports and the model registry (export/)."""

from __future__ import annotations

import click

from .output import emit_json


@click.command("export")
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
    from ..export.api import export_from
    from ..export.report import render_export
    from ..export.sources import load_rows

    eval_x = eval_y = None
    if eval_files:
        eval_x, eval_y = load_rows(eval_files[0], "eval"), load_rows(eval_files[1], "eval")
    result = export_from(ref, name, load_rows(example, "example"), eval_X=eval_x,
                         eval_y=eval_y, quantize=quantize, force=force, rtol=rtol, atol=atol)
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(render_export(result))


@click.command("models", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, metavar="[NAME | alias NAME VERSION ALIAS]")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models_cmd(args: tuple[str, ...], as_json: bool) -> None:
    """Registered models; with NAME its leaderboard; `alias NAME VERSION ALIAS` sets an alias."""
    from ..export.api import leaderboard, list_models, set_alias
    from ..export.report import render_alias, render_leaderboard, render_models

    if args and args[0] == "alias":
        if len(args) != 4:
            raise click.UsageError("usage: ship models alias NAME VERSION ALIAS "
                                   "(e.g. ship models alias digits 2 champion)")
        change = set_alias(args[1], args[2], args[3])
        emit_json(change) if as_json else click.echo(render_alias(change))
    elif len(args) == 1:
        rows = leaderboard(args[0])
        emit_json(rows) if as_json else click.echo(render_leaderboard(args[0], rows))
    elif not args:
        models = list_models()
        emit_json(models) if as_json else click.echo(render_models(models))
    else:
        raise click.UsageError("ship models takes one NAME, or `alias NAME VERSION ALIAS`.")
