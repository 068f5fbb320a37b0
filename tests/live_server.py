"""The serving runtime for real, on 127.0.0.1, shared by tests in several folders.

Tests import it as ``live_server``: pytest puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py`` (rootdir conftest, ``prepend`` import mode).

- ``free_port()``: a TCP port nobody listens on right now.
- ``wait_ready(url)``: poll ``/v2/health/ready`` until 200 (a server in a thread or a
  ``ship serve`` subprocess alike); a version that failed to load fails at once.
- ``serve_in_thread(bundle_dir, log_dir)``: the real app under uvicorn in a thread of the
  test process, ready; ``RunningServer.stop()`` shuts it down gracefully (the lifespan
  runs, the prediction log flushes).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from kernel_magics.serving.bundle import Bundle
from kernel_magics.serving.server import create_app, uvicorn_options


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerGone(RuntimeError):
    """The server stopped before it was ready (say, its port was taken meanwhile)."""


def wait_ready(url: str, timeout: float = 30.0, *, in_a_row: int = 1,
               alive: Any = None) -> None:
    """Poll /v2/health/ready until it answers 200 ``in_a_row`` times running.

    Each poll is a new connection, which the kernel hands to whichever worker process
    accepts it first; each worker is ready once its own warm-up is done. With several
    workers, a run of 20 makes it very likely that every one of them answered ready."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ServerGone(f"{url} stopped before it was ready")
        try:
            response = httpx.get(f"{url}/v2/health/ready", timeout=1)
            if response.status_code == 200:
                streak += 1
                if streak >= in_a_row:
                    return
                continue
            streak = 0
            if "error" in response.json():
                raise RuntimeError(response.json()["error"])
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@dataclass
class RunningServer:
    """A uvicorn server in a thread of the test process."""

    url: str
    port: int
    log_dir: Path | None
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Graceful shutdown: lifespan runs, the prediction log flushes."""
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def client(self) -> httpx.Client:
        """An httpx client for this server."""
        return httpx.Client(base_url=self.url, timeout=10)


def serve_in_thread(bundle_dir: Path | str, log_dir: Path | None) -> RunningServer:
    """The real runtime for ``bundle_dir`` (prediction log in ``log_dir``; none without),
    in a daemon thread on a free port, once ready. The caller stops it. A port another
    process took between :func:`free_port` and the bind is tried again with another."""
    for attempt in range(3):
        port = free_port()
        app = create_app(bundle_dir, log_dir=str(log_dir) if log_dir else "")
        options: Any = uvicorn_options("warning", Bundle.load(bundle_dir).manifest.runtime)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running = RunningServer(f"http://127.0.0.1:{port}", port, log_dir, server, thread)
        try:
            wait_ready(running.url, alive=thread.is_alive)
        except ServerGone:
            if attempt == 2:
                raise
            continue
        except BaseException:
            running.stop()
            raise
        return running
    raise AssertionError("unreachable")
