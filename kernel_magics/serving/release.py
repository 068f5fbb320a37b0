"""A service's release: which versions take traffic, the policy file that says so.

``.ship/services/NAME/release.json`` (beside the version folders ``1/``, ``2/`` ...)::

    {"format": 1,
     "service": "churn",
     "champion": "1",                           answers every request not sent elsewhere
     "canary": {"version": "2",                 or null
                "percent": 5.0,                 share of requests it answers now
                "steps": [5.0, 25.0, 50.0, 100.0],  the gate moves it up these
                "started": "2026-12-06T19:30:00+00:00"},  when the current step began
     "shadows": ["3"],                          score a copy of each request, answer none
     "updated": "2026-12-06T19:30:00.123456+00:00"}

The runtime only reads it (:func:`read_release`); the release stage writes it
(:func:`write_release`, atomically: a reader sees the old file or the new one). A canary
share is split per request: with a routing key (the ``x-ship-routing-key`` header) the
same key always meets the same version (:func:`takes_canary`).
"""

from __future__ import annotations

import json
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RELEASE_FILE = "release.json"
FORMAT = 1
ROUTING_HEADER = "x-ship-routing-key"
VERSION_HEADER = "x-ship-model-version"  # which version answered an /invocations request
DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)


class ReleaseFileError(ValueError):
    """release.json is not a release this runtime can follow; says what is wrong."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Canary:
    """The version answering ``percent`` % of requests while the gate watches it."""

    version: str
    percent: float
    steps: tuple[float, ...] = DEFAULT_STEPS
    started: str = field(default_factory=now_iso)
    # The disagreement with the champion the gate allows this canary, when it is expected
    # to differ (a retrained challenger: what its gate measured on recent rows, plus
    # [release] max_disagreement); None: [release] max_disagreement.
    max_disagreement: float | None = None

    @property
    def next_step(self) -> float | None:
        """The next share up the steps; None at the last one."""
        higher = [s for s in self.steps if s > self.percent]
        return min(higher) if higher else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version, "percent": self.percent,
                                "steps": list(self.steps), "started": self.started}
        if self.max_disagreement is not None:
            data["max_disagreement"] = self.max_disagreement
        return data


@dataclass(frozen=True)
class Release:
    """Champion, at most one canary, any number of shadows."""

    service: str
    champion: str
    canary: Canary | None = None
    shadows: tuple[str, ...] = ()
    updated: str = field(default_factory=now_iso)

    @property
    def versions(self) -> list[str]:
        """Every version the service must hold loaded: champion, canary, shadows."""
        found = [self.champion]
        if self.canary is not None:
            found.append(self.canary.version)
        found.extend(v for v in self.shadows if v not in found)
        return found

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "service": self.service, "champion": self.champion,
                "canary": None if self.canary is None else self.canary.to_json(),
                "shadows": list(self.shadows), "updated": self.updated}

    @classmethod
    def from_json(cls, data: Any, where: str = RELEASE_FILE) -> Release:
        """Validate a parsed release.json; ReleaseFileError names the bad field."""
        if not isinstance(data, dict):
            raise ReleaseFileError(f"{where}: expected a JSON object.")
        if data.get("format", FORMAT) != FORMAT:
            raise ReleaseFileError(f"{where}: format {data.get('format')!r} is not "
                                   f"{FORMAT}; upgrade Ship to follow it.")
        champion = _version(data.get("champion"), where, "champion")
        canary = data.get("canary")
        parsed = None
        if canary is not None:
            if not isinstance(canary, dict):
                raise ReleaseFileError(f"{where}: canary must be an object or null.")
            percent = _percent(canary.get("percent"), where, "canary.percent")
            steps = canary.get("steps", list(DEFAULT_STEPS))
            if not isinstance(steps, list) or not steps:
                raise ReleaseFileError(f"{where}: canary.steps must be a list of percents.")
            parsed = Canary(version=_version(canary.get("version"), where, "canary.version"),
                            percent=percent,
                            steps=tuple(sorted({_percent(s, where, "canary.steps")
                                                for s in steps})),
                            started=str(canary.get("started") or now_iso()),
                            max_disagreement=_share(canary.get("max_disagreement"), where))
        shadows = data.get("shadows") or []
        if not isinstance(shadows, list):
            raise ReleaseFileError(f"{where}: shadows must be a list of versions.")
        return cls(service=str(data.get("service", "")), champion=champion, canary=parsed,
                   shadows=tuple(_version(v, where, "shadows") for v in shadows),
                   updated=str(data.get("updated") or ""))


def _share(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ReleaseFileError(f"{where}: canary.max_disagreement must be a share in [0, 1] "
                               f"or null, got {value!r}.")
    return float(value)


def _version(value: Any, where: str, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or "/" in value or value.startswith("."):
        raise ReleaseFileError(f"{where}: {name} must be a version folder name such as "
                               f"\"2\", got {value!r}.")
    return value


def _percent(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 < float(value) <= 100:
        raise ReleaseFileError(f"{where}: {name} must be a number in (0, 100], "
                               f"got {value!r}.")
    return float(value)


def read_release(path: str | os.PathLike[str]) -> Release | None:
    """The release in ``path``; None when there is no file; ReleaseFileError when it does
    not parse or validate."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReleaseFileError(f"{path}: not JSON ({exc}).") from None
    return Release.from_json(data, str(path))


def write_release(path: str | os.PathLike[str], release: Release) -> None:
    """Replace ``path`` atomically (write a temporary file beside it, then rename)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(release.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, target)


def takes_canary(percent: float, key: str | None) -> bool:
    """Whether a request goes to the canary: by the routing key's hash when the client
    sends one (the same key always lands on the same side), else at random."""
    if percent >= 100.0:
        return True
    if key is None:
        return random.random() * 100.0 < percent
    return (zlib.crc32(key.encode("utf-8", "replace")) % 10_000) / 100.0 < percent
