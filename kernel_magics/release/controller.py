"""The gate at work: watch a live canary, decide, and what ``ship deploy NAME`` shows.

``ship serve NAME`` runs :class:`Gatekeeper` in a thread: every ``interval_s`` it reads
the release, and while a canary is live it compares it with the champion on the
prediction log since the canary's step began (evidence.py, gate.py) and, when the gate
says so, steps the canary up, promotes it or rolls it back (rollout.py). One gatekeeper
per service decides (a lock file): a second ``ship serve`` of the same service, or a
second worker, only serves.

:func:`release_view` is the release as people see it (``ship deploy NAME --json``, the
sidebar): the policy, recent decisions, the canary's live comparison, shadow reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..errors import ConflictError
from ..services import local_process, service_folder, service_log, service_versions
from ..serving.bundle import Bundle
from ..serving.release import Release
from ..workspace import Workspace
from . import gate, rollout
from .evidence import Task, canary_samples, shadow_report

logger = logging.getLogger(__name__)
GATE_LOCK = ".gate.lock"


def task_of(folder: Path, version: str, settings: gate.GateSettings) -> Task:
    return Task.of(Bundle.load(folder / version).schema, settings.regression_tolerance)


def evaluate(workspace: Workspace, name: str, release: Release,
             settings: gate.GateSettings, log: str | None = None) -> gate.Verdict | None:
    """The gate's verdict on the release's canary now (None: no canary)."""
    canary = release.canary
    if canary is None:
        return None
    if canary.max_disagreement is not None:  # a canary expected to differ (retrained)
        settings = replace(settings, max_disagreement=max(settings.max_disagreement,
                                                          canary.max_disagreement))
    folder = service_folder(workspace, name)
    samples = canary_samples(log or service_log(workspace, name), release,
                             task_of(folder, release.champion, settings))
    started = datetime.fromisoformat(canary.started)
    return gate.decide(gate.checks(samples, settings, len(canary.steps)),
                       version=canary.version,
                       percent=canary.percent, next_step=canary.next_step,
                       seconds_at_step=(datetime.now(UTC) - started).total_seconds(),
                       settings=settings)


def act(workspace: Workspace, name: str, release: Release, verdict: gate.Verdict
        ) -> Release | None:
    """Carry out the verdict's move on ``release`` (None when it says wait, or the
    canary changed meanwhile)."""
    canary = release.canary
    if verdict.action is None or canary is None:
        return None
    evidence = [c.to_json() for c in verdict.checks]
    try:
        if verdict.action == "rollback":
            return rollout.rollback(workspace, name, reason=verdict.reason, evidence=evidence,
                                    expected=canary)
        if verdict.action == "promote":
            return rollout.promote(workspace, name, reason=verdict.reason, evidence=evidence,
                                   expected=canary)
        assert verdict.percent is not None
        return rollout.step(workspace, name, verdict.percent, reason=verdict.reason,
                            evidence=evidence, expected=canary)
    except ConflictError:
        return None  # someone changed the release by hand meanwhile


class Gatekeeper:
    """Watches one service's canary in a thread until :meth:`stop`."""

    def __init__(self, workspace: Workspace, name: str, *, log: str | None = None,
                 settings: gate.GateSettings | None = None) -> None:
        self.workspace = workspace
        self.name = name
        self.log = log
        self.settings = settings or gate.GateSettings.from_workspace(workspace)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: IO[bytes] | None = None

    def start(self) -> bool:
        """Start watching; False when another gatekeeper holds this service."""
        folder = service_folder(self.workspace, self.name)
        lock = open(folder / GATE_LOCK, "a+b")  # noqa: SIM115 (held while running)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        self._lock = lock
        self._thread = threading.Thread(target=self._run, name=f"ship-gate-{self.name}",
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def tick(self) -> Release | None:
        """Look once; the new release when the gate moved it."""
        release = rollout.current_release(self.workspace, self.name)
        verdict = evaluate(self.workspace, self.name, release, self.settings, self.log)
        if verdict is None or verdict.action is None:
            return None
        moved = act(self.workspace, self.name, release, verdict)
        if moved is not None:
            logger.warning("service %s: %s", self.name, verdict.reason)
        return moved

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            try:
                self.tick()
            except Exception:  # a bad log segment, a registry hiccup: look again later
                logger.exception("service %s: the release gate failed this time",
                                 self.name)


def release_view(workspace: Workspace, name: str, *, reports: bool = True,
                 limit: int = 50) -> dict[str, Any]:
    """The release, its recent decisions (newest first), the canary's comparison and the
    shadows' reports: what ``ship deploy NAME --json`` prints."""
    folder = service_folder(workspace, name)
    release = rollout.current_release(workspace, name)
    settings = gate.GateSettings.from_workspace(workspace)
    history = rollout.decisions(workspace, name, limit)
    running = local_process(folder)
    view: dict[str, Any] = {
        "service": name, "champion": release.champion,
        "canary": None if release.canary is None else release.canary.to_json(),
        "shadows": list(release.shadows),
        "versions": service_versions(folder),
        "running": running is not None and running.alive,
        "decisions": [d.to_json() for d in history],
        "settings": settings.to_json(),
        "comparison": None, "shadow_reports": [],
    }
    if not reports:
        return view
    log = service_log(workspace, name)
    with contextlib.suppress(OSError):  # a log out of reach: the policy still shows
        verdict = evaluate(workspace, name, release, settings, log)
        if verdict is not None and release.canary is not None:
            view["comparison"] = verdict.to_json(release.canary.version)
    if release.shadows:
        task = task_of(folder, release.champion, settings)
        champion = Bundle.load(folder / release.champion).schema
        categorical = [f.name for f in champion.features if not f.numeric]
        for version in release.shadows:
            since = _added(history, version) or datetime.fromisoformat(release.updated)
            with contextlib.suppress(OSError):
                view["shadow_reports"].append(shadow_report(log, version, since,
                                                            task, categorical))
    return view


def _added(history: list[rollout.Decision], version: str) -> datetime | None:
    """When ``version`` last became a shadow (history is newest first)."""
    for decision in history:
        if decision.action == "shadow" and decision.version == version:
            return datetime.fromisoformat(decision.time)
    return None
