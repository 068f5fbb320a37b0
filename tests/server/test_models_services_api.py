"""The models and services endpoints through a real Jupyter server, authentication on:
models registered by the real export, a bundle built by the real builder, and a real
`ship serve` started and stopped through the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kernel_magics import services
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
    build_service(_notebook(root / "tiny.ipynb", "x = 1"), "tiny", workspace=workspace,
                  model_version="2")
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


async def test_models_leaderboard_and_champion(api: Any) -> None:
    listing = await api.call("models")
    api.check(listing, "ModelList")
    (model,) = listing["models"]
    assert model["name"] == "tiny" and model["versions"] == 2

    board = await api.call("models", "tiny")
    api.check(board, "Leaderboard")
    assert sorted(r["version"] for r in board["versions"]) == ["1", "2"]
    row = board["versions"][0]
    assert row["p50_ms"] is not None and row["size_bytes"] and row["exporter"]
    assert row["parity"]

    change = await api.call("models", "tiny", "aliases", "champion", method="PUT",
                            body={"version": "1"})
    api.check(change, "AliasChange")
    assert change == {"name": "tiny", "alias": "champion", "version": "1", "previous": None}
    moved = await api.call("models", "tiny", "aliases", "champion", method="PUT",
                           body={"version": 2})
    assert moved["previous"] == "1"
    board = await api.call("models", "tiny")
    aliases = {r["version"]: r["aliases"] for r in board["versions"]}
    assert aliases == {"1": [], "2": ["champion"]}


async def test_model_errors_are_json(api: Any) -> None:
    code, message = await api.error("models", "ghost")
    assert code == 404 and "ghost" in message
    code, message = await api.error("models", "tiny", "aliases", "champion",
                                    method="PUT", body={"version": "9"})
    assert code == 404 and "tiny/9" in message
    code, message = await api.error("models", "tiny", "aliases", "champion",
                                    method="PUT", body={})
    assert code == 400 and "version" in message


async def test_start_serve_stop_and_traffic(api: Any, workspace: Workspace) -> None:
    import httpx

    listing = await api.call("services")
    api.check(listing, "ServiceList")
    (service,) = listing["services"]
    assert service["name"] == "tiny" and service["latest"] == "1"
    assert service["versions"][0]["model"] == "tiny" and service["running"] is None
    assert service["traffic"]["requests"] == 0

    started = await api.call("services", "tiny", "start", method="POST")
    api.check(started, "LocalProcess")
    try:
        assert started["alive"] and started["ready"] and started["version"] == "1"
        code, message = await api.error("services", "tiny", "start", method="POST")
        assert code == 409 and "already running" in message
        async with httpx.AsyncClient(base_url=started["url"]) as client:
            for rows in ([[0.1, 0.2, 0.3]], [[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]]):
                answer = await client.post("/invocations", json={"instances": rows})
                assert answer.status_code == 200, answer.text
            bad = await client.post("/invocations", json={"instances": [[1.0]]})
            assert bad.status_code == 400
        running = (await api.call("services"))["services"][0]["running"]
        assert running["pid"] == started["pid"] and running["ready"] is True
    finally:
        stopped = await api.call("services", "tiny", "stop", method="POST")
    assert stopped["alive"] is False
    assert not (workspace.services_dir / "tiny" / services.RUN_FILE).exists()
    # Graceful: the runtime flushed its log on SIGTERM.
    after = (await api.call("services"))["services"][0]
    api.check(after, "Service")
    assert after["running"] is None
    traffic = after["traffic"]
    assert traffic["requests"] == 3 and traffic["error_rate"] == pytest.approx(1 / 3)
    assert traffic["p50_ms"] is not None and traffic["p99_ms"] >= traffic["p50_ms"]
    code, message = await api.error("services", "tiny", "stop", method="POST")
    assert code == 409 and "not running" in message


async def test_service_errors_and_auth(api: Any) -> None:
    code, message = await api.error("services", "ghost", "start", method="POST")
    assert code == 404 and "ghost" in message
    code, _ = await api.error("services", headers={"Authorization": "token wrong"})
    assert code in (401, 403)
    code, _ = await api.error("models", headers={"Authorization": "token wrong"})
    assert code in (401, 403)


async def test_build_a_service_from_a_notebook(api: Any, workspace: Workspace) -> None:
    code, message = await api.error("services", method="POST",
                                    body={"notebook": "../x.ipynb", "name": "tiny"})
    assert code == 400 and "outside" in message
    code, message = await api.error("services", method="POST",
                                    body={"notebook": "other.ipynb", "name": "ghost"})
    assert code == 404 and "ghost" in message
    built = await api.call("services", method="POST",
                           body={"notebook": "other.ipynb", "name": "tiny"})
    api.check(built, "BuildResult")
    assert built["name"] == "tiny" and built["version"] == "2"
    assert Path(built["path"]) == workspace.services_dir / "tiny" / "2"
    assert built["model_choice"].startswith("tiny version 2") and "champion" in \
        built["model_choice"]


async def test_hostile_inputs_are_400s(api: Any, workspace: Workspace) -> None:
    long_name = "x" * 5000
    code, message = await api.error("services", long_name, "start", method="POST")
    assert code == 400 and "characters long" in message
    code, message = await api.error("models", long_name)
    assert code == 400
    deep = "[" * 100_000 + "]" * 100_000
    code, message = await api.error("services", method="POST", raw=deep.encode())
    assert code == 400 and "nests too deeply" in message
    (workspace.root / "notes.txt").write_text("not a notebook")
    (workspace.root / "broken.ipynb").write_text("{ not json")
    for path in ("notes.txt", "broken.ipynb"):
        code, message = await api.error("services", method="POST",
                                        body={"notebook": path, "name": "tiny"})
        assert code == 400 and "notebook" in message, (path, message)
    code, message = await api.error("services", method="POST",
                                    body={"notebook": "other.ipynb", "name": "n" * 64})
    assert code == 400 and "at most 63" in message


def test_starting_a_service_twice_at_once_starts_one(workspace: Workspace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kernel_magics.errors import ConflictError

    def start() -> Any:
        try:
            return services.start_service(workspace, "tiny")
        except ConflictError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda _: start(), range(3)))
    try:
        started = [o for o in outcomes if isinstance(o, services.LocalProcess)]
        assert len(started) == 1, outcomes
        assert all("already running" in str(o) for o in outcomes if o not in started)
    finally:
        services.stop_service(workspace, "tiny")
