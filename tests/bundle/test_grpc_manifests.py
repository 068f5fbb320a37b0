"""The gRPC port in every deployment file: the image serves it, k8s/ exposes it, and
KServe (one routed port per container) gets a second InferenceService for it,
kserve-grpc.yaml, checked against KServe's CRD schema like kserve.yaml
(test_release_manifests.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_release_manifests import container_of, predictor_of, valid_isvc

from kernel_magics.bundle.deploy import GRPC_PORT, PORT, write_deployment, write_release_manifests
from kernel_magics.serving.release import Canary, Release

LONG = "customer-churn-prediction-service-with-a-long-name-that-goes-on"


def bundle_files(folder: Path, name: str = "churn", version: str = "12") -> dict[str, str]:
    written = write_deployment(folder, name=name, version=version, ship_version="0.1.0",
                               python_version="3.11", workers=2)
    return {str(path.relative_to(folder)): path.read_text() for path in written}


def test_the_image_serves_grpc_and_k8s_exposes_it(tmp_path: Path) -> None:
    files = bundle_files(tmp_path)
    dockerfile = files["Dockerfile"]
    assert f"SHIP_GRPC_PORT={GRPC_PORT}" in dockerfile
    assert f"EXPOSE {PORT} {GRPC_PORT}" in dockerfile
    deployment = yaml.safe_load(files["k8s/deployment.yaml"])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": PORT},
                                  {"name": "grpc", "containerPort": GRPC_PORT}]
    service = yaml.safe_load(files["k8s/service.yaml"])
    assert {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc"} in \
        service["spec"]["ports"]


def ports(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return container_of(manifest)["ports"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["churn", LONG])
def test_each_bundle_has_a_rest_and_a_grpc_inference_service(tmp_path: Path,
                                                             name: str) -> None:
    files = bundle_files(tmp_path, name)
    rest, grpc = valid_isvc(files["kserve.yaml"]), valid_isvc(files["kserve-grpc.yaml"])
    assert ports(rest) == [{"containerPort": PORT, "protocol": "TCP"}]
    assert ports(grpc) == [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    assert grpc["metadata"]["name"].endswith("-grpc")
    assert grpc["metadata"]["name"] != rest["metadata"]["name"]
    assert "readinessProbe" in container_of(rest) and "readinessProbe" not in \
        container_of(grpc)  # Knative probes the serving port itself
    same = {k: v for k, v in container_of(grpc).items() if k != "ports"}
    assert same == {k: v for k, v in container_of(rest).items()
                    if k not in ("ports", "readinessProbe")}


@pytest.mark.parametrize("name", ["churn", LONG])
def test_a_release_has_a_grpc_inference_service_with_the_same_split(tmp_path: Path,
                                                                    name: str) -> None:
    written = write_release_manifests(tmp_path, Release(name, "1", Canary("2", 25.0)))
    assert tmp_path / "kserve-grpc.yaml" in written
    rest = valid_isvc((tmp_path / "kserve.yaml").read_text())
    grpc = valid_isvc((tmp_path / "kserve-grpc.yaml").read_text())
    assert ports(grpc) == [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    assert predictor_of(grpc)["canaryTrafficPercent"] == \
        predictor_of(rest)["canaryTrafficPercent"] == 25
    assert container_of(grpc)["image"] == container_of(rest)["image"]
    assert grpc["metadata"]["name"] == rest["metadata"]["name"][:42].rstrip("-") + "-grpc"
    assert len(grpc["metadata"]["name"]) <= len("x" * 47)  # room for -predictor-00001
