"""`%ship export` and `%%ship track --export`: the magic adapters over export.api, in a real
shell with a real sqlite MLflow store; the model version is linked to its tracked run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

pytestmark = pytest.mark.slow

TRAIN = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "X, y = load_iris(return_X_y=True)\n"
    "X = X.astype('float32')\n"
    "clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)\n"
    "accuracy = float(clf.score(X, y))"
)
# An MLP, so int8 has MatMul weights to quantize.
TRAIN_MLP = TRAIN.replace(
    "from sklearn.linear_model import LogisticRegression",
    "from sklearn.neural_network import MLPClassifier").replace(
    "LogisticRegression(max_iter=300)", "MLPClassifier((32,), max_iter=400, random_state=0)")


def test_export_links_the_version_to_the_run_that_trained_it(nb, workspace):
    trained = nb.track(TRAIN)
    assert trained.result.success
    # Expressions as people write them: spaces, commas and negative numbers unquoted.
    out = nb.run("%ship export clf --name iris --example X[:5].reshape(5, -1) "
                 "--eval X[:120, :] y[:120]")
    assert "parity" in out.stdout.lower() and "iris" in out.stdout
    client = workspace.client()
    (version,) = client.search_model_versions("name='iris'")
    run = client.get_run(version.run_id)
    assert run.data.tags["ship.record_id"] == trained.record_id  # the training run itself
    assert run.data.metrics["accuracy"] > 0.9


def test_track_can_export_at_the_end_of_a_successful_run(nb, workspace):
    out = nb.track(TRAIN, "--model clf --export iris --example X[:3]")
    assert out.result.success, out.result.error_in_exec
    client = workspace.client()
    (version,) = client.search_model_versions("name='iris'")
    run = client.get_run(version.run_id)
    assert run.data.tags["ship.record_id"] == out.record_id
    assert "iris" in out.stdout and "version 1" in out.stdout.lower()


def test_cli_lists_the_leaderboard_and_sets_an_alias(nb, workspace):
    assert nb.track(TRAIN_MLP).result.success
    nb.run("%ship export clf --name iris --example X[:5] --eval X y")
    nb.run("%ship export clf --name iris --example X[:5] --eval X y --quantize int8 --force")
    ship = Path(sys.executable).with_name("ship")
    env = {**os.environ}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ship), *args], cwd=workspace.root, capture_output=True,
                              text=True, env=env, timeout=120)

    rows = json.loads(cli("models", "iris", "--json").stdout)
    assert sorted(r["version"] for r in rows) == ["1", "2"]
    assert {r["precision"] for r in rows} == {"fp32", "int8"}
    assert all(r["p50_ms"] and r["size_bytes"] for r in rows)
    alias = cli("models", "alias", "iris", "2", "champion")
    assert alias.returncode == 0, alias.stderr
    assert "champion" in alias.stdout
    board = cli("models", "iris")
    assert "champion" in board.stdout
    bad = cli("models", "alias", "iris", "2")
    assert bad.returncode != 0 and "ship models alias NAME VERSION ALIAS" in bad.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%ship export nothere --name iris --example X[:1]", "No variable 'nothere'"),
        ("%ship export clf --name iris", "needs --example"),
        ("%ship export clf --name iris --example undefined_rows", "could not be evaluated"),
        ("%ship export clf --name iris --example X[:1] --eval X y X", "--eval takes the rows"),
        ("%ship export clf --name iris --example X[:1", "unclosed '['"),
    ],
)
def test_bad_export_arguments_say_what_to_type(nb, line, message):
    nb.run("import numpy as np\nX = np.ones((4, 4), dtype='float32')\ny = np.zeros(4)\nclf = 1")
    out = nb.execute(line)
    assert isinstance(out.result.error_in_exec, UsageError)
    assert message in str(out.result.error_in_exec)


def test_track_export_options_need_model_and_export(nb):
    for args, message in (("--export iris --example X[:1]", "--export needs --model"),
                          ("--model clf --example X[:1]", "go with --export NAME")):
        out = nb.track("a = 1", args)
        assert isinstance(out.result.error_in_exec, UsageError)
        assert message in str(out.result.error_in_exec)


def test_build_from_the_notebook_with_a_reference(nb, workspace, notebook_path,
                                                  make_notebook):
    assert nb.track(TRAIN).result.success
    nb.run("%ship export clf --name iris --example X[:5] --eval X y")
    serve = ("%%ship serve\nNAMES = ['setosa', 'versicolor', 'virginica']\n"
             "def postprocess(outputs):\n    return [NAMES[int(i)] for i in outputs['label']]")
    make_notebook(notebook_path, [TRAIN, serve])  # what the lab saved
    nb.run(serve)  # the serve cell runs like any cell in the kernel
    assert nb.ns["NAMES"][0] == "setosa"
    out = nb.run("%ship build iris --reference X")
    bundle = workspace.root / ".ship" / "services" / "iris" / "1"
    assert "built service iris version 1" in out.stdout
    assert "reference profile of 150 training rows" in out.stdout
    assert (bundle / "reference.parquet").is_file() and "NAMES" in (
        bundle / "handler.py").read_text()
    bad = nb.execute("%ship build iris --frobnicate 1")
    assert isinstance(bad.result.error_in_exec, UsageError)
    assert "Unknown option --frobnicate" in str(bad.result.error_in_exec)
