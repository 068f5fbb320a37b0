"""Seed a workspace for the Models and Services panels: two versions of a registered
model (real exports of a tiny LogisticRegression, each into its own MLflow training run
with params, as `%ship export` in a tracked cell does) and a service built from a notebook.

    python tests/ui/seed_models.py FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from kernel_magics.bundle.build import build_service
from kernel_magics.export.api import export_model
from kernel_magics.workspace import init_workspace


def main(folder: Path) -> None:
    workspace = init_workspace(folder)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    client = MlflowClient(tracking_uri=workspace.tracking_uri())
    experiment = client.create_experiment("churn-training")
    for c in (1.0, 0.05):
        run = client.create_run(experiment, run_name=f"train-C{c}")
        for key, value in (("C", c), ("solver", "lbfgs"), ("rows", len(x)), ("features", 3),
                           ("seed", 0)):
            client.log_param(run.info.run_id, key, value)
        model = LogisticRegression(C=c).fit(x, y)
        export_model(model, "churn", x[:4], eval_X=x, eval_y=y, run_id=run.info.run_id,
                     workspace=workspace)
        client.set_terminated(run.info.run_id)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell("# the churn model is registered"))
    nbformat.write(notebook, folder / "churn.ipynb")
    build_service(folder / "churn.ipynb", "churn", workspace=workspace)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
