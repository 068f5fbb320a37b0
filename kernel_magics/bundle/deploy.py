"""Deployment files for a bundle: Dockerfile, k8s/ (Deployment, Service, HPA, the loop's
`ship watch` CronJob), kserve.yaml, kserve-grpc.yaml
and rayserve.py, rendered from `templates/deploy/` with Jinja2; and for a whole service,
its release (champion, canary, shadows) as kserve.yaml, kserve-grpc.yaml and rayserve.py in
``.ship/services/NAME/`` (:func:`write_release_manifests`).

The container serves HTTP on ``PORT`` and V2 over gRPC on ``GRPC_PORT`` (the image's
``SHIP_GRPC_PORT``); k8s/ exposes both. KServe routes one port per container, so
kserve-grpc.yaml is a second InferenceService (``NAME-grpc``) of the same image whose
port is the gRPC one.

With a log URL (``ship build --log-dir s3://bucket/prefix``) every replica writes its
prediction log there instead of to its pod's own volume, and k8s/compact-log.yaml (a
CronJob) merges that log into a file per hour."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from ..errors import ValidationError
from .templates import templates_dir

if TYPE_CHECKING:
    from ..serving.release import Release

PORT = 8080
GRPC_PORT = 8081  # KServe's and Triton's convention for V2 over gRPC
GRPC_SUFFIX = "-grpc"  # the gRPC InferenceService: the REST one's name + this
FILES = {"Dockerfile.j2": "Dockerfile", "k8s/deployment.yaml.j2": "k8s/deployment.yaml",
         "k8s/service.yaml.j2": "k8s/service.yaml", "k8s/hpa.yaml.j2": "k8s/hpa.yaml",
         "kserve.yaml.j2": "kserve.yaml", "rayserve.py.j2": "rayserve.py",
         "k8s/watch.yaml.j2": "k8s/watch.yaml"}
LOG_FILES = {"k8s/compact-log.yaml.j2": "k8s/compact-log.yaml"}  # with a log URL only
RELEASE_FILES = {"release-kserve.yaml.j2": "kserve.yaml",  # into the service folder
                 "release-rayserve.py.j2": "rayserve.py"}
# rendered again with grpc=True (the gRPC InferenceService), in the bundle and the service
GRPC_FILES = {"kserve.yaml.j2": "kserve-grpc.yaml",
              "release-kserve.yaml.j2": "kserve-grpc.yaml"}
# scheme://rest: no whitespace or quotes (the URL is written into YAML strings)
_LOG_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://[^\s\"'\\]+")
_CRONJOB_NAME_MAX = 52  # Kubernetes appends 11 characters to a CronJob's jobs' names
# KServe names the predictor's Knative revisions NAME-predictor-00001: DNS labels too (63)
_ISVC_NAME_MAX = 63 - len("-predictor-00001")


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


def isvc_name(service: str) -> str:
    """The InferenceService name of a whole service: KServe's format (lower case, '-', a
    letter first), short enough for the names KServe derives from it."""
    label = re.sub(r"[^a-z0-9-]+", "-", service.lower()).strip("-")
    if not label[:1].isalpha():
        label = f"ship-{label}"
    return label[:_ISVC_NAME_MAX].rstrip("-")


def grpc_name(name: str, limit: int = 63) -> str:
    """The gRPC InferenceService's name for the REST one's ``name``: shortened so that
    the suffix always fits within ``limit`` (the two never share a name)."""
    return name[:limit - len(GRPC_SUFFIX)].rstrip("-") + GRPC_SUFFIX


def kserve_percent(percent: float) -> int:
    """A canary's share as KServe's ``canaryTrafficPercent`` (whole percents): rounded,
    at least 1 so that a canary under 1 % still gets requests."""
    return max(1, min(100, round(percent)))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(deploy_templates())),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


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
    env = _environment()
    values = {"name": name, "version": version, "ship_version": ship_version,
              "python_version": python_version, "port": PORT, "grpc_port": GRPC_PORT,
              "workers": workers, "replicas": 2, "k8s_name": k8s_name(name, version),
              "kserve_name": k8s_name(name, version), "grpc": False,
              "image": image or f"{k8s_name(name, version)}:latest",
              "log_dir": None if log_dir is None else check_log_url(log_dir),
              "compact_name": _cronjob_name(k8s_name(name, version), "-compact-log"),
              "watch_name": _cronjob_name(k8s_name(name, version), "-watch")}
    grpc = {**values, "grpc": True, "kserve_name": grpc_name(k8s_name(name, version))}
    jobs = [(template, target, values)
            for template, target in {**FILES, **(LOG_FILES if log_dir else {})}.items()]
    jobs.append(("kserve.yaml.j2", GRPC_FILES["kserve.yaml.j2"], grpc))
    written = []
    for template, target, options in jobs:
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**options), encoding="utf-8")
        written.append(path)
    return written


def write_release_manifests(service_folder: Path, release: Release, *,
                            log_dir: str | None = None,
                            image: str | None = None) -> list[Path]:
    """Render the service's release into ``service_folder`` (``.ship/services/NAME/``):
    kserve.yaml, rayserve.py and kserve-grpc.yaml (the same InferenceService for V2 over
    gRPC, named ``NAME-grpc``); the paths written. Call it again whenever the release
    changes.

    kserve.yaml is one InferenceService whose predictor is the newest revision: with a
    canary, the canary version's image with ``canaryTrafficPercent`` (KServe sends the
    rest to the last rolled-out revision, which must be the champion); without one, the
    champion's image. KServe has no shadows: the file names them in a comment.
    rayserve.py serves every version of the release with Ship's own router, following
    release.json. ``image``: the predictor's image (default: the version's
    ``k8s_name(name, version):latest``, as its bundle's kserve.yaml has it);
    ``log_dir``: as for :func:`write_deployment`."""
    from ..serving.release import RELEASE_FILE

    name = release.service or service_folder.name
    newest = release.champion if release.canary is None else release.canary.version
    values = {"name": name, "isvc_name": isvc_name(name), "port": PORT,
              "grpc_port": GRPC_PORT, "grpc": False, "replicas": 2,
              "champion": release.champion, "canary": release.canary,
              "canary_percent": (None if release.canary is None
                                 else kserve_percent(release.canary.percent)),
              "shadows": list(release.shadows), "newest": newest,
              "image": image or f"{k8s_name(name, newest)}:latest",
              "release_file": RELEASE_FILE,
              "log_dir": None if log_dir is None else check_log_url(log_dir)}
    env = _environment()
    texts = {target: env.get_template(template).render(**values)
             for template, target in RELEASE_FILES.items()}  # all rendered before any write
    texts[GRPC_FILES["release-kserve.yaml.j2"]] = env.get_template(
        "release-kserve.yaml.j2").render(**{
            **values, "grpc": True,
            "isvc_name": grpc_name(isvc_name(name), _ISVC_NAME_MAX)})
    written = []
    service_folder.mkdir(parents=True, exist_ok=True)
    for target, text in texts.items():
        path = service_folder / target
        temporary = path.with_name(f".{target}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)  # a reader sees the old file or the new one
        written.append(path)
    return written
