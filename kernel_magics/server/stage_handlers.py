"""REST handlers of the Models and Services panels: registered models and their
leaderboard, aliases, the workspace's services, starting and stopping a local one, and
building a service from a notebook. Errors map through ``ShipAPIHandler``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tornado.web

from .. import services
from ..errors import ValidationError
from ..workspace import find_workspace
from .handlers import ShipAPIHandler


def json_body(handler: ShipAPIHandler) -> dict[str, Any]:
    try:
        body = json.loads(handler.request.body or b"{}")
    except ValueError:
        raise ValidationError("the request body must be JSON.", field="body") from None
    except RecursionError:
        raise ValidationError("the request body nests too deeply; send a flat JSON object.",
                              field="body") from None
    if not isinstance(body, dict):
        raise ValidationError("the request body must be a JSON object.", field="body")
    return body


def _text_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{key!r} is required: a non-empty string.", field=key)
    return value.strip()


class ModelsHandler(ShipAPIHandler):
    """``GET /ship/api/models[?notebook=PATH]``: registered models of the workspace."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from ..export import api

        _, _, workspace = self.notebook_arg()
        found = await self.blocking(lambda: api.list_models(workspace=workspace))
        self.write_json({"workspace": str(workspace.root),
                         "models": [asdict(m) for m in found]})


class ModelHandler(ShipAPIHandler):
    """``GET /ship/api/models/{name}``: the model's versions as leaderboard rows."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from ..export import api

        _, _, workspace = self.notebook_arg()
        rows = await self.blocking(lambda: api.leaderboard(name, workspace=workspace))
        self.write_json({"name": name, "versions": [asdict(r) for r in rows]})


class AliasHandler(ShipAPIHandler):
    """``PUT /ship/api/models/{name}/aliases/{alias}`` with ``{"version": "3"}``."""

    @tornado.web.authenticated
    async def put(self, name: str, alias: str) -> None:
        from ..export import api

        _, _, workspace = self.notebook_arg()
        version = _text_field(json_body(self), "version")
        change = await self.blocking(
            lambda: api.set_alias(name, version, alias, workspace=workspace))
        self.write_json(asdict(change))


class ServicesHandler(ShipAPIHandler):
    """``GET /ship/api/services``: services with versions, local process and traffic;
    ``POST /ship/api/services`` with ``{"notebook": PATH, "name": NAME}``: build one."""

    @tornado.web.authenticated
    async def get(self) -> None:
        _, _, workspace = self.notebook_arg()
        found = await self.blocking(services.list_services, workspace)
        self.write_json({"workspace": str(workspace.root),
                         "services": [s.to_json() for s in found]})

    @tornado.web.authenticated
    async def post(self) -> None:
        from ..bundle.build import build_service

        body = json_body(self)
        relative = _text_field(body, "notebook").lstrip("/")
        name = _text_field(body, "name")
        path = Path(os.path.normpath(self.root_dir / relative))
        if Path(relative).is_absolute() or not path.is_relative_to(self.root_dir):
            raise ValidationError(f"notebook {relative!r} is outside the server's root "
                                  "directory.", field="notebook")
        workspace = find_workspace(path.parent)
        # Seconds of nbconvert, MLflow and a check run: in a thread, never on the loop.
        result = await self.blocking(lambda: build_service(path, name, workspace=workspace))
        self.write_json(asdict(result), status=201)


class ServiceStartHandler(ShipAPIHandler):
    """``POST /ship/api/services/{name}/start``: serve the latest version on a free port."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        _, _, workspace = self.notebook_arg()
        started = await self.blocking(services.start_service, workspace, name)
        self.write_json(asdict(started))


class ServiceStopHandler(ShipAPIHandler):
    """``POST /ship/api/services/{name}/stop``: stop the local process gracefully."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        _, _, workspace = self.notebook_arg()
        stopped = await self.blocking(services.stop_service, workspace, name)
        self.write_json(asdict(stopped))
