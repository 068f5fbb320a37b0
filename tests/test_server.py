"""The server extension's REST API, through a real Jupyter server with authentication on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from kernel_magics._version import __version__


async def _error(fetch: Any, *parts: str, **kwargs: Any) -> HTTPClientError:
    with pytest.raises(HTTPClientError) as info:
        await fetch(*parts, **kwargs)
    return info.value


async def test_workspace_answers_root_and_tracking_uri(
    jp_fetch: Any, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (jp_root_dir / ".ship").mkdir()

    response = await jp_fetch("ship", "api", "workspace")

    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert body == {
        "root": str(jp_root_dir.resolve()),
        "tracking_uri": f"sqlite:///{jp_root_dir.resolve() / '.ship' / 'mlflow.db'}",
        "ui_url": None,
        "version": __version__,
    }


async def test_workspace_is_found_from_a_parent_of_the_root(
    jp_fetch: Any, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    # Jupyter's root is inside the project: the search walks up to `.ship/`.
    (jp_root_dir.parent / ".ship").mkdir()

    body = json.loads((await jp_fetch("ship", "api", "workspace")).body)

    assert body["root"] == str(jp_root_dir.parent.resolve())
    assert body["tracking_uri"] == "http://mlflow.example:5000"
    # An MLflow server is also where its UI lives, for run links.
    assert body["ui_url"] == "http://mlflow.example:5000"


async def test_a_bad_ship_toml_is_a_400_that_names_the_file(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / ".ship").mkdir()
    (jp_root_dir / ".ship" / "ship.toml").write_text("tracking = [", encoding="utf-8")

    error = await _error(jp_fetch, "ship", "api", "workspace")

    assert error.code == 400
    assert error.response is not None
    message = json.loads(error.response.body)["error"]
    assert "ship.toml" in message


async def test_requests_without_a_token_are_refused(jp_fetch: Any) -> None:
    for path in (("ship", "api", "workspace"), ("ship", "api", "no-such-endpoint")):
        error = await _error(jp_fetch, *path, headers={"Authorization": ""})
        assert error.code in (401, 403)
    error = await _error(
        jp_fetch,
        "ship",
        "api",
        "workspace",
        method="POST",
        body="{}",
        headers={"Authorization": ""},
    )
    assert error.code in (401, 403)


async def test_unknown_endpoint_is_a_json_404(jp_fetch: Any) -> None:
    error = await _error(jp_fetch, "ship", "api", "no-such-endpoint")

    assert error.code == 404
    assert error.response is not None
    assert error.response.headers["Content-Type"].startswith("application/json")
    assert "no-such-endpoint" in json.loads(error.response.body)["error"]


async def test_unsupported_verb_is_refused_in_json(jp_fetch: Any) -> None:
    error = await _error(jp_fetch, "ship", "api", "workspace", method="POST", body="{}")

    assert error.code == 405
    assert error.response is not None
    assert "error" in json.loads(error.response.body)


async def test_an_unexpected_error_is_a_logged_500_without_internals(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(start: Path) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("kernel_magics.server.handlers.find_workspace", broken)

    error = await _error(jp_fetch, "ship", "api", "workspace")

    assert error.code == 500
    assert error.response is not None
    body = json.loads(error.response.body)
    assert "secret internals" not in body["error"]
    assert any(
        record.exc_info and "secret internals" in str(record.exc_info[1])
        for record in caplog.records
    )
