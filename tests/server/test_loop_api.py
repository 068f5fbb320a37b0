"""A service's retraining loop through a real Jupyter server: the watcher's state
(watch.json) and the loop's events (loop.jsonl) written by Ship's own writers, read back
as `ship watch NAME --status --json` prints them; answers checked against
docs/openapi.yaml."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from kernel_magics.retrain import events, gate
from kernel_magics.retrain.retrain import RetrainResult, Version
from kernel_magics.retrain.watch import WatchState, state_file
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow  # an export and three builds: seconds

CHECKS = [
    gate.Check("recent", "accuracy", 0.71, 0.84, (0.08, 0.18), True, 240,
               "better on 240 recent rows: 95% interval of the difference [0.08, 0.18]"),
    gate.Check("holdout", "accuracy", 0.9, 0.895, (-0.008, 0.003), True, 400,
               "not worse on 400 holdout rows than 0.01: 95% interval of the difference "
               "[-0.008, 0.003]"),
]


def record_retrain(workspace: Workspace, name: str, result: RetrainResult) -> None:
    """The event `retrain()` appends at its end: the result's JSON as its fields."""
    details = {k: v for k, v in result.to_json().items() if k not in ("service", "reason")}
    events.record(workspace, name, "retrain", f"{result.decision}: {result.reason}", **details)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.bundle.build import build_service
    from kernel_magics.export.api import export_model
    from kernel_magics.release.rollout import change, start_canary

    root = tmp_path_factory.mktemp("loop-root")
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    export_model(LogisticRegression().fit(x, y), "tiny", x[:4], workspace=workspace)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(notebook, root / "tiny.ipynb")
    for _ in range(2):
        build_service(root / "tiny.ipynb", "tiny", workspace=workspace)
    build_service(root / "tiny.ipynb", "quiet", model_name="tiny", workspace=workspace)

    # The story of one retraining, as the watcher and retrain() write it.
    events.record(workspace, "tiny", "watch", "watching tiny: every 60 s, retrain on "
                  "dataset drift", pid=os.getpid())
    events.record(workspace, "tiny", "trigger", "dataset drift: 2 of 3 features drift",
                  reason="drift", share=0.67, drifted_features=["x0", "x1"])
    change(workspace, "tiny", "promote", version="1")  # the champion before retraining
    canary = start_canary(workspace, "tiny", "2", 10.0, [10.0, 50.0, 100.0],
                          reason="by ship retrain: the challenger passed the gate").canary
    assert canary is not None
    record_retrain(workspace, "tiny", RetrainResult(
        service="tiny", decision=gate.CANARY, reason="; ".join(c.reason for c in CHECKS),
        champion=Version("1", "tiny", "1", "r" * 32), challenger=Version("2", "tiny", "1"),
        checks=CHECKS, notebook=str(root / "tiny.ipynb"), labelled_rows=800,
        training_rows=560, recent_rows=240, data=str(root / "production.parquet"),
        canary={"version": "2", "percent": canary.percent, "steps": list(canary.steps)},
        seconds=41.2))
    events.record(workspace, "tiny", "backoff", "challenger rejected; next try after ...",
                  until="2030-01-01T00:00:00+00:00", rejections=1)
    events.record(workspace, "tiny", "release", "promote 2: the canary passed every step",
                  action="promote", version="2", automatic=True)
    state = WatchState(pid=os.getpid(), started="2026-12-06T10:00:00+00:00",
                       last_check="2026-12-06T11:00:00+00:00",
                       last_retrain="2026-12-06T10:30:00+00:00", rejections=1,
                       backoff_until="2030-01-01T00:00:00+00:00", canary="2", releases_seen=1)
    state_file(workspace, "tiny").write_text(json.dumps(state.to_json()), encoding="utf-8")
    yield workspace


@pytest.fixture
def jp_root_dir(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workspace.root


async def test_the_loop_of_a_service(api: Any, workspace: Workspace) -> None:
    status = await api.call("services", "tiny", "loop")
    api.check(status, "LoopStatus")
    assert status["service"] == "tiny" and status["running"] is True  # this process's pid
    assert status["state"]["backoff_until"] == "2030-01-01T00:00:00+00:00"
    assert status["state"]["rejections"] == 1 and status["state"]["canary"] == "2"
    assert status["release"]["champion"] == "1"
    assert status["release"]["canary"]["version"] == "2"
    assert status["settings"]["backoff_s"] == 600.0  # [loop] defaults
    kinds = [e["kind"] for e in status["events"]]
    assert kinds == ["watch", "trigger", "retrain", "backoff", "release"]  # oldest first
    retrained = status["events"][2]
    assert retrained["decision"] == "canary" and retrained["message"].startswith("canary: ")
    assert (retrained["champion"], retrained["challenger"]) == ("1", "2")
    assert [c["name"] for c in retrained["checks"]] == ["recent", "holdout"]
    assert retrained["checks"][0]["interval"] == [0.08, 0.18]
    assert retrained["canary"] == {"version": "2", "percent": 10.0,
                                   "steps": [10.0, 50.0, 100.0]}
    assert retrained["data"]["recent_rows"] == 240
    latest = await api.call("services", "tiny", "loop", limit="2")
    assert [e["kind"] for e in latest["events"]] == ["backoff", "release"]
    assert latest["events"][1] == {**latest["events"][1], "action": "promote",
                                   "version": "2", "automatic": True}


async def test_a_service_never_watched(api: Any) -> None:
    status = await api.call("services", "quiet", "loop")
    api.check(status, "LoopStatus")
    assert status["running"] is False and status["events"] == []
    assert status["state"]["pid"] == 0 and status["state"]["backoff_until"] is None
    assert status["release"]["canary"] is None


async def test_unknown_services_and_bad_limits(api: Any) -> None:
    code, message = await api.error("services", "ghost", "loop")
    assert code == 404 and "ghost" in message and "quiet, tiny" in message
    for limit in ("0", "many", "5000"):
        code, message = await api.error("services", "tiny", "loop", limit=limit)
        assert code == 400 and "limit" in message, (limit, message)
    code, message = await api.error("services", "no good", "loop")
    assert code in (400, 404)
