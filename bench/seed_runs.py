"""Seed a workspace with many finished runs shaped like the ones `%%ship track` writes.

    .venv/bin/python bench/seed_runs.py ROOT [--notebook train.ipynb] [--runs 1000]
                                             [--experiment many]

Used by bench/api.py and by the browser tests (tests/ui) to measure listing and
rendering 1,000 runs. The runs go straight into the workspace's sqlite MLflow store
with the tags, params, metrics (cost included) and dataset inputs that
`tracking/writer.py` logs, four MLflow calls a run (about 25 ms each here), so
1,000 runs take about half a minute. Artifacts are left out: listing never reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def seed(root: Path, notebook: Path, runs: int, experiment: str) -> list[str]:
    """Create `runs` finished runs of `notebook` in `experiment`; returns their run ids."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from kernel_magics.workspace import init_workspace, slug

    workspace = init_workspace(root)
    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = (workspace.artifacts_dir / slug(experiment)).as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    start = int(time.time() * 1000) - runs * 60_000
    ids = []
    for i in range(runs):
        t0 = start + i * 60_000
        t1 = t0 + 1_500 + i % 700
        run = client.create_run(experiment_id, start_time=t0, run_name=f"seed-{i:04d}",
                                tags={"ship.record_id": f"{t0:x}-seed{i:04d}"})
        run_id = run.info.run_id
        ids.append(run_id)
        params = {"lr": str(round(0.001 * (1 + i % 10), 4)), "epochs": str(5 + i % 3),
                  "batch_size": str(32 * (1 + i % 4)), "optimizer": ("adam", "sgd")[i % 2],
                  "hidden": "[64, 32]", "seed": str(i)}
        metrics = {"accuracy": 0.8 + (i % 97) / 1000, "loss": 0.5 - (i % 89) / 1000,
                   "val_accuracy": 0.78 + (i % 83) / 1000, "f1": 0.75 + (i % 71) / 1000,
                   "ship.wall_s": 1.5 + (i % 700) / 1000, "ship.cpu_s": 1.2,
                   "ship.gpu_s": 0.0, "ship.peak_memory_mb": 310.5,
                   "ship.cost_estimate": 1.6e-05}
        tags = {"mlflow.source.type": "NOTEBOOK", "mlflow.source.name": str(notebook),
                "ship.notebook": str(notebook), "ship.version": "0.1.0",
                "ship.workspace": str(root), "ship.execution_count": str(i + 1),
                "ship.git.dirty": "false", "ship.env.python": "3.11.7",
                "ship.env.platform": "Linux-x86_64", "ship.env.lock_digest": "9f2c4e1a",
                "ship.env.gpus": "none", "ship.cost.currency": "USD",
                "ship.cost.basis": "cpu_s/3600 x 0.048 USD"}
        client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                         metrics=[Metric(k, v, t1, 0) for k, v in metrics.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        dataset = Dataset(name="train_df", digest=f"{i * 7919:032x}", source_type="code",
                          source=json.dumps({"variable": "train_df", "notebook": str(notebook)}),
                          schema=json.dumps({"mlflow_colspec": [{"name": "x", "type": "double"}]}),
                          profile=json.dumps({"shape": [10_000 + i, 12], "nbytes": 960_000}))
        client.log_inputs(run_id, datasets=[DatasetInput(
            dataset, tags=[InputTag("mlflow.data.context", "training")])])
        client.set_terminated(run_id, "FAILED" if i % 50 == 49 else "FINISHED", end_time=t1)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--notebook", default="train.ipynb",
                        help="notebook path relative to ROOT (default: train.ipynb)")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--experiment", default="many")
    args = parser.parse_args()
    root = args.root.resolve()
    started = time.perf_counter()
    seed(root, root / args.notebook, args.runs, args.experiment)
    print(f"seeded {args.runs} runs of {args.notebook} in {root} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
