"""`ship build`: a notebook and a registered model version become a service bundle.

    .ship/services/NAME/<n>/
        ship.yaml  model.onnx  handler.py  schema.json       what the runtime serves
        requirements.txt  ship_runtime/                      runs without Ship, Jupyter,
                                                             torch or MLflow
        Dockerfile  k8s/  kserve.yaml  rayserve.py           deployment

Steps: the serve cells become handler.py (nbconvert exporter ``ship``); the model
version (given, else the ``champion`` alias, else the best by its held-out metric:
version.py, which says why) is downloaded from MLflow;
the names serve cells use but do not define get their values from the kernel
(``%ship build``) or from the state captured with the model version's run, and go
into state/ in safe formats (see tracking/serve_state.py); the schema comes from the
ONNX graph and the training data the run tracked; the bundle is written, then loaded
and warmed up by its own runtime in a separate process; finally it is logged to MLflow
next to its model version. A bundle is immutable: each build is a new numbered folder.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import NotFoundError, ValidationError
from ..tracking.serve_cells import undefined_names
from ..workspace import Workspace, check_service_name, find_workspace, init_workspace
from .deploy import check_log_url, write_deployment
from .reference import (
    resolve_reference,
    warmup_body,
    with_training_nulls,
    write_reference_file,
    write_warmup,
)
from .version import choose_version, describe_choice

RUNTIME_PACKAGE = "ship_runtime"


class BuildError(ValidationError):
    """A bundle that could not work; the message says what to fix."""


@dataclass
class BuildResult:
    """Where the bundle is and what went into it."""

    name: str
    version: str
    path: str
    model_name: str
    model_version: str
    run_id: str | None
    serve_cells: int
    features: list[str]
    artifact_uri: str | None
    reference_rows: int | None = None
    reference_source: str | None = None  # "--reference", or "NAME in run <id>" (tracked)
    log_dir: str | None = None  # the deployment files' prediction log URL (None: per pod)
    model_choice: str = ""  # which version and why (bundle/version.py)
    precision: str | None = None
    state: list[str] = field(default_factory=list)  # names stored in state/
    state_source: str | None = None  # "the kernel", "run <id>", or both


def build_service(notebook: Path, name: str, *, model_name: str | None = None,
                  model_version: str | None = None, reference: Any = None,
                  log_dir: str | None = None, workspace: Workspace | None = None,
                  namespace: dict[str, Any] | None = None) -> BuildResult:
    """Build the bundle for service `name` from `notebook` and a registered model version.

    `reference` is the training data (a DataFrame with the service's feature columns,
    or a 2-D array in feature order); its profile becomes reference.parquet for drift.
    `namespace` is the kernel's (``%ship build``): the values serve cells take from the
    rest of the notebook come from it first, then from the model version's run.
    """
    notebook = notebook.resolve()
    if not notebook.is_file():
        raise NotFoundError("notebook", str(notebook), hint="Check the path.")
    if notebook.suffix != ".ipynb":
        raise ValidationError(f"{notebook.name} is not a notebook (.ipynb); build from the "
                              "notebook that holds the serve cells.", field="notebook")
    check_service_name(name)
    if log_dir is not None:
        check_log_url(log_dir)
    workspace = workspace or find_workspace(notebook.parent)
    if not workspace.ship_dir.is_dir():
        workspace = init_workspace(workspace.root)
    handler, cells = handler_source(notebook)
    from ..tracking.local_store import mlflow_client

    client = mlflow_client(workspace.tracking_uri())
    choice = choose_version(client, model_name or name, model_version)
    version = choice.version
    folder = _next_folder(workspace, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_file = _download_onnx(version, workspace, Path(tmp))
            from .schema import schema_for

            schema = schema_for(onnx_file, client, version)
            state = _resolve_state(handler, namespace, client, version, Path(tmp) / "state")
            profiled = resolve_reference(schema.feature_names, reference, client,
                                         version.run_id, Path(tmp) / "profiles")
            schema = with_training_nulls(schema, profiled)
            warmup = warmup_body(profiled, {f.name: f.dtype for f in schema.features})
            _write(folder, name, version, onnx_file, schema, handler, log_dir, state, warmup)
        write_reference_file(folder, profiled)
        _check(folder)
        for cache in list(folder.rglob("__pycache__")):  # an immutable bundle, no bytecode
            shutil.rmtree(cache)
        artifact_uri = _log_bundle(client, version, name, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return BuildResult(name=name, version=folder.name, path=str(folder),
                       model_name=version.name, model_version=str(version.version),
                       run_id=version.run_id, serve_cells=cells,
                       features=[f.name for f in schema.features], artifact_uri=artifact_uri,
                       reference_rows=profiled.rows if profiled else None,
                       reference_source=profiled.source if profiled else None, log_dir=log_dir,
                       state=sorted(state.values), state_source=state.source,
                       model_choice=describe_choice(choice), precision=choice.precision)


@dataclass
class ResolvedState:
    """The values handler.py needs from the notebook, and where they came from."""

    values: dict[str, Any]
    source: str | None


def _resolve_state(handler: str | None, namespace: dict[str, Any] | None, client: Any,
                   version: Any, tmp: Path) -> ResolvedState:
    """Values for every name the serve cells use and do not define; BuildError for the rest."""
    from ..serving.state import load_state, read_refused
    from ..tracking.serve_state import download_run_state, free_names

    needed = free_names(handler) if handler else []
    if not needed:
        return ResolvedState({}, None)
    values: dict[str, Any] = {}
    refused: dict[str, str] = {}
    sources: list[str] = []
    if namespace is not None:
        found = {n: namespace[n] for n in needed if n in namespace}
        if found:
            values.update(found)
            sources.append("the kernel")
    still = [n for n in needed if n not in values]
    if still and download_run_state(client, version.run_id, tmp):
        run_values = load_state(tmp)
        taken = {n: run_values[n] for n in still if n in run_values}
        values.update(taken)
        refused = {n: why for n, why in read_refused(tmp).items() if n in still}
        if taken:
            sources.append(f"run {version.run_id}")
    missing = [n for n in needed if n not in values]
    if missing:
        raise BuildError(_missing_message(handler or "", missing, refused, version,
                                          in_kernel=namespace is not None), field="handler")
    return ResolvedState(values, " and ".join(sources) or None)


def _missing_message(handler: str, missing: list[str], refused: dict[str, str], version: Any,
                     *, in_kernel: bool) -> str:
    users = {n: fn for fn, names in undefined_names(handler).items() for n in names}
    unsafe = [refused[n] for n in missing if n in refused]
    absent = [n for n in missing if n not in refused]
    parts = []
    if unsafe:
        parts.append("these values have no safe format: " + "; ".join(unsafe) + ".")
    if absent:
        where = ", ".join(f"{n} (used by {users.get(n, '<module>')})" for n in absent)
        found_in = "this kernel" if in_kernel else f"the state captured with model " \
            f"{version.name} version {version.version}'s run"
        parts.append(f"serve cells use names that no serve cell defines and that "
                     f"{found_in} does not hold: {where}. Run the cells that define them, "
                     "then `%ship build` in the notebook (or re-export the model); or define "
                     "or import them in a serve cell.")
    return " ".join(parts)


def handler_source(notebook: Path) -> tuple[str | None, int]:
    """handler.py from the notebook's serve cells (None when there are none), and their count."""
    import nbformat

    from .exporter import ShipExporter

    try:
        body, resources = ShipExporter().from_filename(str(notebook))
    except (nbformat.reader.NotJSONError, nbformat.ValidationError, UnicodeDecodeError,
            KeyError, AttributeError, TypeError, ValueError) as exc:
        raise BuildError(f"{notebook.name} is not a readable notebook ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); open and save it in JupyterLab, then build "
                         "again.", field="notebook") from None
    count = int(resources.get("ship", {}).get("serve_cells", 0))
    if count == 0:
        return None, 0
    try:
        undefined_names(body)
    except SyntaxError as exc:
        raise BuildError(f"the serve cells do not parse: {exc.msg} (line {exc.lineno} of "
                         "handler.py).", field="handler") from None
    return body, count


def _next_folder(workspace: Workspace, name: str) -> Path:
    service = workspace.services_dir / name
    service.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name) for p in service.iterdir() if p.is_dir() and p.name.isdigit()]
    folder = service / str(max(taken, default=0) + 1)
    folder.mkdir()
    return folder


def _download_onnx(version: Any, workspace: Workspace, tmp: Path) -> Path:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=version.source, dst_path=str(tmp), tracking_uri=workspace.tracking_uri()))
    found = sorted(local.rglob("*.onnx"))
    if not found:
        raise BuildError(f"model {version.name} version {version.version} has no ONNX file; "
                         "re-export it with `%ship export`.", field="model")
    return found[0]


def _write(folder: Path, name: str, version: Any, onnx_file: Path, schema: Any,
           handler: str | None, log_dir: str | None, state: ResolvedState,
           warmup: dict[str, Any] | None) -> None:
    from ..serving.bundle import Lineage, Manifest, RuntimeSettings, write_bundle
    from ..serving.requirements import runtime_requirements
    from ..serving.state import StateError, write_state
    from .requirements import requirements_for

    try:
        entries = write_state(state.values, folder) if state.values else {}
    except StateError as exc:
        raise BuildError(f"serve cells use a value with no safe format: {exc}",
                         field=exc.name) from None
    frames = any(e.kind in ("parquet", "index") for e in entries.values())

    runtime = RuntimeSettings(warmup_input=write_warmup(folder, warmup) if warmup else None,
                              log_dir=log_dir)
    manifest = Manifest(name=name, version=folder.name, runtime=runtime, lineage=Lineage(
        registered_model=version.name, model_version=str(version.version),
        run_id=version.run_id))
    bundle = write_bundle(folder, manifest=manifest, schema=schema, model=onnx_file,
                          handler_source=handler)
    runtime_src = Path(__file__).resolve().parents[1] / "serving"
    shutil.copytree(runtime_src, folder / RUNTIME_PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "requirements.txt").write_text(
        "# The service runtime only: no Jupyter, torch or MLflow.\n"
        + "\n".join(runtime_requirements(pandas=bundle.needs_pandas or frames,
                                          extra=requirements_for(entries, handler)))
        + "\n", encoding="utf-8")
    write_deployment(folder, name=name, version=folder.name, ship_version=__version__,
                     python_version=".".join(platform.python_version_tuple()[:2]),
                     log_dir=log_dir)


def _check(folder: Path) -> None:
    """Load and warm the bundle up with its own runtime, in a process that has only it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(folder)
    result = subprocess.run([sys.executable, "-I", "-B", "-c",
                             f"import sys; sys.path.insert(0, {str(folder)!r}); "
                             f"from {RUNTIME_PACKAGE}.__main__ import main; "
                             f"sys.exit(main(['check', {str(folder)!r}]))"],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise BuildError(f"the bundle does not work: {reason.removeprefix('error: ')}",
                         field="bundle")


def _log_bundle(client: Any, version: Any, name: str, folder: Path) -> str | None:
    """Log the bundle with its model version's run; tag the version with where it went."""
    if not version.run_id:
        return None
    path = f"bundles/{name}/{folder.name}"
    client.log_artifacts(version.run_id, str(folder), path)
    client.set_model_version_tag(version.name, str(version.version), f"ship.bundle.{name}",
                                 folder.name)
    return f"runs:/{version.run_id}/{path}"


def describe(result: BuildResult) -> str:
    """What `ship build` prints."""
    lines = [f"built service {result.name} version {result.version}: {result.path}",
             f"  model     {result.model_choice or result.model_name}"
             + (f"\n            run {result.run_id}" if result.run_id else ""),
             f"  handler   {result.serve_cells} serve cell(s)"
             if result.serve_cells else "  handler   none (features go to the model as is)",
             f"  features  {len(result.features)}: {', '.join(result.features[:6])}"
             + (" ..." if len(result.features) > 6 else "")]
    if result.state:
        lines.append(f"  state     {', '.join(result.state[:6])}"
                     + (" ..." if len(result.state) > 6 else "")
                     + f" from {result.state_source} (state/)")
    if result.reference_rows is not None:
        lines.append(f"  reference profile of {result.reference_rows:,} training rows from "
                     f"{result.reference_source} (reference.parquet)")
    else:
        lines.append("  reference none: pass the training data (--reference) to monitor drift")
    if result.log_dir:
        lines.append(f"  log       {result.log_dir} (in k8s/ and kserve.yaml; "
                     "k8s/compact-log.yaml compacts it hourly)")
    if result.artifact_uri:
        lines.append(f"  logged    {result.artifact_uri}")
    lines.append(f"  serve it  ship serve {result.name}")
    return "\n".join(lines)


def to_json(result: BuildResult) -> str:
    return json.dumps(result.__dict__, indent=2)
