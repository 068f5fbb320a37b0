"""Seed a workspace for the Services panel's Loop section, through Ship's real components:

1. two versions of the `churn` model, real exports of a tiny LogisticRegression (each with
   its --eval rows as the holdout, each into its own MLflow run), as in seed_models.py;
2. `build_service` builds the `churn` service from each: versions 1 and 2;
3. the release as `ship retrain` and the release gate leave it: champion 1, then
   challenger 2 started as a canary at 10 % by `start_canary` and promoted by the gate
   (`promote` with a reason), both in releases.jsonl;
4. the loop's events through `retrain.events.record`, oldest first, as `ship watch`
   writes them: the watcher starts, dataset drift triggers a retraining, the retraining
   releases its challenger as a canary (the event carries `RetrainResult.to_json()` with
   the gate's two checks, as `retrain()` records it), and the release gate's promotion;
   and the watcher's state (watch.json) after it stopped.

    python tests/ui/seed_loop.py FOLDER        (about 15 s)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from kernel_magics.bundle.build import build_service
from kernel_magics.export.api import export_model
from kernel_magics.release.rollout import promote, start_canary
from kernel_magics.retrain import events, gate
from kernel_magics.retrain.retrain import RetrainResult, Version
from kernel_magics.retrain.watch import WatchState, state_file
from kernel_magics.workspace import init_workspace

NAME = "churn"
# The gate's two checks of the retraining: better on the recent rows, not worse on the
# champion's holdout (gate.compare's words).
CHECKS = [
    gate.Check(gate.RECENT, "accuracy", 0.712, 0.846, (0.081, 0.186), True, 240,
               "better on 240 recent rows: 95% interval of the difference [0.081, 0.186]"),
    gate.Check(gate.HOLDOUT, "accuracy", 0.905, 0.9, (-0.013, 0.004), True, 200,
               "not worse on 200 holdout rows than 0.02: 95% interval of the difference "
               "[-0.013, 0.004]"),
]


def main(folder: Path) -> None:
    started = time.monotonic()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    workspace = init_workspace(folder)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    experiment = client.create_experiment("churn-training")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell("# the churn model is registered"))
    notebook.cells.append(nbformat.v4.new_code_cell(f"%ship watch {NAME} --status"))
    nbformat.write(notebook, folder / "churn.ipynb")
    builds = []
    for c in (1.0, 0.05):
        run = client.create_run(experiment, run_name=f"train-C{c}")
        model = LogisticRegression(C=c).fit(x, y)
        export_model(model, NAME, x[:4], eval_X=x, eval_y=y, run_id=run.info.run_id,
                     workspace=workspace)
        client.set_terminated(run.info.run_id)
        builds.append(build_service(folder / "churn.ipynb", NAME,
                                    model_version=str(len(builds) + 1), workspace=workspace))
    champion, challenger = (Version(b.version, b.model_name, b.model_version, b.run_id)
                            for b in builds)

    events.record(workspace, NAME, "watch", f"watching {NAME}: every 60 s, retrain on "
                  "dataset drift", pid=4242)
    events.record(workspace, NAME, "trigger", "dataset drift: 2 of 3 features drift "
                  "(share of drifted features) in the window from 13:00:00 UTC",
                  reason="drift", share=0.67, drifted_features=["f0", "f1"])
    promote(workspace, NAME, version=champion.version)  # the champion before retraining
    release = start_canary(workspace, NAME, challenger.version, 10.0, [10.0, 50.0, 100.0],
                           reason="by ship retrain: the challenger passed the gate")
    assert release.canary is not None
    result = RetrainResult(
        service=NAME, decision=gate.CANARY, reason="; ".join(c.reason for c in CHECKS),
        champion=champion, challenger=challenger, checks=CHECKS,
        notebook=str(folder / "churn.ipynb"), labelled_rows=800, training_rows=560,
        recent_rows=240, data=str(workspace.ship_dir / "retrain" / NAME / "production.parquet"),
        canary={"version": release.canary.version, "percent": release.canary.percent,
                "steps": list(release.canary.steps)},
        seconds=41.2)
    # What retrain() records at its end.
    details = {k: v for k, v in result.to_json().items() if k not in ("service", "reason")}
    events.record(workspace, NAME, "retrain", f"{result.decision}: {result.reason}", **details)
    reason = ("promoted canary 2: error rate, latency and disagreement within their "
              "thresholds at every step")
    promote(workspace, NAME, reason=reason)
    events.record(workspace, NAME, "release", f"promote {challenger.version}: {reason}",
                  action="promote", version=challenger.version, automatic=True)
    state = WatchState(pid=0, started=None, last_check=events.read_events(
        workspace, NAME)[-1].time, last_retrain=events.read_events(workspace, NAME)[1].time,
        releases_seen=3)
    state_file(workspace, NAME).write_text(json.dumps(state.to_json(), indent=1),
                                           encoding="utf-8")
    print(f"seeded {folder} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
