"""A service's release as KServe and Ray Serve files (bundle/deploy.py:
write_release_manifests), and every kserve.yaml Ship writes checked against KServe's own
InferenceService schema.

kserve_inferenceservice_schema.json.gz is the v1beta1 ``openAPIV3Schema`` of KServe's CRD,
config/crd/full/serving.kserve.io_inferenceservices.yaml in kserve/kserve at commit
aaac4e294dae2c7b1aa1886447793f3aa1c30912 (2026-08-21, controller-gen v0.19.0): compact
JSON, gzipped, with its source recorded in the file. To refresh it, extract that schema
from a newer CRD the same way.
"""

from __future__ import annotations

import gzip
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

import kernel_magics.serving.rayserve as ship_rayserve
from kernel_magics.bundle.deploy import (
    isvc_name,
    kserve_percent,
    write_deployment,
    write_release_manifests,
)
from kernel_magics.errors import ValidationError
from kernel_magics.serving.release import Canary, Release

SCHEMA_FILE = Path(__file__).with_name("kserve_inferenceservice_schema.json.gz")
# KServe's webhook refuses any other InferenceService name (IsvcNameFmt in
# pkg/apis/serving/v1beta1/inference_service_validation.go)
ISVC_NAME = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
# The CRD leaves metadata to the API server (`type: object`); what it checks there, in short
OBJECT_META = {"type": "object", "required": ["name"], "additionalProperties": False,
               "properties": {
                   "name": {"type": "string", "pattern": ISVC_NAME, "maxLength": 63},
                   "namespace": {"type": "string"},
                   "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                   "annotations": {"type": "object",
                                   "additionalProperties": {"type": "string"}}}}


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` refusing unknown fields, as the API server does on `kubectl apply`
    (strict field validation, kubectl's default): the CRD alone would drop them silently.
    Objects that say `x-kubernetes-preserve-unknown-fields` or `additionalProperties`
    keep what they say."""
    out = dict(schema)
    if "properties" in schema:
        out["properties"] = {k: closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = closed(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = closed(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [closed(s) for s in schema[key]]
    return out


@cache
def validator() -> jsonschema.protocols.Validator:
    document = json.loads(gzip.decompress(SCHEMA_FILE.read_bytes()))
    assert document["version"] == "v1beta1" and document["commit"]  # where it came from
    schema = closed(document["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    # OpenAPI v3's schema objects are JSON Schema draft 4's; `format` (int32, int64,
    # int-or-string) and the x-kubernetes-* extensions are not checked
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def schema_errors(manifest: Any) -> list[str]:
    """What KServe's InferenceService schema refuses in ``manifest``: 'path: reason'."""
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in sorted(validator().iter_errors(manifest), key=lambda e: e.json_path)]


def valid_isvc(text: str) -> dict[str, Any]:
    manifest = yaml.safe_load(text)
    assert schema_errors(manifest) == []
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    return manifest  # type: ignore[no-any-return]


def render(folder: Path, release: Release, **options: Any) -> dict[str, str]:
    written = write_release_manifests(folder, release, **options)
    assert written == [folder / "kserve.yaml", folder / "rayserve.py",
                       folder / "kserve-grpc.yaml"]  # test_grpc_manifests.py checks that one
    return {path.name: path.read_text() for path in written}


def predictor_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["predictor"]  # type: ignore[no-any-return]


def container_of(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = predictor_of(manifest)["containers"]
    return container  # type: ignore[no-any-return]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_a_canary_is_the_newest_revision_with_its_share(tmp_path: Path) -> None:
    release = Release("churn", "1", Canary("2", 25.0), shadows=("3", "4"))
    files = render(tmp_path, release)
    manifest = valid_isvc(files["kserve.yaml"])
    assert manifest["metadata"]["name"] == "churn"  # one InferenceService, not one a version
    predictor = predictor_of(manifest)
    assert predictor["canaryTrafficPercent"] == 25
    assert container_of(manifest)["image"] == "churn-v2:latest"  # the canary's
    assert predictor["annotations"] == {"ship.dev/version": "2"}
    annotations = manifest["metadata"]["annotations"]
    assert annotations["ship.dev/champion"] == "1" and annotations["ship.dev/canary"] == "2"
    text = " ".join(files["kserve.yaml"].split())
    assert "which must be the champion, version 1" in text  # the previous revision
    assert "Shadows (versions 3, 4): KServe has no shadow traffic" in text
    assert "SHIP_LOG_DIR" not in env_of(container_of(manifest))  # the image's default


def test_without_a_canary_the_champion_takes_every_request(tmp_path: Path) -> None:
    manifest = valid_isvc(render(tmp_path, Release("churn", "3"))["kserve.yaml"])
    assert "canaryTrafficPercent" not in predictor_of(manifest)
    assert container_of(manifest)["image"] == "churn-v3:latest"
    assert manifest["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Serverless", "ship.dev/champion": "3"}


def test_a_canary_step_changes_only_its_traffic(tmp_path: Path) -> None:
    """Annotations reach KServe's revisions: a new step must not start a new one."""
    first = yaml.safe_load(render(tmp_path, Release("churn", "1", Canary("2", 5.0)))
                           ["kserve.yaml"])
    second = yaml.safe_load(render(tmp_path, Release("churn", "1", Canary("2", 50.0),
                                                     shadows=("3",)))["kserve.yaml"])
    assert predictor_of(first).pop("canaryTrafficPercent") == 5
    assert predictor_of(second).pop("canaryTrafficPercent") == 50
    assert first == second


def test_a_log_url_goes_to_every_replica_of_every_version(tmp_path: Path) -> None:
    url = "s3://ml-logs/ship/churn"
    files = render(tmp_path, Release("churn", "1", Canary("2", 5.0)), log_dir=url)
    assert env_of(container_of(valid_isvc(files["kserve.yaml"])))["SHIP_LOG_DIR"] == url
    assert f'"log_dir": "{url}"' in files["rayserve.py"]


def test_a_log_dir_that_is_no_object_store_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is no object-store URL"):
        render(tmp_path, Release("churn", "1"), log_dir="logs/churn")
    assert not any(tmp_path.iterdir())  # nothing written


def test_an_image_given_runs_in_the_predictor(tmp_path: Path) -> None:
    image = "registry.example.com/ml/churn@sha256:" + "0" * 64
    files = render(tmp_path, Release("churn", "1", Canary("2", 5.0)), image=image)
    assert container_of(valid_isvc(files["kserve.yaml"]))["image"] == image


def test_the_predictor_runs_as_each_bundle_s_own_kserve_yaml_does(tmp_path: Path) -> None:
    write_deployment(tmp_path / "2", name="churn", version="2", ship_version="0.1.0",
                     python_version="3.11", workers=2)
    bundle = yaml.safe_load((tmp_path / "2" / "kserve.yaml").read_text())
    service = yaml.safe_load(render(tmp_path, Release("churn", "1", Canary("2", 5.0)))
                             ["kserve.yaml"])
    ours, theirs = predictor_of(service), predictor_of(bundle)
    assert container_of(service).pop("image") == container_of(bundle).pop("image")
    bundle_env = env_of(container_of(bundle))
    assert bundle_env.pop("SHIP_WORKERS") == "2"  # in the image too (its Dockerfile)
    assert env_of(container_of(service)) == bundle_env == {"PROTOCOL": "v2"}
    del container_of(service)["env"], container_of(bundle)["env"]
    assert container_of(service) == container_of(bundle)  # probe, ports, resources
    for key in ("annotations", "canaryTrafficPercent", "containers"):
        ours.pop(key, None)
        theirs.pop(key, None)
    assert ours == theirs  # replicas, grace period


@pytest.mark.parametrize(("service", "name"), [
    ("churn", "churn"), ("Customer Churn_v2", "customer-churn-v2"),
    ("2024-churn", "ship-2024-churn"), ("--", "ship"), ("x" * 80, "x" * 47)])
def test_the_inference_service_is_named_as_kserve_accepts(tmp_path: Path, service: str,
                                                          name: str) -> None:
    assert isvc_name(service) == name
    manifest = valid_isvc(render(tmp_path, Release(service, "1"))["kserve.yaml"])
    assert manifest["metadata"]["name"] == name  # with room for "-predictor-00001"


def test_a_release_without_a_service_name_takes_the_folder_s(tmp_path: Path) -> None:
    files = render(tmp_path / "churn", Release("", "1"))
    assert yaml.safe_load(files["kserve.yaml"])["metadata"]["name"] == "churn"


@pytest.mark.parametrize(("percent", "whole"), [(25.0, 25), (2.4, 2), (0.3, 1), (99.7, 100),
                                                 (100.0, 100)])
def test_kserve_takes_whole_percents_and_a_canary_always_gets_some(percent: float,
                                                                   whole: int) -> None:
    assert kserve_percent(percent) == whole


@pytest.mark.parametrize("log_dir", [None, "s3://ml-logs/ship/churn"])
def test_each_bundle_s_own_kserve_yaml_fits_kserve_s_schema(tmp_path: Path,
                                                             log_dir: str | None) -> None:
    written = write_deployment(tmp_path, name="customer-churn", version="12",
                               ship_version="0.1.0", python_version="3.11", log_dir=log_dir)
    assert tmp_path / "kserve.yaml" in written
    manifest = valid_isvc((tmp_path / "kserve.yaml").read_text())
    assert manifest["metadata"]["name"] == "customer-churn-v12"


def mutated(folder: Path, change: str) -> dict[str, Any]:
    """A good manifest with one mistake in it."""
    manifest = valid_isvc(render(folder, Release("churn", "1", Canary("2", 25.0)))
                          ["kserve.yaml"])
    predictor = predictor_of(manifest)
    container = container_of(manifest)
    if change == "percent as text":
        predictor["canaryTrafficPercent"] = "x"
    elif change == "percent as a fraction":
        predictor["canaryTrafficPercent"] = 2.5
    elif change == "misspelt field":
        predictor["canaryTrafficPercentage"] = predictor.pop("canaryTrafficPercent")
    elif change == "container without a name":
        del container["name"]
    elif change == "memory that is no quantity":
        container["resources"]["limits"]["memory"] = "1 GB"
    elif change == "env value as a number":
        container["env"][0]["value"] = 2
    elif change == "no predictor":
        del manifest["spec"]["predictor"]
    elif change == "name KServe refuses":
        manifest["metadata"]["name"] = "2-churn"
    elif change == "annotation as a number":
        manifest["metadata"]["annotations"]["ship.dev/champion"] = 1
    return manifest


@pytest.mark.parametrize(("change", "refused"), [
    ("percent as text", "spec.predictor.canaryTrafficPercent: 'x' is not of type 'integer'"),
    ("percent as a fraction",
     "spec.predictor.canaryTrafficPercent: 2.5 is not of type 'integer'"),
    ("misspelt field", "spec.predictor: Additional properties are not allowed "
                       "('canaryTrafficPercentage' was unexpected)"),
    ("container without a name",
     "spec.predictor.containers.0: 'name' is a required property"),
    ("memory that is no quantity",
     "spec.predictor.containers.0.resources.limits.memory: '1 GB' does not match"),
    ("env value as a number",
     "spec.predictor.containers.0.env.0.value: 2 is not of type 'string'"),
    ("no predictor", "spec: 'predictor' is a required property"),
    ("name KServe refuses", "metadata.name: '2-churn' does not match"),
    ("annotation as a number",
     "metadata.annotations.ship.dev/champion: 1 is not of type 'string'"),
])
def test_the_schema_refuses_what_kserve_refuses(tmp_path: Path, change: str,
                                                refused: str) -> None:
    """The check bites: each mistake fails it, saying where."""
    errors = schema_errors(mutated(tmp_path, change))
    assert len(errors) == 1 and errors[0].startswith(refused), errors


def run_rayserve(path: Path, monkeypatch: pytest.MonkeyPatch,
                 runtime: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Execute rayserve.py as `serve run` imports it, with the runtime's rayserve module
    faked (``runtime``: "ship_runtime" importable, or not: Ship's own); the arguments it
    gave ``application`` and the module's namespace. tests/serving/test_ray_serve.py runs
    such a file on a real Ray."""
    calls: dict[str, Any] = {}

    def application(*args: Any, **kwargs: Any) -> str:
        calls.update(args=args, kwargs=kwargs)
        return "the app"

    if runtime == "ship_runtime":
        fake = ModuleType("ship_runtime.rayserve")
        fake.application = application  # type: ignore[attr-defined]
        fake.main = lambda *args, **kwargs: None  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ship_runtime", ModuleType("ship_runtime"))
        monkeypatch.setitem(sys.modules, "ship_runtime.rayserve", fake)
    else:  # no ship_runtime on the path: Ship's own
        monkeypatch.setitem(sys.modules, "ship_runtime", None)
        monkeypatch.setattr(ship_rayserve, "application", application)
    code = compile(path.read_text(), str(path), "exec")
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "rayserve"}
    exec(code, namespace)
    assert namespace["deployment"] == "the app"
    return calls, namespace


@pytest.mark.parametrize("runtime", ["ship_runtime", "kernel_magics"])
def test_rayserve_serves_the_release_from_the_champion(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       runtime: str) -> None:
    render(tmp_path, Release("Customer Churn", "1", Canary("2", 5.0), shadows=("3",)))
    calls, namespace = run_rayserve(tmp_path / "rayserve.py", monkeypatch, runtime)
    assert calls == {"args": (tmp_path / "1",),
                     "kwargs": {"name": "customer-churn",
                                "release_file": tmp_path / "release.json",
                                "num_replicas": 2, "ray_actor_options": {"num_cpus": 1}}}
    assert namespace["main"].__module__ != "__main__"  # `python rayserve.py` runs it
    text = (tmp_path / "rayserve.py").read_text()
    assert "serve run rayserve:deployment" in text and "python rayserve.py" in text
    assert "champion 1, canary 2 at 5 %, shadows 3." in " ".join(text.split())


def test_rayserve_passes_a_log_url_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    render(tmp_path, Release("churn", "4"), log_dir="gs://logs/churn")
    calls, _ = run_rayserve(tmp_path / "rayserve.py", monkeypatch, "ship_runtime")
    assert calls["args"] == (tmp_path / "4",)
    assert calls["kwargs"]["release_file"] == tmp_path / "release.json"
    assert calls["kwargs"]["log_dir"] == "gs://logs/churn"


def test_a_new_release_replaces_both_files(tmp_path: Path) -> None:
    render(tmp_path, Release("churn", "1", Canary("2", 5.0)))
    files = render(tmp_path, Release("churn", "2"))  # promoted
    assert container_of(valid_isvc(files["kserve.yaml"]))["image"] == "churn-v2:latest"
    assert 'CHAMPION = SERVICE / "2"' in files["rayserve.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kserve-grpc.yaml", "kserve.yaml",
                                                          "rayserve.py"]
