"""REST handlers. ``ShipAPIHandler`` is the one place errors become HTTP answers.

Every answer is JSON. A ``ShipError`` becomes ``{"error": message}`` with the
error's ``http_status``; any other exception becomes a 500 whose traceback is
logged, never sent.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler

from .._version import __version__
from ..errors import NotFoundError, ShipError, ValidationError
from ..jsonable import dumps
from ..tracking import catalog, compare, detail
from ..workspace import Workspace, find_workspace

# Keys in the tornado settings: the server's root directory resolved, and as configured
# (kernels see the configured spelling, which may go through a symbolic link).
ROOT_DIR_SETTING = "kernel_magics_root_dir"
ROOT_DIR_AS_GIVEN_SETTING = "kernel_magics_root_dir_as_given"
MAX_PATH_NAME = 200
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

T = TypeVar("T")


class ShipAPIHandler(APIHandler):
    """Base of the Ship handlers: maps ``ShipError`` to its status and JSON body."""

    async def prepare(self) -> None:  # type: ignore[override]
        """Names in the URL (service, model, run, alias) are short: a 400, not an OS error
        on a file name too long."""
        await super().prepare()
        for value in (*self.path_args, *self.path_kwargs.values()):
            if isinstance(value, str) and len(value) > MAX_PATH_NAME:
                raise ValidationError(f"{value[:40]!r}... is {len(value)} characters long; "
                                      f"names here have at most {MAX_PATH_NAME}.", field="name")

    @property
    def root_dir(self) -> Path:
        """Jupyter's root directory: where the workspace search starts."""
        root: Path = self.settings[ROOT_DIR_SETTING]
        return root

    def notebook_arg(self) -> tuple[str | None, tuple[str, ...], Workspace]:
        """The ``notebook`` query argument (a path relative to Jupyter's root), every
        spelling the kernel may have recorded for it, and the workspace it belongs to.

        Without it: no notebook, and the workspace of Jupyter's root directory.
        """
        raw = self.get_query_argument("notebook", "").strip()
        if not raw:
            return None, (), find_workspace(self.root_dir)
        relative = raw.lstrip("/")
        roots = [self.root_dir, Path(self.settings.get(ROOT_DIR_AS_GIVEN_SETTING, self.root_dir))]
        paths = [Path(os.path.normpath(root / relative)) for root in roots]
        if Path(relative).is_absolute() or not paths[0].is_relative_to(self.root_dir):
            raise ValidationError(f"notebook {raw!r} is outside the server's root directory.",
                                  field="notebook")
        # The same rule as the magic: the workspace is found from the notebook's folder.
        return relative, catalog.notebook_spellings(*paths), find_workspace(paths[0].parent)

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError(f"{name} must be an integer, got {raw!r}.", field=name) from None
        if not low <= value <= high:
            raise ValidationError(f"{name} must be between {low} and {high}, got {value}.",
                                  field=name)
        return value

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a core call (file and database reads) off the server's event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args))

    def write_json(self, payload: Any, status: int = 200) -> None:
        """Answer ``payload`` as JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(payload))  # NaN as null: browsers refuse NaN

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
    """``GET /ship/api/workspace[?notebook=PATH]``: the workspace of Jupyter's root directory,
    or of a notebook."""

    @tornado.web.authenticated
    def get(self) -> None:
        _, _, workspace = self.notebook_arg()
        self.write_json(
            {
                "root": str(workspace.root),
                "tracking_uri": workspace.tracking_uri(),
                "ui_url": workspace.ui_url(),
                "version": __version__,
            }
        )


class ExperimentsHandler(ShipAPIHandler):
    """``GET /ship/api/experiments[?notebook=PATH]``: experiments of the workspace."""

    @tornado.web.authenticated
    async def get(self) -> None:
        _, _, workspace = self.notebook_arg()
        found = await self.blocking(catalog.list_experiments, workspace)
        self.write_json({"workspace": str(workspace.root),
                         "experiments": [e.to_json() for e in found]})


class RunsHandler(ShipAPIHandler):
    """``GET /ship/api/runs?notebook=PATH&experiment=E&limit=N``: runs, newest first."""

    @tornado.web.authenticated
    async def get(self) -> None:
        notebook, spellings, workspace = self.notebook_arg()
        experiment = self.get_query_argument("experiment", "").strip() or None
        limit = self.int_arg("limit", 100, 1, catalog.MAX_LIMIT)
        # A panel polls: when neither the store nor the spool changed, say so in one stat.
        version = catalog.listing_version(workspace)
        if version is not None:
            query = json.dumps([notebook, experiment, limit]).encode()
            etag = f'"{version[:20]}-{hashlib.sha1(query).hexdigest()[:12]}"'
            if self.request.headers.get("If-None-Match") == etag:
                self.set_status(304)
                self.finish()
                return
            self.set_header("ETag", etag)
        page = await self.blocking(catalog.list_runs, workspace, spellings, experiment, limit)
        page.notebook = notebook
        self.write_json(page.to_json())


def _run_id(raw: str) -> str:
    if not RUN_ID.match(raw):
        raise ValidationError(f"{raw!r} is not a run id.", field="run_id")
    return raw


class RunHandler(ShipAPIHandler):
    """``GET /ship/api/runs/{id}``: one run in full (MLflow run id or spool record id)."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        _, _, workspace = self.notebook_arg()
        run = await self.blocking(detail.get_run, workspace, _run_id(run_id))
        self.write_json(run.to_json())


class RunNotebookHandler(ShipAPIHandler):
    """``GET /ship/api/runs/{id}/notebook``: the notebook snapshot captured with the run."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        _, _, workspace = self.notebook_arg()
        snapshot = await self.blocking(detail.notebook_snapshot, workspace, _run_id(run_id))
        self.write_json(snapshot.to_json())


class CompareHandler(ShipAPIHandler):
    """``GET /ship/api/compare?ids=a,b[,c…]``: runs side by side."""

    @tornado.web.authenticated
    async def get(self) -> None:
        _, _, workspace = self.notebook_arg()
        ids = [_run_id(i) for i in compare.parse_ids(self.get_query_argument("ids", ""))]
        result = await self.blocking(compare.compare, workspace, ids)
        self.write_json(result.to_json())


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
