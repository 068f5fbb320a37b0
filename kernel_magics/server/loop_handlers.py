"""REST handler of the retraining loop (the Services panel's Loop section): whether
`ship watch` runs, its back-off, and the loop's latest events, as `ship watch NAME
--status --json` prints them. Errors map through ``ShipAPIHandler``; ``retrain.watch``
does the work, in a thread off the event loop.
"""

from __future__ import annotations

import tornado.web

from .handlers import ShipAPIHandler

MAX_EVENTS = 1000


class LoopHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/loop?limit=20``: the watcher's state, the release,
    the loop's settings and its latest ``limit`` events (oldest first)."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..retrain.watch import watch_status

        _, _, workspace = self.notebook_arg()
        limit = self.int_arg("limit", 20, 1, MAX_EVENTS)
        self.write_json(await self.blocking(
            lambda: watch_status(workspace, name, limit=limit)))
