"""The runtime on Ray Serve: every replica runs the app `ship serve` runs.

    application(BUNDLE, release_file=..., num_replicas=2)   a Ray Serve application
                                                          (what `serve run` deploys)
    serve_on_ray(BUNDLE, port=8080, address=None, ...)    start or join Ray, deploy,
                                                          block until SIGTERM/SIGINT

A replica (:class:`Replica`) builds the app with :func:`server.create_app` in its own
process when Ray starts it (Ray Serve's late-bound ingress: nothing of the app is
pickled), so routes, codecs, errors, metrics and the prediction log are those of
`ship serve`. Each replica is one log writer (segment names carry the process id), signs
request ids with the log's key (feedback to any replica finds them), follows
release.json as a uvicorn worker does, and warms every version up before its lifespan
starts: Ray routes requests to a replica only after that. On shutdown Ray runs the
lifespan's end, which flushes the replica's log.

Ray's HTTP proxy appends its own ``x-request-id`` to every response, after the app's.
A Ray started here loads :func:`proxy_middlewares` into the proxy
(``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``), which keeps the app's alone; start the
nodes of a cluster you join with that variable set for the same. Ray is imported only
when called (``pip install kernel-magics[ray]``, or ``ray[serve]`` beside a bundle).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .bundle import Bundle
from .errors import RuntimeServingError
from .model import cpu_quota
from .server import configure_logging, create_app

logger = logging.getLogger(__name__)

ENV_PROXY_CALLBACK = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = f"{__package__}.rayserve:proxy_middlewares"
INSTALL = "pip install 'kernel-magics[ray]' (or 'ray[serve]')"
_REQUEST_ID = b"x-request-id"
# Requests a replica takes at once (Ray Serve's default, 5, suits slow models: a fast one
# at more concurrent clients gets requests rejected and retried, a quarter of the
# throughput in bench/ray_serve.py); [serve] max_ongoing_requests in ship.toml.
MAX_ONGOING_REQUESTS = 32


class RayMissing(RuntimeServingError):
    """Ray Serve is not installed here."""

    status = 500


def _ray() -> Any:
    """The ``ray`` module, or RayMissing that says what to install."""
    try:
        import ray
        import ray.serve  # noqa: F401 (ray[serve], not ray alone)
    except ImportError as exc:
        raise RayMissing(f"Ray Serve is not installed ({exc}); {INSTALL}.") from None
    return ray


class FirstRequestId:
    """ASGI middleware for Ray's HTTP proxy: of several ``x-request-id`` response
    headers, keep the first (the app's; Ray appends its own after it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_first(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen = False
                kept = []
                for key, value in message.get("headers", []):
                    if key.lower() == _REQUEST_ID:
                        if seen:
                            continue
                        seen = True
                    kept.append((key, value))
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_first)


def proxy_middlewares() -> list[Any]:
    """What ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` loads into Ray's proxy."""
    from starlette.middleware import Middleware

    return [Middleware(FirstRequestId)]


def replica_workers(cpus: float) -> int:
    """The ``workers`` a replica's app is built with: the machine's CPUs over the
    replica's (onnxruntime's threads are the CPUs divided by it), and at least 2, so the
    app warms up inside its lifespan's start, which Ray awaits before routing to it."""
    return max(2, int(cpu_quota() // max(cpus, 0.01)))


class Replica:
    """One Ray Serve replica: Ship's app for a bundle (and release), built in the
    replica's process."""

    def __init__(self, bundle_dir: str, release_file: str | None = None,
                 log_dir: str | None = None, metrics_dir: str | None = None,
                 cpus: float = 1.0, log_level: str = "warning") -> None:
        self.bundle_dir = bundle_dir
        self.release_file = release_file
        self.log_dir = log_dir
        self.metrics_dir = metrics_dir
        self.cpus = cpus
        self.log_level = log_level

    def __serve_build_asgi_app__(self) -> Starlette:
        """Ray Serve calls this once per replica, after ``__init__``."""
        configure_logging(self.log_level)
        if self.metrics_dir:  # replicas on other nodes add up their node's only
            Path(self.metrics_dir).mkdir(parents=True, exist_ok=True)
        return create_app(self.bundle_dir, log_dir=self.log_dir,
                          workers=replica_workers(self.cpus), metrics_dir=self.metrics_dir,
                          freeze_gc=True, release_file=self.release_file)


def deployment_name(bundle_dir: str | Path) -> str:
    """The Ray Serve deployment (and application) name of a bundle's service."""
    name = Bundle.load(bundle_dir).manifest.name
    return "ship-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "service")


def application(bundle_dir: str | Path, *, release_file: str | Path | None = None,
                log_dir: str | None = None, metrics_dir: str | None = None,
                name: str | None = None, log_level: str = "warning",
                **options: Any) -> Any:
    """The bound Ray Serve application serving ``bundle_dir`` (with ``release_file``: the
    release, as :func:`server.create_service` does); ``options`` go to
    ``serve.deployment`` as Ray names them (``num_replicas``, ``autoscaling_config``,
    ``max_ongoing_requests``: :data:`MAX_ONGOING_REQUESTS` unless given,
    ``ray_actor_options``: one CPU per replica unless given)."""
    serve = _ray().serve
    options.setdefault("ray_actor_options", {"num_cpus": 1})
    options.setdefault("max_ongoing_requests", MAX_ONGOING_REQUESTS)
    cpus = float(options["ray_actor_options"].get("num_cpus", 1) or 1)
    if "num_replicas" not in options and "autoscaling_config" not in options:
        options["num_replicas"] = 1
    ingress = serve.deployment(serve.ingress()(Replica),
                               name=name or deployment_name(bundle_dir), **options)
    return ingress.bind(str(Path(bundle_dir).resolve()),
                        None if release_file is None else str(Path(release_file).resolve()),
                        log_dir, metrics_dir, cpus, log_level)


def serve_on_ray(bundle_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8080,
                 address: str | None = None, release_file: str | Path | None = None,
                 log_dir: str | None = None, log_level: str = "warning",
                 num_cpus: int | None = None, name: str | None = None,
                 on_ready: Callable[[str], None] | None = None,
                 stop: threading.Event | None = None, **options: Any) -> None:
    """Serve on Ray Serve until SIGTERM/SIGINT (or ``stop`` is set), then tear down.

    ``address`` None starts a local Ray for this service (``num_cpus``: its CPUs,
    default all) and shuts it down at the end; else joins that cluster ("auto", or
    "host:port") and removes only this application from it at the end. ``options``:
    as :func:`application` (``name``: the application's and deployment's, default
    :func:`deployment_name`). ``on_ready(url)`` once every replica is warmed up."""
    ray = _ray()
    serve = ray.serve
    bundle = Bundle.load(bundle_dir)  # fail fast, before starting anything, on a broken one
    configure_logging(log_level)
    own = address is None
    if own:
        os.environ.setdefault(ENV_PROXY_CALLBACK, PROXY_CALLBACK)  # inherited by the proxy
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = log_level not in ("debug", "info")
    ray.init(address="local" if own else address, num_cpus=num_cpus if own else None,
             include_dashboard=False if own else None, log_to_driver=not quiet,
             logging_level=logging.WARNING if quiet else logging.INFO)
    metrics = tempfile.mkdtemp(prefix="ship-metrics-")
    name = name or deployment_name(bundle.path)
    stopping = stop or threading.Event()
    previous = _on_signals(stopping)
    # no access log: the prediction log has every request (as `ship serve` has no other)
    logging_config = {"log_level": "WARNING" if quiet else "INFO", "enable_access_log": False}
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config=logging_config)
        serve.run(application(bundle.path, release_file=release_file, log_dir=log_dir,
                              metrics_dir=metrics, name=name, log_level=log_level,
                              **options),
                  name=name, route_prefix="/", logging_config=logging_config)
        if on_ready is not None:
            on_ready(f"http://{host}:{port}")
        while not stopping.wait(0.5):
            pass
    finally:
        _restore(previous)
        try:
            if own:
                serve.shutdown()  # replicas end their lifespan: logs flushed
            else:
                serve.delete(name)
        finally:
            ray.shutdown()
            shutil.rmtree(metrics, ignore_errors=True)


def main(bundle_dir: str | Path, argv: Sequence[str] | None = None, **kwargs: Any) -> None:
    """A deployment file's command line (rayserve.py beside a bundle or release):
    ``[--host H] [--port P] [--address ADDR] [--log-level L]``, then
    :func:`serve_on_ray` with ``kwargs`` until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve on Ray Serve until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--address", default=None,
                        help="a Ray cluster to join (host:port, or auto); default: a local "
                             "Ray started for this service")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    serve_on_ray(bundle_dir, host=args.host, port=args.port, address=args.address,
                 log_level=args.log_level,
                 on_ready=lambda url: print(f"serving on {url}", flush=True), **kwargs)


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _on_signals(stopping: threading.Event) -> dict[int, _Handler]:
    """SIGTERM and SIGINT set ``stopping`` (in the main thread only; elsewhere the caller
    sets it)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, _Handler] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: stopping.set())
    return previous


def _restore(previous: dict[int, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
