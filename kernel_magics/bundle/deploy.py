"""Deployment files for a bundle: Dockerfile, k8s/ (Deployment, Service, HPA), kserve.yaml
and rayserve.py, rendered from `templates/deploy/` with Jinja2.

With a log URL (``ship build --log-dir s3://bucket/prefix``) every replica writes its
prediction log there instead of to its pod's own volume, and k8s/compact-log.yaml (a
CronJob) merges that log into a file per hour."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jinja2

from ..errors import ValidationError
from .exporter import templates_dir

PORT = 8080
FILES = {"Dockerfile.j2": "Dockerfile", "k8s/deployment.yaml.j2": "k8s/deployment.yaml",
         "k8s/service.yaml.j2": "k8s/service.yaml", "k8s/hpa.yaml.j2": "k8s/hpa.yaml",
         "kserve.yaml.j2": "kserve.yaml", "rayserve.py.j2": "rayserve.py"}
LOG_FILES = {"k8s/compact-log.yaml.j2": "k8s/compact-log.yaml"}  # with a log URL only
# scheme://rest: no whitespace or quotes (the URL is written into YAML strings)
_LOG_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://[^\s\"'\\]+")
_CRONJOB_NAME_MAX = 52  # Kubernetes appends 11 characters to a CronJob's jobs' names


def deploy_templates() -> Path:
    """`templates/deploy` in a checkout, else the copy installed as shared data."""
    checkout = templates_dir() / "deploy"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "jupyter" / "nbconvert" / "templates" / "ship-deploy"


def k8s_name(name: str, version: str) -> str:
    """A DNS-1123 label for Kubernetes objects: lower case, '-', at most 63 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", f"{name}-v{version}".lower()).strip("-")
    return label[:63].rstrip("-") or "ship-service"


def _cronjob_name(base: str, suffix: str) -> str:
    """``base + suffix`` within a CronJob name's limit (``base`` shortened)."""
    return base[:_CRONJOB_NAME_MAX - len(suffix)].rstrip("-") + suffix


def check_log_url(url: str) -> str:
    """``url`` if it can hold the prediction log of every replica; else a ValidationError
    that says what can."""
    match = _LOG_URL.fullmatch(url)
    if match is None or match["scheme"] == "file":
        raise ValidationError(
            f"--log-dir {url!r} is no object-store URL; give one that every replica can "
            "write to, such as s3://bucket/prefix, gs://bucket/prefix or "
            "hdfs://host/path (without it, each pod keeps its own log on its own volume).",
            field="log_dir")
    return url


def write_deployment(folder: Path, *, name: str, version: str, ship_version: str,
                     python_version: str, workers: int = 1, image: str | None = None,
                     log_dir: str | None = None) -> list[Path]:
    """Render every deployment file into the bundle folder; the paths written.

    ``log_dir``: an object-store URL for the prediction log of every replica (see
    :func:`check_log_url`); None keeps each pod's log on its own volume."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(deploy_templates())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    values = {"name": name, "version": version, "ship_version": ship_version,
              "python_version": python_version, "port": PORT, "workers": workers,
              "replicas": 2, "k8s_name": k8s_name(name, version),
              "image": image or f"{k8s_name(name, version)}:latest",
              "log_dir": None if log_dir is None else check_log_url(log_dir),
              "compact_name": _cronjob_name(k8s_name(name, version), "-compact-log")}
    written = []
    for template, target in {**FILES, **(LOG_FILES if log_dir else {})}.items():
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**values), encoding="utf-8")
        written.append(path)
    return written
