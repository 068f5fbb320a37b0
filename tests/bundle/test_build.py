"""`ship build`: notebooks with serve cells and registered models become bundles that run.

End to end: a notebook trains (tracked), exports and declares a serve cell; `ship run`
executes it through papermill, `ship build` makes the bundle, and the bundle's own runtime
scores with it. Error cases build from a model registered directly through export.api.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from notebook_files import Ship, write_notebook

from kernel_magics.bundle.build import BuildError, build_service
from kernel_magics.errors import NotFoundError

pytestmark = pytest.mark.slow

TRAIN = """%%ship track --model clf --export iris --example X_train.iloc[:5]
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
frame = load_iris(as_frame=True).frame
X_train = frame.drop(columns="target").astype("float32")
y_train = frame["target"]
clf = LogisticRegression(max_iter=500).fit(X_train.to_numpy(), y_train)
accuracy = float(clf.score(X_train.to_numpy(), y_train))"""

SERVE = """%%ship serve
import numpy as np
SPECIES = ["setosa", "versicolor", "virginica"]

def postprocess(outputs):
    return [SPECIES[int(i)] for i in outputs["label"]]"""


def test_notebook_to_bundle_to_predictions(workspace: Path, ship: Ship) -> None:
    nb = write_notebook(workspace / "iris.ipynb", TRAIN, SERVE)
    run = ship(workspace, "run", str(nb), "-o", str(workspace / "out.ipynb"))
    assert run.returncode == 0, run.stdout + run.stderr
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).frame.drop(columns="target").to_parquet(workspace / "train.parquet")
    built = ship(workspace, "build", str(nb), "--name", "iris", "--reference",
                 str(workspace / "train.parquet"), "--log-dir", "s3://ml-logs/iris", "--json")
    assert built.returncode == 0, built.stderr
    result = json.loads(built.stdout)
    bundle = Path(result["path"])
    assert bundle == workspace / ".ship" / "services" / "iris" / "1"
    assert result["reference_rows"] == 150
    from kernel_magics.monitor.reference import read_reference

    profile = read_reference(bundle / "reference.parquet")
    assert [p.feature for p in profile][:1] == ["sepal length (cm)"]
    # The schema's features are the tracked training DataFrame's columns.
    schema = json.loads((bundle / "schema.json").read_text())
    assert [f["name"] for f in schema["features"]][:2] == ["sepal length (cm)",
                                                           "sepal width (cm)"]
    assert "SPECIES" in (bundle / "handler.py").read_text()
    requirements = [line.split("==")[0].lower() for line in
                    (bundle / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert "onnxruntime" in requirements
    for banned in ("jupyter", "jupyterlab", "torch", "mlflow", "ipython", "kernel-magics"):
        assert banned not in requirements
    dockerfile = (bundle / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and "USER ship" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    deployment = yaml.safe_load((bundle / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    kinds = {yaml.safe_load((bundle / "k8s" / f).read_text())["kind"]
             for f in ("service.yaml", "hpa.yaml")}
    assert kinds == {"Service", "HorizontalPodAutoscaler"}
    kserve = yaml.safe_load((bundle / "kserve.yaml").read_text())
    assert kserve["kind"] == "InferenceService"
    # --log-dir: every replica logs to the URL, and a CronJob compacts it
    assert result["log_dir"] == "s3://ml-logs/iris"
    assert {"name": "SHIP_LOG_DIR", "value": "s3://ml-logs/iris"} in container["env"]
    assert yaml.safe_load((bundle / "k8s" / "compact-log.yaml").read_text())["kind"] == \
        "CronJob"
    compile((bundle / "rayserve.py").read_text(), "rayserve.py", "exec")
    # Logged to MLflow next to the model version's run.
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / '.ship' / 'mlflow.db'}")
    (version,) = client.search_model_versions("name='iris'")
    assert version.tags["ship.bundle.iris"] == "1"
    logged = {a.path for a in client.list_artifacts(version.run_id, "bundles/iris/1")}
    assert "bundles/iris/1/model.onnx" in logged
    # The bundle scores with its own runtime (ship_runtime/ inside it), as the container does.
    rows = workspace / "rows.csv"
    rows.write_text("sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
                    "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    scored = subprocess.run([sys.executable, "-E", "-s", "-m", "ship_runtime", "score", str(bundle),
                             str(rows), str(workspace / "pred.csv")], cwd=bundle,
                            capture_output=True, text=True, timeout=120)
    assert scored.returncode == 0, scored.stderr
    assert "setosa" in (workspace / "pred.csv").read_text()
    # A second build is a new, immutable version.
    again = ship(workspace, "build", str(nb), "--name", "iris", "--json")
    assert json.loads(again.stdout)["version"] == "2"


def register(workspace: Path) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.export.api import export_model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    export_model(LogisticRegression().fit(x, y), "tiny", x[:4])


def test_undefined_name_in_a_serve_cell_is_named(workspace: Path) -> None:
    register(workspace)
    nb = write_notebook(workspace / "t.ipynb", ("def postprocess(outputs):\n"
                                                "    return LABELS[outputs['label']]",
                                                ["ship:serve"]))
    with pytest.raises(BuildError) as err:
        build_service(nb, "tiny")
    assert "LABELS (used by postprocess)" in str(err.value)
    assert not (workspace / ".ship" / "services" / "tiny" / "1").exists()


def test_handler_that_does_not_fit_the_model_fails_the_build(workspace: Path) -> None:
    register(workspace)
    nb = write_notebook(workspace / "t.ipynb", "%%ship serve\nimport numpy as np\n"
                        "def preprocess(df):\n    return np.zeros((len(df), 7), dtype='float32')")
    with pytest.raises(BuildError) as err:
        build_service(nb, "tiny")
    assert "does not work" in str(err.value) and "shape" in str(err.value)
    assert not any((workspace / ".ship" / "services" / "tiny").iterdir())


def test_no_registered_model_says_how_to_get_one(workspace: Path) -> None:
    nb = write_notebook(workspace / "t.ipynb", "x = 1")
    with pytest.raises(NotFoundError) as err:
        build_service(nb, "ghost")
    assert "%ship export" in str(err.value)


def test_nbconvert_exporter_extracts_serve_cells(workspace: Path) -> None:
    nb = write_notebook(workspace / "t.ipynb", "ignored = 1", SERVE,
                        ("THRESHOLD = 0.5", ["ship:serve"]))
    out = subprocess.run([str(Path(sys.executable).with_name("jupyter")), "nbconvert", "--to",
                          "ship", str(nb), "--stdout"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SPECIES" in out.stdout and "THRESHOLD = 0.5" in out.stdout
    assert "ignored" not in out.stdout and "%%ship" not in out.stdout
