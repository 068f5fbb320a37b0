"""A running service follows its release.json: no restart, no failed request.

Every ``interval`` seconds each worker looks at the file's modification stamp. When it
changed, the worker reads the release, loads and warms up every version it names that
is not loaded yet (off the event loop; requests keep going to the old split meanwhile),
then applies it in one assignment (:meth:`Router.apply`). A version the release no
longer names stops taking new requests; the requests it is answering finish (they hold
their deployment). A release that does not parse, names a folder that is no bundle, or
a version whose warm-up fails is not applied: the service keeps the split it has,
``error`` says why (``GET /version``), and the worker tries again after ``retry_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread

from .bundle import Bundle
from .errors import BundleError
from .release import Release, ReleaseFileError, read_release
from .router import Deployment, Router

logger = logging.getLogger(__name__)
INTERVAL_S = 0.5
RETRY_S = 5.0


class ReleaseFollower:
    """Applies each new version of ``release.json`` to a router."""

    def __init__(self, path: Path, router: Router, *, workers: int = 1,
                 loaded: Callable[[Deployment], None] = lambda d: None,
                 interval: float = INTERVAL_S) -> None:
        self.path = path
        self.router = router
        self.workers = workers
        self.loaded = loaded
        self.interval = interval
        self.error: str | None = None
        self._stamp: tuple[int, int, int] | None = None  # the first check reads it again
        self._retry_at = 0.0

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    async def run(self) -> None:
        """Check forever (the service's lifespan cancels it)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # a bug here must not stop the following
                logger.exception("release %s: following failed", self.path)

    async def check(self) -> None:
        """Apply the file's release if it changed since the last look."""
        stamp = self._stat()
        if stamp is None or stamp == self._stamp and (
                self.error is None or time.monotonic() < self._retry_at):
            return
        self._stamp = stamp
        try:
            release = read_release(self.path)
            if release is not None:
                await self.apply(release)
            self.error = None
        except (ReleaseFileError, BundleError, ValueError) as exc:
            self.error = str(exc)
            self._retry_at = time.monotonic() + RETRY_S
            logger.error("release %s not applied (still serving %s): %s", self.path,
                         self._serving(), exc)

    async def apply(self, release: Release) -> None:
        """Load what ``release`` adds, then route by it; ValueError (nothing changed) when
        a version cannot be loaded."""
        deployments = dict(self.router.deployments)
        for version in release.versions:
            if version in deployments:
                continue
            deployment = Deployment(Bundle.load(self.path.parent / version))
            if deployment.version != version or deployment.name != self.router.name:
                raise ValueError(f"folder {version} holds {deployment.name!r} version "
                                 f"{deployment.version!r}, not {self.router.name!r} version "
                                 f"{version!r}.")
            await anyio.to_thread.run_sync(deployment.load, self.workers)
            if not deployment.ready:
                raise ValueError(f"version {version}: {deployment.error}")
            self.loaded(deployment)
            deployments[version] = deployment
        self.router.apply(release, deployments)
        logger.info("release applied: %s", self._serving())

    def _serving(self) -> str:
        split = self.router.split
        text = f"champion {split.champion.version}"
        if split.canary is not None:
            text += f", canary {split.canary.version} at {split.percent:g}%"
        if split.shadows:
            text += ", shadows " + ", ".join(d.version for d in split.shadows)
        return text
