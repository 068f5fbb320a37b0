"""REST handlers. ``ShipAPIHandler`` is the one place errors become HTTP answers.

Every answer is JSON. A ``ShipError`` becomes ``{"error": message}`` with the
error's ``http_status``; any other exception becomes a 500 whose traceback is
logged, never sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler

from .._version import __version__
from ..errors import NotFoundError, ShipError
from ..workspace import find_workspace

# Key in the tornado settings holding the server's root directory as a Path.
ROOT_DIR_SETTING = "kernel_magics_root_dir"


class ShipAPIHandler(APIHandler):
    """Base of the Ship handlers: maps ``ShipError`` to its status and JSON body."""

    @property
    def root_dir(self) -> Path:
        """Jupyter's root directory: where the workspace search starts."""
        root: Path = self.settings[ROOT_DIR_SETTING]
        return root

    def write_json(self, payload: Any, status: int = 200) -> None:
        """Answer ``payload`` as JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An expected ShipError (bad input, unknown name) is a warning, not a traceback.
        if isinstance(value, ShipError) and value.http_status < 500:
            self.log.warning("%s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, ShipError):
            status_code = error.http_status
            message = str(error)
        elif isinstance(error, tornado.web.HTTPError):
            message = error.log_message or self._reason
        else:
            # The traceback is already logged by log_exception; the client gets no internals.
            message = "Internal error in the Ship server extension; see the Jupyter server log."
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))


class WorkspaceHandler(ShipAPIHandler):
    """``GET /ship/api/workspace``: the workspace Jupyter's root directory belongs to."""

    @tornado.web.authenticated
    def get(self) -> None:
        workspace = find_workspace(self.root_dir)
        self.write_json(
            {
                "root": str(workspace.root),
                "tracking_uri": workspace.tracking_uri(),
                "version": __version__,
            }
        )


class NotFoundHandler(ShipAPIHandler):
    """Any other path under ``/ship/api/``: a JSON 404, not Jupyter's HTML page."""

    def _unknown(self, path: str) -> None:
        raise NotFoundError(
            "endpoint", f"/ship/api/{path}", hint="Is the kernel-magics package up to date?"
        )

    @tornado.web.authenticated
    def get(self, path: str) -> None:
        self._unknown(path)

    @tornado.web.authenticated
    def post(self, path: str) -> None:
        self._unknown(path)

    @tornado.web.authenticated
    def put(self, path: str) -> None:
        self._unknown(path)

    @tornado.web.authenticated
    def patch(self, path: str) -> None:
        self._unknown(path)

    @tornado.web.authenticated
    def delete(self, path: str) -> None:
        self._unknown(path)
