"""The loop's events: what retraining and `ship watch` did, a line each, for people.

``.ship/services/NAME/loop.jsonl`` is append-only JSON lines: ``{"time", "kind",
"message", ...}`` with a kind's own fields (a gate's checks, a trigger's figures). The
sidebar's loop panel, ``ship watch NAME --status`` and ``%ship retrain`` read it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..workspace import Workspace, check_service_name

LOOP_FILE = "loop.jsonl"


@dataclass(frozen=True)
class Event:
    """One step of the loop."""

    time: str
    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "kind": self.kind, "message": self.message,
                **self.details}


def loop_file(workspace: Workspace, name: str) -> Path:
    """The service's loop.jsonl (a service not built yet may have one: its first
    retraining's)."""
    return workspace.services_dir / check_service_name(name) / LOOP_FILE


def record(workspace: Workspace, name: str, kind: str, message: str,
           **details: Any) -> Event:
    """Append an event (one write of one line: readers never see half of it)."""
    event = Event(datetime.now(UTC).isoformat(timespec="seconds"), kind, message, details)
    path = loop_file(workspace, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(event.to_json(), default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return event


def read_events(workspace: Workspace, name: str, limit: int = 100) -> list[Event]:
    """The latest ``limit`` events, oldest first; a torn or foreign line is skipped."""
    path = loop_file(workspace, name)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines[-limit:]:
        try:
            data = json.loads(line)
            details = {k: v for k, v in data.items() if k not in ("time", "kind", "message")}
            events.append(Event(str(data["time"]), str(data["kind"]), str(data["message"]),
                                details))
        except (ValueError, KeyError, TypeError):
            continue
    return events
