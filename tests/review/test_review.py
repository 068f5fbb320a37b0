"""Human review end to end: a real service of a digits classifier answers real HTTP
traffic (clean test digits, and shifted ones: brightened, with pixels lit that training
never lit), the queue is built from its log, labels come back by the `ship review`
command line and by Label Studio, and a service restart in between loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import review_digits
from live_server import RunningServer, serve_in_thread
from review_digits import FEATURES, NAME, TRAIN_ROWS, shifted, write_service

from kernel_magics.monitor.report import drift_report
from kernel_magics.retrain.data import service_production_data
from kernel_magics.review.queue import image_layout, review_queue
from kernel_magics.services import service_log
from kernel_magics.serving.predlog import read_log
from kernel_magics.serving.schema import Feature, Schema, TensorSpec
from kernel_magics.workspace import Workspace, find_workspace, init_workspace


@pytest.fixture(scope="module")
def digits() -> dict[str, Any]:
    x, y = review_digits.digits()
    return {"test": x[TRAIN_ROWS:], "truth": y[TRAIN_ROWS:]}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = init_workspace(tmp_path)
    (ws.ship_dir / "ship.toml").write_text(
        "[review]\ndaily_budget = 100\ndaily_share = 0.2\naudit_share = 0.0\n", "utf-8")
    ws = find_workspace(ws.root)  # the settings written above, read again
    write_service(ws)
    return ws


@pytest.fixture
def served(workspace: Workspace) -> Iterator[RunningServer]:
    server = serve_in_thread(workspace.services_dir / NAME / "1",
                             Path(service_log(workspace, NAME)))
    yield server
    server.stop()


def send(server: RunningServer, rows: np.ndarray, *, per_request: int = 1,
         review: bool = False) -> list[dict[str, Any]]:
    """POST the rows to /invocations, ``per_request`` at a time; each answer with its
    request id."""
    answers = []
    with server.client() as client:
        for start in range(0, len(rows), per_request):
            part = rows[start:start + per_request]
            response = client.post("/invocations" + ("?review=true" if review else ""),
                                   json={"dataframe_split": {"columns": FEATURES,
                                                             "data": part.tolist()}})
            assert response.status_code == 200, response.text
            answers.append({**response.json(), "request_id": response.headers["x-request-id"]})
    return answers


def ship(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("ship")), *args], cwd=root,
                          capture_output=True, text=True, timeout=120, env={**os.environ})


def test_scores_are_logged_for_every_answer_and_returned_when_asked(
        served: RunningServer, digits: dict[str, Any], workspace: Workspace) -> None:
    clean, odd = digits["test"][:3], shifted(digits["test"][3:5])
    [answer] = send(served, np.vstack([clean, odd]), per_request=5, review=True)
    assert len(answer["predictions"]) == 5 and len(answer["review"]) == 5
    scores = answer["review"]
    assert all(0 < s["confidence"] <= 1 and 0 <= s["margin"] <= s["confidence"]
               and 0 <= s["entropy"] <= 1 for s in scores)
    assert all(s["ood"] == 0 for s in scores[:3])  # test digits: inside training's range
    assert all(s["ood"] > 1 and s["ood_feature"] in FEATURES for s in scores[3:])
    send(served, clean)  # not asked: the answer holds predictions only ...
    with served.client() as client:  # ... and V2 answers are scored in the log too
        v2 = client.post(f"/v2/models/{NAME}/infer", json={"inputs": [{
            "name": "float_input", "datatype": "FP32", "shape": [2, 64],
            "data": odd.ravel().tolist()}]})
        assert v2.status_code == 200, v2.text
    served.stop()
    entries = read_log(service_log(workspace, NAME))
    assert [e.endpoint for e in entries] == ["invocations"] * 4 + ["v2_infer"]
    logged = entries[0].review
    assert logged is not None
    assert np.allclose(logged["confidence"], [s["confidence"] for s in scores], atol=1e-5)
    assert logged["ood_feature"] == [s["ood_feature"] for s in scores]
    assert len(logged["probabilities"]) == 5 * 10
    assert all(e.review is not None and len(e.review["ood"]) == e.rows for e in entries)
    assert entries[-1].review["ood"][0] > 1  # type: ignore[index]


def test_queue_labels_by_cli_and_a_restart_loses_nothing(
        workspace: Workspace, digits: dict[str, Any]) -> None:
    log = Path(service_log(workspace, NAME))
    test, truth = digits["test"], digits["truth"]
    server = serve_in_thread(workspace.services_dir / NAME / "1", log)
    clean = send(server, test[:200])
    odd = send(server, shifted(test[200:240]))
    server.stop()
    truth_of = {a["request_id"]: int(t) for a, t in zip(clean + odd, truth[:240], strict=True)}

    out = ship(workspace.root, "review", NAME, "--json")
    assert out.returncode == 0, out.stderr
    queue = json.loads(out.stdout)
    assert queue["scored"] == 240 and 0 < queue["routed"] <= 100
    assert queue["today"]["routed"] <= queue["today"]["budget"] <= 0.2 * 240
    assert queue["image"] == {"height": 8, "width": 8} and queue["classes"] == list(range(10))
    reasons = {i["reason"] for i in queue["items"]}
    assert "ood" in reasons
    odd_ids = {a["request_id"] for a in odd}
    unusual = [i for i in queue["items"] if i["reason"] == "ood"]
    assert all(i["scores"]["ood"] > 0.25 for i in unusual)
    # the shifted digits, and now and then a clean one whose pixel training never lit
    assert sum(i["request_id"] in odd_ids for i in unusual) >= len(unusual) / 2
    first = queue["items"][0]
    assert set(first["inputs"]) == set(FEATURES) and len(first["probabilities"]) == 10
    assert first["prediction"] in range(10)

    text = ship(workspace.root, "review", NAME)
    assert text.returncode == 0 and first["request_id"] in text.stdout, text.stdout

    rid = first["request_id"]
    labelled = ship(workspace.root, "review", NAME, "--label", rid, str(truth_of[rid]))
    assert labelled.returncode == 0, labelled.stderr
    started = time.monotonic()
    data = service_production_data(workspace, NAME)
    assert time.monotonic() - started < 1.0
    assert list(data.frame["request_id"]) == [rid]
    assert int(data.frame["target"].iloc[0]) == truth_of[rid]
    after = review_queue(workspace, NAME)
    assert rid not in {i.request_id for i in after.items}
    assert len(after.items) == len(queue["items"]) - 1 and after.labelled == 1

    # a restart: the queue is the log's, so it is all still there; new traffic adds to it
    server = serve_in_thread(workspace.services_dir / NAME / "1", log)
    more = send(server, shifted(test[240:250]), per_request=5)
    server.stop()
    # the team raises its budget: every candidate now fits, the waiting ones too
    (workspace.ship_dir / "ship.toml").write_text(
        "[review]\ndaily_budget = 1000\ndaily_share = 1.0\ncap_ood = 1.0\n"
        "audit_share = 0.0\n", "utf-8")
    raised = find_workspace(workspace.root)
    queue2 = review_queue(raised, NAME)
    assert {i.request_id for i in after.items} <= {i.request_id for i in queue2.items}
    multi = [i for i in queue2.items if i.request_id in {a["request_id"] for a in more}]
    assert multi and multi[0].rows == 5
    # one row of a request of five: the others stay unlabelled (null), and only it trains
    item = multi[0]
    value = int(truth[240 + 5 * [a["request_id"] for a in more].index(item.request_id)
                      + item.row])
    out = ship(workspace.root, "review", NAME, "--label", item.request_id, str(value),
               "--row", str(item.row), "--json")
    assert out.returncode == 0, out.stderr
    written = json.loads(out.stdout)["labelled"][0]["ground_truth"]
    assert written[item.row] == value and written.count(None) == 4
    data = service_production_data(workspace, NAME)
    assert len(data.frame) == 2 and data.skipped.get("rows without a label") == 4
    # undo: the row goes back to the queue
    cleared = ship(workspace.root, "review", NAME, "--clear", item.request_id,
                   "--row", str(item.row))
    assert cleared.returncode == 0, cleared.stderr
    assert (item.request_id, item.row) in {(i.request_id, i.row)
                                           for i in review_queue(raised, NAME).items}
    assert len(service_production_data(workspace, NAME).frame) == 1
    # the label is feedback: drift's performance view counts it
    report = drift_report(workspace, NAME, window="1d").to_json()
    assert report["performance"]["labelled"] == 1


def test_bad_labels_are_refused_with_what_to_do(served: RunningServer,
                                                digits: dict[str, Any],
                                                workspace: Workspace) -> None:
    [answer] = send(served, digits["test"][:1])
    served.stop()
    unknown = ship(workspace.root, "review", NAME, "--label", "f" * 32, "3")
    assert unknown.returncode == 1 and "no answered request" in unknown.stderr
    assert "ship review digits" in unknown.stderr
    not_a_class = ship(workspace.root, "review", NAME, "--label", answer["request_id"], "cat")
    assert not_a_class.returncode == 1
    assert "not one of the model's classes: 0, 1, 2" in not_a_class.stderr
    bad_row = ship(workspace.root, "review", NAME, "--label", answer["request_id"], "3",
                   "--row", "4")
    assert bad_row.returncode == 1 and "has 1 row(s)" in bad_row.stderr
    (workspace.ship_dir / "ship.toml").write_text("[review]\nmin_confidence = 3\n", "utf-8")
    bad_setting = ship(workspace.root, "review", NAME)
    assert bad_setting.returncode == 1 and "min_confidence" in bad_setting.stderr
    assert read_log(service_log(workspace, NAME), labelled=True) == []  # nothing written


def test_label_studio_export_and_import(served: RunningServer, digits: dict[str, Any],
                                        workspace: Workspace, tmp_path: Path) -> None:
    answers = send(served, shifted(digits["test"][:30]))
    served.stop()
    tasks_file = tmp_path / "tasks.json"
    out = ship(workspace.root, "review", NAME, "--export-label-studio", str(tasks_file))
    assert out.returncode == 0, out.stderr
    tasks = json.loads(tasks_file.read_text())
    assert tasks and all(t["data"]["image"].startswith("data:image/png;base64,")
                         for t in tasks)
    config = tasks_file.with_suffix(".xml").read_text()
    assert '<Choices name="label" toName="image"' in config and '<Choice value="9"/>' in config
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"][0] in \
        [str(c) for c in range(10)]
    # Label Studio's JSON export: annotations added to the tasks (one cancelled, one
    # relabelled later: the latest wins; one task left alone)
    truth = {a["request_id"]: int(t) for a, t in zip(answers, digits["truth"][:30],
                                                      strict=True)}
    exported = []
    for n, task in enumerate(tasks):
        rid = task["data"]["ship_request_id"]
        annotations = [{"was_cancelled": False, "updated_at": "2026-12-07T10:00:00Z",
                        "result": [{"from_name": "label", "to_name": "image",
                                    "type": "choices",
                                    "value": {"choices": [str(truth[rid])]}}]}]
        if n == 0:
            annotations.insert(0, {"was_cancelled": False, "updated_at": "2026-12-07T09:00:00Z",
                                   "result": [{"value": {"choices": ["0"]}}]})
            annotations.append({"was_cancelled": True, "updated_at": "2026-12-07T11:00:00Z",
                                "result": [{"value": {"choices": ["1"]}}]})
        exported.append({**task, "id": n + 1, "annotations": annotations if n else
                         annotations})
    exported[-1]["annotations"] = []
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(exported))
    out = ship(workspace.root, "review", NAME, "--import-label-studio", str(export_file),
               "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"labelled": len(tasks) - 1, "requests": len(tasks) - 1,
                                      "unlabelled_tasks": 1}
    queue = review_queue(workspace, NAME)
    assert [i.request_id for i in queue.items] == [exported[-1]["data"]["ship_request_id"]]
    data = service_production_data(workspace, NAME)
    assert dict(zip(data.frame["request_id"], data.frame["target"], strict=True)) == {
        t["data"]["ship_request_id"]: truth[t["data"]["ship_request_id"]]
        for t in tasks[:-1]}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"data": {"pixel_0_0": 1}}]))
    refused = ship(workspace.root, "review", NAME, "--import-label-studio", str(bad))
    assert refused.returncode == 1 and "ship_request_id" in refused.stderr


def test_an_image_is_found_in_pixel_features_only() -> None:
    grid = Schema(features=tuple(Feature(f, "float32") for f in FEATURES),
                  inputs=(TensorSpec("x", "FP32", (-1, 64)),), outputs=())
    layout = image_layout(grid)
    assert layout is not None and (layout.height, layout.width) == (8, 8)
    assert layout.features[9] == "pixel_1_1"
    flat = Schema(features=tuple(Feature(f"px{i}", "float32") for i in range(784)),
                  inputs=(TensorSpec("x", "FP32", (-1, 784)),), outputs=())
    assert image_layout(flat) is not None and image_layout(flat).width == 28  # type: ignore[union-attr]
    table = Schema(features=tuple(Feature(f, "float64") for f in ("age", "income")),
                   inputs=(TensorSpec("x", "FP32", (-1, 2)),), outputs=())
    assert image_layout(table) is None


def test_the_response_field_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "serving.md").read_text()
    assert "?review=true" in docs and "x-ship-review" in docs

