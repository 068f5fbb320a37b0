"""Models and rows named on a command line: `ship export RUN_OR_MODEL --example FILE`.

A model is a run id (the model `%%ship track --model VAR` logged, tag `ship.model.uri`),
a `runs:/`, `models:/NAME/VERSION`, `models:/NAME@ALIAS` or `models:/<model id>` URI, or a
file: `.pt`/`.pth` (a pickled torch module) or `.pkl` (a cloudpickled estimator). Rows are
`.npy`, `.csv`, `.parquet` or `.pt` files. Everything resolves through the workspace's
store with an explicit client, never through MLflow's process-wide tracking URI.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..workspace import Workspace
from .registry import client_for

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
LOGGED_MODEL = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")


@dataclass
class LoadedModel:
    """A model object and the run it came from, if any."""

    model: Any
    run_id: str | None
    source: str


def load_model(ref: str, workspace: Workspace) -> LoadedModel:
    """Load the torch module or scikit-learn estimator `ref` names."""
    path = Path(ref).expanduser()
    if path.is_file():
        return LoadedModel(_load_file(path), None, str(path))
    client = client_for(workspace)
    uri, run_id = ref, None
    if RUN_ID.match(ref):
        run_id = ref
        try:
            run = client.get_run(ref)
        except Exception:  # noqa: BLE001 - MlflowException for unknown ids, anything for bad stores
            raise NotFoundError("run", ref, hint="`ship runs` lists runs and their ids.") from None
        uri = run.data.tags.get("ship.model.uri", "")
        if not uri:
            raise NotFoundError("model of run", ref,
                                hint="Track the training cell with `%%ship track --model VAR`, "
                                     "or pass a models:/ URI or a file.")
    if not uri.startswith(("runs:/", "models:/")):
        raise ValidationError(f"{ref!r} is not a run id, a runs:/ or models:/ URI, or a file.",
                              field="model")
    with tempfile.TemporaryDirectory(prefix="ship-load-") as tmp:
        local, source_run = _download(client, uri, Path(tmp))
        return LoadedModel(_load_mlflow_model(local, uri), run_id or source_run, uri)


def load_rows(path: str | Path, field: str = "example") -> Any:
    """An array or DataFrame from a .npy, .csv, .parquet or .pt file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise NotFoundError("file", str(file))
    suffix = file.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        return np.load(file, allow_pickle=False)
    if suffix in (".csv", ".parquet"):
        import pandas as pd

        frame = pd.read_csv(file) if suffix == ".csv" else pd.read_parquet(file)
        return frame.iloc[:, 0] if frame.shape[1] == 1 else frame
    if suffix in (".pt", ".pth"):
        import torch

        return torch.load(file, weights_only=True)
    raise ValidationError(f"cannot read rows from {file.name}.", field=field,
                          hint="Use a .npy, .csv, .parquet or .pt file.")


def _load_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        import torch

        # A whole pickled module (what `%%ship track --model` saves), so not weights_only:
        # only load files you trust, as with any pickle.
        return torch.load(path, weights_only=False)
    if suffix in (".pkl", ".pickle", ".cloudpickle"):
        import cloudpickle

        with open(path, "rb") as fh:
            return cloudpickle.load(fh)
    raise ValidationError(f"cannot load a model from {path.name}.", field="model",
                          hint="Use a .pt/.pth torch module or a .pkl estimator.")


def _download(client: Any, uri: str, folder: Path) -> tuple[Path, str | None]:
    """A local copy of the model folder `uri` points at, and the run that logged it."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        if match := LOGGED_MODEL.match(uri):
            logged = client.get_logged_model(match.group(1))
            location, run_id = logged.artifact_location, logged.source_run_id
        elif uri.startswith("runs:/"):
            run_id, _, artifact = uri[len("runs:/"):].partition("/")
            return Path(client.download_artifacts(run_id, artifact, str(folder))), run_id
        else:
            name, version = _model_version(client, uri[len("models:/"):])
            mv = client.get_model_version(name, version)
            location, run_id = client.get_model_version_download_uri(name, version), mv.run_id
    except MlflowException as exc:
        raise NotFoundError("model", uri, hint=str(exc.message)) from None
    # The client's URI, not MLflow's process-wide one: an `mlflow-artifacts:` location
    # resolves against the tracking server, which ship.toml may name instead of the env.
    return Path(download_artifacts(artifact_uri=location, dst_path=str(folder),
                                   tracking_uri=client.tracking_uri)), run_id


def _model_version(client: Any, rest: str) -> tuple[str, str]:
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = rest.rpartition("/")
    if not name or not version:
        raise ValidationError(f"models:/{rest} needs a version or alias, e.g. "
                              f"models:/{rest}/1 or models:/{rest}@champion.", field="model")
    return name, version


def _load_mlflow_model(local: Path, uri: str) -> Any:
    from mlflow.models import Model

    flavors = Model.load(str(local / "MLmodel")).flavors
    if "pytorch" in flavors:
        import mlflow.pytorch

        return mlflow.pytorch.load_model(str(local))
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))
    raise ValidationError(
        f"{uri} is a {', '.join(f for f in flavors if f != 'python_function')} model; export "
        "takes torch modules and scikit-learn estimators.", field="model",
        hint="An ONNX model version is already exported: `ship models NAME` shows it.")
