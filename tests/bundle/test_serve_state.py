"""Serve cells use the notebook's own state: the notebook goes to production as written.

The notebooks here are written the way data scientists write them: imports at the top,
statistics and an encoder fitted in the training cell, a label list in another cell, and a
serve cell that uses all of them without redefining any. `ship run` executes the notebook
in a real kernel (papermill), `ship build` from a terminal takes the values captured with
the model version's run, and the bundle scores with its own runtime in a process that has
only the bundle on its path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_files import Ship, write_notebook

pytestmark = pytest.mark.slow

IMPORTS = """import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OrdinalEncoder"""

DATA = """iris = load_iris(as_frame=True)
df = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
df["site"] = np.where(np.arange(len(df)) % 3 == 0, "north", "south")
X_train = df.drop(columns="target")
y_train = df["target"]"""

TRAIN = """%%ship track --model clf
FEATURES = [c for c in X_train.columns if c != "site"]
mu, sd = X_train[FEATURES].mean(), X_train[FEATURES].std()
site_encoder = OrdinalEncoder().fit(X_train[["site"]])
Z = np.column_stack([((X_train[FEATURES] - mu) / sd).to_numpy(),
                     site_encoder.transform(X_train[["site"]])]).astype("float32")
clf = LogisticRegression(max_iter=500).fit(Z, y_train)
accuracy = clf.score(Z, y_train)"""

LABELS = "LABELS = {i: name for i, name in enumerate(iris.target_names)}"

EXPORT = "%ship export clf --name iris --example Z[:8]"

SERVE = """%%ship serve
def preprocess(df):
    z = (df[FEATURES] - mu) / sd
    site = site_encoder.transform(df[["site"]])
    return np.column_stack([z.to_numpy(), site]).astype("float32")

def postprocess(outputs):
    return [LABELS[int(i)] for i in outputs["label"]]"""


def score(bundle: Path, rows: str, out: Path) -> subprocess.CompletedProcess[str]:
    """The bundle's own runtime, isolated from this environment's site-packages path hacks."""
    (out.parent / "rows.csv").write_text(rows)
    return subprocess.run([sys.executable, "-E", "-s", "-m", "ship_runtime", "score",
                           str(bundle), str(out.parent / "rows.csv"), str(out)], cwd=bundle,
                          capture_output=True, text=True, timeout=120)


ROWS = ("sepal_length,sepal_width,petal_length,petal_width,site\n"
        "5.1,3.5,1.4,0.2,north\n6.7,3.0,5.2,2.3,south\n5.9,2.8,4.3,1.3,south\n")


def test_a_notebook_serves_as_written_from_a_terminal_build(workspace: Path, ship: Ship) -> None:
    nb = write_notebook(workspace / "iris.ipynb", IMPORTS, DATA, TRAIN, LABELS, EXPORT, SERVE)
    run = ship(workspace, "run", str(nb), "-o", str(workspace / "out.ipynb"))
    assert run.returncode == 0, run.stdout + run.stderr
    built = ship(workspace, "build", str(nb), "--name", "iris", "--json")
    assert built.returncode == 0, built.stderr
    result = json.loads(built.stdout)
    assert result["state"] == ["FEATURES", "LABELS", "mu", "np", "sd", "site_encoder"]
    assert result["state_source"].startswith("run ")
    bundle = Path(result["path"])
    manifest = json.loads((bundle / "state" / "state.json").read_text())["values"]
    assert {n: e["kind"] for n, e in manifest.items()} == {
        "FEATURES": "json", "LABELS": "json", "mu": "parquet", "sd": "parquet",
        "np": "module", "site_encoder": "skops"}
    assert not list(bundle.rglob("*.pkl")) and not list(bundle.rglob("*.pickle"))
    requirements = (bundle / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "skops==" in requirements
    assert "pandas==" in requirements
    scored = score(bundle, ROWS, workspace / "pred.csv")
    assert scored.returncode == 0, scored.stderr
    predicted = (workspace / "pred.csv").read_text().splitlines()[1:]
    assert [line.split(",")[-1].strip('"') for line in predicted] == [
        "setosa", "virginica", "versicolor"]
    # No --reference: drift's reference is the profile of the training data the run tracked,
    # and the warm-up used its typical row (a site the encoder knows).
    assert result["reference_source"].startswith("X_train in run ")
    assert result["reference_rows"] == 150
    warmup = json.loads((bundle / "warmup.json").read_text())["dataframe_split"]
    assert warmup["columns"][-1] == "site" and warmup["data"][0][-1] in ("north", "south")


def test_a_value_without_a_safe_format_fails_the_build_with_its_name(
        workspace: Path, ship: Ship) -> None:
    odd = "class Thresholds:\n    low = 0.2\ncutoffs = Thresholds()"
    serve = SERVE.replace("return [LABELS", "_ = cutoffs.low\n    return [LABELS")
    nb = write_notebook(workspace / "odd.ipynb", IMPORTS, DATA, TRAIN, LABELS, odd, EXPORT,
                        serve)
    run = ship(workspace, "run", str(nb), "-o", str(workspace / "out.ipynb"))
    assert run.returncode == 0, run.stdout + run.stderr
    built = ship(workspace, "build", str(nb), "--name", "odd", "--model", "iris")
    assert built.returncode == 1
    assert "cutoffs: a __main__.Thresholds has no safe format" in built.stderr
    assert "define it in a serve cell" in built.stderr
    assert not any((workspace / ".ship" / "services" / "odd").iterdir())


def test_a_name_nothing_captured_says_where_it_is_used(workspace: Path, ship: Ship) -> None:
    serve = SERVE.replace("LABELS[", "CLASS_NAMES[")
    nb = write_notebook(workspace / "miss.ipynb", IMPORTS, DATA, TRAIN, EXPORT, serve)
    run = ship(workspace, "run", str(nb), "-o", str(workspace / "out.ipynb"))
    assert run.returncode == 0, run.stdout + run.stderr
    built = ship(workspace, "build", str(nb), "--name", "miss", "--model", "iris")
    assert built.returncode == 1
    assert "CLASS_NAMES (used by postprocess)" in built.stderr
    assert "%ship build" in built.stderr


def test_build_in_the_kernel_takes_the_kernels_values(workspace: Path, ship: Ship) -> None:
    # LABELS is defined after the export: only the kernel holds it when the notebook builds.
    nb = write_notebook(workspace / "live.ipynb", IMPORTS, DATA, TRAIN, EXPORT, LABELS, SERVE,
                        "%ship build iris")
    run = ship(workspace, "run", str(nb), "-o", str(workspace / "out.ipynb"))
    assert run.returncode == 0, run.stdout + run.stderr
    bundle = workspace / ".ship" / "services" / "iris" / "1"
    stored = json.loads((bundle / "state" / "state.json").read_text())["values"]
    assert set(stored) == {"FEATURES", "LABELS", "mu", "np", "sd", "site_encoder"}
    scored = score(bundle, ROWS, workspace / "pred.csv")
    assert scored.returncode == 0, scored.stderr
    assert "virginica" in (workspace / "pred.csv").read_text()
    # From a terminal the same build lacks LABELS, and says how to get it.
    built = ship(workspace, "build", str(nb), "--name", "iris")
    assert built.returncode == 1 and "LABELS (used by postprocess)" in built.stderr
