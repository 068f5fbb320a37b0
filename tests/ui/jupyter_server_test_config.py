"""Jupyter server for the Galata browser tests of the Ship extension.

`jupyterlab.galata.configure_jupyter_server` turns off authentication and adds the
Galata helper extension: never use this configuration outside tests.
"""

from __future__ import annotations

import os
import tempfile

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by Jupyter

# Galata makes temporary folders and files (workspaces, a shell rc file) even when the
# root is given: make them inside run.sh's root, which it deletes at the end.
run_root = os.environ.get("SHIP_UI_ROOT")
if run_root:
    tempfile.tempdir = os.path.join(run_root, ".galata")
    os.makedirs(tempfile.tempdir, exist_ok=True)
configure_jupyter_server(c)
tempfile.tempdir = None
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("SHIP_UI_PORT", "8876"))
c.ServerApp.allow_root = True  # CI runs as root
c.ServerApp.jpserver_extensions = {"kernel_magics": True}
# Stop idle kernels' background writers soon after the tests' runs are written.
os.environ.setdefault("SHIP_WRITER_IDLE_S", "10")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.pop("MLFLOW_TRACKING_URI", None)
