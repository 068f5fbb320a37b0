"""The review queue, built from the prediction log: nothing is kept anywhere else.

Every answered request carries its rows' review scores (the ``review`` column the
service writes, serving/review.py). The queue reads the answers of the last
``[review] since``, routes them with the policy (policy.py: per day, in arrival order,
within the budget), and leaves out every row that has a label: a row's label is the
request's ground truth (feedback) at that row, so a label from a person, from a client's
``POST /feedback`` or from Label Studio is the same thing, and a routed row leaves the
queue however its label came. The queue of a past day never changes; a restart loses
nothing, as there is nothing but the log to lose.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..monitor.predictions import scalar
from ..release.evidence import Task, truth_rows
from ..services import service_folder, service_log
from ..serving.bundle import Bundle
from ..serving.predlog import LogEntry, read_log
from ..serving.predlog.reader import parse_since, read_review_scores
from ..serving.review import SCORES
from ..serving.schema import Schema
from ..workspace import Workspace
from .policy import REASONS, ReviewSettings, route

# pixel features laid out as an image: pixel_R_C (rows, columns) or pixelN (a square)
_GRID = re.compile(r"^(.*?)[_-]?(\d+)[_-](\d+)$")
_LINE = re.compile(r"^(.*?)[_-]?(\d+)$")


@dataclass(frozen=True)
class ImageLayout:
    """How a version's features form an image: height x width, features in row-major
    order (the panel draws them; Label Studio gets a PNG)."""

    height: int
    width: int
    features: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width}


def image_layout(schema: Schema) -> ImageLayout | None:
    """The image a schema's features are, or None: every feature numeric and named
    ``<prefix>R_C`` (a full grid) or ``<prefix>N`` (a square count), one prefix."""
    names = list(schema.feature_names)
    if len(names) < 16 or not all(f.numeric for f in schema.features):
        return None
    grid = [_GRID.match(n) for n in names]
    if all(grid) and len({m.group(1) for m in grid if m}) == 1:
        cells = {(int(m.group(2)), int(m.group(3))): n for m, n in zip(grid, names,
                                                                        strict=True) if m}
        height = max(r for r, _ in cells) + 1
        width = max(c for _, c in cells) + 1
        if len(cells) == height * width == len(names):
            return ImageLayout(height, width, [cells[(r, c)] for r in range(height)
                                               for c in range(width)])
    line = [_LINE.match(n) for n in names]
    side = math.isqrt(len(names))
    if all(line) and side * side == len(names) and \
            len({m.group(1) for m in line if m}) == 1:
        ordered = sorted(names, key=lambda n: int(_LINE.match(n).group(2)))  # type: ignore[union-attr]
        return ImageLayout(side, side, ordered)
    return None


@dataclass
class ReviewItem:
    """One routed row: what the person sees, and why it was routed."""

    request_id: str
    row: int
    rows: int  # rows in its request
    time: datetime
    version: str
    inputs: dict[str, Any]
    prediction: Any
    probabilities: dict[str, float] | None
    scores: dict[str, Any]
    reason: str
    label: Any = None  # its ground truth, once labelled

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "row": self.row, "rows": self.rows,
                "time": self.time.isoformat(), "version": self.version,
                "inputs": self.inputs, "prediction": self.prediction,
                "probabilities": self.probabilities, "scores": self.scores,
                "reason": self.reason, "label": self.label}


@dataclass
class ReviewQueue:
    """The items waiting for a person (oldest first), and what the budget did."""

    name: str
    items: list[ReviewItem]
    settings: ReviewSettings
    classes: list[Any] | None  # the champion's class labels (None: regression)
    image: ImageLayout | None
    scored: int  # rows answered in the window that the log holds scores of
    routed: int  # of which the policy routed
    labelled: int  # of the routed, labelled since
    today: dict[str, int] = field(default_factory=dict)  # routed and budget, today (UTC)
    by_reason: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "items": [i.to_json() for i in self.items],
                "pending": len(self.items), "scored": self.scored,
                "routed": self.routed, "labelled": self.labelled,
                "today": self.today, "by_reason": self.by_reason,
                "classes": self.classes,
                "image": None if self.image is None else self.image.to_json(),
                "features": None if self.image is None else self.image.features,
                "settings": self.settings.to_json()}


class Schemas:
    """The schemas of a service's versions, read once each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._known: dict[str, Schema | None] = {}

    def __call__(self, version: str) -> Schema | None:
        if version not in self._known:
            try:
                self._known[version] = Bundle.load(self.folder / version).schema
            except Exception:  # a version removed since: its items show what the log has
                self._known[version] = None
        return self._known[version]


def review_queue(workspace: Workspace, name: str, *, settings: ReviewSettings | None = None,
                 log_dir: str | None = None, now: datetime | None = None) -> ReviewQueue:
    """Service ``name``'s review queue now. Two reads of the log: every answer's scores
    (no inputs), then the inputs and answers of the routed requests only."""
    from ..release.rollout import current_release

    settings = settings or ReviewSettings.from_workspace(workspace)
    folder = service_folder(workspace, name)
    schemas = Schemas(folder)
    champion = schemas(current_release(workspace, name).champion)
    log = service_log(workspace, name, log_dir)
    scored = read_review_scores(log, parse_since(settings.since, now=now))
    routed = route(scored, settings)
    pending = routed[[_label(truth, row) is None for truth, row in
                      zip(routed["ground_truth"], routed["row"], strict=True)]
                     ].sort_values(["time", "row"], kind="stable")  # oldest first
    entries = {e.request_id: e for e in read_log(
        log, parse_since(settings.since, now=now),
        request_ids=sorted(set(pending["request_id"])))} if len(pending) else {}
    items = [_item(entries[rid], int(row), reason, schemas)
             for rid, row, reason in zip(pending["request_id"], pending["row"],
                                         pending["reason"], strict=True) if rid in entries]
    today = (now or datetime.now(UTC)).date()
    days = scored["time"].dt.date if len(scored) else scored["time"]
    seen_today = int((days == today).sum())
    return ReviewQueue(
        name=name, items=items, settings=settings,
        classes=None if champion is None or champion.class_labels is None
        else list(champion.class_labels),
        image=None if champion is None else image_layout(champion),
        scored=len(scored), routed=len(routed), labelled=len(routed) - len(pending),
        today={"routed": int((routed["time"].dt.date == today).sum()) if len(routed) else 0,
               "predictions": seen_today, "budget": settings.budget(seen_today)},
        by_reason={r: int((routed["reason"] == r).sum()) for r in REASONS
                   if len(routed) and (routed["reason"] == r).any()})


def _label(ground_truth: str | None, row: int) -> Any:
    """Row ``row``'s label in a request's ground truth (None: not labelled)."""
    truth = truth_rows(ground_truth)
    return None if truth is None or row >= len(truth) else scalar(truth[row])


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def _item(entry: LogEntry, row: int, reason: str, schemas: Schemas) -> ReviewItem:
    schema = schemas(entry.version)
    review = entry.review or {}
    inputs = {k: v[row] for k, v in (entry.inputs or {}).items() if row < len(v)}
    task = Task.of(schema) if schema is not None else Task("classification", None)
    predicted = task.predictions(entry.outputs, entry.endpoint)
    probabilities = None
    flat = review.get("probabilities") or []
    if flat and entry.rows and len(flat) % entry.rows == 0:
        width = len(flat) // entry.rows
        labels = list(schema.class_labels) if schema is not None and \
            schema.class_labels is not None and len(schema.class_labels) == width \
            else list(range(width))
        probabilities = {str(label): round(float(p), 4) for label, p in
                         zip(labels, flat[row * width:(row + 1) * width], strict=True)}
    return ReviewItem(
        request_id=entry.request_id, row=row, rows=entry.rows, time=entry.time,
        version=entry.version, inputs=inputs,
        prediction=None if predicted is None or row >= len(predicted) else predicted[row],
        probabilities=probabilities,
        scores={s: (review.get(s) or [None] * (row + 1))[row] if s == "ood_feature"
                else _number((review.get(s) or [None] * (row + 1))[row]) for s in SCORES},
        reason=reason,
        label=_label(entry.ground_truth, row))


__all__ = ["ImageLayout", "ReviewItem", "ReviewQueue", "image_layout",
           "review_queue"]
