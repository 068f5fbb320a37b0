"""Production data: the prediction log's labelled rows as a training set.

A request the service answered, whose ground truth arrived as feedback (from a client or
from a person in the review queue: both are `POST .../feedback`), gives one row per input
row: one column per feature (schema.json's names), ``target``, ``request_id``, ``time``.
Rules (docs/retraining.md):

- only answers clients got count; shadows' copies of a request are the same inputs again;
- the latest ground truth sent for a request wins (a correction replaces a label);
- a request id logged twice counts once (its latest answer);
- rows whose inputs the log does not hold (a body that did not parse) or whose ground
  truth does not have one value per row are skipped, and counted in ``skipped``; so
  are rows whose value is null (a request the review queue labels row by row).

The newest rows (by time, whole requests) are the gate's ``recent`` set: held out of the
challenger's training data (:func:`split_recent`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..monitor.predictions import scalar
from ..services import service_folder, service_log
from ..serving.predlog import read_log
from ..serving.predlog.reader import parse_since
from ..workspace import Workspace

TARGET, REQUEST_ID, TIME = "target", "request_id", "time"


@dataclass
class ProductionData:
    """The labelled rows, oldest first, and what was left out and why."""

    frame: pd.DataFrame
    features: list[str]
    requests: int
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.frame)


def production_data(log: str, features: list[str], *,
                    since: str | datetime | None = None) -> ProductionData:
    """Every labelled row of the log at ``log`` (at or after ``since``)."""
    entries = read_log(log, parse_since(since), labelled=True)
    latest = {e.request_id: e for e in entries}  # oldest first: the latest answer wins
    skipped: dict[str, int] = {}
    columns: dict[str, list[Any]] = {name: [] for name in (*features, TARGET, REQUEST_ID,
                                                            TIME)}
    requests = 0
    for entry in latest.values():
        truth = _truth(entry.ground_truth)
        if entry.inputs is None:
            _count(skipped, "inputs not in the log", entry.rows)
            continue
        if truth is None or len(truth) != entry.rows:
            _count(skipped, "ground truth without one value per row", entry.rows)
            continue
        keep = [i for i, value in enumerate(truth) if value is not None]
        if len(keep) < entry.rows:  # rows nobody labelled yet (review labels one at a time)
            _count(skipped, "rows without a label", entry.rows - len(keep))
        if not keep:
            continue
        requests += 1
        for name in features:
            values = entry.inputs.get(name)
            columns[name].extend([values[i] for i in keep] if values is not None
                                 else [None] * len(keep))
        columns[TARGET].extend(truth[i] for i in keep)
        columns[REQUEST_ID].extend([entry.request_id] * len(keep))
        columns[TIME].extend([entry.time] * len(keep))
    frame = pd.DataFrame(columns)
    frame[TARGET] = _typed(frame[TARGET])
    frame[TIME] = pd.to_datetime(frame[TIME], utc=True)
    return ProductionData(frame=frame, features=list(features), requests=requests,
                          skipped=skipped)


def service_production_data(workspace: Workspace, name: str, *,
                            since: str | datetime | None = None) -> ProductionData:
    """Service ``name``'s labelled rows, with its champion's features as columns."""
    from ..release.rollout import current_release
    from ..serving.bundle import Bundle

    champion = current_release(workspace, name).champion
    schema = Bundle.load(service_folder(workspace, name) / champion).schema
    return production_data(service_log(workspace, name), schema.feature_names, since=since)


def split_recent(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows, newest rows): the newest whole requests holding at least ``share``
    of the rows."""
    if frame.empty:
        return frame, frame
    ordered = frame.sort_values(TIME, kind="stable")
    wanted = math.ceil(share * len(ordered))
    ids = ordered[REQUEST_ID].to_numpy()
    cut = len(ordered) - wanted
    while 0 < cut < len(ordered) and ids[cut - 1] == ids[cut]:
        cut -= 1  # a request's rows stay together
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


def _truth(text: str | None) -> list[Any] | None:
    from ..release.evidence import truth_rows

    values = truth_rows(text)
    return None if values is None else [scalar(v) for v in values]


def _typed(target: pd.Series) -> pd.Series:
    """Whole numbers as int64, other numbers as float64, anything else as text."""
    values = target.tolist()
    if values and all(isinstance(v, bool) for v in values):
        return target.astype(bool)
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        numbers = pd.to_numeric(target)
        if all(float(v).is_integer() for v in values):
            return numbers.astype("int64")
        return numbers.astype("float64")
    return target.astype(str)


def _count(skipped: dict[str, int], why: str, rows: int) -> None:
    skipped[why] = skipped.get(why, 0) + rows
