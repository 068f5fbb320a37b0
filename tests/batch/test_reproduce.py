"""`ship reproduce`: real notebooks through papermill, the runs they make read back from MLflow,
then changed (a data file, a package of the lock) and reproduced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from kernel_magics.batch.precheck import differences, rerun_parameters
from kernel_magics.batch.recorded import RecordedRun
from kernel_magics.batch.reproduce import compare_metrics
from kernel_magics.tracking import datafiles
from kernel_magics.tracking.record import GitState, RunRecord
from kernel_magics.workspace import Workspace

PARAMS = ('data_path = "data/iris.csv"\nC = 1.0\nseed = 0', ["parameters"])
LOAD = ("import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split\n\n"
        "df = pd.read_csv(data_path)\ndf.head()")
TRAIN = ('%%ship track\nX, y = df.drop(columns="species"), df["species"]\n'
         "X_train, X_test, y_train, y_test = train_test_split(\n"
         "    X, y, test_size=0.3, random_state=seed, stratify=y)\n"
         "model = LogisticRegression(C=C, max_iter=1000).fit(X_train, y_train)\n"
         "accuracy = model.score(X_test, y_test)")

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def reproduce(workspace: Path) -> Cli:
    """`ship reproduce ...` in the workspace (its command, whether or not `ship` has it)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "from kernel_magics.cli.reproduce import reproduce_cmd; reproduce_cmd()"
        return subprocess.run([sys.executable, "-c", code, *args], cwd=workspace,
                              capture_output=True, text=True, timeout=240, env={**os.environ})

    return run


def write_project(workspace: Path, make_notebook: Callable[..., Path]) -> Path:
    """data/iris.csv and the notebook that trains on it; the notebook's path."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map(dict(enumerate(iris.target_names)))
    (workspace / "data").mkdir()
    frame.to_csv(workspace / "data" / "iris.csv", index=False)
    return make_notebook("train.ipynb", PARAMS, LOAD, TRAIN)


def train(ship: Cli, notebook: Path) -> str:
    """`ship run NOTEBOOK -p C 0.5`; the id of the MLflow run it made."""
    result = ship("run", str(notebook), "-p", "C", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    (written,) = json.loads(result.stdout)["runs"][0]["runs"]
    return str(written["run_id"])


def client(workspace: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{workspace / '.ship' / 'mlflow.db'}")


def artifact(workspace: Path, run_id: str, path: str) -> Path:
    uri = client(workspace).get_run(run_id).info.artifact_uri
    return Path(uri.removeprefix("file://")) / path


def git(workspace: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                    *args], cwd=workspace, check=True, capture_output=True)


def report_of(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_changed_data_file_is_named_before_running_and_the_metric_it_moved(
        workspace: Path, make_notebook: Callable[..., Path], ship: Cli, reproduce: Cli) -> None:
    notebook = write_project(workspace, make_notebook)
    (workspace / ".gitignore").write_text(".ship/\n")
    git(workspace, "init", "-q")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "iris")
    run_id = train(ship, notebook)
    original = client(workspace).get_run(run_id).data.metrics["accuracy"]

    # Nothing changed: nothing differs, and nothing runs with --check-only.
    same = reproduce(run_id, "--check-only", "--json")
    assert same.returncode == 0, same.stderr
    clean = report_of(same)
    assert clean["differences"] == [] and clean["rerun"] is None
    assert clean["reproduced"] is False  # only a re-run reproduces

    # A third of the labels change, and the change is committed.
    csv = workspace / "data" / "iris.csv"
    lines = csv.read_text().splitlines()
    relabel = {"setosa": "versicolor", "versicolor": "virginica", "virginica": "setosa"}
    for i in range(1, len(lines), 3):
        values, label = lines[i].rsplit(",", 1)
        lines[i] = f"{values},{relabel[label]}"
    csv.write_text("\n".join(lines) + "\n")
    git(workspace, "commit", "-q", "-am", "relabel")

    checked = reproduce(run_id, "--check-only", "--json")
    assert checked.returncode == 1
    report = report_of(checked)
    kinds = {(d["kind"], d["name"]) for d in report["differences"]}
    assert kinds == {("data", "data/iris.csv"), ("commit", "HEAD")}, report["differences"]
    data = next(d for d in report["differences"] if d["kind"] == "data")
    assert data["recorded"] != data["now"] and data["stage"] == "check"
    assert report["check_seconds"] < 10 and report["rerun"] is None
    text = reproduce(run_id, "--check-only").stdout  # differences first
    assert "data/iris.csv" in text and text.index("data ") < text.index("nothing was run")

    # The run's lock file is lost too: said, and the re-run goes on in this environment.
    artifact(workspace, run_id, "environment/requirements.lock").unlink()
    rerun = reproduce(run_id, "--json")
    assert rerun.returncode == 1, rerun.stderr
    report = report_of(rerun)
    assert any("no lock file" in note for note in report["notes"])
    assert report["rerun"]["environment"]["fresh"] is False
    assert report["reproduced"] is False
    (metric,) = report["metrics"]
    assert metric["name"] == "accuracy" and metric["matched"] is False
    assert metric["original"] == pytest.approx(original)
    assert metric["reproduced"] != pytest.approx(original)
    assert report["rerun"]["parameters"] == {"data_path": "data/iris.csv", "C": 0.5, "seed": 0}
    assert Path(report["rerun"]["output"]).is_file()
    again = client(workspace).get_run(report["rerun"]["run_id"])
    assert again.info.status == "FINISHED"
    assert again.data.tags["ship.reproduces"] == run_id
    assert again.data.metrics["accuracy"] == pytest.approx(metric["reproduced"])
    # The re-run's in-memory fingerprints name the frames that changed with the file.
    moved = {d["name"] for d in report["differences"] if d["stage"] == "rerun"}
    assert {"df", "y"} <= moved and "X" not in moved


@pytest.mark.slow
def test_changed_package_is_named_and_the_fresh_environment_installs_the_locked_version(
        workspace: Path, make_notebook: Callable[..., Path], ship: Cli, reproduce: Cli) -> None:
    trained = train(ship, write_project(workspace, make_notebook))
    # The run was made with another version of six than the one installed now: its lock
    # says so (six is small and pure Python; pip fetches the locked version).
    installed = metadata.version("six")
    locked = "1.16.0" if installed != "1.16.0" else "1.17.0"
    lock = artifact(workspace, trained, "environment/requirements.lock")
    text = lock.read_text()
    assert f"six=={installed}\n" in text
    lock.write_text(text.replace(f"six=={installed}\n", f"six=={locked}\n"))

    result = reproduce(trained, "--json")
    assert result.returncode == 0, result.stderr
    report = report_of(result)
    assert [d for d in report["differences"] if d["kind"] == "package"] == [
        {"kind": "package", "name": "six", "recorded": locked, "now": installed,
         "note": None, "stage": "check"}]
    env = report["rerun"]["environment"]
    assert env["installed"] == [f"six=={locked}"] and env["failed"] == {} and env["fresh"]
    assert env["kept"] is None
    # The re-run's own lock shows the locked version: its kernel ran in the fresh venv.
    rerun_id = report["rerun"]["run_id"]
    assert f"six=={locked}\n" in artifact(workspace, rerun_id,
                                          "environment/requirements.lock").read_text()
    assert (metadata.version("six")) == installed  # the base environment is untouched
    assert report["reproduced"] is True
    assert [m["name"] for m in report["metrics"]] == ["accuracy"]
    assert all(m["matched"] for m in report["metrics"])


@pytest.mark.slow
def test_unknown_run_and_run_without_notebook_say_what_to_do(
        workspace: Path, reproduce: Cli) -> None:
    unknown = reproduce("0123456789abcdef")
    assert unknown.returncode == 1
    assert "run '0123456789abcdef' not found" in unknown.stderr
    assert "ship runs" in unknown.stderr

    store = client(workspace)
    experiment = store.create_experiment("session")
    session = store.create_run(experiment, run_name="from ipython")
    store.log_metric(session.info.run_id, "accuracy", 0.9)
    store.set_terminated(session.info.run_id)
    plain = reproduce(session.info.run_id)
    assert plain.returncode == 1
    assert "outside a notebook" in plain.stderr and "--check-only" in plain.stderr
    by_name = reproduce("from ipython", "--check-only", "--json")
    assert report_of(by_name)["run"] == session.info.run_id


def test_metrics_match_within_the_tolerance() -> None:
    results = compare_metrics({"a": 1.0, "b": 0.5, "c": 0.0, "gone": 2.0, "nan": None},
                              {"a": 1.0 + 1e-9, "b": 0.51, "c": 1e-13, "nan": None})
    assert {r.name: r.matched for r in results} == {
        "a": True, "b": False, "c": True, "gone": False, "nan": True}


def test_data_files_are_those_the_code_names_and_that_existed_before_the_cell(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n1,2\n")
    (tmp_path / "helper.py").write_text("x = 1\n")
    (tmp_path / ".ship").mkdir()
    (tmp_path / ".ship" / "ship.toml").write_text("")
    cell = ('%%ship track\ndf = pd.read_csv("data/train.csv")\n!ls\n'
            'df.to_csv("out.csv")\nx = df["a"]')
    names = [*datafiles.literals(cell), "helper.py", str(tmp_path / ".ship" / "ship.toml"),
             "no such file", "data"]
    start_ms = int(os.stat(tmp_path / "data" / "train.csv").st_mtime * 1000) + 1
    (tmp_path / "out.csv").write_text("written by the cell")
    os.utime(tmp_path / "out.csv", (start_ms / 1000 + 1, start_ms / 1000 + 1))
    found = datafiles.capture(names, cwd=tmp_path, started_ms=start_ms,
                              exclude=tmp_path / ".ship")
    assert [(f.path, f.size) for f in found] == [("data/train.csv", 8)]
    assert found[0].digest == datafiles.digest_file(tmp_path / "data" / "train.csv").digest


def test_uncommitted_changes_are_compared_by_content(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "features.py").write_text("SCALE = 1\n")
    (tmp_path / "other.py").write_text("A = 1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "start")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout.strip()
    (tmp_path / "features.py").write_text("SCALE = 2\n")  # uncommitted when the run was made
    patch = subprocess.run(["git", "diff", "HEAD", "--", "features.py"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    record = RunRecord(record_id="r", experiment="e", run_name="n", tracking_uri="",
                       workspace=str(tmp_path), status="FINISHED", start_time_ms=0,
                       git=GitState(commit=commit, root=str(tmp_path), dirty=True,
                                    changed_files=["features.py"],
                                    diffed_files=["features.py"]))
    run = RecordedRun(id="r", name="n", experiment="e", status="FINISHED", notebook=None,
                      metrics={}, params={}, data={}, record=record, lock=None, diff=patch)
    workspace = Workspace(root=tmp_path)

    assert [d for d in differences(workspace, run, None)[0] if d.kind != "python"] == []
    (tmp_path / "features.py").write_text("SCALE = 3\n")
    (tmp_path / "other.py").write_text("A = 2\n")
    found = {d.name: d for d in differences(workspace, run, None)[0] if d.kind == "diff"}
    assert set(found) == {"features.py", "other.py"}
    assert found["features.py"].recorded.startswith("uncommitted (blob ")
    assert found["other.py"].recorded == "clean"
    (tmp_path / "features.py").write_text("SCALE = 2\n")  # back as it was at the run
    git(tmp_path, "checkout", "--", "other.py")
    assert [d for d in differences(workspace, run, None)[0] if d.kind == "diff"] == []


def test_changed_notebook_code_and_parameter_default_are_named(
        tmp_path: Path) -> None:
    from notebook_files import write_notebook

    cells = [('data_path = "data/iris.csv"\nC = 1.0', ["parameters"]), "import pandas as pd",
             "%%ship track\naccuracy = 0.5 * C"]
    snapshot = json.loads(write_notebook(tmp_path / "then.ipynb", *cells).read_text())
    cells[0] = ('data_path = "data/iris.csv"\nC = 2.0\nepochs = 3', ["parameters"])
    cells[2] = "%%ship track\naccuracy = 0.25 * C"
    notebook = write_notebook(tmp_path / "train.ipynb", *cells)
    run = RecordedRun(id="r", name="n", experiment="e", status="FINISHED",
                      notebook=str(notebook), metrics={"accuracy": 0.5},
                      params={"data_path": "data/iris.csv", "C": "1.0"}, data={},
                      snapshot=snapshot, cell="accuracy = 0.5 * C")
    found = differences(Workspace(root=tmp_path), run, notebook)[0]
    code = [d for d in found if d.kind == "diff"]
    assert [(d.name, d.note) for d in code] == [
        ("train.ipynb", "code cells changed (numbered as now): 1, 3")]
    params = {d.name: (d.recorded, d.now) for d in found if d.kind == "parameter"}
    assert params == {"C": ("1.0", "2.0"), "epochs": (None, "3")}
    # The re-run passes the value the run used, not the notebook's new default.
    assert rerun_parameters(run, notebook) == {"data_path": "data/iris.csv", "C": 1.0}
