"""The prediction log on object storage, end to end: `ship serve` (a real process) writes
its log to an S3-compatible server (moto's server mode, started here), and `ship logs`,
`ship drift` and `ship cost --service` read it back from there, as does compaction."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner
from drift_fixtures import make_bundle, table
from live_server import free_port, wait_ready
from object_store import create_bucket, environ_with, moto_server, s3_environment

from kernel_magics.cli import main
from kernel_magics.serving.bundle import Bundle, RuntimeSettings, write_bundle
from kernel_magics.serving.predlog import LogLocation, compact_log, read_log
from kernel_magics.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def log_url(s3: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    bucket = request.node.name.replace("_", "-")[:40].strip("-")
    create_bucket(s3, bucket)
    for key, value in s3_environment(s3).items():
        monkeypatch.setenv(key, value)
    return f"s3://{bucket}/churn/log"


def with_log_dir(bundle: Bundle, url: str) -> Bundle:
    """The bundle rewritten as `ship build --log-dir URL` makes it: ship.yaml says where
    its service logs."""
    manifest = bundle.manifest
    runtime = RuntimeSettings(**{**vars(manifest.runtime), "log_dir": url})
    return write_bundle(bundle.path, manifest=type(manifest)(**{**vars(manifest),
                                                               "runtime": runtime}),
                        schema=bundle.schema, model=(bundle.path / manifest.model).read_bytes(),
                        handler_source=(bundle.path / "handler.py").read_text())


def test_serve_to_s3_and_read_it_back_with_logs_drift_and_cost(
        workspace: Workspace, model_bytes: bytes, training: pd.DataFrame, s3: str,
        log_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_log_dir(make_bundle(workspace, "churn", model_bytes, training), log_url)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from kernel_magics.cli import main; main()", "serve", "churn",
         "--port", str(port)], cwd=workspace.root, env=environ_with(s3),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = table(np.random.default_rng(5), 600, shift={"income": 1.5})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=60)
        answered = []
        with httpx.Client(base_url=url, timeout=10) as client:
            for start in range(0, len(rows), 50):
                part = rows.iloc[start:start + 50]
                answer = client.post("/invocations", json={"dataframe_split": {
                    "columns": list(part.columns), "data": part.to_numpy().tolist()}})
                assert answer.status_code == 200, answer.text
                answered.append((answer.headers["x-request-id"], answer.json()["predictions"]))
            bad = client.post("/invocations", json={"dataframe_split": {
                "columns": ["age"], "data": [[1.0]]}})
            assert bad.status_code == 400
            for rid, predictions in answered[:4]:
                sent = client.post("/feedback", json={
                    "request_id": rid, "ground_truth": [p["label"] for p in predictions]})
                assert sent.status_code == 200, sent.text
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: the log's last flush goes to S3
        _, stderr = server.communicate(timeout=60)
    assert server.returncode in (0, -signal.SIGTERM), stderr.decode()[-2000:]
    assert not (workspace.services_dir / "churn" / "log").exists()  # nothing local

    fs, root = pafs.FileSystem.from_uri(log_url)
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))]
    assert any(n.startswith("part-") for n in names) and "request-key" in names
    assert any(n.endswith(".jsonl") for n in names)  # usage, for cost

    monkeypatch.chdir(workspace.root)
    cli = CliRunner()
    # ship logs: the bundle remembers where its log is; --log-dir says it outright
    for flags in ([], ["--log-dir", log_url]):
        result = cli.invoke(main, ["logs", "churn", "--json", "--limit", "100", *flags])
        assert result.exit_code == 0, result.output
        entries = json.loads(result.output)
        assert len(entries) == 13
        assert entries[-1]["status"] == 400 and "income" in entries[-1]["error"]
        assert entries[0]["inputs"]["income"] == pytest.approx(rows["income"][:50].tolist())
        assert sum(e["ground_truth"] is not None for e in entries) == 4

    drift = cli.invoke(main, ["drift", "churn", "--json", "--window", "1h", "--history", "2"])
    assert drift.exit_code == 0, drift.output
    doc = json.loads(drift.output)
    features = {f["feature"]: f["status"] for f in doc["features"]}
    assert doc["current_rows"] == 600
    assert features["income"] == "drift" and features["age"] == "ok"
    assert doc["performance"]["labelled"] == 200 and doc["performance"]["value"] == 1.0

    cost = cli.invoke(main, ["cost", "--service", "churn", "--json", "--log-dir", log_url])
    assert cost.exit_code == 0, cost.output
    figures = json.loads(cost.output)
    assert figures["predictions"] == 600 and figures["requests"] == 13
    assert figures["log_dir"] == log_url and figures["cpu_s"] > 0

    # compaction works the same on object storage: one file per closed hour
    later = datetime.now(UTC) + timedelta(hours=3)
    result = compact_log(log_url, now=later)
    assert result.segments >= 1 and result.deleted == result.segments
    location = LogLocation(log_url)
    files = location.files("predictions")
    assert files and all(Path(f).name.startswith("compact-") for f in files)
    assert len(read_log(log_url, limit=100)) == 13
    again = cli.invoke(main, ["drift", "churn", "--json", "--window", "1h"])
    assert json.loads(again.output)["current_rows"] == 600


def test_an_unreachable_log_is_a_clear_error(workspace: Workspace, model_bytes: bytes,
                                             training: pd.DataFrame, log_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    monkeypatch.chdir(workspace.root)
    missing = log_url.replace("s3://", "s3://no-such-bucket-")
    result = CliRunner().invoke(main, ["logs", "churn", "--log-dir", missing])
    assert result.exit_code == 0 and "No requests logged in" in result.output
    result = CliRunner().invoke(main, ["logs", "churn", "--log-dir", "nope://x/y"])
    assert result.exit_code == 1
    assert "nope://x/y" in result.output and "Traceback" not in result.output


def test_storage_out_of_reach_is_a_clear_error(workspace: Workspace, model_bytes: bytes,
                                               training: pd.DataFrame, log_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reader names the log and the reason, exits 1, and shows no traceback."""
    make_bundle(workspace, "churn", model_bytes, training)
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody
    for command, says in ((["logs", "churn"], "the prediction log at"),
                          (["drift", "churn"], "the prediction log at"),
                          (["cost", "--service", "churn"], "the usage records of")):
        result = CliRunner().invoke(main, [*command, "--log-dir", log_url])
        assert result.exit_code == 1, result.output
        assert f"cannot read {says} {log_url}" in result.output
        assert "Traceback" not in result.output
