"""Fixtures of the bundle tests: a fresh workspace as the working folder, and the `ship`
command line run in it (tests/ship_workspace.py)."""

from __future__ import annotations

from ship_workspace import ship, workspace

__all__ = ["ship", "workspace"]
