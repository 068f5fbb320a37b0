"""The bundle's deployment files, and where they put the prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kernel_magics.bundle.deploy import write_deployment
from kernel_magics.cli import main as ship
from kernel_magics.errors import ValidationError

NAME = "customer-churn-prediction-service-with-a-long-name"


def render(folder: Path, log_dir: str | None = None) -> dict[str, Any]:
    written = write_deployment(folder, name=NAME, version="12", ship_version="0.1.0",
                               python_version="3.11", workers=2, log_dir=log_dir)
    assert all(path.is_file() for path in written)
    return {str(path.relative_to(folder)): path.read_text() for path in written}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_without_a_log_url_each_pod_keeps_its_log_on_its_own_volume(tmp_path: Path) -> None:
    files = render(tmp_path)
    assert "k8s/compact-log.yaml" not in files
    deployment = yaml.safe_load(files["k8s/deployment.yaml"])
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert env_of(container) == {"SHIP_WORKERS": "2", "SHIP_LOG_DIR": f"/var/log/ship/{NAME}"}
    assert container["volumeMounts"] == [{"name": "prediction-log",
                                          "mountPath": f"/var/log/ship/{NAME}"}]
    assert pod["volumes"] == [{"name": "prediction-log", "emptyDir": {}}]
    assert "ship build --log-dir s3://" in files["k8s/deployment.yaml"]  # says how to keep it
    kserve = yaml.safe_load(files["kserve.yaml"])
    (container,) = kserve["spec"]["predictor"]["containers"]
    assert "SHIP_LOG_DIR" not in env_of(container)  # the image's default folder


def test_a_log_url_goes_to_every_replica_and_a_cronjob_compacts_it(tmp_path: Path) -> None:
    url = "s3://ml-logs/ship/churn"
    files = render(tmp_path, url)
    deployment = yaml.safe_load(files["k8s/deployment.yaml"])
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert env_of(container)["SHIP_LOG_DIR"] == url
    assert "volumes" not in pod and "volumeMounts" not in container
    kserve = yaml.safe_load(files["kserve.yaml"])
    (container,) = kserve["spec"]["predictor"]["containers"]
    assert env_of(container)["SHIP_LOG_DIR"] == url

    cronjob = yaml.safe_load(files["k8s/compact-log.yaml"])
    assert cronjob["apiVersion"] == "batch/v1" and cronjob["kind"] == "CronJob"
    assert len(cronjob["metadata"]["name"]) <= 52  # Kubernetes' limit for CronJobs
    assert cronjob["metadata"]["name"].endswith("-compact-log")
    spec = cronjob["spec"]
    assert spec["schedule"] == "5 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    job_pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert job_pod["securityContext"]["runAsNonRoot"] is True
    job_labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    selector = yaml.safe_load(files["k8s/service.yaml"])["spec"]["selector"]
    assert not selector.items() <= job_labels.items()  # no requests go to the job's pod
    (job,) = job_pod["containers"]
    assert job["image"] == container["image"]  # the service's own image and runtime
    assert job["command"] == ["python", "-m", "ship_runtime", "compact", url,
                              "--older-than", "1h", "--missing-ok"]


def test_the_loops_watcher_is_a_cronjob_one_run_at_a_time(tmp_path: Path) -> None:
    files = render(tmp_path)
    cronjob = yaml.safe_load(files["k8s/watch.yaml"])
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    assert len(cronjob["metadata"]["name"]) <= 52 and \
        cronjob["metadata"]["name"].endswith("-watch")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["ship", "watch", NAME, "--once"]
    selector = yaml.safe_load(files["k8s/service.yaml"])["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize("bad", ["logs/churn", "/var/log/ship", "file:///var/log/ship",
                                 "s3://bucket/with space", 's3://bucket/"quoted"', "s3://"])
def test_a_log_dir_that_is_no_object_store_url_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError, match="is no object-store URL; give one that every "
                                              "replica can write to, such as s3://"):
        render(tmp_path, bad)
    assert not any(tmp_path.iterdir())  # nothing written


def test_ship_build_refuses_a_bad_log_dir_before_building(tmp_path: Path) -> None:
    notebook = tmp_path / "train.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    result = CliRunner().invoke(ship, ["build", str(notebook), "--name", "churn",
                                       "--log-dir", "logs/churn"])
    assert result.exit_code == 1
    assert "--log-dir 'logs/churn' is no object-store URL" in result.output
    assert not (tmp_path / ".ship").exists()  # nothing built, no workspace made
