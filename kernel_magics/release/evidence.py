"""What the prediction log says of a release: the gate's samples and the shadow report.

Both compare two versions on the same requests. A canary's answers are compared with
the champion's copies of those requests (the runtime sends the champion a copy of each
request the canary answers); a shadow's copies with the answers the client got. A
prediction is one scalar per row (monitor/predictions.py: the label, or the value);
two agree when their labels are equal (classification) or within a relative tolerance
(regression).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from ..monitor import predictions as preds
from ..serving.predlog import Answer, read_answers, read_log
from ..serving.release import Release
from ..serving.schema import Schema
from .gate import Samples

SHADOW_REPORT_ROWS = 50_000  # the most recent requests a shadow report reads
# The gate reads at most this many of the latest answers of each side (and copies): a
# look costs the same after an hour at a step as after a minute, and 5,000 requests a
# side tell every difference the gate looks for.
EVIDENCE_ROWS = 5_000


@dataclass(frozen=True)
class Task:
    """How to read and compare a version's predictions (its schema's task and labels)."""

    kind: str
    class_labels: tuple[Any, ...] | None
    tolerance: float = 1e-3

    @classmethod
    def of(cls, schema: Schema, tolerance: float = 1e-3) -> Task:
        return cls(schema.task, schema.class_labels, tolerance)

    def predictions(self, outputs: str | None, endpoint: str) -> list[Any] | None:
        """One scalar per row of a logged answer; None when there is none to read."""
        if outputs is None:
            return None
        try:
            data = orjson.loads(outputs)
        except orjson.JSONDecodeError:
            return None
        if endpoint in ("v2_infer", "grpc_infer"):  # V2 outputs, over REST or gRPC
            return preds.from_v2(data, self.kind, self.class_labels)
        return preds.from_invocations(data)

    def agree(self, a: Any, b: Any) -> bool:
        if self.kind == "regression":
            try:
                x, y = float(a), float(b)
            except (TypeError, ValueError):
                return preds.label(a) == preds.label(b)
            return abs(x - y) <= self.tolerance * max(1.0, abs(y))
        return preds.label(a) == preds.label(b)


def truth_rows(ground_truth: str | None) -> list[Any] | None:
    """The ground truth sent for a request, one value per row."""
    if ground_truth is None:
        return None
    try:
        value = orjson.loads(ground_truth)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, list) else [value]


def canary_samples(log: str, release: Release, task: Task) -> Samples:
    """The champion's and the canary's answers since the canary's current step began
    (the latest ``EVIDENCE_ROWS`` of each)."""
    canary = release.canary
    assert canary is not None
    answers = read_answers(log, datetime.fromisoformat(canary.started),
                           [release.champion, canary.version], latest=EVIDENCE_ROWS)
    champion = [a for a in answers if a.version == release.champion and a.shadow is None]
    challenger = [a for a in answers if a.version == canary.version and a.shadow is None]
    copies = {a.request_id: a for a in answers
              if a.version == release.champion and a.shadow == canary.version}
    copied = canary.percent >= 100.0
    if copied:  # the champion answers nothing: its copies of the requests are its side
        champion = list(copies.values())
    compared = disagreeing = 0
    for answer in challenger:
        copy = copies.get(answer.request_id)
        if copy is None or answer.failed or copy.failed:
            continue
        mine = task.predictions(answer.outputs, answer.endpoint)
        theirs = task.predictions(copy.outputs, copy.endpoint)
        if mine is None or theirs is None or len(mine) != len(theirs):
            continue
        compared += len(mine)
        disagreeing += sum(not task.agree(a, b) for a, b in zip(mine, theirs, strict=True))
    return Samples(
        champion_latency=np.array([a.latency_ms for a in champion], float),
        champion_failed=np.array([a.failed for a in champion], bool),
        canary_latency=np.array([a.latency_ms for a in challenger], float),
        canary_failed=np.array([a.failed for a in challenger], bool),
        compared_rows=compared, disagreeing_rows=disagreeing,
        champion_correct=_correct(champion, task), canary_correct=_correct(challenger, task),
        champion_copies=copied)


def _correct(answers: Iterable[Answer], task: Task) -> np.ndarray[Any, Any] | None:
    """Per labelled row, whether the prediction matched the ground truth
    (classification only; None for regression)."""
    if task.kind != "classification":
        return None
    correct: list[bool] = []
    for answer in answers:
        truth = truth_rows(answer.ground_truth)
        if truth is None or answer.failed:
            continue
        predicted = task.predictions(answer.outputs, answer.endpoint)
        if predicted is not None and len(predicted) == len(truth):
            correct.extend(task.agree(p, t) for p, t in zip(predicted, truth, strict=True)
                           if t is not None)  # null: a row nobody labelled yet
    return np.array(correct, bool)


def shadow_report(log: str, version: str, since: datetime, task: Task,
                  categorical: list[str]) -> dict[str, Any]:
    """How shadow ``version`` compares with the answers clients got since ``since``:
    agreement overall, per predicted class and per category of ``categorical``
    features, flips from each class to each other, latency and error deltas."""
    entries = read_log(log, since, limit=SHADOW_REPORT_ROWS, shadows=True)
    answered = {e.request_id: e for e in entries if e.shadow is None}
    copies = [e for e in entries if e.shadow is not None and e.version == version]
    rows = agreeing = 0
    by_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_feature: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    flips: Counter[tuple[str, str]] = Counter()
    for copy in copies:
        answer = answered.get(copy.request_id)
        if answer is None:
            continue
        if copy.error is not None or answer.error is not None:
            continue
        mine = task.predictions(copy.outputs, copy.endpoint)
        theirs = task.predictions(answer.outputs, answer.endpoint)
        if mine is None or theirs is None or len(mine) != len(theirs):
            continue
        for row, (shadow_value, client_value) in enumerate(zip(mine, theirs, strict=True)):
            same = task.agree(shadow_value, client_value)
            rows += 1
            agreeing += same
            if task.kind == "classification":
                cls = preds.label(client_value)
                by_class[cls][0] += 1
                by_class[cls][1] += same
                if not same:
                    flips[(cls, preds.label(shadow_value))] += 1
            for feature in categorical:
                values = (answer.inputs or {}).get(feature)
                if values is not None and row < len(values):
                    cell = by_feature[(feature, str(values[row]))]
                    cell[0] += 1
                    cell[1] += same
    everything = list(answered.values())  # what clients got since the shadow came
    copied = {c.request_id for c in copies}
    served = [e for e in everything if e.error is None and e.request_id not in copied]
    return {
        "version": version, "since": since.isoformat(), "requests": len(copies),
        # answered without a copy (the shadow's queue was full, or it was loading)
        "dropped": len(served),
        "agreement": agreeing / rows if rows else None, "rows": rows,
        "by_class": [{"value": k, "requests": v[0], "agreement": v[1] / v[0]}
                     for k, v in sorted(by_class.items())],
        "by_feature": [{"feature": f, "value": c, "requests": v[0], "agreement": v[1] / v[0]}
                       for (f, c), v in sorted(by_feature.items())],
        "flips": [{"from": a, "to": b, "count": n} for (a, b), n in flips.most_common()],
        "latency_p50_ms": _pair(everything, copies, 0.5),
        "latency_p99_ms": _pair(everything, copies, 0.99),
        "error_rate": {"champion": _errors(everything), "shadow": _errors(copies)},
    }


def _pair(answers: list[Any], copies: list[Any], q: float) -> dict[str, float | None]:
    def quantile(items: list[Any]) -> float | None:
        return float(np.quantile([e.latency_ms for e in items], q)) if items else None
    return {"champion": quantile(answers), "shadow": quantile(copies)}


def _errors(items: list[Any]) -> float | None:
    return sum(e.error is not None for e in items) / len(items) if items else None
