"""REST handlers of human review (the sidebar's Review panel): a service's review queue,
as `ship review NAME --json` prints it, and a person's labels, written as feedback the
way `ship review NAME --label RID VALUE --row R` (or ``--clear``) writes them. Errors map
through ``ShipAPIHandler``; ``review`` does the work, in a thread off the event loop.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import tornado.web

from ..errors import ValidationError
from .handlers import ShipAPIHandler

if TYPE_CHECKING:
    from ..review.labels import Label

# A panel sends one label at a time; a batch (an import, a script) stays reasonable.
MAX_LABELS = 1000


class ReviewQueueHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/review``: the items waiting for a person (oldest
    first), why each was routed, and what the budget did."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..review.queue import review_queue

        _, _, workspace = self.notebook_arg()
        queue = await self.blocking(lambda: review_queue(workspace, name))
        self.write_json(queue.to_json())


class ReviewLabelsHandler(ShipAPIHandler):
    """``POST /ship/api/services/{name}/review/labels`` with ``{"request_id": "…",
    "row": 0, "value": 3}`` (or a list of such; ``"value": null`` takes a label back):
    answers ``{"labelled": [{"request_id", "ground_truth"}]}``. All or nothing."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        from ..review.labels import write_labels

        _, _, workspace = self.notebook_arg()
        labels = parse_labels(self.request.body)
        written = await self.blocking(lambda: write_labels(workspace, name, labels))
        self.write_json({"labelled": written})


def parse_labels(raw: bytes | None) -> list[Label]:
    """The labels of a request body; ValidationError names the field that is wrong."""
    from ..review.labels import Label

    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise ValidationError("the request body must be JSON.", field="body") from None
    except RecursionError:
        raise ValidationError("the request body nests too deeply.", field="body") from None
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_LABELS:
        raise ValidationError(f"send one label, or a list of 1 to {MAX_LABELS}.", field="body")
    labels = []
    for n, item in enumerate(items):
        where = f"label {n}: " if isinstance(body, list) else ""
        if not isinstance(item, dict):
            raise ValidationError(f"{where}a label is a JSON object such as "
                                  '{"request_id": "…", "row": 0, "value": 3}.', field="body")
        request_id = item.get("request_id")
        if not isinstance(request_id, str) or not request_id.strip():
            raise ValidationError(f"{where}'request_id' is required: the id of a routed "
                                  "request.", field="request_id")
        row = item.get("row", 0)
        if isinstance(row, bool) or not isinstance(row, int) or row < 0:
            raise ValidationError(f"{where}'row' must be a row number (0 or more).",
                                  field="row")
        if "value" not in item:
            raise ValidationError(f"{where}'value' is required: the true class (or number), "
                                  "or null to take the label back.", field="value")
        value = item["value"]
        if value is not None and not isinstance(value, str | int | float):
            raise ValidationError(f"{where}'value' must be a class, a number or null.",
                                  field="value")
        labels.append(Label(request_id.strip(), value, row))
    return labels
