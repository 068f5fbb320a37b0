"""Environment capture: interpreter, platform, installed packages (a lock file), GPUs.

Listing installed distributions takes tens of milliseconds, so the list is cached
per kernel and refreshed only when a folder on ``sys.path`` changed (``%pip
install`` touches site-packages). The change since the experiment's previous run
is computed against a small per-experiment file in the spool.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import xxhash

from .record import EnvironmentChange, EnvironmentState

_cache: dict[str, object] = {}


def _path_key() -> tuple[tuple[str, float], ...]:
    key = []
    for entry in sys.path:
        try:
            key.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            continue
    return tuple(key)


def installed_packages() -> dict[str, str]:
    """Installed distributions as {normalised name: version}, cached until sys.path changes."""
    key = _path_key()
    if _cache.get("packages_key") != key:
        packages: dict[str, str] = {}
        for dist in metadata.distributions():
            name = dist.metadata["Name"]
            if name:
                packages.setdefault(name.lower().replace("_", "-"), dist.version)
        _cache["packages"] = dict(sorted(packages.items()))
        _cache["packages_key"] = key
    return _cache["packages"]  # type: ignore[return-value]


def lock_text(packages: dict[str, str]) -> str:
    """A pip-style lock file (`name==version` per line) with the interpreter in a header."""
    header = f"# python {platform.python_version()} ({sys.executable})\n"
    return header + "".join(f"{name}=={version}\n" for name, version in packages.items())


def gpus() -> list[str]:
    """Names of visible GPUs; never imports torch, asks nvidia-smi once per kernel."""
    if "gpus" in _cache:
        cached: list[str] = _cache["gpus"]  # type: ignore[assignment]
        return list(cached)
    names: list[str] = []
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=5, check=False)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.TimeoutExpired):
            names = []
    _cache["gpus"] = names
    return names


def capture() -> tuple[EnvironmentState, dict[str, str]]:
    """The current environment, and the package map behind its lock file."""
    packages = installed_packages()
    digest = xxhash.xxh3_64_hexdigest(json.dumps(packages, sort_keys=True).encode())
    state = EnvironmentState(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        executable=sys.executable,
        package_count=len(packages),
        lock_digest=digest,
        gpus=gpus(),
    )
    return state, packages


class PreviousEnvironments:
    """The last environment seen per experiment: in memory, mirrored to a small file.

    The file lets a new kernel (or another one) compare against the last run; it is
    rewritten only when the environment changed, so an unchanged run costs a stat.
    """

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[float, dict[str, object]]] = {}

    def _load(self, state_file: Path) -> dict[str, object] | None:
        try:
            mtime = state_file.stat().st_mtime
        except FileNotFoundError:
            return None
        cached = self._seen.get(state_file)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            data: dict[str, object] = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        self._seen[state_file] = (mtime, data)
        return data

    def diff(self, state_file: Path, record_id: str, python: str,
             packages: dict[str, str]) -> EnvironmentChange:
        """Compare with the experiment's previous run, then remember this one if it differs."""
        previous = self._load(state_file)
        change = EnvironmentChange()
        if previous is not None:
            old: dict[str, str] = previous.get("packages", {})  # type: ignore[assignment]
            change.previous_record = str(previous.get("record_id"))
            change.python_changed = previous.get("python") != python
            change.added = {k: v for k, v in packages.items() if k not in old}
            change.removed = {k: v for k, v in old.items() if k not in packages}
            change.changed = {k: [old[k], v] for k, v in packages.items()
                              if k in old and old[k] != v}
        if previous is None or not change.empty:
            data: dict[str, object] = {"record_id": record_id, "python": python,
                                       "packages": packages}
            state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = state_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, state_file)
            self._seen[state_file] = (state_file.stat().st_mtime, data)
        return change
