"""The runs, experiments and compare endpoints through a real Jupyter server, authentication
on, reading a workspace whose runs the real RecordWriter wrote to a sqlite MLflow store."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.slow  # MLflow writes the seeded runs: seconds per module


async def test_runs_of_a_notebook_newest_first_with_the_pending_one(
        api: Any, seeded: Any) -> None:
    page = await api.call("runs", notebook="train.ipynb")

    assert [r["name"] for r in page["runs"]] == ["run-p", "run-b", "run-a"]
    assert page["total"] == 3 and page["truncated"] is False
    assert page["notebook"] == "train.ipynb"
    assert page["workspace"] == str(seeded.root)
    pending, newest, oldest = page["runs"]
    assert pending["written"] is False and pending["run_id"] is None
    assert pending["id"] == pending["record_id"] == seeded.records["p"].record_id
    assert newest["written"] is True and newest["id"] == seeded.run_ids["b"]
    assert newest["status"] == "FINISHED"
    assert newest["params"] == {"lr": "0.01", "epochs": "3", "batch": "64"}
    assert newest["metrics"] == {"acc": 0.93, "loss": 0.25}  # ship.* metrics are the cost
    assert newest["data"] == [{"name": "df", "digest": "e" * 32, "shape": [1000, 2],
                               "context": "training"}]
    assert newest["cost"]["wall_s"] == 2.5 and newest["cost"]["currency"] == "USD"
    assert newest["cost"]["peak_memory_mb"] == 300.0 and newest["cost"]["estimated"] is True
    assert pending["cost"]["wall_s"] == 2.5 and pending["data"][0]["digest"] == "d" * 32
    assert newest["url"] is None  # no MLflow UI configured


async def test_runs_filter_by_experiment_and_limit(api: Any) -> None:
    page = await api.call("runs", notebook="train.ipynb", limit="2")
    assert [r["name"] for r in page["runs"]] == ["run-p", "run-b"]
    assert page["total"] == 3 and page["truncated"] is True

    page = await api.call("runs", experiment="other")
    assert [r["name"] for r in page["runs"]] == ["run-o"]

    everything = await api.call("runs")
    assert [r["name"] for r in everything["runs"]] == ["run-p", "run-b", "run-o", "run-a"]


async def test_a_notebook_without_runs_has_none(api: Any) -> None:
    page = await api.call("runs", notebook="sub/new.ipynb")
    assert page["runs"] == [] and page["total"] == 0


async def test_bad_arguments_are_400s_that_name_them(api: Any) -> None:
    code, message = await api.error("runs", limit="many")
    assert code == 400 and "limit" in message
    code, message = await api.error("runs", limit="0")
    assert code == 400 and "limit" in message
    code, message = await api.error("runs", notebook="../outside.ipynb")
    assert code == 400 and "outside" in message
    code, message = await api.error("compare", ids="only-one")
    assert code == 400 and "two" in message
    code, message = await api.error("runs", "bad id!")
    assert code == 400 and "run id" in message


async def test_run_detail_has_tags_environment_change_git_and_cell(
        api: Any, seeded: Any) -> None:
    detail = await api.call("runs", seeded.run_ids["b"])

    assert detail["name"] == "run-b" and detail["written"] is True
    assert detail["tags"]["ship.notebook"] == str(seeded.root / "train.ipynb")
    assert detail["tags"]["mlflow.source.git.commit"] == "abc123"
    assert detail["git"] == {"commit": "abc123", "branch": "main", "dirty": True,
                             "repo_url": None}
    env = detail["environment"]
    assert env["python"] == "3.11.7" and env["package_count"] == 3
    assert env["change"] == {"previous_record": "a", "added": {"scikit-learn": "1.9.1"},
                             "removed": {"torch": "2.13.0"},
                             "changed": {"pandas": ["3.1.1", "3.2.0"]}, "python_changed": False}
    assert detail["cell_source"].startswith("lr = 0.01")
    assert detail["has_snapshot"] is True
    assert detail["artifact_uri"].startswith((seeded.root / ".ship" / "artifacts").as_uri())


async def test_a_pending_run_and_a_written_one_by_record_id(
        api: Any, seeded: Any) -> None:
    pending = await api.call("runs", seeded.records["p"].record_id)
    assert pending["written"] is False and pending["cell_source"].startswith("lr = 0.1")
    assert pending["environment"]["lock_digest"] == "pppp"

    # A row's record id still finds the run after the writer moved it to MLflow.
    written = await api.call("runs", seeded.records["a"].record_id)
    assert written["id"] == seeded.run_ids["a"]


async def test_unknown_run_is_a_json_404(api: Any) -> None:
    code, message = await api.error("runs", "0123456789abcdef0123456789abcdef")
    assert code == 404 and "0123456789abcdef" in message


async def test_notebook_snapshot(api: Any, seeded: Any) -> None:
    snapshot = await api.call("runs", seeded.run_ids["a"], "notebook")
    assert snapshot["name"] == "train.ipynb" and snapshot["run_name"] == "run-a"
    assert snapshot["content"]["cells"][0]["source"] == "%%ship track\nlr = 0.1"

    pending = await api.call("runs", seeded.records["p"].record_id, "notebook")
    assert pending["content"]["nbformat"] == 4 and pending["run_id"] is None


async def test_compare_params_metrics_environment_data_and_code(
        api: Any, seeded: Any) -> None:
    ids = ",".join([seeded.run_ids["a"], seeded.run_ids["b"], seeded.records["p"].record_id])
    result = await api.call("compare", ids=ids)

    assert [r["name"] for r in result["runs"]] == ["run-a", "run-b", "run-p"]
    params = {row["key"]: row for row in result["params"]}
    assert params["lr"]["values"] == ["0.1", "0.01", "0.001"] and params["lr"]["differs"]
    assert params["epochs"]["differs"] is False
    assert params["batch"]["values"] == [None, "64", None]
    metrics = {row["key"]: row for row in result["metrics"]}
    assert metrics["acc"]["values"] == [0.9, 0.93, 0.95]
    assert metrics["loss"]["values"] == [0.3, 0.25, None]
    env = result["environment"]
    assert {p["name"]: p["versions"] for p in env["packages"]} == {
        "pandas": ["3.1.1", "3.2.0", "3.1.1"],
        "scikit-learn": [None, "1.9.1", None],
        "torch": ["2.13.0", None, "2.13.0"]}
    assert env["same_count"] == 1 and env["locked"] == [True, True, True]
    [data] = result["data"]
    assert [v["digest"] for v in data["values"]] == ["d" * 32, "e" * 32, "d" * 32]
    assert data["differs"] is True
    code = result["code"]
    assert code["identical"] is False and code["diffs"][0] is None
    assert "-lr = 0.1" in code["diffs"][1] and "+batch = 64" in code["diffs"][1]
    assert code["diffs"][2] is None  # the pending run's cell is the first one's
    assert code["changed_lines"][1] == [1, 3, 4]
    assert result["notes"]  # says that one run is still pending


async def test_experiments_include_pending_only_ones(api: Any) -> None:
    body = await api.call("experiments")
    found = {e["name"]: e for e in body["experiments"]}
    assert found["train"]["run_count"] == 2 and found["train"]["pending_count"] == 1
    assert found["other"]["run_count"] == 1 and found["other"]["pending_count"] == 0


async def test_workspace_of_a_notebook_and_its_mlflow_ui(api: Any,
                                                         seeded: Any) -> None:
    body = await api.call("workspace", notebook="train.ipynb")
    assert body["root"] == str(seeded.root) and body["ui_url"] is None


@pytest.mark.parametrize("path", [
    ("runs",), ("runs", "abc"), ("runs", "abc", "notebook"), ("compare",), ("experiments",),
])
async def test_every_endpoint_refuses_requests_without_a_token(api: Any,
                                                               path: tuple[str, ...]) -> None:
    code, _ = await api.error(*path, headers={"Authorization": ""}, ids="a,b")
    assert code in (401, 403)


async def test_an_unchanged_listing_is_a_304_until_the_store_or_spool_changes(
        jp_fetch: Any, seeded: Any) -> None:
    db = seeded.root / ".ship" / "mlflow.db"
    pending = seeded.root / ".ship" / "spool" / "pending" / seeded.records["p"].record_id
    # Files written within the last second are not trusted (their time may not move yet).
    for path in [db, pending / "record.json"]:
        os.utime(path, (time.time() - 10, time.time() - 10))

    first = await jp_fetch("ship", "api", "runs", params={"notebook": "train.ipynb"})
    etag = first.headers["ETag"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("ship", "api", "runs", params={"notebook": "train.ipynb"},
                       headers={"If-None-Match": etag})
    assert info.value.code == 304

    # Another query, or a change in the spool, answers in full again.
    other = await jp_fetch("ship", "api", "runs", params={"notebook": "other.ipynb"},
                           headers={"If-None-Match": etag})
    assert other.code == 200 and other.headers["ETag"] != etag
    os.utime(pending / "record.json", (time.time() - 5, time.time() - 5))
    again = await jp_fetch("ship", "api", "runs", params={"notebook": "train.ipynb"},
                           headers={"If-None-Match": etag})
    assert again.code == 200 and again.headers["ETag"] != etag


async def test_answers_match_the_openapi_document(api: Any, seeded: Any) -> None:
    """docs/openapi.yaml describes what the handlers answer."""
    check = api.check
    run_a, run_b = seeded.run_ids["a"], seeded.run_ids["b"]
    check(await api.call("workspace"), "Workspace")
    check(await api.call("runs", notebook="train.ipynb"), "RunPage")
    check(await api.call("runs", run_b), "RunDetail")
    check(await api.call("runs", seeded.records["p"].record_id), "RunDetail")
    check(await api.call("runs", run_a, "notebook"), "NotebookSnapshot")
    check(await api.call("compare", ids=f"{run_a},{run_b}"), "RunComparison")
    for experiment in (await api.call("experiments"))["experiments"]:
        check(experiment, "Experiment")
