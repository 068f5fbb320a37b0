"""The direct sqlite reader answers exactly what MLflow's own client answers.

The sidebar reads the workspace's sqlite store with plain SQL for speed; this holds
that reader to `MlflowClient.search_runs` / `get_run` on a real store with deleted
runs and experiments, NaN metrics, dataset inputs, several notebooks and tied start
times. If an MLflow upgrade changes its tables, these tests say so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from kernel_magics.tracking.client_store import ClientReader
from kernel_magics.tracking.mlflow_store import reader_for
from kernel_magics.tracking.sqlite_store import SqliteReader
from kernel_magics.tracking.stored import RunQuery, SearchResult

TAGS = ("ship.notebook", "ship.record_id")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp_a = client.create_experiment("a", artifact_location=(root / "art-a").as_uri())
    exp_b = client.create_experiment("b", artifact_location=(root / "art-b").as_uri())
    exp_gone = client.create_experiment("gone")
    ids: dict[str, str] = {}
    specs = [  # name, experiment, notebook, start (s); "t1"/"t2" tie on start time
        ("r1", exp_a, "/w/train.ipynb", 1), ("r2", exp_a, "/w/train.ipynb", 2),
        ("t1", exp_a, "/w/train.ipynb", 3), ("t2", exp_a, "/w/train.ipynb", 3),
        ("o1", exp_b, "/w/other.ipynb", 4), ("n1", exp_b, None, 5),
        ("deleted", exp_a, "/w/train.ipynb", 6), ("in-gone", exp_gone, "/w/train.ipynb", 7),
    ]
    for name, exp, notebook, start in specs:
        tags = {"ship.record_id": f"rec-{name}"}
        if notebook:
            tags["ship.notebook"] = notebook
        run = client.create_run(exp, start_time=1_000 * start, tags=tags, run_name=name)
        run_id = run.info.run_id
        ids[name] = run_id
        client.log_batch(run_id, params=[Param("lr", str(start / 10)), Param("name", name)],
                         metrics=[Metric("acc", 0.5 + start / 100, 1_000 * start + 1, 0),
                                  Metric("acc", 0.1, 1_000 * start, 5),  # latest is step 5
                                  Metric("nan_metric", float("nan"), 1, 0),
                                  Metric("ship.wall_s", 1.5, 1, 0)],
                         tags=[RunTag("extra", "x"), RunTag("ship.cost.currency", "USD")])
        dataset = Dataset(name="df", digest=f"{start:032x}", source_type="code", source="{}",
                          schema="{}", profile=json.dumps({"shape": [10 * start, 3]}))
        other = Dataset(name="y", digest="f" * 32, source_type="code", source="{}",
                        profile=json.dumps({"num_rows": 7}))
        client.log_inputs(run_id, datasets=[
            DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")]),
            DatasetInput(other, tags=[])])
        client.set_terminated(run_id, "FAILED" if name == "r2" else "FINISHED",
                              end_time=1_000 * start + 500)
    client.delete_run(ids["deleted"])
    client.delete_experiment(exp_gone)
    return {"uri": uri, "path": root / "mlflow.db", "ids": ids}


def _plain(result: Any) -> Any:
    return dataclasses.asdict(result)


@pytest.mark.parametrize("query", [
    RunQuery(limit=100, tags=TAGS),
    RunQuery(notebooks=("/w/train.ipynb",), limit=100, tags=TAGS),
    RunQuery(notebooks=("/w/train.ipynb", "/w/other.ipynb"), limit=100, tags=TAGS),
    RunQuery(experiment="b", limit=100, tags=TAGS),
    RunQuery(notebooks=("/w/train.ipynb",), limit=2, tags=TAGS),
    RunQuery(notebooks=("/nowhere.ipynb",), limit=10),
])
def test_search_matches_the_mlflow_client(store: dict[str, Any], query: RunQuery) -> None:
    direct = SqliteReader(store["path"]).search(query)
    client = ClientReader(store["uri"])._search(query)

    assert [r.name for r in direct.runs] == [r.name for r in client.runs]
    assert _plain(direct)["runs"] == _plain(client)["runs"]
    assert "deleted" not in [r.name for r in direct.runs]
    assert "in-gone" not in [r.name for r in direct.runs]
    if client.total is not None:
        assert direct.total == client.total


def test_search_content(store: dict[str, Any]) -> None:
    result = SqliteReader(store["path"]).search(
        RunQuery(notebooks=("/w/train.ipynb",), limit=10, tags=TAGS))

    assert [r.name for r in result.runs][:2] == sorted(["t1", "t2"], key=lambda n: store["ids"][n])
    assert [r.name for r in result.runs][2:] == ["r2", "r1"]
    assert result.total == 4
    r2 = result.runs[2]
    assert r2.status == "FAILED" and r2.start_time_ms == 2000 and r2.end_time_ms == 2500
    assert r2.metrics == {"acc": 0.1, "nan_metric": None, "ship.wall_s": 1.5}
    assert r2.tags == {"ship.notebook": "/w/train.ipynb", "ship.record_id": "rec-r2"}
    assert [(d.name, d.digest, d.shape, d.context) for d in r2.datasets] == [
        ("df", f"{2:032x}", [20, 3], "training"), ("y", "f" * 32, [7], None)]


def test_get_matches_the_mlflow_client(store: dict[str, Any]) -> None:
    run_id = store["ids"]["o1"]
    direct = SqliteReader(store["path"]).get(run_id)
    client = ClientReader(store["uri"]).get(run_id)

    assert direct is not None and client is not None
    assert _plain(direct) == _plain(client)
    assert direct.tags["extra"] == "x" and direct.tags["mlflow.runName"] == "o1"
    assert SqliteReader(store["path"]).get(store["ids"]["deleted"]) is None
    assert SqliteReader(store["path"]).get("0" * 32) is None


def test_experiments(store: dict[str, Any]) -> None:
    found = {e.name: e for e in SqliteReader(store["path"]).experiments()}
    assert set(found) == {"a", "b", "Default"}
    assert found["a"].run_count == 4 and found["b"].run_count == 2
    assert found["b"].last_start_time_ms == 5000
    assert {e.name for e in ClientReader(store["uri"]).experiments()} == set(found)


def test_a_missing_store_is_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / ".ship" / "mlflow.db"
    reader = reader_for(f"sqlite:///{path}")

    assert isinstance(reader, SqliteReader)
    assert reader.search(RunQuery()).runs == []
    assert reader.get("abc") is None and reader.experiments() == []
    assert not path.exists()


def test_other_stores_and_unknown_schemas_go_through_the_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(reader_for("http://127.0.0.1:5000"), ClientReader)
    assert isinstance(reader_for("sqlite:///x.db?timeout=5"), ClientReader)

    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (run_uuid TEXT)")
    calls: list[RunQuery] = []

    def fake_search(self: ClientReader, query: RunQuery) -> Any:
        calls.append(query)
        return SearchResult(runs=[], total=0)

    monkeypatch.setattr(ClientReader, "search", fake_search)
    # Just written: a writer may be creating the store; MlflowClient must not migrate
    # it a second time, concurrently. No runs yet.
    assert SqliteReader(path).search(RunQuery(limit=3)).runs == []
    assert calls == []
    # A settled store with a schema this reader does not know: MlflowClient reads it.
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    SqliteReader(path).search(RunQuery(limit=3))
    assert calls == [RunQuery(limit=3)]
