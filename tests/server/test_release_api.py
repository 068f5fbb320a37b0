"""A service's release through a real Jupyter server: read it, change it by hand, the
errors of a bad change, the shadow report and the per-version timeline from a log the
real writer wrote; answers checked against docs/openapi.yaml."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from kernel_magics.serving.inputs import Inputs
from kernel_magics.serving.predlog import Prediction, PredictionLog
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow  # an export and two builds: seconds


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.bundle.build import build_service
    from kernel_magics.export.api import export_model

    root = tmp_path_factory.mktemp("release-root")
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    export_model(LogisticRegression().fit(x, y), "tiny", x[:4], workspace=workspace)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("x = 1"))
    nbformat.write(notebook, root / "tiny.ipynb")
    for _ in range(3):
        build_service(root / "tiny.ipynb", "tiny", workspace=workspace)
    yield workspace


def _traffic(log_dir: Path) -> None:
    """40 requests answered by version 1, each copied to shadow 3, which disagrees on a
    quarter of them; two of 1's answers failed."""
    log = PredictionLog(str(log_dir))
    now = time.time()
    for i in range(40):  # one every 10 ms from now on: after the shadow was added
        inputs = Inputs(rows=1, matrix=np.zeros((1, 3), np.float32))
        rid = f"{i:032x}"
        failed = i < 2
        log.append(Prediction(rid, now + i * 0.01, "tiny", "1", "invocations",
                              500 if failed else 200, 1.0 + i % 3, None, inputs, None,
                              None if failed else f"[{i % 2}]".encode(),
                              "boom" if failed else None))
        if not failed:
            log.append(Prediction(rid, now + i * 0.01, "tiny", "3", "invocations", 200,
                                  2.0, None, inputs, None,
                                  f"[{(i + (i % 4 == 0)) % 2}]".encode(), shadow="1"))
    log.flush()


@pytest.fixture
def jp_root_dir(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workspace.root


async def test_read_and_change_a_release(api: Any) -> None:
    first = await api.call("services", "tiny", "release")
    api.check(first, "Release")
    assert first["champion"] == "3" and first["canary"] is None  # the newest build
    assert first["versions"] == ["3", "2", "1"] and first["decisions"] == []
    promoted = await api.call("services", "tiny", "release", method="POST",
                              body={"action": "promote", "version": "1"})
    assert promoted["champion"] == "1"
    canary = await api.call("services", "tiny", "release", method="POST",
                            body={"action": "canary", "version": 2, "percent": 10,
                                  "steps": [10, 50]})
    api.check(canary, "Release")
    assert canary["canary"] == {**canary["canary"], "version": "2", "percent": 10.0,
                                "steps": [10.0, 50.0]}
    assert canary["comparison"]["status"] == "waiting"
    assert {c["metric"] for c in canary["comparison"]["checks"]} == {
        "error_rate", "latency_p50_ms", "latency_p99_ms", "disagreement", "accuracy"}
    code, message = await api.error("services", "tiny", "release", method="POST",
                                    body={"action": "canary", "version": "3",
                                          "percent": 5})
    assert code == 409 and "canary 2 is live" in message
    rolled = await api.call("services", "tiny", "release", method="POST",
                            body={"action": "rollback"})
    assert rolled["canary"] is None
    assert [d["action"] for d in rolled["decisions"]] == ["rollback", "canary", "promote"]
    assert not any(d["automatic"] for d in rolled["decisions"])


async def test_bad_changes_are_400s_and_404s(api: Any) -> None:
    for body, field in (({"action": "launch"}, "action"),
                        ({"action": "canary", "version": "2"}, "traffic"),
                        ({"action": "canary", "version": "2", "percent": "ten"}, "number"),
                        ({"action": "canary", "version": "2", "percent": 10,
                          "steps": ["a"]}, "steps"),
                        ({"action": "shadow"}, "version")):
        code, message = await api.error("services", "tiny", "release", method="POST",
                                        body=body)
        assert code == 400 and field in message, (body, message)
    code, message = await api.error("services", "tiny", "release", method="POST",
                                    body={"action": "shadow", "version": "9"})
    assert code == 404 and "Built versions of tiny: 3, 2, 1" in message
    code, _ = await api.error("services", "ghost", "release")
    assert code == 404
    code, message = await api.error("services", "tiny", "timeline", window="soon")
    assert code == 400 and "window" in message


async def test_shadow_report_and_timeline(api: Any, workspace: Workspace) -> None:
    added = await api.call("services", "tiny", "release", method="POST",
                           body={"action": "shadow", "version": "3"})
    assert added["shadows"] == ["3"] and added["shadow_reports"][0]["requests"] == 0
    time.sleep(0.01)
    _traffic(workspace.services_dir / "tiny" / "log")
    view = await api.call("services", "tiny", "release")
    api.check(view, "Release")
    (report,) = view["shadow_reports"]
    assert (report["version"], report["requests"], report["dropped"]) == ("3", 38, 0)
    assert report["rows"] == 38 and report["agreement"] == pytest.approx(29 / 38)
    assert report["flips"] == [{"from": "0", "to": "1", "count": 9}]
    assert report["by_class"] == [{"value": "0", "requests": 19, "agreement": 10 / 19},
                                  {"value": "1", "requests": 19, "agreement": 1.0}]
    assert report["error_rate"] == {"champion": 2 / 40, "shadow": 0.0}
    assert report["latency_p50_ms"]["shadow"] == 2.0
    timeline = await api.call("services", "tiny", "timeline", window="1h")
    api.check(timeline, "Timeline")
    assert timeline["versions"] == ["1"]  # shadow copies are not traffic
    assert sum(p["requests"] for p in timeline["points"]) == 40
    assert sum(p["errors"] for p in timeline["points"]) == 2
