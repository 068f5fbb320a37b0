"""Which deployed model version answers a request, and which ones see a copy.

A service has one model name and one or more deployed versions (one bundle each). Its
release (release.py: champion, canary with a percentage, shadows) says how requests
split: ``route`` picks the version that answers a request naming none, ``shadows`` the
ones that score a copy after it answered. A new release is applied whole, in one
assignment (:meth:`Router.apply`), once every version in it is loaded and warmed up:
a request sees the old split or the new one, never half of each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .bundle import Bundle
from .errors import NotReady, UnknownError
from .pipeline import Pipeline
from .release import Release, takes_canary

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


# The champion scores a copy of at most this many canary requests a second (per
# worker): enough for the gate to compare predictions within seconds, a bounded cost
# when a canary takes a large share of heavy traffic.
COMPARE_PER_S = 20.0


class Budget:
    """A token bucket: ``rate`` takes a second, at most one second's worth saved up."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Split:
    """The routing of one release over loaded deployments (replaced whole, never edited)."""

    champion: Deployment
    canary: Deployment | None = None
    percent: float = 0.0
    shadows: tuple[Deployment, ...] = ()
    release: Release | None = None


class Router:
    """A service's deployments and the release choosing among them."""

    def __init__(self, deployments: list[Deployment], release: Release | None = None) -> None:
        if not deployments:
            raise ValueError("a service needs at least one deployment")
        names = {d.name for d in deployments}
        if len(names) != 1:
            raise ValueError(f"one model name per service, got {sorted(names)}")
        self.name = deployments[0].name
        self.deployments = {d.version: d for d in deployments}
        self.split = Split(deployments[0])
        self.compare = Budget(COMPARE_PER_S)
        if release is not None:
            self.apply(release, self.deployments)

    @property
    def champion(self) -> Deployment:
        return self.split.champion

    @property
    def release(self) -> Release | None:
        return self.split.release

    @property
    def ready(self) -> bool:
        """True when every deployment finished its warm-up."""
        return all(d.ready for d in self.deployments.values())

    def apply(self, release: Release, deployments: dict[str, Deployment]) -> None:
        """Route by ``release`` over ``deployments`` (every version it names, loaded); the
        versions it no longer names stop taking requests (in-flight ones finish)."""
        missing = [v for v in release.versions if v not in deployments]
        if missing:
            raise ValueError(f"release names versions that are not loaded: {missing}")
        canary = release.canary
        kept = {v: deployments[v] for v in release.versions}
        split = Split(champion=kept[release.champion],
                      canary=None if canary is None else kept[canary.version],
                      percent=0.0 if canary is None else canary.percent,
                      shadows=tuple(kept[v] for v in release.shadows
                                    if v != release.champion and
                                    (canary is None or v != canary.version)),
                      release=release)
        self.deployments, self.split = kept, split  # both, before the next await

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

    def route(self, name: str | None = None, key: str | None = None) -> Deployment:
        """The deployment that answers a request naming no version: the canary for its
        share of requests (the same one for the same routing ``key``), else the champion."""
        if name is not None:
            self.check_model(name)
        split = self.split
        if split.canary is not None and takes_canary(split.percent, key):
            return split.canary
        return split.champion

    def shadows(self, answering: Deployment) -> tuple[Deployment, ...]:
        """Deployments that score a copy of a request ``answering`` answered: the shadows;
        and the champion when the canary answered (up to ``COMPARE_PER_S`` a second), so
        that the gate compares their predictions on the same requests."""
        split = self.split
        if split.canary is not None and answering is split.canary:
            if self.compare.take():
                return (split.champion, *split.shadows)
            return split.shadows
        if answering is split.champion:
            return split.shadows
        return ()  # a pinned version (/versions/{v}/) answered: no comparison to make
