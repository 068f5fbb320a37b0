"""`--model VAR`: serialise a model in the kernel, log it with its MLflow flavor later.

The kernel pickles the object by value with cloudpickle (so classes defined in
the notebook travel with it); the writer process loads it and calls the
flavor's `log_model` with explicit requirements (no slow inference subprocess).
torch models use `torch.save`; scikit-learn estimators and anything else
cloudpickle. ONNX export is a separate step (`%ship export`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudpickle

from .record import ModelRef


def flavor_of(model: Any) -> str:
    """The MLflow flavor Ship logs `model` with."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "pytorch"
    sklearn_base = sys.modules.get("sklearn.base")
    if sklearn_base is not None and isinstance(model, sklearn_base.BaseEstimator):
        return "sklearn"
    return "pickle"


def save_model(model: Any, variable: str, folder: Path) -> ModelRef:
    """Write `model` into `folder` and describe it."""
    folder.mkdir(parents=True, exist_ok=True)
    flavor = flavor_of(model)
    cls = f"{type(model).__module__}.{type(model).__qualname__}"
    if flavor == "pytorch":
        torch = sys.modules["torch"]
        path = folder / "model.pth"
        torch.save(model, path, pickle_module=cloudpickle)
        version: str | None = str(torch.__version__).split("+")[0]
    else:
        path = folder / "model.pkl"
        with open(path, "wb") as fh:
            cloudpickle.dump(model, fh)
        version = _version_of("scikit-learn") if flavor == "sklearn" else None
    return ModelRef(variable=variable, flavor=flavor, file=path.name, class_name=cls,
                    library_version=version)


def _version_of(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def log_model(ref: ModelRef, folder: Path) -> str:
    """Log a saved model to the active MLflow run; returns the model URI. Writer side only."""
    import mlflow

    path = folder / ref.file
    if ref.flavor == "pytorch":
        import torch

        model = torch.load(path, weights_only=False)
        # "pickle" keeps the module as the notebook built it; "pt2" needs an input example.
        info = mlflow.pytorch.log_model(model, name="model", serialization_format="pickle",
                                        pip_requirements=[f"torch=={ref.library_version}"])
    elif ref.flavor == "sklearn":
        with open(path, "rb") as fh:
            model = cloudpickle.load(fh)
        info = mlflow.sklearn.log_model(model, name="model",
                                        serialization_format="cloudpickle",
                                        pip_requirements=[f"scikit-learn=={ref.library_version}"])
    else:
        mlflow.log_artifact(str(path), artifact_path="model")
        return f"runs:/{mlflow.active_run().info.run_id}/model/{ref.file}"  # type: ignore[union-attr]
    return str(info.model_uri)
