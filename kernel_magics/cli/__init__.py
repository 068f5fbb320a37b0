"""The `ship` command line: parses arguments, calls the core, prints tables or JSON.

One module per stage of the loop, each holding that stage's commands:

    batch.py     ship run                     tracking.py  ship runs, ship sync
    export.py    ship export, ship models     bundle.py    ship build
    serving.py   ship serve, score, logs      release.py   ship ps, ship stop
    monitor.py   ship drift                   cost.py      ship cost
    retrain.py   ship retrain, ship watch     reproduce.py ship reproduce
    review.py    ship review                  demo.py      ship demo
    output.py    JSON and errors

Errors from the core (`ShipError`) print as ``error: ...`` and exit 1; every
command takes `--json` for scripts.
"""

from __future__ import annotations

import os
from typing import Any

import click

from .._version import __version__
from ..errors import ShipError
from . import (
    batch,
    bundle,
    cost,
    demo,
    export,
    monitor,
    release,
    reproduce,
    retrain,
    review,
    serving,
    tracking,
)
from .output import fail

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class ShipGroup(click.Group):
    """Turns ShipError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ShipError as exc:
            fail(str(exc))
        except TimeoutError as exc:
            fail(str(exc))


@click.group(cls=ShipGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ship")
def main() -> None:
    """Ship: from a notebook cell to a tracked, monitored model."""


main.add_command(batch.run_cmd)
main.add_command(tracking.runs_cmd)
main.add_command(tracking.sync_cmd)
main.add_command(export.export_cmd)
main.add_command(export.models_cmd)
main.add_command(bundle.build_cmd)
main.add_command(serving.serve_cmd)
main.add_command(serving.score_cmd)
main.add_command(serving.logs_cmd)
main.add_command(release.ps_cmd)
main.add_command(release.stop_cmd)
main.add_command(release.deploy_cmd)
main.add_command(cost.cost_cmd)
main.add_command(monitor.drift_cmd)
main.add_command(retrain.retrain_cmd)
main.add_command(reproduce.reproduce_cmd)
main.add_command(retrain.watch_cmd)
main.add_command(review.review_cmd)
main.add_command(demo.demo_cmd)
