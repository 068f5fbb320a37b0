"""A person's labels, written as feedback: the request's ground truth, one value per row.

A label names a request and a row. Feedback is per request (one value per row, the same
``POST /feedback`` clients send), so labelling row r of a request writes the request's
whole list again: the labels it has, this one, and null for rows nobody labelled yet
(readers skip null rows: accuracy, drift's performance view, production data). The latest
feedback of a request wins, which also makes undo a label: the row's previous value
(null when it had none).

Labels are written straight into the service's prediction log (a feedback segment,
``predictions/`` untouched), so they land whether the service runs or not, and a reader
sees them the moment the file is published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..monitor.predictions import scalar
from ..release.evidence import truth_rows
from ..services import service_folder, service_log
from ..serving.bundle import Bundle
from ..serving.predlog import PredictionLog, read_log
from ..serving.schema import Schema
from ..workspace import Workspace


@dataclass(frozen=True)
class Label:
    """Row ``row`` of request ``request_id`` is ``value`` (None: not labelled)."""

    request_id: str
    value: Any
    row: int = 0


def coerce(schema: Schema | None, value: Any) -> Any:
    """A label as the model's classes are typed (``"3"`` is class 3 of the digits);
    a number for a regressor. ValidationError names the classes when it is none of them."""
    if value is None:
        return None
    if schema is None or schema.task != "classification":
        if schema is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ValidationError(f"label {value!r} is not a number; this model predicts "
                                 "numbers (regression).", field="label") from None
        return value
    labels = schema.class_labels
    if labels is None:
        return scalar(value) if not isinstance(value, str) else _number_or_text(value)
    for known in labels:
        if known == value or str(known) == str(value):
            return known
    raise ValidationError(f"label {value!r} is not one of the model's classes: "
                     f"{', '.join(str(c) for c in labels)}.", field="label")


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def write_labels(workspace: Workspace, name: str, labels: Iterable[Label], *,
                 log_dir: str | None = None) -> list[dict[str, Any]]:
    """Write ``labels`` of service ``name`` as feedback (one segment); what each request's
    ground truth became. ValidationError / NotFoundError name a bad label before anything is
    written: all or nothing."""
    wanted = list(labels)
    if not wanted:
        return []
    log = service_log(workspace, name, log_dir)
    ids = sorted({label.request_id for label in wanted})
    entries = {e.request_id: e for e in read_log(log, request_ids=ids) if e.error is None}
    missing = [i for i in ids if i not in entries]
    if missing:
        raise ValidationError(f"no answered request of service {name!r} has id "
                         f"{', '.join(map(repr, missing[:5]))}; `ship review {name}` lists "
                         "the queue's request ids.", field="request_id")
    folder = service_folder(workspace, name)
    schemas: dict[str, Schema | None] = {}
    truths: dict[str, list[Any]] = {}
    for label in wanted:
        entry = entries[label.request_id]
        if not 0 <= label.row < entry.rows:
            raise ValidationError(f"request {label.request_id!r} has {entry.rows} row(s); row "
                             f"{label.row} is not one of them.", field="row")
        if entry.version not in schemas:
            schemas[entry.version] = _schema(folder, entry.version)
        truth = truths.get(label.request_id)
        if truth is None:
            current = truth_rows(entry.ground_truth)
            truth = [scalar(v) for v in current] if current is not None and \
                len(current) == entry.rows else [None] * entry.rows
            truths[label.request_id] = truth
        truth[label.row] = coerce(schemas[entry.version], label.value)
    PredictionLog(log).write_feedback([(rid, entries[rid].model, truth)
                                       for rid, truth in truths.items()])
    return [{"request_id": rid, "ground_truth": truth} for rid, truth in truths.items()]


def _schema(folder: Any, version: str) -> Schema | None:
    try:
        return Bundle.load(folder / version).schema
    except Exception:  # a version removed since: the label is taken as given
        return None


__all__ = ["Label", "coerce", "write_labels"]
