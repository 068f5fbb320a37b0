"""Which deployed model version answers a request.

A service has one model name and one or more deployed versions (one bundle each).
Today every request without an explicit version goes to the champion; canary
percentages, shadow versions and auto-rollback (a later issue) belong here: ``route``
picks the version that answers, ``shadows`` the ones that see a copy of the request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .bundle import Bundle
from .errors import NotReady, UnknownError
from .pipeline import Pipeline

logger = logging.getLogger(__name__)


@dataclass
class Deployment:
    """One bundle (model version) in a service, loaded and warmed up off the event loop."""

    bundle: Bundle
    pipeline: Pipeline | None = None
    ready: bool = False
    error: str | None = None
    warmup_seconds: float | None = None

    @property
    def name(self) -> str:
        """The model name clients use (ship.yaml name)."""
        return self.bundle.manifest.name

    @property
    def version(self) -> str:
        """The version this deployment answers as (ship.yaml version)."""
        return self.bundle.manifest.version

    def load(self, workers: int) -> None:
        """Create the session, run the warm-up inference, then mark ready (blocking)."""
        started = time.perf_counter()
        try:
            pipeline = Pipeline(self.bundle, workers=workers)
            pipeline.warm_up()
        except Exception as exc:
            self.error = f"warm-up failed: {type(exc).__name__}: {exc}"
            logger.exception("model %s version %s: %s", self.name, self.version, self.error)
            return
        self.pipeline = pipeline
        self.warmup_seconds = time.perf_counter() - started
        self.ready = True

    def require(self) -> Pipeline:
        """The pipeline, or NotReady while warming up (or after a failed warm-up)."""
        if self.pipeline is None or not self.ready:
            reason = self.error or "is warming up; retry shortly"
            raise NotReady(f"model {self.name!r} version {self.version!r} {reason}.")
        return self.pipeline


class Router:
    """A service's deployments and the policy choosing among them (champion only, for now)."""

    def __init__(self, deployments: list[Deployment], champion: str | None = None) -> None:
        if not deployments:
            raise ValueError("a service needs at least one deployment")
        names = {d.name for d in deployments}
        if len(names) != 1:
            raise ValueError(f"one model name per service, got {sorted(names)}")
        self.name = deployments[0].name
        self.deployments = {d.version: d for d in deployments}
        self.champion = self.deployments[champion or deployments[0].version]

    @property
    def ready(self) -> bool:
        """True when every deployment finished its warm-up."""
        return all(d.ready for d in self.deployments.values())

    def check_model(self, name: str) -> None:
        """UnknownError unless ``name`` is this service's model."""
        if name != self.name:
            raise UnknownError(f"unknown model {name!r}; this service serves {self.name!r}.",
                               field="model_name")

    def version(self, name: str, version: str) -> Deployment:
        """The deployment of an explicit model version."""
        self.check_model(name)
        found = self.deployments.get(version)
        if found is None:
            raise UnknownError(f"unknown version {version!r} of model {name!r}; deployed: "
                               f"{sorted(self.deployments)}.", field="model_version")
        return found

    def route(self, name: str | None = None) -> Deployment:
        """The deployment that answers a request naming no version."""
        if name is not None:
            self.check_model(name)
        return self.champion

    def shadows(self, answering: Deployment) -> list[Deployment]:
        """Deployments that also score the request without answering it (none yet)."""
        return []
