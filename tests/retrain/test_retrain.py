"""Retraining end to end: a real training notebook run through papermill, a real service
answering production traffic and taking ground truth over HTTP, then `ship retrain` and
`ship watch` against it.

The data: customers churn when ``tenure + spend > 0``. After a discount campaign,
production customers come with high ``discount``, ``visits`` and ``tickets`` (drift on 3
of 5 features), and among them churn follows ``tenure - spend > 0``: the champion gets
about half of them wrong. Challengers: the notebook as written (old data plus production
rows: better on recent rows, not worse on the holdout), one trained only on the
production rows (forgets), one that ignores them (no gain), and one that reproduces the
champion exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from live_server import serve_in_thread
from notebook_files import write_notebook

import kernel_magics
from kernel_magics.bundle.build import build_service
from kernel_magics.release import rollout
from kernel_magics.retrain import events, gate
from kernel_magics.retrain.retrain import retrain
from kernel_magics.retrain.settings import LoopSettings
from kernel_magics.retrain.watch import Watcher, read_state, watch_status
from kernel_magics.workspace import Workspace, find_workspace, init_workspace

pytestmark = pytest.mark.slow

FEATURES = ["tenure", "spend", "visits", "tickets", "discount"]
PARAMETERS = ("max_depth = 6\nseed = 0\n# Production rows with ground truth (Parquet), from "
              "`ship retrain`.\nship_new_data = None", ["parameters"])
LOAD = '''import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

df = pd.read_csv("data/customers.csv")
features = ["tenure", "spend", "visits", "tickets", "discount"]
X_train, X_test, y_train, y_test = train_test_split(
    df[features], df["churned"], test_size=0.25, random_state=seed)
'''
APPEND = '''if ship_new_data:
    production = pd.read_parquet(ship_new_data)
    X_train = pd.concat([X_train, production[features]], ignore_index=True)
    y_train = pd.concat([y_train, production["target"]], ignore_index=True)
'''
ONLY_NEW = '''if ship_new_data:  # injected forgetting: the old rows are dropped
    production = pd.read_parquet(ship_new_data)
    X_train, y_train = production[features], production["target"]
'''
SUBSAMPLE = '''# ignores ship_new_data; a different sample of the same old rows
X_train = X_train.sample(frac=0.8, random_state=1)
y_train = y_train.loc[X_train.index]
'''
TRAIN = '''%%ship track --model model
model = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(X_train, y_train)
accuracy = model.score(X_test, y_test)
'''
EXPORT = "%ship export model --name churn --example X_test[:5] --eval X_test y_test"


def notebook(path: Path, data_cell: str, export: str = EXPORT) -> Path:
    return write_notebook(path, PARAMETERS, LOAD + data_cell, TRAIN, export)


def customers(rows: int, rng: np.random.Generator, *, campaign: bool) -> pd.DataFrame:
    x = rng.standard_normal((rows, 5))
    if campaign:
        x[:, 2:] = rng.normal((3.0, 3.0, 4.0), 0.5, (rows, 3))
    frame = pd.DataFrame(x, columns=FEATURES)
    rule = frame.tenure - frame.spend if campaign else frame.tenure + frame.spend
    frame["churned"] = (rule > 0).astype("int64")
    return frame


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Service `churn` version 1 from train.ipynb, after production traffic: 300 requests
    of 2 campaign customers each, ground truth for 250 of them (one corrected later)."""
    folder = tmp_path_factory.mktemp("retrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("SHIP_WRITER_IDLE_S", "2")
        patch.chdir(folder)
        workspace = init_workspace(folder)
        rng = np.random.default_rng(0)
        (folder / "data").mkdir()
        customers(2000, rng, campaign=False).to_csv(folder / "data" / "customers.csv",
                                                    index=False)
        train = notebook(folder / "train.ipynb", APPEND)
        notebook(folder / "forgetful.ipynb", ONLY_NEW)
        notebook(folder / "no_gain.ipynb", SUBSAMPLE)
        notebook(folder / "same.ipynb", "")
        ship(folder, "run", str(train))
        built = build_service(train, "churn", workspace=workspace)
        assert built.version == "1"
        production = customers(600, rng, campaign=True)
        running = serve_in_thread(Path(built.path), folder / ".ship" / "services" / "churn"
                                  / "log")
        try:
            send(running.url, production)
        finally:
            running.stop()
        yield folder


def send(url: str, production: pd.DataFrame) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        ids = []
        for start in range(0, len(production), 2):
            rows = production.iloc[start:start + 2]
            answer = client.post("/invocations", json={"dataframe_split": {
                "columns": FEATURES, "data": rows[FEATURES].to_numpy().tolist()}})
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["x-request-id"])
        for i, request_id in enumerate(ids[:250]):
            truth = production["churned"].iloc[2 * i:2 * i + 2].tolist()
            if i == 0:  # a label someone corrects later: the correction counts
                client.post("/feedback", json={"request_id": request_id,
                                               "ground_truth": [1 - t for t in truth]})
            answer = client.post("/feedback", json={"request_id": request_id,
                                                    "ground_truth": truth})
            assert answer.status_code < 300, answer.text


def ship(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(Path(sys.executable).with_name("ship")), *args], cwd=root,
                          capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def workspace(root: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The module's workspace with champion 1 and no canary, no watcher state."""
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workspace = find_workspace(root)
    folder = workspace.services_dir / "churn"
    release = rollout.current_release(workspace, "churn")
    if release.canary is not None:
        rollout.rollback(workspace, "churn")
    if rollout.current_release(workspace, "churn").champion != "1":
        rollout.promote(workspace, "churn", version="1")
    for name in ("watch.json", "loop.jsonl"):
        (folder / name).unlink(missing_ok=True)
    return workspace


def test_production_data_has_each_labelled_row_once(workspace: Workspace) -> None:
    frame = kernel_magics.production_data("churn")
    assert list(frame.columns) == [*FEATURES, "target", "request_id", "time"]
    assert len(frame) == 500 and frame.request_id.nunique() == 250  # 2 rows a request
    assert frame.time.is_monotonic_increasing
    assert frame.target.dtype == np.int64
    # the corrected label won: the rows' churn rule holds for every row
    assert ((frame.tenure - frame.spend > 0).astype(int) == frame.target).all()
    assert len(kernel_magics.production_data("churn", since="1h")) == 500


def test_a_challenger_that_learned_the_new_data_goes_out_as_canary(
        workspace: Workspace) -> None:
    watcher = Watcher(workspace, "churn", window="1h")
    result = watcher.tick()

    assert result is not None, events.read_events(workspace, "churn")
    assert result.decision == gate.CANARY, result.reason
    recent, holdout = result.checks
    assert (recent.name, recent.metric, recent.rows) == ("recent", "accuracy", 150)
    assert recent.passed and recent.challenger > recent.champion + 0.2
    assert recent.interval is not None and recent.interval[0] > 0
    assert holdout.name == "holdout" and holdout.rows == 500 and holdout.passed
    assert (result.training_rows, result.recent_rows) == (350, 150)
    release = rollout.current_release(workspace, "churn")
    assert release.canary is not None and release.canary.version == result.challenger.version
    assert release.canary.max_disagreement is not None and \
        release.canary.max_disagreement > 0.2  # it is meant to answer differently
    kinds = [e.kind for e in events.read_events(workspace, "churn")]
    assert kinds == ["trigger", "retrain"]
    trigger = events.read_events(workspace, "churn")[0]
    assert trigger.details["reason"] == "drift"
    assert set(trigger.details["drifted_features"]) == {"visits", "tickets", "discount"}
    # logged with the challenger's run
    from kernel_magics.export.registry import client_for

    run = client_for(workspace).get_run(result.challenger.run_id)
    assert run.data.tags["ship.gate.decision"] == "canary"
    assert run.data.metrics["ship.gate.recent.challenger"] == pytest.approx(recent.challenger)
    # one release at a time: the next look waits for the release gate
    assert watcher.tick() is None
    told = events.read_events(workspace, "churn")
    assert [e.kind for e in told] == ["trigger", "retrain", "release"]
    assert told[-1].details["action"] == "canary" and told[-1].details["automatic"]
    status = watch_status(workspace, "churn")
    assert status["state"]["canary"] == result.challenger.version


def test_a_forgetting_challenger_is_rejected_on_the_holdout(root: Path,
                                                            workspace: Workspace) -> None:
    done = ship(root, "retrain", "churn", "--notebook", "forgetful.ipynb", "--json")
    doc = json.loads(done.stdout)

    assert doc["decision"] == "rejected" and doc["champion"] == "1"
    checks = {c["name"]: c for c in doc["checks"]}
    assert set(checks["recent"]) >= {"name", "metric", "champion", "challenger", "interval",
                                     "passed"}
    assert checks["recent"]["passed"] is True  # it learned the new data ...
    assert checks["holdout"]["passed"] is False  # ... and forgot the old
    assert checks["holdout"]["challenger"] < checks["holdout"]["champion"] - 0.2
    assert "forgets" in checks["holdout"]["reason"]
    assert rollout.current_release(workspace, "churn").canary is None


def test_an_equal_challenger_is_rejected_on_the_recent_rows(workspace: Workspace) -> None:
    result = retrain(workspace, "churn", notebook=Path("no_gain.ipynb"))

    assert result.decision == gate.REJECTED
    recent = result.checks[0]
    assert recent.passed is False and "not better" in recent.reason
    assert rollout.current_release(workspace, "churn").canary is None


def test_an_identical_challenger_is_rejected_as_such(workspace: Workspace) -> None:
    result = retrain(workspace, "churn", notebook=Path("same.ipynb"))

    assert result.decision == gate.REJECTED and result.checks == []
    assert "exactly" in result.reason and result.challenger is None


def test_a_rejection_backs_off_the_watcher(workspace: Workspace) -> None:
    settings = LoopSettings(backoff_s=3600)
    watcher = Watcher(workspace, "churn", window="1h", settings=settings,
                      notebook=Path("forgetful.ipynb"))
    result = watcher.tick()

    assert result is not None and result.decision == gate.REJECTED
    state = read_state(workspace, "churn")
    assert state.rejections == 1 and state.backoff_until is not None
    assert watcher.tick() is None  # backing off: no second retraining
    kinds = [e.kind for e in events.read_events(workspace, "churn")]
    assert kinds == ["trigger", "retrain", "backoff"]


def test_too_little_feedback_trains_nothing(workspace: Workspace) -> None:
    result = retrain(workspace, "churn", settings=LoopSettings(min_labelled_rows=1000))

    assert result.decision == gate.TOO_LITTLE and result.output is None
    assert "500 labelled production rows" in result.reason
    assert "feedback" in result.reason


def test_a_first_model_says_there_is_nothing_to_compare(workspace: Workspace) -> None:
    result = retrain(workspace, "churn-eu", notebook=Path("train.ipynb"))

    assert result.decision == gate.FIRST_MODEL and result.challenger is not None
    assert result.checks == [] and "no champion" in result.reason
    assert (workspace.services_dir / "churn-eu" / result.challenger.version).is_dir()


def test_a_notebook_without_ship_new_data_is_refused(root: Path, workspace: Workspace) -> None:
    write_notebook(root / "plain.ipynb", ("seed = 0", ["parameters"]), "x = 1")
    with pytest.raises(kernel_magics.errors.ValidationError, match="ship_new_data = None"):
        retrain(workspace, "churn", notebook=Path("plain.ipynb"))



def test_ship_watch_once_and_status_from_the_command_line(root: Path,
                                                          workspace: Workspace) -> None:
    later = "2999-01-01T00:00:00+00:00"  # backing off: the look retrains nothing
    told = len(rollout.decisions(workspace, "churn", limit=10_000))  # release history: told
    (workspace.services_dir / "churn" / "watch.json").write_text(json.dumps(
        {"rejections": 2, "backoff_until": later, "releases_seen": told}), encoding="utf-8")
    ship(root, "watch", "churn", "--once")
    doc = json.loads(ship(root, "watch", "churn", "--status", "--json").stdout)

    assert doc["running"] is False and doc["state"]["backoff_until"] == later
    assert doc["release"]["champion"] == "1"
    assert [e["kind"] for e in doc["events"]] == ["watch", "watch"]  # started, stopped
    assert doc["settings"]["max_forgetting"] == LoopSettings().max_forgetting
    text = ship(root, "watch", "churn", "--status").stdout
    assert "back-off    until 2999-01-01" in text and "not running" in text
