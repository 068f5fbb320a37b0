"""`ship watch NAME`: the loop's controller.

Every ``[loop] interval_s`` it looks at the service's current drift window (``[drift]
window``) and, one thing at a time:

- while a canary is live it waits: the release gate in `ship serve NAME` promotes or
  rolls it back, and the watcher reports that decision as an event;
- while it backs off after a rejected challenger it waits (``backoff_s``, doubled after
  each further rejection up to ``max_backoff_s``; a released challenger resets it);
- a window that began before the last retraining is not judged again (its traffic is
  what that retraining saw);
- otherwise, on dataset drift (``on_drift``), or accuracy from feedback below
  ``min_accuracy`` with at least ``min_labelled_rows`` labels, it retrains
  (retrain.py: gate, canary).

Each step is an event in ``loop.jsonl`` (events.py); the watcher's state (started, back-off,
last retraining) is ``watch.json`` beside it, so a restarted watcher keeps its back-off,
and a lock file keeps it to one watcher per service.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from ..errors import ConflictError, ShipError
from ..services import process_alive, service_folder
from ..workspace import Workspace
from . import events, gate
from .retrain import RetrainResult, retrain
from .settings import LoopSettings

logger = logging.getLogger(__name__)
STATE_FILE = "watch.json"
WATCH_LOCK = ".watch.lock"


@dataclass
class WatchState:
    """What a watcher keeps between looks (and across restarts)."""

    pid: int = 0
    started: str | None = None
    last_check: str | None = None
    last_retrain: str | None = None
    rejections: int = 0
    backoff_until: str | None = None
    canary: str | None = None  # the canary a retraining released, until its end is told
    releases_seen: int = 0  # releases.jsonl lines already told as events

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trigger:
    """Why the watcher retrains now."""

    reason: str  # drift | accuracy
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


def state_file(workspace: Workspace, name: str) -> Path:
    return service_folder(workspace, name) / STATE_FILE


def read_state(workspace: Workspace, name: str) -> WatchState:
    try:
        data = json.loads(state_file(workspace, name).read_text(encoding="utf-8"))
        known = WatchState.__dataclass_fields__
        return WatchState(**{k: v for k, v in data.items() if k in known})
    except (OSError, ValueError, TypeError):
        return WatchState()


def _write_state(workspace: Workspace, name: str, state: WatchState) -> None:
    path = state_file(workspace, name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _now() -> datetime:
    return datetime.now(UTC)


class Watcher:
    """One service's loop; :meth:`tick` looks once, :meth:`run` until stopped."""

    def __init__(self, workspace: Workspace, name: str, *, window: str | None = None,
                 settings: LoopSettings | None = None, notebook: Path | None = None,
                 progress: Any = None) -> None:
        service_folder(workspace, name)  # NotFoundError for an unknown service
        self.workspace = workspace
        self.name = name
        self.window = window
        self.settings = settings or LoopSettings.from_workspace(workspace)
        self.notebook = notebook
        self.progress = progress
        self.state = read_state(workspace, name)
        if not state_file(workspace, name).is_file():  # tell release decisions from now on
            from ..release.rollout import decisions

            self.state.releases_seen = len(decisions(workspace, name, limit=10_000))
        self._lock: IO[bytes] | None = None

    # -- one look ---------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> RetrainResult | None:
        """Look once: tell release decisions, then retrain if a trigger fires (the
        result), else None."""
        now = now or _now()
        self.state.last_check = now.isoformat(timespec="seconds")
        try:
            self._tell_releases()
            if self._waiting(now):
                return None
            trigger = self.trigger(now)
            if trigger is None:
                return None
            return self._retrain(trigger, now)
        finally:
            _write_state(self.workspace, self.name, self.state)

    def trigger(self, now: datetime) -> Trigger | None:
        """Dataset drift or low accuracy in the current window (None: neither)."""
        from ..monitor.report import drift_report

        report = drift_report(self.workspace, self.name, window=self.window, history=1,
                              now=now)
        start = report.window_start
        if self.state.last_retrain and start is not None and \
                start < datetime.fromisoformat(self.state.last_retrain):
            return None  # this window's traffic was what the last retraining saw
        dataset = report.dataset()
        if self.settings.on_drift and dataset["drifted"]:
            drifted = dataset["drifted_features"]
            return Trigger("drift", f"dataset drift: {len(drifted)} of {dataset['judged']} "
                           f"features drift ({dataset['method']}) in the window from "
                           f"{start:%H:%M:%S} UTC" if start else "dataset drift",
                           {"share": dataset["share"], "drifted_features": drifted[:20],
                            "window_start": start.isoformat() if start else None})
        performance = report.performance
        if self.settings.min_accuracy > 0 and performance is not None and \
                performance["metric"] == "accuracy" and \
                performance["labelled"] >= self.settings.min_labelled_rows and \
                performance["value"] < self.settings.min_accuracy:
            return Trigger("accuracy", f"accuracy {performance['value']:.3f} on "
                           f"{performance['labelled']} labelled rows, below [loop] "
                           f"min_accuracy = {self.settings.min_accuracy:g}", performance)
        return None

    def _waiting(self, now: datetime) -> bool:
        from ..release.rollout import current_release

        if current_release(self.workspace, self.name).canary is not None:
            return True  # one release at a time: the release gate decides it first
        until = self.state.backoff_until
        return until is not None and now < datetime.fromisoformat(until)

    def _retrain(self, trigger: Trigger, now: datetime) -> RetrainResult | None:
        events.record(self.workspace, self.name, "trigger", trigger.message,
                      reason=trigger.reason, **trigger.figures)
        self.state.last_retrain = now.isoformat(timespec="seconds")
        try:
            result = retrain(self.workspace, self.name, notebook=self.notebook,
                             settings=self.settings, progress=self.progress)
        except ShipError as exc:  # told as an event by retrain(); try again after a pause
            self._back_off(now, f"retraining failed: {exc}")
            return None
        if result.decision in (gate.REJECTED, gate.NO_HOLDOUT, gate.FAILED):
            self._back_off(now, f"challenger {result.decision}")
        elif result.decision == gate.CANARY:
            self.state.rejections, self.state.backoff_until = 0, None
            self.state.canary = result.challenger.version if result.challenger else None
        return result

    def _back_off(self, now: datetime, why: str) -> None:
        self.state.rejections += 1
        seconds = min(self.settings.backoff_s * 2 ** (self.state.rejections - 1),
                      self.settings.max_backoff_s)
        until = now + timedelta(seconds=seconds)
        self.state.backoff_until = until.isoformat(timespec="seconds")
        events.record(self.workspace, self.name, "backoff",
                      f"{why}; next try after {until:%Y-%m-%d %H:%M:%S} UTC ({seconds:g} s)",
                      until=self.state.backoff_until, rejections=self.state.rejections)

    def _tell_releases(self) -> None:
        """Release decisions made since the last look (promote, rollback, steps), as
        events: the loop's story has its ending in one place."""
        from ..release.rollout import decisions

        history = decisions(self.workspace, self.name, limit=10_000)[::-1]  # oldest first
        if self.state.releases_seen > len(history):  # the file was replaced
            self.state.releases_seen = 0
        for decision in history[self.state.releases_seen:]:
            events.record(self.workspace, self.name, "release",
                          f"{decision.action} {decision.version}: {decision.reason}",
                          action=decision.action, version=decision.version,
                          automatic=decision.automatic)
            if decision.action in ("promote", "rollback") and \
                    decision.version == self.state.canary:
                self.state.canary = None
        self.state.releases_seen = len(history)

    # -- the long-running process ----------------------------------------------------
    def hold(self) -> None:
        """Take the service's watch lock (ConflictError: another watcher runs)."""
        lock = open(service_folder(self.workspace, self.name) / WATCH_LOCK, "a+b")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise ConflictError(f"another `ship watch {self.name}` is running (pid "
                                f"{read_state(self.workspace, self.name).pid}); stop it "
                                "first.") from None
        self._lock = lock

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        """Look every ``interval_s`` until ``stop`` is set (``once``: one look)."""
        self.hold()
        try:
            self.state.pid, self.state.started = os.getpid(), _now().isoformat(
                timespec="seconds")
            events.record(self.workspace, self.name, "watch",
                          f"watching {self.name}: every {self.settings.interval_s:g} s, "
                          f"retrain on {self._policy()}", pid=self.state.pid)
            _write_state(self.workspace, self.name, self.state)
            while True:
                started = time.monotonic()
                try:
                    self.tick()
                except ShipError as exc:
                    logger.warning("ship watch %s: %s", self.name, exc)
                    events.record(self.workspace, self.name, "error", str(exc))
                except Exception as exc:  # a bad segment, a registry hiccup: look again
                    logger.exception("ship watch %s: the look failed", self.name)
                    events.record(self.workspace, self.name, "error",
                                  f"{type(exc).__name__}: {exc}")
                if once:
                    break
                if stop.wait(max(0.0, self.settings.interval_s - (time.monotonic() -
                                                                   started))):
                    break
            events.record(self.workspace, self.name, "watch", f"stopped watching {self.name}")
        finally:
            self.state.pid = 0
            _write_state(self.workspace, self.name, self.state)
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def _policy(self) -> str:
        parts = []
        if self.settings.on_drift:
            parts.append("dataset drift")
        if self.settings.min_accuracy > 0:
            parts.append(f"accuracy below {self.settings.min_accuracy:g} (at least "
                         f"{self.settings.min_labelled_rows} labels)")
        return " or ".join(parts) or "nothing ([loop] on_drift = false, min_accuracy = 0)"


def watch_status(workspace: Workspace, name: str, *, limit: int = 20) -> dict[str, Any]:
    """`ship watch NAME --status`: the watcher's state, the release, the latest events."""
    from ..release.rollout import current_release
    state = read_state(workspace, name)
    alive = bool(state.pid) and process_alive(state.pid)
    return {"service": name, "running": alive, "state": state.to_json(),
            "release": current_release(workspace, name).to_json(),
            "settings": LoopSettings.from_workspace(workspace).to_json(),
            "events": [e.to_json() for e in events.read_events(workspace, name, limit)]}

