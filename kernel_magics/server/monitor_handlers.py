"""REST handlers of the Drift and Cost panels: a service's drift report (per-feature
scores now and over past windows, reference vs. current histograms), the cost of the
notebook's runs and of the workspace's services. Errors map through ``ShipAPIHandler``.

The handlers only parse arguments; ``monitor.report`` and ``cost.service`` do the work
(DuckDB over the prediction log, MLflow reads), in a thread off the event loop.
"""

from __future__ import annotations

import tornado.web

from ..monitor.settings import MAX_HISTORY
from .handlers import ShipAPIHandler


def text_arg(handler: ShipAPIHandler, name: str) -> str | None:
    """A query argument passed on as it is (None when absent or empty): the core parses it
    and raises a ValidationError naming it, which answers 400."""
    return handler.get_query_argument(name, "").strip() or None


class DriftHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/drift?window=1h&history=24``: the drift report."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..monitor.report import drift_report

        _, _, workspace = self.notebook_arg()
        window = text_arg(self, "window")
        history = self.int_arg("history", 0, 1, MAX_HISTORY) or None  # 0: not given
        report = await self.blocking(
            lambda: drift_report(workspace, name, window=window, history=history))
        self.write_json(report.to_json())


class CostHandler(ShipAPIHandler):
    """``GET /ship/api/cost?notebook=PATH&since=1d``: the notebook's runs, the workspace's
    services, and their totals."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from ..cost.service import cost_summary

        notebook, spellings, workspace = self.notebook_arg()
        since = text_arg(self, "since")
        # The runs are those of the notebook as the kernel recorded its path (absolute).
        path = spellings[0] if spellings else None
        summary = await self.blocking(
            lambda: cost_summary(workspace, notebook=path, since=since))
        summary["notebook"] = notebook  # as the lab names it, relative to Jupyter's root
        summary["workspace"] = str(workspace.root)
        self.write_json(summary)


class ServiceCostHandler(ShipAPIHandler):
    """``GET /ship/api/services/{name}/cost?since=1d``: one service's cost per 1,000
    predictions, per version and over time."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..cost.service import service_cost

        _, _, workspace = self.notebook_arg()
        since = text_arg(self, "since")
        cost = await self.blocking(lambda: service_cost(workspace, name, since=since))
        self.write_json(cost.to_json())
