"""Deployment files for a bundle: Dockerfile, k8s/ (Deployment, Service, HPA), kserve.yaml
and rayserve.py, rendered from `templates/deploy/` with Jinja2."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jinja2

from .exporter import templates_dir

PORT = 8080
FILES = {"Dockerfile.j2": "Dockerfile", "k8s/deployment.yaml.j2": "k8s/deployment.yaml",
         "k8s/service.yaml.j2": "k8s/service.yaml", "k8s/hpa.yaml.j2": "k8s/hpa.yaml",
         "kserve.yaml.j2": "kserve.yaml", "rayserve.py.j2": "rayserve.py"}


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


def write_deployment(folder: Path, *, name: str, version: str, ship_version: str,
                     python_version: str, workers: int = 1,
                     image: str | None = None) -> list[Path]:
    """Render every deployment file into the bundle folder; the paths written."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(deploy_templates())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    values = {"name": name, "version": version, "ship_version": ship_version,
              "python_version": python_version, "port": PORT, "workers": workers,
              "replicas": 2, "k8s_name": k8s_name(name, version),
              "image": image or f"{k8s_name(name, version)}:latest"}
    written = []
    for template, target in FILES.items():
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**values), encoding="utf-8")
        written.append(path)
    return written
