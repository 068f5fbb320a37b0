"""Review scores: uncertainty from model outputs, OOD against a
reference profile, and the budgeted routing policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from kernel_magics.monitor.reference import build_profile, write_reference
from kernel_magics.review.policy import ReviewSettings, audited, route
from kernel_magics.serving.review import OodScorer, probabilities, uncertainty


def test_probabilities_from_logits_probabilities_and_one_column() -> None:
    logits = {"out": np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)}
    p = probabilities(logits)
    assert p is not None and np.allclose(p.sum(axis=1), 1) and p[0].argmax() == 0
    given = {"label": np.array([1, 0]), "probabilities": np.array([[0.2, 0.8], [0.9, 0.1]])}
    assert np.allclose(probabilities(given), given["probabilities"])  # type: ignore[arg-type]
    binary = probabilities({"p": np.array([[0.7], [0.5]], np.float32)})
    assert binary is not None and np.allclose(binary[:, 1], [0.7, 0.5])
    assert probabilities({"y": np.array([[3.5], [-2.0]], np.float32)}) is None  # regression


def test_uncertainty_of_a_sure_and_an_unsure_row() -> None:
    scores = uncertainty(np.array([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33]]))
    assert scores["confidence"][0] == 0.98 and scores["margin"][1] < 0.02
    assert scores["entropy"][0] < 0.2 and scores["entropy"][1] > 0.99


def test_ood_is_zero_inside_the_training_data_and_grows_outside(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(0, 1, 5000), "colour": rng.choice(["r", "g"], 5000)})
    path = write_reference(build_profile(train, ["x", "colour"]), tmp_path / "ref.parquet")
    scorer = OodScorer.from_reference(path)
    scores, worst = scorer.score_index({"x": np.array([0.1, 10.0, 0.0]),
                                        "colour": np.array(["r", "g", "b"], dtype=object)})
    assert scores[0] == 0 and worst[0] == -1
    assert scores[1] > 1 and scorer.names[worst[1]] == "x"  # far beyond the 99th percentile
    assert scores[2] == 1 and scorer.names[worst[2]] == "colour"  # a colour training never had


def test_routing_keeps_the_budget_and_the_reason_caps() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = pd.DataFrame({
        "request_id": [f"r{i}" for i in range(1000)], "row": 0,
        "time": [start + timedelta(seconds=i) for i in range(1000)],
        "confidence": np.where(np.arange(1000) % 4 == 0, 0.4, 0.99),  # 250 unsure
        "margin": 0.5, "entropy": 0.1, "ood": np.where(np.arange(1000) % 4 == 1, 3.0, 0.0)})
    settings = ReviewSettings(daily_budget=40, daily_share=0.05, cap_ood=0.25,
                              audit_share=0.0)
    routed = route(rows, settings)
    assert len(routed) == 40  # the budget: the smaller of 40 and 5 % of 1,000
    assert routed.reason.value_counts().to_dict() == {"confidence": 40}  # unsure first
    assert route(rows, settings).equals(routed)  # deterministic
    settings = ReviewSettings(daily_budget=40, daily_share=0.05, cap_confidence=0.5,
                              cap_ood=0.25, audit_share=0.0)
    assert route(rows, settings).reason.value_counts().to_dict() == \
        {"confidence": 20, "ood": 10}  # each reason at its cap; 10 slots left free
    settings = ReviewSettings(daily_budget=40, daily_share=0.01, audit_share=0.0)
    # at no moment more than 1 % of the predictions so far: 10 (the 10th slot opens at
    # the 1,000th prediction and goes to a candidate waiting since earlier)
    routed = route(rows, settings)
    assert len(routed) == 10
    # the queue of any past moment: within that moment's budget, and still routed now
    for moment in (99, 100, 250, 401, 999):
        then = route(rows.iloc[:moment], settings)
        assert len(then) <= settings.budget(moment)
        assert set(then.request_id) <= set(routed.request_id)


def test_the_most_doubtful_waiting_row_takes_a_free_slot_and_audits_come_as_they_are() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    confidence = np.full(200, 0.99)
    confidence[[3, 5, 7]] = [0.55, 0.35, 0.45]  # three unsure rows before the first slot
    rows = pd.DataFrame({"request_id": [f"r{i}" for i in range(200)], "row": 0,
                         "time": [start + timedelta(seconds=i) for i in range(200)],
                         "confidence": confidence, "margin": 0.5, "entropy": 0.1,
                         "ood": 0.0})
    routed = route(rows, ReviewSettings(daily_budget=2, daily_share=0.01, audit_share=0.0))
    assert list(routed.request_id) == ["r5", "r7"]  # the least sure first
    audited_rows = [r for r in rows.request_id if audited(r, 0, 0.05)]
    routed = route(rows, ReviewSettings(daily_budget=100, daily_share=0.5, audit_share=0.05,
                                        min_confidence=0.0, min_margin=0.0, max_ood=0.0))
    # each as it came, while the budget and the audit's cap (a fifth of it) had room
    assert set(routed.reason) == {"audit"} and len(routed) > 0
    assert set(routed.request_id) <= set(audited_rows)
    assert list(routed.request_id) == sorted(routed.request_id, key=lambda r: int(r[1:]))


def test_the_writer_scores_each_batch_into_the_review_column(tmp_path: Path) -> None:
    """Text and number features (the ``inputs`` struct, not the matrix), a request
    without model outputs, an error and a shadow's copy: each gets what applies."""
    from kernel_magics.serving.inputs import Inputs
    from kernel_magics.serving.predlog import PredictionLog, read_log
    from kernel_magics.serving.predlog.format import Prediction
    from kernel_magics.serving.review import Reviewer
    from kernel_magics.serving.schema import Feature, Schema, TensorSpec

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(0, 1, 2000), "colour": rng.choice(["r", "g"], 2000)})
    path = write_reference(build_profile(train, ["x", "colour"]), tmp_path / "ref.parquet")
    schema = Schema(features=(Feature("x", "float64"), Feature("colour", "string")),
                    inputs=(TensorSpec("x", "FP64", (-1, 1)),
                            TensorSpec("colour", "BYTES", (-1, 1))),
                    outputs=(TensorSpec("probabilities", "FP32", (-1, 2)),),
                    class_labels=("no", "yes"))
    reviewer = Reviewer(["x", "colour"], True, OodScorer.from_reference(path))
    log = PredictionLog(tmp_path / "log")
    log.register("m", "1", schema, identity=True, reviewer=reviewer)

    def inputs(x: list[float], colour: list[str]) -> Inputs:
        return Inputs(rows=len(x), columns={"x": np.array(x),
                                            "colour": np.array(colour, dtype=object)})

    probs = {"probabilities": np.array([[0.9, 0.1], [0.45, 0.55]], np.float32)}
    log.append(Prediction("a", 1.0, "m", "1", "invocations", 200, 1.0,
                          inputs=inputs([0.0, 9.0], ["r", "b"]), model_outputs=probs))
    log.append(Prediction("b", 2.0, "m", "1", "invocations", 200, 1.0,
                          inputs=inputs([0.1], ["g"])))  # no outputs at hand
    log.append(Prediction("c", 3.0, "m", "1", "invocations", 400, 1.0, error="bad"))
    log.append(Prediction("d", 4.0, "m", "1", "invocations", 200, 1.0, shadow="2",
                          inputs=inputs([0.1], ["g"]), model_outputs=probs))
    log.flush()
    entries = {e.request_id: e for e in read_log(tmp_path / "log", shadows=True)}
    a = entries["a"].review
    assert a is not None
    assert np.allclose(a["confidence"], [0.9, 0.55]) and np.allclose(a["margin"], [0.8, 0.1])
    assert a["ood"][0] == 0 and a["ood"][1] > 1 and a["ood_feature"] == [None, "x"]
    assert np.allclose(a["probabilities"], [0.9, 0.1, 0.45, 0.55])
    b = entries["b"].review
    assert b is not None and np.isnan(b["confidence"][0]) and b["ood"] == [0.0]
    assert len(b["probabilities"]) == 2 and np.isnan(b["probabilities"]).all()
    assert entries["c"].review is None and entries["d"].review is None
