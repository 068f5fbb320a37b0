"""REST handlers of a service's release (the Services panel and the service page): the
release with its gate's comparison and shadow reports, changes by hand, and the
per-version timeline. Errors map through ``ShipAPIHandler``; ``release`` does the work,
in a thread off the event loop.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from .. import services
from ..errors import ValidationError
from ..release import controller, rollout
from .handlers import ShipAPIHandler
from .monitor_handlers import text_arg
from .stage_handlers import json_body


class ReleaseHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/release``: what `ship deploy NAME --json` prints;
    ``POST`` with ``{"action": "canary", "version": "2", "percent": 10, "steps": [...]}``
    (or shadow, unshadow, promote, rollback): change it, answer the new release."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        _, _, workspace = self.notebook_arg()
        self.write_json(await self.blocking(controller.release_view, workspace, name))

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        _, _, workspace = self.notebook_arg()
        body = json_body(self)
        action = body.get("action")
        if action not in rollout.ACTIONS or action == "step":
            raise ValidationError("'action' must be one of canary, shadow, unshadow, promote, "
                                  "rollback.", field="action")
        version = body.get("version")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        if version is not None and not isinstance(version, str):
            raise ValidationError("'version' must be a version such as \"2\".",
                                  field="version")
        percent = _number(body.get("percent"), "percent")
        steps = body.get("steps")
        if steps is not None and (not isinstance(steps, list) or
                                  any(_number(s, "steps") is None for s in steps)):
            raise ValidationError("'steps' must be a list of percentages.", field="steps")

        def change() -> dict[str, Any]:
            rollout.change(workspace, name, action, version=version, percent=percent,
                           steps=None if steps is None else [float(s) for s in steps])
            return controller.release_view(workspace, name)

        self.write_json(await self.blocking(change))


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field!r} must be a number.", field=field)
    return float(value)


class TimelineHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/timeline?window=1h``: requests, latency and errors
    per version over time."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        _, _, workspace = self.notebook_arg()
        window = text_arg(self, "window") or "1h"
        self.write_json(await self.blocking(services.timeline, workspace, name, window))
