"""Changing a service's release, by hand or by the gate, and the record of every change.

``ship deploy``, ``%ship deploy``, the sidebar and the gate (controller.py) all call the
functions here. Each change happens under the service's lock (``.release.lock``):

1. release.json is replaced atomically (a running ``ship serve NAME`` follows it within
   a second: serving/follower.py);
2. the decision is appended to ``releases.jsonl`` with its evidence and reason;
3. the MLflow aliases move: ``challenger`` names the canary's model version, ``champion``
   the promoted one (a registry out of reach is appended as an ``aliases`` line, never
   undoes the release);
4. the service's kserve.yaml and rayserve.py are rendered again from the release.

Before the first change a service has no release.json: its champion is the version its
local process serves, else its newest build.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConflictError, NotFoundError, ValidationError
from ..services import local_process, service_folder, service_versions
from ..serving.release import (
    DEFAULT_STEPS,
    RELEASE_FILE,
    Canary,
    Release,
    ReleaseFileError,
    now_iso,
    read_release,
    write_release,
)
from ..workspace import Workspace

logger = logging.getLogger(__name__)
RELEASES_FILE = "releases.jsonl"
LOCK_FILE = ".release.lock"
ACTIONS = ("canary", "step", "promote", "rollback", "shadow", "unshadow")
# also in releases.jsonl: "aliases", the registry refused to move them after a change


@dataclass(frozen=True)
class Decision:
    """One change of a release, as releases.jsonl keeps it."""

    action: str
    version: str
    automatic: bool
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    percent: float | None = None
    aliases: str | None = None  # how the MLflow aliases moved (or why they did not)
    time: str = field(default_factory=now_iso)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def release_file(workspace: Workspace, name: str) -> Path:
    """.ship/services/NAME/release.json (which may not exist yet)."""
    return service_folder(workspace, name) / RELEASE_FILE


def current_release(workspace: Workspace, name: str) -> Release:
    """The service's release; before the first change, its champion is what its local
    process serves, else its newest build."""
    folder = service_folder(workspace, name)
    try:
        release = read_release(folder / RELEASE_FILE)
    except ReleaseFileError as exc:
        raise ValidationError(f"{exc} Fix or delete it; `ship deploy {name}` writes a "
                              "new one.", field="release") from None
    if release is not None:
        return release
    running = local_process(folder)
    if running is not None and running.alive and running.version:
        return Release(service=name, champion=running.version)
    return Release(service=name, champion=service_versions(folder)[0])


def pin_champion(workspace: Workspace, name: str) -> Release:
    """Write the release as it is now when the service has no release.json yet: before
    another version is built, so the new build does not become the champion by being
    the newest."""
    folder = service_folder(workspace, name)
    with locked(folder):
        release = current_release(workspace, name)
        if not (folder / RELEASE_FILE).is_file():
            write_release(folder / RELEASE_FILE, release)
    return release


def decisions(workspace: Workspace, name: str, limit: int = 50) -> list[Decision]:
    """The service's last ``limit`` decisions, newest first (unreadable lines skipped)."""
    path = service_folder(workspace, name) / RELEASES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found: list[Decision] = []
    for line in reversed(lines):
        if len(found) >= limit:
            break
        try:
            data = json.loads(line)
            found.append(Decision(**{k: data[k] for k in Decision.__dataclass_fields__
                                     if k in data}))
        except (ValueError, TypeError, KeyError):
            continue  # a line cut by a crash mid-append: the others still read
    return found


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One change of this service's release at a time (across processes)."""
    with open(folder / LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# -- the changes ----------------------------------------------------------------------------
def start_canary(workspace: Workspace, name: str, version: str, percent: float,
                 steps: list[float] | None = None, *, reason: str | None = None,
                 max_disagreement: float | None = None) -> Release:
    """Send ``percent`` % of requests to ``version``; the gate moves it up ``steps``.
    ``reason``: why, when not started by hand (`ship retrain` after its gate);
    ``max_disagreement``: the canary's own bound (serving/release.py's Canary)."""
    folder = service_folder(workspace, name)
    _check_version(folder, name, version)
    if not 0 < percent <= 100:
        raise ValidationError(f"--canary {percent:g}: give a percentage in (0, 100].",
                              field="percent")
    wanted = list(DEFAULT_STEPS) if steps is None else steps
    if any(not 0 < s <= 100 for s in wanted):
        raise ValidationError(f"--steps {wanted}: each step is a percentage in (0, 100].",
                              field="steps")
    ladder = tuple(sorted({percent, *(s for s in wanted if s > percent)}))
    with locked(folder):
        release = current_release(workspace, name)
        if release.canary is not None:
            raise ConflictError(f"canary {release.canary.version} is live at "
                                f"{release.canary.percent:g}%; promote or roll it back first "
                                f"(ship deploy {name} --promote | --rollback).")
        if version == release.champion:
            raise ConflictError(f"version {version} is the champion already.")
        new = replace(release, canary=Canary(version, percent, ladder,
                                                    max_disagreement=max_disagreement),
                      shadows=tuple(v for v in release.shadows if v != version),
                      updated=now_iso())
        ladder_text = ", ".join(f"{s:g}" for s in ladder)
        _commit(workspace, name, folder, new, Decision(
            "canary", version, reason is not None,
            f"canary {version} started {reason or 'by hand'} at {percent:g}% (steps "
            f"{ladder_text}) against champion {release.champion}", percent=percent),
            challenger=version)
    return new


def add_shadow(workspace: Workspace, name: str, version: str) -> Release:
    """Let ``version`` score a copy of every request, answering none."""
    folder = service_folder(workspace, name)
    _check_version(folder, name, version)
    with locked(folder):
        release = current_release(workspace, name)
        if version in release.versions:
            role = "the champion" if version == release.champion else \
                "a shadow" if version in release.shadows else "the canary"
            raise ConflictError(f"version {version} is {role} already.")
        new = replace(release, shadows=(*release.shadows, version), updated=now_iso())
        _commit(workspace, name, folder, new, Decision(
            "shadow", version, False, f"shadow {version} added by hand: it scores a copy "
            f"of each request, the client gets champion {release.champion}'s answer"))
    return new


def remove_shadow(workspace: Workspace, name: str, version: str) -> Release:
    """Stop sending copies to shadow ``version``."""
    folder = service_folder(workspace, name)
    with locked(folder):
        release = current_release(workspace, name)
        if version not in release.shadows:
            raise ConflictError(f"version {version} is no shadow of {name}; shadows: "
                                f"{', '.join(release.shadows) or 'none'}.")
        new = replace(release, shadows=tuple(v for v in release.shadows if v != version),
                      updated=now_iso())
        _commit(workspace, name, folder, new, Decision(
            "unshadow", version, False, f"shadow {version} removed by hand"))
    return new


def promote(workspace: Workspace, name: str, *, version: str | None = None,
            reason: str | None = None, evidence: list[dict[str, Any]] | None = None,
            expected: Canary | None = None) -> Release:
    """Make the canary the champion (``reason`` given: the gate decided it); with
    ``version`` and no canary live, make that built version the champion at once."""
    if version is not None:
        folder = service_folder(workspace, name)
        _check_version(folder, name, version)
        with locked(folder):
            release = current_release(workspace, name)
            if release.canary is None or release.canary.version != version:
                if release.canary is not None:
                    raise ConflictError(f"canary {release.canary.version} is live; promote "
                                        "or roll it back before promoting another version.")
                if version == release.champion:
                    raise ConflictError(f"version {version} is the champion already.")
                new = replace(release, champion=version,
                              shadows=tuple(v for v in release.shadows if v != version),
                              updated=now_iso())
                _commit(workspace, name, folder, new, Decision(
                    "promote", version, False, f"version {version} made champion by hand "
                    f"without a canary; champion {release.champion} retired"),
                    champion=version)
                return new
    return _end_canary(workspace, name, "promote", reason, evidence or [], expected)


def rollback(workspace: Workspace, name: str, *, reason: str | None = None,
             evidence: list[dict[str, Any]] | None = None,
             expected: Canary | None = None) -> Release:
    """Take the canary out; the champion answers everything again."""
    return _end_canary(workspace, name, "rollback", reason, evidence or [], expected)


def step(workspace: Workspace, name: str, percent: float, *, reason: str,
         evidence: list[dict[str, Any]], expected: Canary) -> Release | None:
    """Move the canary up to ``percent`` % (the gate's move); None when the canary
    changed since the gate looked."""
    folder = service_folder(workspace, name)
    with locked(folder):
        release = current_release(workspace, name)
        if release.canary != expected:
            return None
        new = replace(release, canary=replace(expected, percent=percent, started=now_iso()),
                      updated=now_iso())
        _commit(workspace, name, folder, new, Decision(
            "step", expected.version, True, reason, evidence, percent=percent))
    return new


def _end_canary(workspace: Workspace, name: str, action: str, reason: str | None,
                evidence: list[dict[str, Any]], expected: Canary | None) -> Release:
    folder = service_folder(workspace, name)
    with locked(folder):
        release = current_release(workspace, name)
        canary = release.canary
        if canary is None:
            raise ConflictError(
                f"service {name} has no canary to {action}; start one with `ship deploy "
                f"{name} --version V --canary PCT`.")
        if expected is not None and canary != expected:
            raise ConflictError(f"the canary changed while the gate looked ({action} "
                                "skipped).")
        if action == "promote":
            new = replace(release, champion=canary.version, canary=None, updated=now_iso())
            text = reason or (f"canary {canary.version} promoted by hand at "
                              f"{canary.percent:g}%; champion {release.champion} retired")
        else:
            new = replace(release, canary=None, updated=now_iso())
            text = reason or (f"canary {canary.version} rolled back by hand at "
                              f"{canary.percent:g}%; champion {release.champion} answers all")
        _commit(workspace, name, folder, new, Decision(
            action, canary.version, reason is not None, text, evidence,
            percent=canary.percent),
            champion=canary.version if action == "promote" else None, aliases=True)
    return new


def _check_version(folder: Path, name: str, version: str) -> None:
    built = service_versions(folder)
    if version not in built:
        raise NotFoundError("version", f"{name}/{version}",
                            hint=f"Built versions of {name}: {', '.join(built)}. Build "
                                 f"another with `ship build NOTEBOOK --name {name}`.")


def _commit(workspace: Workspace, name: str, folder: Path, release: Release,
            decision: Decision, *, champion: str | None = None,
            challenger: str | None = None, aliases: bool = False) -> None:
    """Under the lock: write the release (first: traffic moves within a second), record
    the decision, move the MLflow aliases (``champion``/``challenger`` given: point them
    there; ``aliases`` alone: remove ``challenger``), render the manifests. A registry
    out of reach is recorded as a decision of its own (action ``aliases``)."""
    write_release(folder / RELEASE_FILE, release)
    move = _plan_aliases(folder, champion=champion, challenger=challenger) \
        if champion is not None or challenger is not None or aliases else None
    if move is not None:
        decision = replace(decision, aliases=move.describe())
    _append(folder, decision)
    failed = None if move is None else _move_aliases(workspace, move)
    if failed is not None:
        _append(folder, Decision("aliases", decision.version, decision.automatic,
                                 f"MLflow aliases not moved ({move.describe() if move else ''}"
                                 f"): {failed}; set them with `ship models alias`"))
    try:
        _write_manifests(folder, release)
    except Exception as exc:  # the release changed; a manifest is a copy of it
        logger.warning("service %s: kserve.yaml/rayserve.py not rendered: %s", name, exc)


def _append(folder: Path, decision: Decision) -> None:
    with open(folder / RELEASES_FILE, "a", encoding="utf-8") as out:
        out.write(json.dumps(decision.to_json()) + "\n")


def _write_manifests(folder: Path, release: Release) -> None:
    from ..bundle.deploy import write_release_manifests
    from ..serving.bundle import Bundle

    log_dir = Bundle.load(folder / release.champion).log_dir
    write_release_manifests(folder, release,
                            log_dir=log_dir if "://" in log_dir and not
                            log_dir.startswith("file://") else None)


@dataclass(frozen=True)
class AliasMove:
    """How a change moves the MLflow aliases of the service's registered model."""

    model: str | None
    champion: str | None = None  # model version to point ``champion`` at
    challenger: str | None = None  # model version for ``challenger``; None: remove it

    def describe(self) -> str:
        if not self.model:
            return "no registered model in the bundle's lineage: aliases unchanged"
        moved = [f"champion -> {self.model} version {self.champion}"] if self.champion else []
        moved.append(f"challenger -> {self.model} version {self.challenger}"
                     if self.challenger else "challenger removed")
        return "; ".join(moved)


def _plan_aliases(folder: Path, *, champion: str | None, challenger: str | None
                  ) -> AliasMove:
    """The alias move for bundle versions ``champion`` / ``challenger`` (from their
    lineage; no challenger: remove that alias)."""
    from ..serving.bundle import Bundle
    from ..serving.errors import BundleError

    try:
        chosen = challenger or champion or service_versions(folder)[0]
        lineage = Bundle.load(folder / chosen).manifest.lineage
    except BundleError:
        return AliasMove(None)
    version = str(lineage.model_version) if lineage.model_version else None
    return AliasMove(lineage.registered_model,
                     champion=version if champion is not None else None,
                     challenger=version if challenger is not None else None)


def _move_aliases(workspace: Workspace, move: AliasMove) -> str | None:
    """Apply ``move`` in the workspace's registry; None, or why it could not."""
    if not move.model:
        return None
    try:
        from ..export.registry import client_for, set_alias

        client = client_for(workspace)
        if move.champion:
            set_alias(client, move.model, move.champion, "champion")
        if move.challenger:
            set_alias(client, move.model, move.challenger, "challenger")
        elif "challenger" in (client.get_registered_model(move.model).aliases or {}):
            client.delete_registered_model_alias(move.model, "challenger")
        return None
    except Exception as exc:  # the registry out of reach must not undo the release
        logger.warning("MLflow aliases not moved: %s", exc)
        return f"{type(exc).__name__}: {exc}"


def change(workspace: Workspace, name: str, action: str, *, version: str | None = None,
           percent: float | None = None, steps: list[float] | None = None) -> Release:
    """One change by hand, as ``ship deploy``, ``%ship deploy`` and the sidebar ask for
    it: ``action`` is canary, shadow, unshadow, promote or rollback."""
    if action in ("canary", "shadow", "unshadow") and not version:
        raise ValidationError(f"{action} needs a version (--version V).", field="version")
    if action == "canary":
        assert version is not None
        if percent is None:
            raise ValidationError("a canary needs its share of traffic (--canary PCT).",
                                  field="percent")
        return start_canary(workspace, name, version, percent, steps)
    if action == "shadow":
        assert version is not None
        return add_shadow(workspace, name, version)
    if action == "unshadow":
        assert version is not None
        return remove_shadow(workspace, name, version)
    if action == "promote":
        return promote(workspace, name, version=version)
    if action == "rollback":
        return rollback(workspace, name)
    raise ValidationError(f"unknown action {action!r}; one of canary, shadow, unshadow, "
                          "promote, rollback.", field="action")


def parse_steps(text: str | None) -> list[float] | None:
    """``"5,25,50,100"`` as percentages; ValidationError names a bad one."""
    if text is None or not text.strip():
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValidationError(f"--steps {text!r}: give percentages separated by commas, "
                              "like 5,25,50,100.", field="steps") from None
