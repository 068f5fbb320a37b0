"""The bundle format: write, load, and the messages a broken bundle gets."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kernel_magics.serving import runtime_requirements
from kernel_magics.serving.bundle import Bundle, Manifest, RuntimeSettings, write_bundle
from kernel_magics.serving.errors import BundleError
from kernel_magics.serving.model import Model, cpu_quota, intra_op_threads
from kernel_magics.serving.requirements import PINS
from kernel_magics.serving.schema import Feature, Schema, TensorSpec

CONSTRAINTS = Path(__file__).resolve().parents[2] / "constraints.txt"


def copy(bundle: Bundle, dest: Path) -> Path:
    write_bundle(dest, manifest=bundle.manifest, schema=bundle.schema,
                 model=bundle.model_path)
    return dest


def test_round_trip(digits_bundle: Bundle) -> None:
    loaded = Bundle.load(digits_bundle.path)
    assert loaded.manifest == digits_bundle.manifest
    assert loaded.schema == digits_bundle.schema
    assert loaded.manifest.lineage.run_id == "run-abc"
    doc = yaml.safe_load((digits_bundle.path / "ship.yaml").read_text())
    assert doc["runtime"]["log_flush_interval_s"] == 0.2 and doc["format"] == 1
    assert json.loads((digits_bundle.path / "schema.json").read_text())["task"] == \
        "classification"
    assert not loaded.needs_pandas


def test_handler_functions_found_without_running(tabular_bundle: Bundle) -> None:
    assert tabular_bundle.handler_functions == {"preprocess", "postprocess"}
    assert tabular_bundle.needs_pandas


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: (p / "model.onnx").unlink(), "model file 'model.onnx' is missing"),
    (lambda p: (p / "schema.json").unlink(), "missing schema.json"),
    (lambda p: (p / "ship.yaml").write_text("name: x\n"), "missing key 'version'"),
    (lambda p: (p / "ship.yaml").write_text("[1, 2"), "unreadable"),
    (lambda p: (p / "handler.py").write_text("def preprocess(df):\n  return (\n"),
     "does not parse"),
    (lambda p: _edit_schema(p, features=[{"name": "a", "dtype": "complex"}]), "complex"),
    (lambda p: _edit_schema(p, task="ranking"), "task must be one of"),
    (lambda p: _edit_schema(p, features=[{"name": "a"}, {"name": "a"}]), "repeat"),
    (lambda p: _edit_schema(p, features=[{"name": "a"}]), "stacked into 'float_input' as"),
    (lambda p: _edit_schema(p, features=[{"name": f"p{i}", "dtype": "string"}
                                         for i in range(64)]), "need a preprocess"),
    (lambda p: _edit_manifest(p, runtime={"log_flush_interval_s": 0}), "log_flush_interval"),
    (lambda p: _edit_manifest(p, runtime={"colour": 1}), "malformed"),
    (lambda p: _edit_manifest(p, version="a/b"), "version must be"),
])
def test_broken_bundles_say_what_to_fix(digits_bundle: Bundle, tmp_path: Path, edit: object,
                                        message: str) -> None:
    path = copy(digits_bundle, tmp_path / "b")
    edit(path)  # type: ignore[operator]
    with pytest.raises(BundleError, match=message):
        Bundle.load(path)


def _edit_schema(path: Path, **changes: object) -> None:
    doc = json.loads((path / "schema.json").read_text())
    doc.update(changes)
    (path / "schema.json").write_text(json.dumps(doc))


def _edit_manifest(path: Path, **changes: object) -> None:
    doc = yaml.safe_load((path / "ship.yaml").read_text())
    doc.update(changes)
    (path / "ship.yaml").write_text(yaml.safe_dump(doc))


def test_schema_must_match_the_model(digits_bundle: Bundle, tmp_path: Path) -> None:
    schema = replace(digits_bundle.schema,
                     outputs=(TensorSpec("label", "INT32", (-1,)),
                              TensorSpec("probabilities", "FP32", (-1, -1))))
    bundle = write_bundle(tmp_path / "b", manifest=digits_bundle.manifest, schema=schema,
                          model=digits_bundle.model_path)
    with pytest.raises(BundleError, match="'label' is INT32, but the model has INT64"):
        Model(bundle)
    schema = replace(digits_bundle.schema, inputs=(TensorSpec("x", "FP32", (-1, 64)),))
    bundle = write_bundle(tmp_path / "c", manifest=digits_bundle.manifest, schema=schema,
                          model=digits_bundle.model_path)
    with pytest.raises(BundleError, match=r"inputs \['x'\] but the model has"):
        Model(bundle)


def test_multiple_inputs_need_preprocess(digits_bundle: Bundle, tmp_path: Path) -> None:
    schema = Schema(features=(Feature("a"),),
                    inputs=(TensorSpec("x", "FP32", (-1, 1)), TensorSpec("y", "FP32", (-1, 1))),
                    outputs=(TensorSpec("z", "FP32", (-1, 1)),), task="regression")
    with pytest.raises(BundleError, match="must define preprocess"):
        write_bundle(tmp_path / "b", manifest=Manifest(name="m", version="1"), schema=schema,
                     model=b"not onnx")


def test_threads_from_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(tmp_path) == min(1.5, cpu_quota(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(tmp_path) == cpu_quota(tmp_path / "none")
    assert intra_op_threads(workers=2, quota=8.0) == 4
    assert intra_op_threads(workers=4, quota=2.0) == 1
    assert intra_op_threads(workers=1, configured=3, quota=16.0) == 3
    assert RuntimeSettings().log_flush_interval_s <= 1.0


def test_runtime_requirements_are_the_tested_versions() -> None:
    lines = runtime_requirements()
    assert not any(name in " ".join(lines) for name in ("jupyter", "torch", "mlflow", "ipython"))
    assert runtime_requirements(pandas=True)[-1].startswith("pandas==")
    pinned = dict(line.split(";")[0].split("==") for line in CONSTRAINTS.read_text().split()
                  if "==" in line)
    lowered = {k.lower(): v for k, v in pinned.items()}
    for name, (version, _) in PINS.items():
        assert importlib.metadata.version(name) == version, name
        if name.lower() in lowered:
            assert lowered[name.lower()] == version, f"constraints.txt pins {name} differently"
