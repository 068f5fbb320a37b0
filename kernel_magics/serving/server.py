"""Run a bundle as a service on uvicorn (httptools + uvloop when installed).

One worker: the app is built here and run in-process. Several: uvicorn's supervisor
starts processes that each build the app from ``SHIP_*`` environment variables
(:func:`app_from_env`), share the listening socket, and publish metrics snapshots to a
shared temporary folder. SIGTERM/SIGINT shut down gracefully: in-flight requests finish,
then each worker's lifespan flushes its prediction log.

With a gRPC port (``grpc_port``, ``SHIP_GRPC_PORT``) each process also serves the V2 gRPC
service (grpc_v2/) on its event loop, over the same Service; several workers each bind
that port with SO_REUSEPORT (the kernel spreads connections, and a connection, HTTP/2,
stays with the worker that accepted it), once their warm-up is done.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from .app import Service, build_app
from .auth import Tokens
from .bundle import Bundle, RuntimeSettings
from .errors import RuntimeServingError
from .guard import ENV_LIMITS, ConnectionLimits, guarded_protocol
from .predlog import PredictionLog
from .release import read_release
from .router import Deployment, Router

ENV_BUNDLE = "SHIP_BUNDLE"
ENV_RELEASE = "SHIP_RELEASE"  # release.json to follow; unset: the one bundle only
ENV_LOG_DIR = "SHIP_LOG_DIR"  # "" disables the log
ENV_WORKERS = "SHIP_WORKERS"
ENV_METRICS_DIR = "SHIP_METRICS_DIR"
ENV_GRPC_PORT = "SHIP_GRPC_PORT"  # python -m ship_runtime serve --grpc-port's default
ENV_GRPC_ADDRESS = "SHIP_GRPC_ADDRESS"  # host:port, for worker processes; unset: no gRPC


def default_log_dir(bundle_dir: str | Path, bundle: Bundle | None = None) -> str:
    """``SHIP_LOG_DIR``, else the bundle's own (:attr:`Bundle.log_dir`)."""
    env = os.environ.get(ENV_LOG_DIR)
    if env is not None:
        return env
    return (bundle or Bundle.load(bundle_dir)).log_dir


def create_service(bundle_dir: str | Path, *, log_dir: str | None = None, workers: int = 1,
                   metrics_dir: str | None = None, freeze_gc: bool = False,
                   release_file: str | Path | None = None,
                   grpc_address: str | None = None) -> Service:
    """A Service for one bundle; ``log_dir`` None: :func:`default_log_dir`, "": no log.

    With ``release_file`` (a service's release.json, beside its version folders) the
    service serves every version the release names and follows its changes; until the
    file exists, ``bundle_dir`` alone answers. With ``grpc_address`` (host:port) its
    lifespan also serves the V2 gRPC service there (grpc_v2/)."""
    bundle = Bundle.load(bundle_dir)
    location = default_log_dir(bundle_dir, bundle) if log_dir is None else log_dir
    log = PredictionLog(location or None,
                        flush_interval=bundle.manifest.runtime.log_flush_interval_s)
    release_path = None if release_file is None else Path(release_file)
    release = None if release_path is None else read_release(release_path)
    if release is None or release_path is None:
        router = Router([Deployment(bundle)])
    else:
        router = Router([Deployment(Bundle.load(release_path.parent / v))
                         for v in release.versions], release)
    service = Service(router, log, workers=workers, metrics_dir=metrics_dir,
                      freeze_gc=freeze_gc, release_file=release_path)
    if grpc_address:
        from .grpc_v2.server import GrpcServer

        service.sidecars.append(GrpcServer(service, grpc_address, tokens=Tokens.from_env(),
                                           reuse_port=workers > 1))
    return service


def create_app(bundle_dir: str | Path, *, log_dir: str | None = None, workers: int = 1,
               metrics_dir: str | None = None, freeze_gc: bool = False,
               release_file: str | Path | None = None,
               grpc_address: str | None = None) -> Starlette:
    """The ASGI app serving ``bundle_dir`` (model loads and warms up at startup).

    ``log_dir``: the prediction log's folder or URL; None: ``$SHIP_LOG_DIR``, else
    ``log/`` beside the bundle; "": no log. ``release_file``: follow that release.json
    (:func:`create_service`). ``grpc_address``: also serve V2 over gRPC there, from the
    app's lifespan. ``SHIP_AUTH_TOKEN`` / ``SHIP_FEEDBACK_TOKEN`` turn on bearer
    authentication (auth.py; gRPC metadata too).
    """
    return build_app(create_service(bundle_dir, log_dir=log_dir, workers=workers,
                                    metrics_dir=metrics_dir, freeze_gc=freeze_gc,
                                    release_file=release_file, grpc_address=grpc_address),
                     Tokens.from_env())


def app_from_env() -> Starlette:
    """uvicorn factory for worker processes: the app described by ``SHIP_*`` variables."""
    configure_logging(os.environ.get("SHIP_LOG_LEVEL", "warning"))
    return create_app(os.environ[ENV_BUNDLE], log_dir=os.environ.get(ENV_LOG_DIR),
                      workers=int(os.environ.get(ENV_WORKERS, "1")),
                      metrics_dir=os.environ.get(ENV_METRICS_DIR) or None, freeze_gc=True,
                      release_file=os.environ.get(ENV_RELEASE) or None,
                      grpc_address=os.environ.get(ENV_GRPC_ADDRESS) or None)


def configure_logging(level: str) -> None:
    """Send the runtime's own log records to stderr at ``level``."""
    logger = logging.getLogger(__package__)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def connection_limits(settings: RuntimeSettings) -> ConnectionLimits:
    """The connection limits of a bundle's runtime settings (guard.py)."""
    return ConnectionLimits(header_timeout_s=settings.header_timeout_s,
                            max_header_bytes=settings.max_header_bytes,
                            max_connections=settings.max_connections)


def uvicorn_options(log_level: str, settings: RuntimeSettings | None = None
                    ) -> dict[str, object]:
    """The fastest protocol and loop installed, with the bundle's connection limits
    (guard.py); no access log (the prediction log has it)."""
    settings = settings or RuntimeSettings()
    limits = connection_limits(settings)
    return {
        "http": guarded_protocol(limits) if importlib.util.find_spec("httptools") else "h11",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "lifespan": "on", "access_log": False, "server_header": False,
        "log_level": log_level, "timeout_graceful_shutdown": settings.shutdown_timeout_s,
        "timeout_keep_alive": 5,
    }


def serve(bundle_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8080,
          workers: int = 1, log_dir: str | None = None, log_level: str = "warning",
          release_file: str | Path | None = None, grpc_port: int | None = None) -> None:
    """Serve a bundle (with ``release_file``: a release, :func:`create_service`) until
    SIGTERM/SIGINT; ``log_dir`` None means :func:`default_log_dir`; ``grpc_port``: V2
    over gRPC on that port of ``host`` too."""
    bundle = Bundle.load(bundle_dir)  # fail fast, before binding, on a broken bundle
    log = default_log_dir(bundle_dir, bundle) if log_dir is None else log_dir
    grpc_at = None if grpc_port is None else _grpc_address(host, port, grpc_port)
    configure_logging(log_level)
    options = uvicorn_options(log_level, bundle.manifest.runtime)
    if workers <= 1:
        app = create_app(bundle_dir, log_dir=log, freeze_gc=True, release_file=release_file,
                         grpc_address=grpc_at)
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options)).run()  # type: ignore[arg-type]
        return
    shared = tempfile.mkdtemp(prefix="ship-metrics-")
    os.environ.update({ENV_BUNDLE: str(Path(bundle_dir).resolve()), ENV_LOG_DIR: log,
                       ENV_WORKERS: str(workers), ENV_METRICS_DIR: shared,
                       ENV_RELEASE: "" if release_file is None else
                       str(Path(release_file).resolve()),
                       "SHIP_LOG_LEVEL": log_level, ENV_GRPC_ADDRESS: grpc_at or "",
                       ENV_LIMITS: connection_limits(bundle.manifest.runtime).to_env()})
    if not isinstance(options["http"], str):  # worker processes import the class by name
        options["http"] = f"{__package__}.guard:GuardedHttpTools"
    try:
        uvicorn.run(f"{__package__}.server:app_from_env", factory=True, host=host, port=port,
                    workers=workers, **options)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _grpc_address(host: str, port: int, grpc_port: int) -> str:
    """Where gRPC binds, or RuntimeServingError for a port it cannot have."""
    from .grpc_v2.server import grpc_address

    if not 0 < grpc_port < 65536:
        raise RuntimeServingError(f"--grpc-port {grpc_port} is no TCP port (1-65535).")
    if grpc_port == port:
        raise RuntimeServingError(f"--grpc-port {grpc_port} is the HTTP port too; give gRPC "
                                  "a port of its own (8081 by convention).")
    return grpc_address(host, grpc_port)
