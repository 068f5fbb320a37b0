"""The workspace's services: bundle versions, the local process serving one, its traffic.

A service is `.ship/services/NAME/` with one folder per built version (`<n>/ship.yaml`)
and its prediction log (`log/`). A local service is `ship serve NAME` started as a
detached child (its own session, so a stop reaches its workers too); `run.json` next to
the versions records `{pid, port, version, started}` so any process (the Jupyter server
after a restart, the CLI) finds it. Traffic figures come from the prediction log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ConflictError, NotFoundError, ShipError, ValidationError
from .workspace import Workspace, check_service_name

RUN_FILE = "run.json"
START_LOCK = ".start.lock"
SERVE_LOG = "serve.log"
TRAFFIC_WINDOW_S = 300
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0


@dataclass
class ServiceVersion:
    """One built bundle version."""

    version: str
    path: str
    created: str | None
    model: str | None
    model_version: str | None


@dataclass
class LocalProcess:
    """The local `ship serve` of a service, as `run.json` records it, and its health now."""

    pid: int
    port: int
    version: str | None
    started: str
    alive: bool
    ready: bool
    url: str


@dataclass
class Traffic:
    """Requests in the prediction log over the last `window_s` seconds."""

    window_s: int
    requests: int
    rate_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None


@dataclass
class Service:
    """A service of the workspace: its versions (newest first), local process and traffic."""

    name: str
    versions: list[ServiceVersion]
    latest: str | None
    running: LocalProcess | None
    traffic: Traffic

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _version_key(path: Path) -> tuple[bool, int, float]:
    return path.name.isdigit(), int(path.name) if path.name.isdigit() else 0, path.stat().st_mtime


def _versions(folder: Path) -> list[ServiceVersion]:
    import yaml

    found = sorted((p for p in folder.glob("*") if (p / "ship.yaml").is_file()),
                   key=_version_key, reverse=True)
    versions = []
    for path in found:
        try:
            manifest = yaml.safe_load((path / "ship.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            manifest = {}
        lineage = manifest.get("lineage") or {}
        created = manifest.get("created")
        versions.append(ServiceVersion(
            version=path.name, path=str(path),
            created=str(created) if created is not None else None,
            model=_text(lineage.get("registered_model")),
            model_version=_text(lineage.get("model_version"))))
    return versions


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def service_versions(folder: Path) -> list[str]:
    """The built versions in a service folder, newest first."""
    return [v.version for v in _versions(folder)]


def service_names(workspace: Workspace) -> list[str]:
    """Services of the workspace: folders of .ship/services with a built version."""
    root = workspace.services_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and any(v.is_file() for v in p.glob("*/ship.yaml")))


def service_folder(workspace: Workspace, name: str) -> Path:
    """.ship/services/NAME; NotFoundError (naming the services there are) when unbuilt."""
    check_service_name(name)
    folder = workspace.services_dir / name
    if not any(p.is_file() for p in folder.glob("*/ship.yaml")):
        known = ", ".join(service_names(workspace)) or "none yet"
        raise NotFoundError("service", name,
                            hint=f"Services of {workspace.root}: {known}. Build one with "
                                 "`ship build NOTEBOOK --name NAME`.")
    return folder


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready",
                                    timeout=0.5) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def process_alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    # A child of this process that exited: reap it, so the pid is not held.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    return False


def local_process(folder: Path) -> LocalProcess | None:
    """The service's local process from `run.json`, or None when none was started."""
    try:
        state = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        pid, port = int(state["pid"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    alive = process_alive(pid)
    return LocalProcess(pid=pid, port=port, version=_text(state.get("version")),
                        started=str(state.get("started", "")), alive=alive,
                        ready=alive and _ready(port), url=f"http://127.0.0.1:{port}")


def traffic(log: str, *, window_s: int = TRAFFIC_WINDOW_S) -> Traffic:
    """Request count and rate, p50/p99 latency and error rate over the last `window_s`
    (none when the log cannot be read: the panel still lists the service)."""
    from .serving.predlog import read_outcomes

    try:
        outcomes = read_outcomes(log, since=f"{window_s}s")
    except OSError:
        outcomes = []
    if not outcomes:
        return Traffic(window_s=window_s, requests=0, rate_per_s=0.0, p50_ms=None, p99_ms=None,
                       error_rate=None)
    latencies = sorted(latency for latency, _ in outcomes)
    errors = sum(failed for _, failed in outcomes)
    return Traffic(window_s=window_s, requests=len(outcomes),
                   rate_per_s=len(outcomes) / window_s,
                   p50_ms=_quantile(latencies, 0.5), p99_ms=_quantile(latencies, 0.99),
                   error_rate=errors / len(outcomes))


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    index = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))
    return float(ordered[index])


def get_service(workspace: Workspace, name: str) -> Service:
    """One service; NotFoundError when it has no built version."""
    folder = service_folder(workspace, name)
    versions = _versions(folder)
    return Service(name=name, versions=versions, latest=versions[0].version if versions else None,
                   running=local_process(folder), traffic=traffic(service_log(workspace, name)))


def list_services(workspace: Workspace) -> list[Service]:
    """The workspace's services with at least one built version, by name."""
    return [get_service(workspace, name) for name in service_names(workspace)]


def latest_bundle(workspace: Workspace, name: str, log_dir: str | None = None
                  ) -> tuple[Path, str]:
    """(newest bundle folder, where its prediction log is) of service `name`: ``log_dir``
    if given, else :func:`log_of` the bundle."""
    bundle = Path(_versions(service_folder(workspace, name))[0].path)
    return bundle, log_dir or log_of(bundle)


def service_log(workspace: Workspace, name: str, log_dir: str | None = None) -> str:
    """Where service `name`'s prediction log is: ``log_dir`` if given, else the newest
    bundle's (:func:`log_of`), else .ship/services/NAME/log."""
    folder = service_folder(workspace, name)
    if log_dir:
        return log_dir
    versions = _versions(folder)
    return log_of(Path(versions[0].path)) if versions else str(folder / "log")


def log_of(bundle_dir: Path) -> str:
    """Where a bundle's service logs (:attr:`~..serving.bundle.Bundle.log_dir`); ``log/``
    beside a bundle that does not load, so its service still lists."""
    from .serving.bundle import Bundle
    from .serving.errors import BundleError

    try:
        return Bundle.load(bundle_dir).log_dir
    except BundleError:
        return str(bundle_dir.resolve().parent / "log")


def _served_version(folder: Path) -> str:
    """What `ship serve NAME` serves: its release's champion, else the newest build."""
    from .serving.release import RELEASE_FILE, ReleaseFileError, read_release

    try:
        release = read_release(folder / RELEASE_FILE)
    except ReleaseFileError:
        release = None
    return release.champion if release is not None else _versions(folder)[0].version


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ship_command() -> list[str]:
    script = Path(sys.executable).with_name("ship")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kernel_magics.cli import main; main()"]


def start_service(workspace: Workspace, name: str, *,
                  ready_timeout_s: float = READY_TIMEOUT_S) -> LocalProcess:
    """Start `ship serve NAME` (its release, else the latest version) on a free port;
    return once it is ready."""
    folder = service_folder(workspace, name)
    # One start at a time (two clicks, two tabs, the CLI beside the lab): the check and
    # the run.json it is checked against happen under one lock.
    with open(folder / START_LOCK, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = local_process(folder)
        if current is not None and current.alive:
            raise ConflictError(f"service {name!r} is already running on port "
                                f"{current.port} (pid {current.pid}).", hint="Stop it first.")
        version = _served_version(folder)
        port = _free_port()
        with open(folder / SERVE_LOG, "ab") as output:
            # Its own session: the Jupyter server's signals do not reach it, and a stop
            # signals its whole process group (uvicorn workers included).
            child = subprocess.Popen(
                [*_ship_command(), "serve", name, "--port", str(port)], cwd=workspace.root,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        (folder / RUN_FILE).write_text(json.dumps({"pid": child.pid, "port": port,
                                                   "version": version, "started": started}),
                                       encoding="utf-8")
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            (folder / RUN_FILE).unlink(missing_ok=True)
            raise ShipError(f"service {name!r} exited with status {child.returncode} while "
                            f"starting: {_tail(folder / SERVE_LOG)}")
        if _ready(port):
            return LocalProcess(pid=child.pid, port=port, version=version, started=started,
                                alive=True, ready=True, url=f"http://127.0.0.1:{port}")
        time.sleep(0.2)
    _terminate(child.pid)
    (folder / RUN_FILE).unlink(missing_ok=True)
    raise ShipError(f"service {name!r} was not ready after {ready_timeout_s:.0f} s: "
                    f"{_tail(folder / SERVE_LOG)}")


def stop_service(workspace: Workspace, name: str) -> LocalProcess:
    """SIGTERM the service's process group and wait: the runtime flushes its log on exit."""
    folder = service_folder(workspace, name)
    current = local_process(folder)
    if current is None or not current.alive:
        (folder / RUN_FILE).unlink(missing_ok=True)
        raise ConflictError(f"service {name!r} is not running.")
    _terminate(current.pid)
    (folder / RUN_FILE).unlink(missing_ok=True)
    current.alive = current.ready = False
    return current


def _terminate(pid: int) -> None:
    import psutil

    try:
        psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    if not _gone(pid, STOP_TIMEOUT_S):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _gone(pid, 5.0)


def _gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited. A process another one started (the Jupyter server,
    for `ship stop` in a terminal) stays a zombie until its parent reaps it: exited, too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " | ".join(text[-lines:]) or "no output"


def timeline(workspace: Workspace, name: str, window: str = "1h", *,
             points: int = 60) -> dict[str, Any]:
    """Request rate, p50/p99 latency and errors per version over ``window``, in about
    ``points`` buckets (the service page's charts)."""
    from .serving.predlog import parse_duration, read_timeline

    span = parse_duration(window)
    if span is None or span.total_seconds() <= 0:
        raise ValidationError(f"window {window!r}: use a duration like 15m, 1h or 1d.",
                              field="window")
    seconds = int(span.total_seconds())
    bucket = max(1, seconds // points)
    since = datetime.now(UTC) - span
    try:
        rows = read_timeline(service_log(workspace, name), since, bucket)
    except OSError:
        rows = []
    return {"window_s": seconds, "bucket_s": bucket,
            "versions": sorted({r[1] for r in rows}, key=_natural),
            "points": [{"time": t.isoformat(), "version": v, "requests": n,
                        "rate_per_s": n / bucket, "p50_ms": p50, "p99_ms": p99,
                        "errors": e, "error_rate": e / n} for t, v, n, p50, p99, e in rows]}


def _natural(version: str) -> tuple[bool, int, str]:
    return not version.isdigit(), int(version) if version.isdigit() else 0, version
