"""Jupyter server extension: the REST API under ``/ship/api/`` that the sidebar reads.

Handlers adapt HTTP to the core stages; they hold no logic of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join

from .handlers import (
    ROOT_DIR_AS_GIVEN_SETTING,
    ROOT_DIR_SETTING,
    CompareHandler,
    ExperimentsHandler,
    NotFoundHandler,
    RunHandler,
    RunNotebookHandler,
    RunsHandler,
    WorkspaceHandler,
)
from .loop_handlers import LoopHandler
from .monitor_handlers import CostHandler, DriftHandler, ServiceCostHandler
from .release_handlers import ReleaseHandler, TimelineHandler
from .review_handlers import ReviewLabelsHandler, ReviewQueueHandler
from .stage_handlers import (
    AliasHandler,
    ModelHandler,
    ModelsHandler,
    ServicesHandler,
    ServiceStartHandler,
    ServiceStopHandler,
)

API_PREFIX = ("ship", "api")


def load(server_app: Any) -> None:
    """Register the Ship handlers on a running ``ServerApp``."""
    web_app = server_app.web_app
    base_url = web_app.settings["base_url"]
    api = url_path_join(base_url, *API_PREFIX)
    root = Path(server_app.root_dir).expanduser()
    web_app.settings[ROOT_DIR_SETTING] = root.resolve()
    web_app.settings[ROOT_DIR_AS_GIVEN_SETTING] = root.absolute()
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(api, "workspace"), WorkspaceHandler),
            (url_path_join(api, "experiments"), ExperimentsHandler),
            (url_path_join(api, "runs"), RunsHandler),
            (url_path_join(api, "runs", "([^/]+)", "notebook"), RunNotebookHandler),
            (url_path_join(api, "runs", "([^/]+)"), RunHandler),
            (url_path_join(api, "compare"), CompareHandler),
            (url_path_join(api, "models"), ModelsHandler),
            (url_path_join(api, "models", "([^/]+)", "aliases", "([^/]+)"), AliasHandler),
            (url_path_join(api, "models", "([^/]+)"), ModelHandler),
            (url_path_join(api, "services"), ServicesHandler),
            (url_path_join(api, "services", "([^/]+)", "start"), ServiceStartHandler),
            (url_path_join(api, "services", "([^/]+)", "stop"), ServiceStopHandler),
            (url_path_join(api, "services", "([^/]+)", "drift"), DriftHandler),
            (url_path_join(api, "services", "([^/]+)", "cost"), ServiceCostHandler),
            (url_path_join(api, "services", "([^/]+)", "release"), ReleaseHandler),
            (url_path_join(api, "services", "([^/]+)", "timeline"), TimelineHandler),
            (url_path_join(api, "services", "([^/]+)", "loop"), LoopHandler),
            (url_path_join(api, "services", "([^/]+)", "review"), ReviewQueueHandler),
            (url_path_join(api, "services", "([^/]+)", "review", "labels"),
             ReviewLabelsHandler),
            (url_path_join(api, "cost"), CostHandler),
            # Last: anything else under /ship/api/ is an unknown endpoint, answered in JSON.
            (url_path_join(api, "(.*)"), NotFoundHandler),
        ],
    )
    server_app.log.info("Ship REST API at %s", api)
