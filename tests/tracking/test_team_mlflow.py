"""MLflow as teams run it: `mlflow server` on PostgreSQL with its artifacts on S3.

One module fixture starts, for real: a PostgreSQL cluster (initdb, pg_ctl), moto's S3 server
and `mlflow server --backend-store-uri postgresql+psycopg2://... --artifacts-destination
s3://... --serve-artifacts`. The clients (the notebook's kernel, the background writer,
`ship build`) know only the server's URL: they have no S3 credentials, every artifact goes
through the server to the bucket. The tests then check where things landed: run rows and
aliases in PostgreSQL's tables, artifact objects in the bucket.

- track → export → alias → build: a notebook with a `%%ship track` cell and
  `%ship export ... --eval` through `ship run` (papermill), `ship models alias`,
  `ship build`.
- The server goes down: a tracked cell's record stays in the spool; the server comes back
  and `ship sync` writes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow_server import MlflowServer, PostgreSQL, free_port
from notebook_files import write_notebook
from object_store import create_bucket, moto_server, s3_environment

from kernel_magics.tracking.spool import Spool
from kernel_magics.workspace import init_workspace

pytestmark = pytest.mark.slow

BUCKET = "team-mlflow"
DATABASE = "mlflow"

PARAMETERS = ("C = 1.0", ["parameters"])
TRAIN = """%%ship track --model clf
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
frame = load_iris(as_frame=True).frame
X = frame.drop(columns="target").astype("float32")
y = frame["target"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
clf = LogisticRegression(C=C, max_iter=500).fit(X_train.to_numpy(), y_train)
accuracy = float(clf.score(X_test.to_numpy(), y_test))
SPECIES = [str(n) for n in load_iris().target_names]"""
EXPORT = "%ship export clf --name iris --example X_test.iloc[:5] --eval X_test y_test"
SERVE = """%%ship serve
def postprocess(outputs):
    return [SPECIES[int(i)] for i in outputs["label"]]"""


@dataclass
class Team:
    """The running servers and where to look at what they stored."""

    postgres: PostgreSQL
    s3_endpoint: str
    mlflow: MlflowServer
    timings: dict[str, float]

    @property
    def url(self) -> str:
        return self.mlflow.url

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Rows straight from the tracking server's PostgreSQL database."""
        return self.postgres.query(DATABASE, query)

    def objects(self) -> list[str]:
        """Every object key in the artifact bucket."""
        import boto3

        env = s3_environment(self.s3_endpoint)
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint,
                          region_name=env["AWS_DEFAULT_REGION"],
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def client_env(self, *, tracking_uri: bool = True) -> dict[str, str]:
        """What a team member's process has: no S3 credentials, and the server's URL in
        MLFLOW_TRACKING_URI (or not: ship.toml names it)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "MLFLOW_S3_")) and k != "MLFLOW_TRACKING_URI"}
        env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "SHIP_WRITER_IDLE_S": "2"})
        if tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.url
        return env


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    timings: dict[str, float] = {}
    folder = tmp_path_factory.mktemp("team-mlflow")
    started = time.monotonic()
    postgres = PostgreSQL()
    try:
        postgres.start()
        backend = postgres.create_database(DATABASE)
        timings["postgres_s"] = time.monotonic() - started
        with moto_server() as endpoint:
            create_bucket(endpoint, BUCKET)
            # Only the server holds the object store's credentials (--serve-artifacts).
            server_env = {**s3_environment(endpoint), "MLFLOW_S3_ENDPOINT_URL": endpoint}
            server = MlflowServer(folder, free_port(), backend_store_uri=backend,
                                  artifacts_destination=f"s3://{BUCKET}/mlflow", env=server_env)
            try:
                timings["mlflow_first_start_s"] = server.start()
                yield Team(postgres=postgres, s3_endpoint=endpoint, mlflow=server,
                           timings=timings)
            finally:
                started = time.monotonic()
                server.stop()
                timings["mlflow_stop_at_end_s"] = time.monotonic() - started
    finally:
        started = time.monotonic()
        postgres.stop()
        timings["postgres_stop_s"] = time.monotonic() - started
    print("\nteam MLflow timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def ship(root: Path, env: dict[str, str], *args: str,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("ship")), *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def test_track_export_alias_build_land_in_postgres_and_s3(
        team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The team's ship.toml names the server (committed with the project); the environment
    # has no MLFLOW_TRACKING_URI, so nothing may lean on MLflow's process-wide URI.
    root = tmp_path / "project"
    root.mkdir()
    config = init_workspace(root).ship_dir / "ship.toml"
    config.write_text(config.read_text().replace('uri = ""', f'uri = "{team.url}"', 1))
    env = team.client_env(tracking_uri=False)
    monkeypatch.chdir(root)
    notebook = write_notebook(root / "iris.ipynb", PARAMETERS, TRAIN, EXPORT, SERVE)

    started = time.monotonic()
    run = ship(root, env, "run", str(notebook), "-p", "C", "0.5", "-o", str(root / "out.ipynb"),
               "--json")
    team.timings["ship_run_s"] = time.monotonic() - started
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["ok"]

    # The run: in MLflow, in PostgreSQL's tables, its artifacts in the bucket.
    client = team.client()
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    (tracked,) = client.search_runs([experiment.experiment_id])
    run_id = tracked.info.run_id
    assert tracked.info.status == "FINISHED"
    assert tracked.data.params["C"] == "0.5"
    assert 0.8 < tracked.data.metrics["accuracy"] <= 1.0
    assert tracked.info.artifact_uri.startswith("mlflow-artifacts:")
    assert team.sql(f"SELECT status FROM runs WHERE run_uuid = '{run_id}'") == [("FINISHED",)]
    assert ("C", "0.5") in team.sql(f"SELECT key, value FROM params WHERE run_uuid = '{run_id}'")
    logged = {a.path for a in client.list_artifacts(run_id, "code")}
    assert {"code/cell.py", "code/executed.ipynb"} <= logged
    keys = team.objects()
    assert any(k.startswith("mlflow/") and run_id in k and k.endswith("code/cell.py")
               for k in keys), keys

    # The model version: linked to the run, its figures and its holdout (--eval) with it.
    (version,) = client.search_model_versions("name='iris'")
    assert version.run_id == run_id
    assert version.tags["ship.parity.passed"] == "true"
    assert team.sql("SELECT name, version, run_id FROM model_versions WHERE name = 'iris'") == [
        ("iris", 1, run_id)]
    assert any(k.endswith("/model.onnx") for k in keys), keys
    assert any(k.endswith("/holdout.npz") for k in keys), keys
    # The serve cell's SPECIES, captured from the kernel with the version's run.
    assert any(run_id in k and "/ship/state/" in k for k in keys), keys

    # Listed from the server.
    listed = ship(root, env, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout

    # `ship export RUN` from a terminal: the run's tracked model, fetched through the server.
    import numpy as np
    from sklearn.datasets import load_iris

    rows = root / "rows.npy"
    np.save(rows, load_iris().data[:8].astype("float32"))
    started = time.monotonic()
    exported = ship(root, env, "export", run_id, "--name", "iris-cli", "--example", str(rows),
                    "--json")
    team.timings["ship_export_s"] = time.monotonic() - started
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert client.get_model_version("iris-cli", "1").run_id == run_id

    # An alias, set from the command line, in the registry's table.
    aliased = ship(root, env, "models", "alias", "iris", "1", "production", "--json")
    assert aliased.returncode == 0, aliased.stderr
    assert client.get_model_version_by_alias("iris", "production").version == "1"
    assert ("iris", "production", 1) in team.sql(
        "SELECT name, alias, version FROM registered_model_aliases")
    board = json.loads(ship(root, env, "models", "iris", "--json").stdout)
    assert "production" in board[0]["aliases"]

    # The bundle: built from the model version in MLflow, logged back there, files in S3.
    started = time.monotonic()
    built = ship(root, env, "build", str(notebook), "--name", "iris", "--json")
    team.timings["ship_build_s"] = time.monotonic() - started
    assert built.returncode == 0, built.stdout + built.stderr
    result = json.loads(built.stdout)
    bundle = Path(result["path"])
    assert (bundle / "model.onnx").is_file() and (bundle / "ship.yaml").is_file()
    assert "SPECIES" in (bundle / "handler.py").read_text()
    assert result["state"] == ["SPECIES"]
    assert result["reference_rows"] == 105  # the tracked training rows, read from S3
    assert result["artifact_uri"] == f"runs:/{run_id}/bundles/iris/1"
    (version,) = client.search_model_versions("name='iris'")
    assert version.tags["ship.bundle.iris"] == "1"
    in_mlflow = {a.path for a in client.list_artifacts(version.run_id, "bundles/iris/1")}
    assert {"bundles/iris/1/model.onnx", "bundles/iris/1/ship.yaml"} <= in_mlflow
    assert any(k.endswith("bundles/iris/1/model.onnx") for k in team.objects())


def test_records_survive_the_server_going_down_and_sync_writes_them(
        team: Team, nb: Any, workspace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in team.client_env().items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    for name in [k for k in os.environ if k.startswith(("AWS_", "MLFLOW_S3_"))]:
        monkeypatch.delenv(name)
    started = time.monotonic()
    team.mlflow.stop()
    team.timings["mlflow_stop_s"] = time.monotonic() - started
    try:
        nb.run("import numpy as np\nfeatures = np.arange(10.0)")
        started = time.monotonic()
        out = nb.track("alpha = 3\nscore = float(features.sum()) * alpha",
                       "--experiment team-down")
        assert time.monotonic() - started < 2.0, "the cell waited for the server"
        assert out.result.success, out.stdout
        assert "pending" in out.summary
        record_id = out.record_id

        # The background writer tries, fails, and keeps the record.
        spool = Spool(workspace.spool_dir)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not spool.load_state(record_id).attempts:
            time.sleep(0.5)
        assert spool.load_state(record_id).attempts, "the writer never tried"
        team.timings["writer_failed_attempt_s"] = time.monotonic() - started
        assert list(spool.pending()) == [record_id]
        assert spool.load(record_id).status == "FINISHED"
    finally:
        team.timings["mlflow_restart_s"] = team.mlflow.start()

    started = time.monotonic()
    synced = ship(workspace.root, team.client_env(), "sync", "--json")
    team.timings["ship_sync_s"] = time.monotonic() - started
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert list(spool.pending()) == []
    assert workspace.done() == [record_id]

    client = team.client()
    experiment = client.get_experiment_by_name("team-down")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["alpha"] == "3"
    assert run.data.metrics["score"] == pytest.approx(135.0)
    assert run.data.tags["ship.record_id"] == record_id
    assert team.sql(f"SELECT status FROM runs WHERE run_uuid = '{run.info.run_id}'") == [
        ("FINISHED",)]
    assert any(run.info.run_id in k and k.endswith("code/cell.py") for k in team.objects())
