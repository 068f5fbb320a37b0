"""drift_report over prediction logs written by the real PredictionLog, against the
reference a real bundle carries: shifted features found, odd cases reported, feedback
joined, history windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from drift_fixtures import SCHEMA, log_rows, make_bundle, table

from kernel_magics.errors import ConfigError, NotFoundError, ValidationError
from kernel_magics.monitor import drift_report
from kernel_magics.monitor.reference import PREDICTION, read_reference
from kernel_magics.serving.predlog import Prediction, PredictionLog
from kernel_magics.serving.schema import Feature, Schema
from kernel_magics.workspace import Workspace, find_workspace

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()
HOUR = 3600.0


def open_log(workspace: Workspace, name: str = "churn", schema: Schema = SCHEMA,
             version: str = "1") -> PredictionLog:
    log = PredictionLog(workspace.services_dir / name / "log")
    log.register(name, version, schema, identity=False)
    return log


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in doc["features"]}


def test_shifted_features_are_found_exactly(workspace: Workspace, model_bytes: bytes,
                                            training: pd.DataFrame) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    profile = read_reference(workspace.services_dir / "churn" / "1" / "reference.parquet")
    assert profile[-1].feature == PREDICTION and profile[-1].kind == "categorical"
    assert set(profile[-1].categories or []) <= {"yes", "no"}
    rng = np.random.default_rng(5)
    log = open_log(workspace)
    # an earlier window like the training data, the current one shifted on two features
    log_rows(log, table(rng, 3_000), when=T - 1.5 * HOUR)
    log.flush()
    shifted = table(rng, 3_000, shift={"income": 0.5}, cities=[0.1, 0.2, 0.3, 0.4])
    for part in np.array_split(np.arange(3_000), 4):  # several segments
        log_rows(log, shifted.iloc[part], when=T - 0.5 * HOUR)
        log.flush()
    report = drift_report(workspace, "churn", window="1h", history=3, now=NOW)
    doc = report.to_json()
    assert doc["current_rows"] == 3_000 and doc["version"] == "1"
    assert doc["dataset"]["drifted_features"] == ["income", "city"]
    assert doc["dataset"]["drifted"] is True  # 2 of 4 >= 0.5
    features = by_name(doc)
    assert features["income"]["method"] == "wasserstein/std"
    assert features["income"]["score"] == pytest.approx(0.5, abs=0.08)
    assert features["city"]["method"] == "js" and features["city"]["status"] == "drift"
    for quiet in ("age", "score"):
        assert features[quiet]["status"] == "ok"
        assert features[quiet]["score"] < 0.1
    assert [t["method"] for t in features["age"]["tests"]] == ["wasserstein/std", "psi", "chi2"]
    assert len(features["age"]["reference"]["edges"]) <= 21
    assert sum(features["age"]["current"]["counts"]) + features["age"]["current"]["below"] \
        + features["age"]["current"]["above"] == 3_000
    assert features["city"]["reference"]["categories"][-1] == "other"
    # the predictions (postprocess's "label") compared with the reference's
    assert doc["prediction"]["feature"] == PREDICTION
    assert doc["prediction"]["kind"] == "categorical"
    # history: oldest first; the earlier window is quiet, the one between is empty
    history = doc["history"]
    assert [h["rows"] for h in history] == [0, 3_000, 3_000]
    assert history[1]["drifted"] == [] and history[2]["drifted"] == ["income", "city"]
    assert history[0]["scores"]["age"] is None
    json.dumps(doc)  # plain JSON
    text = report.to_text()
    assert "income" in text and "DRIFT" in text


def test_new_missing_empty_and_new_category(workspace: Workspace, model_bytes: bytes,
                                            training: pd.DataFrame) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    # a later model version logs a feature the reference lacks and no "score"
    v2 = Schema(features=(Feature("age", "float64", nullable=True),
                          Feature("income", "float64"), Feature("city", "string"),
                          Feature("tenure", "float64")), inputs=SCHEMA.inputs,
                outputs=SCHEMA.outputs)
    log = open_log(workspace, schema=v2, version="2")
    rng = np.random.default_rng(6)
    frame = table(rng, 500).drop(columns=["score"])
    frame["tenure"] = rng.normal(size=500)
    frame.loc[:9, "city"] = "marseille"
    frame.loc[:99, "age"] = np.nan
    log_rows(log, frame, when=T - 60, version="2", outputs=lambda part: ["no"] * len(part))
    log.flush()
    doc = drift_report(workspace, "churn", window="15m", history=2, now=NOW).to_json()
    features = by_name(doc)
    assert features["score"]["status"] == "missing" and features["score"]["score"] is None
    assert features["tenure"]["status"] == "new" and "not in the reference" in \
        features["tenure"]["note"]
    assert "marseille" in features["city"]["note"] and "new categories" in \
        features["city"]["note"]
    assert features["age"]["nulls"] == 100 and features["age"]["status"] in ("ok", "drift")
    # version 2's answers are not the newest bundle's (version 1): no prediction drift
    assert doc["prediction"]["status"] == "empty"
    # an empty window: every feature says so, and a note says when traffic stopped
    later = drift_report(workspace, "churn", window="15m", history=2,
                         now=datetime.fromtimestamp(T + 2 * HOUR, UTC)).to_json()
    assert {f["status"] for f in later["features"] if f["feature"] != "tenure"} == {"empty"}
    assert later["current_rows"] == 0
    assert any("has no requests" in n for n in later["notes"])


def test_feedback_joins_accuracy_and_v2_answers_count(workspace: Workspace,
                                                      model_bytes: bytes,
                                                      training: pd.DataFrame) -> None:
    make_bundle(workspace, "plain", model_bytes, None, handler=None,
                schema=Schema(features=tuple(Feature(f"x{i}") for i in range(4)),
                              inputs=SCHEMA.inputs, outputs=SCHEMA.outputs,
                              class_labels=("no", "yes")))
    from kernel_magics.bundle.reference import from_data, write_reference_file

    bundle = workspace.services_dir / "plain" / "1"
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=[f"x{i}" for i in range(4)])
    schema = Schema.from_dict(json.loads((bundle / "schema.json").read_text()))
    write_reference_file(bundle, from_data(schema.feature_names, x.astype("float32")))
    prediction = read_reference(bundle / "reference.parquet")[-1]
    assert prediction.feature == PREDICTION and set(prediction.categories or []) <= {"no",
                                                                                       "yes"}
    schema = Schema.from_dict(json.loads((bundle / "schema.json").read_text()))
    log = open_log(workspace, "plain", schema)
    current = x.iloc[:200].reset_index(drop=True)
    labels = np.where(current["x2"] > 0, "yes", "no")
    ids = log_rows(log, current, when=T - 30, per_request=1, model="plain",
                   outputs=lambda part: labels[part.index].tolist())
    # V2 answers carry the model's tensors: read as the runtime's default postprocess
    from kernel_magics.serving.inputs import Inputs
    from kernel_magics.serving.v2_codec import V2Outputs

    tensors = {"label": np.array([1, 0]), "probabilities": np.array([[0.2, 0.8], [0.9, 0.1]])}
    answered_json = orjson.dumps([  # the outputs list of a V2 JSON answer, as logged
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        {"name": "probabilities", "datatype": "FP64", "shape": [2, 2],
         "data": [0.2, 0.8, 0.9, 0.1]}])
    for rid, answer in (("v2-binary", V2Outputs(tensors)), ("v2-json", answered_json),
                        ("v2-before-version-2", tensors)):  # logs written before: a dict
        log.append(Prediction(rid, T - 20, "plain", "1", "v2_infer", 200, 1.0, None,
                              Inputs(rows=2, matrix=np.zeros((2, 4), dtype=np.float32)),
                              None, answer, None))
    for i, rid in enumerate(ids):
        truth = labels[i] if i % 4 else ("no" if labels[i] == "yes" else "yes")  # 75 % right
        log.feedback(rid, "plain", [truth])
    log.flush()
    doc = drift_report(workspace, "plain", window="1h", history=1, now=NOW).to_json()
    performance = doc["performance"]
    assert performance["metric"] == "accuracy" and performance["labelled"] == 200
    assert performance["value"] == pytest.approx(0.75)
    assert "request id" in performance["method"]
    prediction_rows = doc["prediction"]["current"]["counts"]
    assert sum(prediction_rows) == 206  # 200 /invocations + 3 V2 answers of 2 rows
    assert doc["history"][-1]["performance"] == pytest.approx(0.75)


def test_small_reference_uses_exact_tests(workspace: Workspace, model_bytes: bytes) -> None:
    rng = np.random.default_rng(8)
    small = table(rng, 400)
    make_bundle(workspace, "churn", model_bytes, small)
    profile = {p.feature: p for p in read_reference(
        workspace.services_dir / "churn" / "1" / "reference.parquet")}
    assert profile["age"].values is not None and len(profile["age"].values) == 400
    log = open_log(workspace)
    current = table(rng, 600, shift={"score": 0.4})
    log_rows(log, current, when=T - 10)
    log.flush()
    features = by_name(drift_report(workspace, "churn", window="1h", history=1,
                                    now=NOW).to_json())
    import scipy.stats as ss

    score = features["score"]
    assert score["method"] == "ks" and score["status"] == "drift"
    ks = next(t for t in score["tests"] if t["method"] == "ks")
    expected = ss.ks_2samp(small["score"], current["score"])
    assert ks["score"] == pytest.approx(expected.statistic, abs=1e-9)
    assert ks["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)
    assert score["score"] == ks["p_value"]  # tests: the score is the p-value
    assert features["city"]["method"] == "chi2"
    assert features["age"]["status"] == "ok"


def test_without_reference_or_log_the_report_says_so(workspace: Workspace,
                                                     model_bytes: bytes) -> None:
    make_bundle(workspace, "bare", model_bytes, None)
    report = drift_report(workspace, "bare", now=NOW)
    doc = report.to_json()
    assert doc["features"] == [] and doc["reference"] == {"rows": None, "path": None}
    assert any("--reference" in n for n in doc["notes"])
    assert any("no prediction log" in n for n in doc["notes"])
    assert len(doc["history"]) == 24 and doc["thresholds"]["window"] == "1h"
    report.to_html()
    with pytest.raises(NotFoundError):
        drift_report(workspace, "nothing")
    with pytest.raises(ValidationError):
        drift_report(workspace, "bare", window="5 parsecs")


def test_settings_come_from_ship_toml(workspace: Workspace, model_bytes: bytes,
                                      training: pd.DataFrame) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    config = workspace.ship_dir / "ship.toml"
    config.write_text(config.read_text().replace('window = "1h"', 'window = "30m"')
                      .replace("wasserstein = 0.1", "wasserstein = 0.25"))
    ws = find_workspace(workspace.root)
    doc = drift_report(ws, "churn", history=4, now=NOW).to_json()
    assert doc["thresholds"]["window"] == "30m" and doc["window"]["length_s"] == 1800
    assert doc["thresholds"]["wasserstein"] == 0.25 and len(doc["history"]) == 4
    config.write_text("[drift]\nks_p_value = 2\n")
    with pytest.raises(ConfigError, match="ks_p_value"):
        drift_report(find_workspace(workspace.root), "churn")


def test_old_reference_files_still_load(workspace: Workspace, model_bytes: bytes,
                                        training: pd.DataFrame) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    path = workspace.services_dir / "churn" / "1" / "reference.parquet"
    old = pq.read_table(path).drop_columns(["bin_means", "values"])
    import pyarrow.compute as pc

    old = old.filter(pc.not_equal(old.column("feature"), PREDICTION))  # before predictions
    pq.write_table(old, path)
    log = open_log(workspace)
    log_rows(log, table(np.random.default_rng(9), 1_000, shift={"age": 1.0}), when=T - 5)
    log.flush()
    doc = drift_report(workspace, "churn", window="1h", history=1, now=NOW).to_json()
    assert by_name(doc)["age"]["status"] == "drift"  # bin midpoints stand in for means
    assert by_name(doc)["income"]["status"] == "ok"
    assert doc["prediction"] is None and any("prediction" in n for n in doc["notes"])


def test_html_is_one_self_contained_page(workspace: Workspace, model_bytes: bytes,
                                         training: pd.DataFrame, tmp_path: Path) -> None:
    make_bundle(workspace, "churn", model_bytes, training)
    log = open_log(workspace)
    log_rows(log, table(np.random.default_rng(10), 800), when=T - 100)
    log.flush()
    page = drift_report(workspace, "churn", window="1h", history=6, now=NOW).to_html()

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.links: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            self.links += [v or "" for k, v in attrs if k in ("src", "href")]

    parser = Collect()
    parser.feed(page)
    assert "svg" in parser.tags and "script" not in parser.tags and not parser.links
    assert "http" not in page.replace("http://www.w3.org", "")


def test_the_report_compares_the_version_that_served_the_window(
        workspace: Workspace, model_bytes: bytes, training: pd.DataFrame) -> None:
    make_bundle(workspace, "churn", model_bytes, training, version="1")
    make_bundle(workspace, "churn", model_bytes, training, version="2")  # built, not served
    rng = np.random.default_rng(11)
    log = open_log(workspace, version="1")
    log_rows(log, table(rng, 500), when=T - 0.5 * HOUR, version="1")
    log.flush()
    report = drift_report(workspace, "churn", window="1h", history=1, now=NOW)
    assert report.version == "1" and report.current_rows == 500
    assert any("version 1 answered most of this window" in n for n in report.notes)
    asked = drift_report(workspace, "churn", window="1h", history=1, now=NOW, version="2")
    assert asked.version == "2"
    with pytest.raises(NotFoundError):
        drift_report(workspace, "churn", window="1h", history=1, now=NOW, version="9")
