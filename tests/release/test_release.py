"""Releases end to end: versions built from real notebooks, `ship serve` with two workers
following release.json while real traffic flows, the gate rolling back a broken and a
slow canary and promoting an identical one step by step, shadows reported, MLflow
aliases moved, and no client request failing because of a switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from notebook_files import write_notebook
from sklearn.linear_model import LogisticRegression

from kernel_magics.bundle.build import build_service
from kernel_magics.export.api import export_model
from kernel_magics.export.registry import client_for
from kernel_magics.release import rollout
from kernel_magics.release.controller import release_view
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow

SERVE = '''%%ship serve
import time
import numpy as np


def postprocess(outputs):
    return [int(label) for label in outputs["label"]]
'''
# The broken canary: its serve cell raises on the rows it is sure are class 1 (about
# a third of them).
BROKEN = SERVE.replace("    return [int", """    if (outputs["probabilities"][:, 1] > 0.8).any():
        raise ValueError("this version cannot answer for confident class 1")
    return [int""")
SLOW = SERVE.replace("    return [int", "    time.sleep(0.03)\n    return [int")
FEATURES = ["feature_0", "feature_1", "feature_2", "feature_3"]  # as the export names them
VERSIONS = {"1": SERVE, "2": SERVE, "3": BROKEN, "4": SLOW}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with service `churn`: 1 good, 2 identical, 3 broken, 4 slow."""
    folder = tmp_path_factory.mktemp("release")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.chdir(folder)
        workspace = init_workspace(folder)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((400, 4)).astype("float32")
        y = (x[:, 0] + x[:, 1] > 0).astype("int64")
        export_model(LogisticRegression().fit(x, y), "churn", x[:8])
        # model version 2 (versions 3 and 4 serve it; 2 serves 1, as the champion does)
        export_model(LogisticRegression(C=0.5).fit(x, y), "churn", x[:8])
        for version, cell in VERSIONS.items():
            built = build_service(write_notebook(folder / f"v{version}.ipynb", cell),
                                  "churn", workspace=workspace,
                                  model_version="1" if version in "12" else "2")
            assert built.version == version
        (workspace.ship_dir / "ship.toml").write_text(
            "[release]\nmin_requests = 20\nstep_seconds = 1\ninterval_s = 0.3\n",
            encoding="utf-8")
        yield folder


@pytest.fixture
def service(root: Path) -> Iterator[str]:
    """`ship serve churn` with two workers, from a release of champion 1 alone."""
    service_dir = root / ".ship" / "services" / "churn"
    for name in ("release.json", "releases.jsonl"):
        (service_dir / name).unlink(missing_ok=True)
    deploy(root, "--version", "1", "--promote")
    (service_dir / "releases.jsonl").unlink()
    output = open(root / "serve.log", "ab")  # noqa: SIM115 (the server's, closed below)
    with socket_port() as port:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ship")), "serve", "churn", "--port",
             str(port), "--workers", "2", "--log-level", "info"], cwd=root,
            env={**os.environ}, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        output.close()


class socket_port:
    """A free port on 127.0.0.1 (the socket closes before the server binds it)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


class Traffic:
    """A client thread sending one-row requests until stopped; counts what it got."""

    def __init__(self, url: str, *, key: str | None = None) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.key = key

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        rng = np.random.default_rng(1)
        headers = {} if self.key is None else {"x-ship-routing-key": self.key}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                row = rng.standard_normal(4).round(4).tolist()
                answer = client.post("/invocations", headers=headers,
                                     json={"dataframe_split": {
                                         "columns": FEATURES,
                                         "data": [row]}})
                self.statuses[answer.status_code] += 1
                self.versions[answer.headers.get("x-ship-model-version", "?")] += 1
                if answer.status_code != 200:
                    self.failures.append(f"{answer.headers.get('x-ship-model-version')}: "
                                         f"{answer.text[:200]}")


def deploy(root: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([str(Path(sys.executable).with_name("ship")), "deploy", "churn",
                           *args, "--json"], cwd=root, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    view: dict[str, Any] = json.loads(done.stdout)
    return view


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout:.0f} s")


def aliases(root: Path) -> dict[str, str]:
    client = client_for(Workspace(root=root))
    return {k: str(v) for k, v in client.get_registered_model("churn").aliases.items()}


def model_version(root: Path, version: str) -> str:
    import yaml

    manifest = yaml.safe_load((root / ".ship/services/churn" / version / "ship.yaml")
                              .read_text(encoding="utf-8"))
    return str(manifest["lineage"]["model_version"])


def test_a_broken_canary_is_rolled_back_and_no_request_fails_after(root: Path,
                                                                     service: str) -> None:
    workspace = Workspace(root=root)
    with Traffic(service) as traffic:
        wait_for(lambda: sum(traffic.statuses.values()) > 50)
        deploy(root, "--version", "3", "--canary", "30", "--steps", "100")
        started = rollout.decisions(workspace, "churn")[-1]  # the gate may be quicker
        assert (started.action, started.version, started.percent) == ("canary", "3", 30)
        assert started.aliases == f"challenger -> churn version {model_version(root, '3')}"
        wait_for(lambda: rollout.current_release(workspace, "churn").canary is None)
        rolled_back = time.monotonic()
        time.sleep(1.5)  # every worker follows within a second
        before = Counter(traffic.statuses)
        time.sleep(2.0)
    after = traffic.statuses - before
    assert after[200] > 50 and set(after) == {200}, after
    assert traffic.versions["3"] > 0  # the canary did answer while it was live
    decision = rollout.decisions(workspace, "churn")[0]
    assert (decision.action, decision.version, decision.automatic) == ("rollback", "3", True)
    assert decision.reason.startswith("rolled back canary 3: error rate")
    failed = [c for c in decision.evidence if c["passed"] is False]
    assert failed and failed[0]["metric"] == "error_rate"
    assert failed[0]["p_value"] < 0.01 and failed[0]["n_canary"] >= 20
    assert failed[0]["canary"] > 0.15 and failed[0]["champion"] == 0.0
    wait_for(lambda: "challenger" not in aliases(root), 30)
    assert rolled_back  # for the reader: the checks above hold from the rollback on


def test_an_identical_canary_steps_up_and_is_promoted(root: Path, service: str) -> None:
    workspace = Workspace(root=root)
    with Traffic(service, key="customer-7") as sticky, Traffic(service) as traffic:
        wait_for(lambda: sum(traffic.statuses.values()) > 50)
        deploy(root, "--version", "2", "--canary", "20", "--steps", "50,100")
        wait_for(lambda: rollout.current_release(workspace, "churn").champion == "2")
        time.sleep(1.5)
        before = Counter(traffic.versions)
        time.sleep(1.0)
    assert set(traffic.statuses) == {200}, traffic.failures[:3]  # no switch failed one
    assert set(traffic.versions - before) == {"2"}  # the new champion answers all
    # one routing key meets one version while the split holds (1 until 100 %, then 2)
    assert set(sticky.statuses) == {200}
    history = rollout.decisions(workspace, "churn")
    assert [(d.action, d.automatic) for d in reversed(history)] == [
        ("canary", False), ("step", True), ("promote", True)]
    assert history[1].percent == 50
    checks = {c["metric"]: c for c in history[0].evidence}
    assert checks["error_rate"]["passed"] and checks["latency_p50_ms"]["passed"]
    assert checks["disagreement"]["n_canary"] > 0 and checks["disagreement"]["canary"] == 0
    # the aliases move after the decision is recorded (MLflow takes a moment)
    wait_for(lambda: aliases(root) == {"champion": model_version(root, "2")}, 30)


def test_a_slow_canary_is_rolled_back_on_latency(root: Path, service: str) -> None:
    workspace = Workspace(root=root)
    with Traffic(service):
        deploy(root, "--version", "4", "--canary", "50")
        wait_for(lambda: rollout.current_release(workspace, "churn").canary is None)
    decision = rollout.decisions(workspace, "churn")[0]
    assert (decision.action, decision.automatic) == ("rollback", True)
    failed = {c["metric"] for c in decision.evidence if c["passed"] is False}
    assert "latency_p50_ms" in failed, decision.reason
    assert "p50 latency" in decision.reason


def test_shadows_see_copies_and_are_reported(root: Path, service: str) -> None:
    workspace = Workspace(root=root)
    started = datetime.now(UTC)
    deploy(root, "--version", "2", "--shadow")
    deploy(root, "--version", "3", "--shadow")
    with Traffic(service) as traffic:
        time.sleep(1.0)  # the workers follow the release
        wait_for(lambda: sum(traffic.statuses.values()) > 300)
        pinned = httpx.post(f"{service}/v2/models/churn/versions/3/infer", json={
            "inputs": [{"name": n, "shape": [1], "datatype": "FP32", "data": [0.0]}
                       for n in FEATURES]})
    assert set(traffic.statuses) == {200}  # a broken shadow never reaches a client
    assert set(traffic.versions) == {"1"}
    assert pinned.status_code == 200 and pinned.json()["model_version"] == "3"
    time.sleep(1.5)  # the log's last segment
    view = release_view(workspace, "churn")
    reports = {r["version"]: r for r in view["shadow_reports"]}
    same, broken = reports["2"], reports["3"]
    assert same["requests"] > 200 and same["agreement"] == 1.0 and same["flips"] == []
    assert {c["value"] for c in same["by_class"]} == {"0", "1"}
    assert 0.2 < broken["error_rate"]["shadow"] < 0.5
    assert broken["error_rate"]["champion"] == 0.0
    text = subprocess.run([str(Path(sys.executable).with_name("ship")), "deploy", "churn"],
                          cwd=root, capture_output=True, text=True, timeout=60).stdout
    assert "shadows   2, 3" in text and "shadow 3:" in text
    # a request log without the copies; the copies are there for whoever asks
    from kernel_magics.serving.predlog import read_log

    log = str(root / ".ship/services/churn/log")
    answered = read_log(log, started)
    assert Counter(e.version for e in answered)["3"] == 1  # the pinned request
    assert {e.version for e in answered} == {"1", "3"}
    copies = [e for e in read_log(log, started, shadows=True) if e.shadow]
    assert {e.version for e in copies} == {"2", "3"} and {e.shadow for e in copies} == {"1"}


def test_deploy_says_what_is_wrong(root: Path) -> None:
    ship = str(Path(sys.executable).with_name("ship"))
    service_dir = root / ".ship" / "services" / "churn"
    for name in ("release.json", "releases.jsonl"):
        (service_dir / name).unlink(missing_ok=True)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ship, "deploy", "churn", *args], cwd=root,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})

    unknown = run("--version", "9", "--canary", "5")
    assert unknown.returncode == 1 and "Built versions of churn: 4, 3, 2, 1" in unknown.stderr
    nothing = run("--promote")
    assert nothing.returncode == 1 and "no canary to promote" in nothing.stderr
    assert run("--steps", "5,50").returncode == 2
    both = run("--version", "2", "--canary", "5", "--promote")
    assert both.returncode == 2 and "pick one" in both.stderr
    bad = run("--version", "2", "--canary", "150")
    assert bad.returncode == 1 and "(0, 100]" in bad.stderr
    assert run("--version", "2", "--canary", "5").returncode == 0
    # the manifests for KServe and Ray Serve follow the same release
    assert "canaryTrafficPercent: 5" in (service_dir / "kserve.yaml").read_text()
    assert "release.json" in (service_dir / "rayserve.py").read_text()
    twice = run("--version", "3", "--canary", "5")
    assert twice.returncode == 1 and "canary 2 is live at 5%" in twice.stderr
    # a registry out of reach: the release changes all the same, and the record says so
    away = run("--rollback", MLFLOW_TRACKING_URI="http://127.0.0.1:9",
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="2")
    assert away.returncode == 0, away.stderr
    assert "canaryTrafficPercent:" not in (service_dir / "kserve.yaml").read_text()
    last, rolled = rollout.decisions(Workspace(root=root), "churn")[:2]
    assert rolled.action == "rollback" and rolled.aliases == "challenger removed"
    assert last.action == "aliases" and "MLflow aliases not moved" in last.reason
    shown = run()
    assert shown.returncode == 0 and "rolled back by hand" in shown.stdout
    (service_dir / "release.json").write_text("{not json", encoding="utf-8")
    broken = run()
    assert broken.returncode == 1 and "release.json: not JSON" in broken.stderr


def test_the_magic_changes_and_shows_the_release(root: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    from kernel_magics.display.release import RELEASE_MIME

    for name in ("release.json", "releases.jsonl"):
        (root / ".ship/services/churn" / name).unlink(missing_ok=True)
    monkeypatch.chdir(root)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "kernel_magics")
    with capture_output(display=True) as captured:
        shell.run_line_magic("ship", "deploy churn --version 1 --promote")
        shell.run_line_magic("ship", "deploy churn --version 2 --canary 10 --steps 10,50")
    shown = captured.outputs[-1].data
    assert shown[RELEASE_MIME]["canary"]["version"] == "2"
    assert "champion 1 · 90%" in shown["text/html"] and "2 · 10%" in shown["text/html"]
    assert "canary    2 at 10% (steps 10, 50" in shown["text/plain"]
    with pytest.raises(UsageError, match="canary 2 is live at 10%"):
        shell.run_line_magic("ship", "deploy churn --version 3 --canary 5")
    with pytest.raises(UsageError, match="--steps goes with --canary"):
        shell.run_line_magic("ship", "deploy churn --promote --steps 5")
    with pytest.raises(UsageError, match="not allowed with argument"):
        shell.run_line_magic("ship", "deploy churn --promote --rollback")
    with capture_output(display=True) as captured:
        shell.run_line_magic("ship", "deploy churn --rollback")
    assert captured.outputs[-1].data[RELEASE_MIME]["canary"] is None
