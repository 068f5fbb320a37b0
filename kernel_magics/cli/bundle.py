"""`ship build`: a notebook and a model version become a service bundle (bundle/)."""

from __future__ import annotations

from pathlib import Path

import click

from .output import emit_json


@click.command("build")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Service name (also the model's, by default).")
@click.option("--model", "model_name", default=None,
              help="Registered model to serve (default: the service name).")
@click.option("--model-version", default=None,
              help="Model version (default: the `champion` alias, else the newest).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Training data (.parquet or .csv) to profile for drift monitoring.")
@click.option("--log-dir", default=None, metavar="URL",
              help="Object-store URL (s3://bucket/prefix, gs://...) for the prediction log "
                   "of every replica in k8s/ and kserve.yaml, compacted hourly by "
                   "k8s/compact-log.yaml (default: each pod keeps its own).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build_cmd(notebook: Path, name: str, model_name: str | None, model_version: str | None,
              reference: Path | None, log_dir: str | None, as_json: bool) -> None:
    """Build a service bundle from NOTEBOOK's serve cells and a registered model version."""
    from ..bundle.build import build_service, describe
    from ..monitor.reference import load_reference_data

    data = load_reference_data(reference) if reference is not None else None
    result = build_service(notebook, name, model_name=model_name, model_version=model_version,
                           reference=data, log_dir=log_dir)
    if as_json:
        emit_json(result)
    else:
        click.echo(describe(result))
