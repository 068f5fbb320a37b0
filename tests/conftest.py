"""Shared pytest fixtures."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """A Jupyter server with the Ship server extension enabled."""
    return {"ServerApp": {"jpserver_extensions": {"kernel_magics": True}}}
