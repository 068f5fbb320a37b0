"""The models and services endpoints through a real Jupyter server, authentication on:
models registered by the real export, a bundle built by the real builder, and a real
`ship serve` started and stopped through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tornado.httpclient import HTTPClientError

from kernel_magics.bundle import services
from kernel_magics.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow  # exports, a build and a served bundle: tens of seconds


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from kernel_magics.bundle.build import build_service
    from kernel_magics.export.api import export_model

    root = tmp_path_factory.mktemp("models-root")
    workspace = init_workspace(root)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    export_model(LogisticRegression().fit(x, y), "tiny", x[:4], workspace=workspace)
    export_model(LogisticRegression(C=0.1).fit(x, y), "tiny", x[:4], workspace=workspace)
    build_service(_notebook(root / "tiny.ipynb", "x = 1"), "tiny", workspace=workspace)
    _notebook(root / "other.ipynb", "y = 2")
    yield workspace
    # Never leave a process behind, whatever a test did.
    folder = workspace.services_dir / "tiny"
    running = services.local_process(folder)
    if running is not None and running.alive:
        services.stop_service(workspace, "tiny")


@pytest.fixture
def jp_root_dir(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return workspace.root


async def _call(fetch: Any, *parts: str, method: str = "GET", body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"method": method}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = ""
    response = await fetch("ship", "api", *parts, **kwargs)
    assert response.code in (200, 201)
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def _error(fetch: Any, *parts: str, method: str = "GET", body: Any = None,
                 headers: dict[str, str] | None = None) -> tuple[int, str]:
    kwargs: dict[str, Any] = {"method": method, "headers": headers or {}}
    if method in ("POST", "PUT"):
        kwargs["body"] = json.dumps(body) if body is not None else ""
    with pytest.raises(HTTPClientError) as info:
        await fetch("ship", "api", *parts, **kwargs)
    response = info.value.response
    assert response is not None
    payload = json.loads(response.body) if response.body else {}
    return info.value.code, str(payload.get("error", ""))


def _check(body: Any, schema_name: str) -> None:
    spec = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
    registry = Registry().with_resource("urn:ship-api", DRAFT202012.create_resource(spec))
    schema = {"$ref": f"urn:ship-api#/components/schemas/{schema_name}"}
    jsonschema.Draft202012Validator(schema, registry=registry).validate(body)


async def test_models_leaderboard_and_champion(jp_fetch: Any) -> None:
    listing = await _call(jp_fetch, "models")
    _check(listing, "ModelList")
    (model,) = listing["models"]
    assert model["name"] == "tiny" and model["versions"] == 2

    board = await _call(jp_fetch, "models", "tiny")
    _check(board, "Leaderboard")
    assert sorted(r["version"] for r in board["versions"]) == ["1", "2"]
    row = board["versions"][0]
    assert row["p50_ms"] is not None and row["size_bytes"] and row["exporter"]
    assert row["parity"]

    change = await _call(jp_fetch, "models", "tiny", "aliases", "champion", method="PUT",
                         body={"version": "1"})
    _check(change, "AliasChange")
    assert change == {"name": "tiny", "alias": "champion", "version": "1", "previous": None}
    moved = await _call(jp_fetch, "models", "tiny", "aliases", "champion", method="PUT",
                        body={"version": 2})
    assert moved["previous"] == "1"
    board = await _call(jp_fetch, "models", "tiny")
    aliases = {r["version"]: r["aliases"] for r in board["versions"]}
    assert aliases == {"1": [], "2": ["champion"]}


async def test_model_errors_are_json(jp_fetch: Any) -> None:
    code, message = await _error(jp_fetch, "models", "ghost")
    assert code == 404 and "ghost" in message
    code, message = await _error(jp_fetch, "models", "tiny", "aliases", "champion",
                                 method="PUT", body={"version": "9"})
    assert code == 404 and "tiny/9" in message
    code, message = await _error(jp_fetch, "models", "tiny", "aliases", "champion",
                                 method="PUT", body={})
    assert code == 400 and "version" in message


async def test_start_serve_stop_and_traffic(jp_fetch: Any, workspace: Workspace) -> None:
    import httpx

    listing = await _call(jp_fetch, "services")
    _check(listing, "ServiceList")
    (service,) = listing["services"]
    assert service["name"] == "tiny" and service["latest"] == "1"
    assert service["versions"][0]["model"] == "tiny" and service["running"] is None
    assert service["traffic"]["requests"] == 0

    started = await _call(jp_fetch, "services", "tiny", "start", method="POST")
    _check(started, "LocalProcess")
    try:
        assert started["alive"] and started["ready"] and started["version"] == "1"
        code, message = await _error(jp_fetch, "services", "tiny", "start", method="POST")
        assert code == 409 and "already running" in message
        async with httpx.AsyncClient(base_url=started["url"]) as client:
            for rows in ([[0.1, 0.2, 0.3]], [[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]]):
                answer = await client.post("/invocations", json={"instances": rows})
                assert answer.status_code == 200, answer.text
            bad = await client.post("/invocations", json={"instances": [[1.0]]})
            assert bad.status_code == 400
        running = (await _call(jp_fetch, "services"))["services"][0]["running"]
        assert running["pid"] == started["pid"] and running["ready"] is True
    finally:
        stopped = await _call(jp_fetch, "services", "tiny", "stop", method="POST")
    assert stopped["alive"] is False
    assert not (workspace.services_dir / "tiny" / services.RUN_FILE).exists()
    # Graceful: the runtime flushed its log on SIGTERM.
    after = (await _call(jp_fetch, "services"))["services"][0]
    _check(after, "Service")
    assert after["running"] is None
    traffic = after["traffic"]
    assert traffic["requests"] == 3 and traffic["error_rate"] == pytest.approx(1 / 3)
    assert traffic["p50_ms"] is not None and traffic["p99_ms"] >= traffic["p50_ms"]
    code, message = await _error(jp_fetch, "services", "tiny", "stop", method="POST")
    assert code == 409 and "not running" in message


async def test_service_errors_and_auth(jp_fetch: Any) -> None:
    code, message = await _error(jp_fetch, "services", "ghost", "start", method="POST")
    assert code == 404 and "ghost" in message
    code, _ = await _error(jp_fetch, "services", headers={"Authorization": "token wrong"})
    assert code in (401, 403)
    code, _ = await _error(jp_fetch, "models", headers={"Authorization": "token wrong"})
    assert code in (401, 403)


async def test_build_a_service_from_a_notebook(jp_fetch: Any, workspace: Workspace) -> None:
    code, message = await _error(jp_fetch, "services", method="POST",
                                 body={"notebook": "../x.ipynb", "name": "tiny"})
    assert code == 400 and "outside" in message
    code, message = await _error(jp_fetch, "services", method="POST",
                                 body={"notebook": "other.ipynb", "name": "ghost"})
    assert code == 404 and "ghost" in message
    built = await _call(jp_fetch, "services", method="POST",
                        body={"notebook": "other.ipynb", "name": "tiny"})
    _check(built, "BuildResult")
    assert built["name"] == "tiny" and built["version"] == "2"
    assert Path(built["path"]) == workspace.services_dir / "tiny" / "2"
