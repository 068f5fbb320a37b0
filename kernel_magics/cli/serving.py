"""`ship serve`, `ship score` and `ship logs`: a bundle served, run in batch, and its
prediction log read (serving/)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..errors import ShipError
from .output import emit_json, fail


@contextlib.contextmanager
def _runtime_errors() -> Iterator[None]:
    """The serving runtime cannot import ShipError (it ships inside bundles): map its errors."""
    from ..serving.errors import RuntimeServingError

    try:
        yield
    except RuntimeServingError as exc:
        raise ShipError(exc.message) from None


def _service(name_or_bundle: str, log_dir: str | None = None) -> tuple[Path, str]:
    """(bundle folder, where its prediction log is: ``log_dir`` if given, else where the
    bundle says) for a service name or a bundle folder."""
    from ..services import latest_bundle, log_of
    from ..workspace import find_workspace

    path = Path(name_or_bundle)
    if (path / "ship.yaml").is_file():
        return path, log_dir or log_of(path)
    return latest_bundle(find_workspace(), name_or_bundle, log_dir)


LOG_DIR_HELP = ("Where the prediction log is: a folder or a URL (s3://bucket/prefix, "
                "gs://...). Default: where the bundle says (`ship build --log-dir`), else "
                ".ship/services/NAME/log.")


@contextlib.contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """Storage that refuses (no such bucket, no access, network down) is a clear error;
    ``where``: "at URL", or "of service 'NAME'"."""
    try:
        yield
    except OSError as exc:
        fail(f"cannot read the prediction log {where}: {exc}")


@click.command("serve")
@click.argument("name_or_bundle")
@click.option("--port", default=8080, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=None,
              help="Also serve the Open Inference Protocol over gRPC on this port "
                   "(inference.GRPCInferenceService; 8081 by convention).")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes the service to the network.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-dir", default=None, metavar="URL", help=LOG_DIR_HELP)
@click.option("--no-log", is_flag=True,
              help="Serve without a prediction log (no drift, cost or feedback then).")
@click.option("--engine", default="local", show_default=True,
              type=click.Choice(["local", "ray"]),
              help="local: uvicorn processes here; ray: a Ray Serve deployment, replicas "
                   "from [serve] of ship.toml.")
@click.option("--address", default=None, metavar="ADDR",
              help="With --engine ray: the Ray cluster to join (host:port, or auto); "
                   "default: a local Ray started for this service.")
def serve_cmd(name_or_bundle: str, port: int, grpc_port: int | None, workers: int, host: str,
              log_level: str, log_dir: str | None, no_log: bool, engine: str,
              address: str | None) -> None:
    """Serve a built service (latest version) or a bundle folder until Ctrl-C."""
    from ..serving.server import serve

    if no_log and log_dir:
        raise click.UsageError("--no-log and --log-dir contradict each other: pick one.")
    if grpc_port is not None and (grpc_port == port or engine != "local"):
        raise click.UsageError("--grpc-port needs a port other than --port, and "
                               "--engine local (Ray Serve's gRPC proxy is not V2's).")
    if engine != "ray" and address:
        raise click.UsageError("--address names a Ray cluster: add --engine ray.")
    if engine == "ray" and workers != 1:
        raise click.UsageError("--workers is for --engine local; on Ray the replicas come "
                               "from [serve] replicas in .ship/ship.toml.")
    if (Path(name_or_bundle) / "ship.yaml").is_file():  # a bundle folder: that one alone
        bundle, log = _service(name_or_bundle, log_dir)
        release_file = None
    else:
        bundle, release_file, log = _release_of(name_or_bundle, log_dir)
    check_log(log)
    if address is None:
        _port_free(host, port)  # say "serving" only where it can
    if grpc_port is not None:
        _port_free(host, grpc_port, "--grpc-port")
    serving = (f"serving {bundle} on http://{host}:{port} (V2: /v2, MLflow: /invocations)"
               + ("" if grpc_port is None else f", gRPC {host}:{grpc_port} (V2)")
               + f"; prediction log: {'off (--no-log)' if no_log else log}")
    if engine == "local":
        click.echo(serving, err=True)
    gatekeeper = None
    if release_file is not None and not no_log:
        from ..release.controller import Gatekeeper
        from ..workspace import find_workspace

        gatekeeper = Gatekeeper(find_workspace(), name_or_bundle, log=log)
        if gatekeeper.start():
            click.echo(f"release: {release_file} (followed while serving; the gate watches "
                       "canaries)", err=True)
    try:
        with _runtime_errors():
            if engine == "ray":
                _serve_on_ray(bundle, host=host, port=port, address=address,
                              log_dir="" if no_log else log, log_level=log_level,
                              release_file=release_file, serving=serving)
            else:
                serve(bundle, host=host, port=port, workers=workers,
                      log_dir="" if no_log else log, log_level=log_level,
                      release_file=release_file, grpc_port=grpc_port)
    finally:
        if gatekeeper is not None:
            gatekeeper.stop()


def _serve_on_ray(bundle: Path, *, address: str | None, serving: str,
                  **kwargs: Any) -> None:
    """`ship serve --engine ray`: the same app on Ray Serve, replicas from [serve]."""
    from ..serving.rayserve import serve_on_ray
    from ..workspace import find_workspace

    options = find_workspace().ray_serve().deployment_options()
    replicas = options.get("num_replicas") or "autoscaling {min_replicas}-{max_replicas}"\
        .format(**options.get("autoscaling_config", {}))
    click.echo(f"starting Ray Serve ({'a local Ray' if address is None else address}, "
               f"replicas: {replicas})...", err=True)
    serve_on_ray(bundle, address=address, on_ready=lambda url: click.echo(
        f"{serving}; on Ray Serve", err=True), **kwargs, **options)


def _release_of(name: str, log_dir: str | None) -> tuple[Path, Path, str]:
    """(the champion's bundle, the release.json to follow, the log) of service ``name``:
    the champion of its release, else its newest build."""
    from ..release.rollout import current_release, release_file
    from ..services import service_folder
    from ..workspace import find_workspace

    workspace = find_workspace()
    folder = service_folder(workspace, name)
    path = release_file(workspace, name)
    bundle = folder / current_release(workspace, name).champion if path.is_file() \
        else _service(name)[0]
    return bundle, path, log_dir or _service(str(bundle))[1]


def check_log(log: str) -> None:
    """Fail with the reason when a log location cannot be opened (unknown scheme, no
    credentials), before anything is served or read."""
    from ..serving.predlog import LogLocation

    try:
        LogLocation(log)
    except (OSError, ValueError, ImportError) as exc:
        fail(f"cannot open the prediction log at {log}: {exc}. Give --log-dir a folder or "
             "a URL such as s3://bucket/prefix (credentials and AWS_ENDPOINT_URL from the "
             "environment).")


def _port_free(host: str, port: int, option: str = "--port") -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}. Pick another port "
                 f"with {option}, or stop what serves there (`ship ps`, `ship stop NAME`).")


@click.command("score")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, exists=True))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def score_cmd(bundle: Path, input_path: Path, output_path: Path, as_json: bool) -> None:
    """Score a Parquet or CSV file with a bundle (or a service name's latest bundle)."""
    from ..serving.batch import score_file

    folder, _ = _service(str(bundle))
    with _runtime_errors():
        result = score_file(folder, input_path, output_path)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{result.rows} rows scored in {result.seconds:.2f}s -> {result.output}")


@click.command("logs")
@click.argument("name")
@click.option("--since", default=None, metavar="T",
              help="15m, 2h, 1d or an ISO time (UTC unless it says otherwise).")
@click.option("--limit", default=50, show_default=True, help="The most recent N requests.")
@click.option("--errors", "errors_only", is_flag=True, help="Only failed requests.")
@click.option("--json", "as_json", is_flag=True, help="Print the requests as JSON.")
@click.option("--compact", is_flag=True,
              help="Merge each closed hour's segments into one file instead of showing "
                   "requests (safe beside running services).")
@click.option("--older-than", default="1h", show_default=True, metavar="T",
              help="With --compact: only hours that ended at least this long ago.")
@click.option("--log-dir", "log_url", default=None, metavar="URL", help=LOG_DIR_HELP)
@click.pass_context
def logs_cmd(ctx: click.Context, name: str, since: str | None, limit: int, errors_only: bool,
             as_json: bool, compact: bool, older_than: str, log_url: str | None) -> None:
    """Recent predictions and errors of a service, oldest first; or, with --compact,
    merge the log's segments (one a second per serving process) into a file per hour."""
    from ..serving.predlog import read_log

    _, log_dir = _service(name, log_url)
    check_log(log_dir)
    if compact:
        flags = {"since": "--since", "limit": "--limit", "errors_only": "--errors"}
        given = [flag for name, flag in flags.items()
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise click.UsageError(f"--compact merges the whole log: {', '.join(given)} "
                                   f"{verb} not apply. Run `ship logs` again without them.")
        _compact_log(log_dir, older_than, as_json)
        return
    if ctx.get_parameter_source("older_than") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--older-than goes with --compact.")
    with _runtime_errors(), storage_errors(f"at {log_dir}"):
        entries = read_log(log_dir, since=since, limit=limit, errors_only=errors_only)
    if as_json:
        emit_json(entries)
        return
    if not entries:
        click.echo(f"No requests logged in {log_dir}" + (f" since {since}." if since else "."))
        return
    click.echo(f"{'TIME (UTC)':<23} {'VERSION':<8} {'ENDPOINT':<12} {'STATUS':>6} {'MS':>7} "
               f"{'ROWS':>5}  {'REQUEST ID':<24}  OUTPUT / ERROR")
    for e in entries:
        detail = e.error or (e.outputs or "")
        detail = detail if len(detail) <= 60 else detail[:57] + "..."
        truth = f"  (truth: {e.ground_truth})" if e.ground_truth is not None else ""
        click.echo(f"{e.time:%Y-%m-%d %H:%M:%S.%f}"[:23] + f" {e.version:<8} {e.endpoint:<12} "
                   f"{e.status:>6} {e.latency_ms:>7.2f} {e.rows:>5}  {e.request_id:<24}  "
                   f"{detail}{truth}")


def _compact_log(log_dir: str, older_than: str, as_json: bool) -> None:
    from tqdm import tqdm

    from ..serving.predlog import compact_log

    with _runtime_errors(), storage_errors(f"at {log_dir}"):
        result = compact_log(log_dir, older_than=older_than, progress=lambda hours: tqdm(
            hours, desc="compact", unit="hour", file=sys.stderr,
            disable=as_json or len(hours) < 2))
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.summary())
