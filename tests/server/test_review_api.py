"""Human review through a real Jupyter server: a digits classifier served for real
answers clean and shifted digits, the queue is built from its log
(``GET /ship/api/services/{name}/review``), and labels written by
``POST …/review/labels`` are feedback: the item leaves the queue, and ``"value": null``
brings it back (the panel's undo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import RunningServer, serve_in_thread
from review_digits import FEATURES, NAME, digits, shifted, write_service

from kernel_magics.release.evidence import truth_rows
from kernel_magics.services import service_log
from kernel_magics.serving.predlog import read_log
from kernel_magics.workspace import Workspace, find_workspace, init_workspace

pytestmark = pytest.mark.slow  # a real service answers 50 requests: seconds



def send(server: RunningServer, rows: np.ndarray) -> list[str]:
    """POST each row to /invocations; the request ids."""
    ids = []
    with server.client() as client:
        for row in rows:
            response = client.post("/invocations", json={"dataframe_split": {
                "columns": FEATURES, "data": [row.tolist()]}})
            assert response.status_code == 200, response.text
            ids.append(response.headers["x-request-id"])
    return ids


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The `digits` service, served once: 40 clean test digits, then 10 shifted ones."""
    x, _ = digits()
    ws = init_workspace(tmp_path_factory.mktemp("review-root"))
    (ws.ship_dir / "ship.toml").write_text(
        "[review]\ndaily_budget = 100\ndaily_share = 0.2\naudit_share = 0.0\n", "utf-8")
    ws = find_workspace(ws.root)
    folder = write_service(ws)
    server = serve_in_thread(folder, Path(service_log(ws, NAME)))
    try:
        send(server, x[1200:1240])
        send(server, shifted(x[1240:1250]))
    finally:
        server.stop()
    yield ws


@pytest.fixture
def jp_root_dir(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workspace.root


def labelled(workspace: Workspace) -> dict[tuple[str, int], Any]:
    """Every labelled row of the log: (request id, row) → its latest label."""
    truth: dict[tuple[str, int], Any] = {}
    for entry in read_log(service_log(workspace, NAME), labelled=True):
        for row, value in enumerate(truth_rows(entry.ground_truth) or []):
            if value is not None:
                truth[(entry.request_id, row)] = value
    return truth


async def test_the_queue_as_ship_review_prints_it(api: Any) -> None:
    queue = await api.call("services", NAME, "review")
    api.check(queue, "ReviewQueue")
    assert queue["name"] == NAME and queue["scored"] == 50
    assert 0 < queue["pending"] == len(queue["items"]) <= queue["today"]["budget"] <= 10
    assert queue["image"] == {"height": 8, "width": 8}
    assert queue["features"] == FEATURES and queue["classes"] == list(range(10))
    assert "ood" in queue["by_reason"]
    unusual = next(i for i in queue["items"] if i["reason"] == "ood")
    assert unusual["scores"]["ood"] > 0.25 and unusual["scores"]["ood_feature"] in FEATURES
    assert set(unusual["inputs"]) == set(FEATURES) and len(unusual["probabilities"]) == 10
    assert unusual["prediction"] in range(10) and unusual["label"] is None
    assert queue["settings"]["daily_share"] == 0.2


async def test_a_label_leaves_the_queue_and_null_brings_it_back(
        api: Any, workspace: Workspace) -> None:
    before = await api.call("services", NAME, "review")
    first, second = before["items"][:2]
    key = (first["request_id"], first["row"])
    answer = await api.call("services", NAME, "review", "labels", method="POST",
                            body={"request_id": first["request_id"], "value": "7"})
    api.check(answer, "ReviewLabelled")
    assert answer == {"labelled": [{"request_id": first["request_id"], "ground_truth": [7]}]}
    after = await api.call("services", NAME, "review")
    assert key not in {(i["request_id"], i["row"]) for i in after["items"]}
    assert after["pending"] == before["pending"] - 1
    assert after["labelled"] == before["labelled"] + 1
    assert labelled(workspace) == {key: 7}

    # undo: the previous value (none) again, and the item is back where it was
    await api.call("services", NAME, "review", "labels", method="POST",
                   body={"request_id": first["request_id"], "row": 0, "value": None})
    again = await api.call("services", NAME, "review")
    assert [i["request_id"] for i in again["items"]] == \
        [i["request_id"] for i in before["items"]]
    assert labelled(workspace) == {}

    # a list: both in one feedback segment, each the model's class
    both = await api.call("services", NAME, "review", "labels", method="POST", body=[
        {"request_id": first["request_id"], "value": 1},
        {"request_id": second["request_id"], "row": 0, "value": 2}])
    assert [w["ground_truth"] for w in both["labelled"]] == [[1], [2]] or \
        [w["ground_truth"] for w in both["labelled"]] == [[2], [1]]
    assert (await api.call("services", NAME, "review"))["pending"] == before["pending"] - 2
    await api.call("services", NAME, "review", "labels", method="POST", body=[
        {"request_id": first["request_id"], "value": None},
        {"request_id": second["request_id"], "value": None}])
    assert labelled(workspace) == {}


async def test_bad_labels_are_refused_naming_the_field(api: Any, workspace: Workspace) -> None:
    queue = await api.call("services", NAME, "review")
    rid = queue["items"][0]["request_id"]
    path = ("services", NAME, "review", "labels")
    cases: list[tuple[Any, str]] = [
        ({"row": 0, "value": 3}, "request_id"),
        ({"request_id": "", "value": 3}, "request_id"),
        ({"request_id": rid, "row": -1, "value": 3}, "row"),
        ({"request_id": rid, "row": "first", "value": 3}, "row"),
        ({"request_id": rid, "row": True, "value": 3}, "row"),
        ({"request_id": rid}, "value"),
        ({"request_id": rid, "value": [3]}, "value"),
        ({"request_id": rid, "row": 3, "value": 3}, "has 1 row(s)"),
        ({"request_id": rid, "value": "cat"}, "not one of the model's classes: 0, 1, 2"),
        ({"request_id": "f" * 32, "value": 3}, "no answered request"),
        ([], "list"),
        (["3"], "JSON object"),
    ]
    for body, named in cases:
        code, message = await api.error(*path, method="POST", body=body)
        assert code == 400 and named in message, (body, code, message)
    code, message = await api.error(*path, method="POST", raw=b"{not json")
    assert code == 400 and "JSON" in message
    assert labelled(workspace) == {}  # nothing written


async def test_unknown_services(api: Any) -> None:
    code, message = await api.error("services", "ghost", "review")
    assert code == 404 and "ghost" in message
    code, message = await api.error("services", "ghost", "review", "labels", method="POST",
                                    body={"request_id": "a" * 32, "value": 1})
    assert code == 404 and "ghost" in message
