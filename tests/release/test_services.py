"""Local services: `ship serve` refuses a busy port, `ship ps` lists what runs, `ship stop`
stops it; a real export, a real build and a real served bundle."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from notebook_files import Ship, write_notebook
from sklearn.linear_model import LogisticRegression

from kernel_magics import services
from kernel_magics.bundle.build import build_service
from kernel_magics.export.api import export_model
from kernel_magics.workspace import init_workspace

pytestmark = pytest.mark.slow


def test_ps_stop_and_a_busy_port(workspace: Path, ship: Ship) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    export_model(LogisticRegression().fit(x, y), "tiny", x[:8])
    build_service(write_notebook(workspace / "tiny.ipynb", "x = 1"), "tiny")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = ship(workspace, "serve", "tiny", "--port", str(port))
        assert busy.returncode == 1
        assert "cannot serve on 127.0.0.1:" in busy.stderr and "serving" not in busy.stderr
    assert "no local service is running" in ship(workspace, "ps").stdout
    started = services.start_service(init_workspace(workspace), "tiny")
    try:
        listed = json.loads(ship(workspace, "ps", "--json").stdout)
        assert [(s["name"], s["port"], s["ready"]) for s in listed] == [
            ("tiny", started.port, True)]
    finally:
        stopped = ship(workspace, "stop", "tiny")
    assert stopped.returncode == 0 and f"pid {started.pid}" in stopped.stdout
    assert "no local service is running" in ship(workspace, "ps").stdout
    assert ship(workspace, "stop", "tiny").returncode == 1
