"""A throwaway Python environment made from a run's lock file, for `ship reproduce`.

Installing a whole lock (torch, jupyter, ...) takes minutes and gigabytes, and nearly
all of it is what `ship` runs in already. So the environment is layered:

    venv (python -m venv, in a temporary folder)
    ├── its own site-packages: only the distributions whose version in the lock differs
    │   from the base, or that the base lacks (pip install --no-deps --ignore-installed)
    └── _ship_base.pth: ``site.addsitedir(<base site-packages>)``, so the base's packages
        (and its .pth files: editable installs) come after the venv's on ``sys.path``

Nothing is ever installed into or removed from the base environment. What the layering
cannot hide: a distribution that the base has and the lock has not stays importable
(it is listed), and the interpreter is the base's (a venv cannot change Python).
A kernelspec for the venv's interpreter goes in a temporary JUPYTER_PATH folder.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import uuid
import venv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ..errors import ShipError

BASE_PTH = "_ship_base.pth"
PIP_TIMEOUT_S = 1800
# Distributions a venv brings along or pip manages itself: never worth reinstalling.
TOOLING = frozenset({"pip", "setuptools", "wheel", "distribute"})


@dataclass
class FreshEnvironment:
    """A venv layered over the base environment, with a kernelspec for its interpreter."""

    root: Path
    python: Path
    kernel: str
    jupyter_path: Path
    base: str
    installed: list[str] = field(default_factory=list)
    # spec -> pip's last line, for what could not be installed (the base's version stays)
    failed: dict[str, str] = field(default_factory=dict)
    not_in_lock: list[str] = field(default_factory=list)
    # Local and editable installs (the project's own code) are taken from the base as they
    # are: a different version of them is a code difference (git), not a package to fetch.
    local: list[str] = field(default_factory=list)

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with this environment's kernelspec found first and its bin on PATH."""
        env = dict(base)
        env["JUPYTER_PATH"] = os.pathsep.join(
            filter(None, [str(self.jupyter_path), base.get("JUPYTER_PATH")]))
        env["PATH"] = os.pathsep.join(filter(None, [str(self.python.parent), base.get("PATH")]))
        env["VIRTUAL_ENV"] = str(self.python.parent.parent)
        env.pop("PYTHONHOME", None)
        return env


def parse_lock(text: str) -> tuple[str | None, dict[str, str]]:
    """The Python version from a lock file's header and its {name: version} lines."""
    python = None
    packages: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# python "):
            python = line.split()[2]
        elif line and not line.startswith("#") and "==" in line:
            name, _, version = line.partition("==")
            packages[normalise(name)] = version.strip()
    return python, packages


def normalise(name: str) -> str:
    """A distribution name as the lock writes it (lowercase, ``-`` for ``_``)."""
    return name.strip().lower().replace("_", "-")


def local_distributions() -> set[str]:
    """Distributions installed from a folder (editable or not): code, not packages."""
    found = set()
    for dist in metadata.distributions():
        try:
            raw = dist.read_text("direct_url.json")
        except OSError:
            continue
        if not raw:
            continue
        try:
            url = json.loads(raw)
        except ValueError:
            continue
        if isinstance(url, dict) and "dir_info" in url:
            name = dist.metadata["Name"]
            if name:
                found.add(normalise(name))
    return found


def plan(lock: Mapping[str, str], base: Mapping[str, str],
         local: set[str]) -> tuple[list[str], list[str], list[str]]:
    """What to install (``name==version``), what the base has beyond the lock, and which
    differing distributions are local installs taken from the base as they are."""
    install = [f"{name}=={version}" for name, version in sorted(lock.items())
               if base.get(name) != version and name not in local and name not in TOOLING]
    extra = sorted(f"{name}=={version}" for name, version in base.items() if name not in lock)
    kept = sorted(name for name, version in lock.items()
                  if name in local and base.get(name) != version)
    return install, extra, kept


def base_site_dirs() -> list[str]:
    """The site-packages folders of the environment `ship` runs in."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def create(lock: Mapping[str, str] | None, base: Mapping[str, str], *,
           log: Callable[[str], None] = lambda _: None) -> FreshEnvironment:
    """Make the layered venv (see the module docstring) in a new temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="ship-reproduce-"))
    try:
        return _create(root, lock, base, log)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _create(root: Path, lock: Mapping[str, str] | None, base: Mapping[str, str],
            log: Callable[[str], None]) -> FreshEnvironment:
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    scheme = "venv" if "venv" in sysconfig.get_scheme_names() else sysconfig.get_default_scheme()
    purelib = Path(sysconfig.get_path("purelib", scheme,
                                      vars={"base": str(env_dir), "platbase": str(env_dir)}))
    purelib.mkdir(parents=True, exist_ok=True)
    (purelib / BASE_PTH).write_text(
        "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in base_site_dirs())
        + "\n", encoding="utf-8")
    kernel = f"ship-reproduce-{uuid.uuid4().hex[:8]}"
    jupyter_path = root / "jupyter"
    spec_dir = jupyter_path / "kernels" / kernel
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (ship reproduce)", "language": "python",
        "metadata": {"debugger": False}}, indent=1), encoding="utf-8")
    fresh = FreshEnvironment(root=root, python=python, kernel=kernel, jupyter_path=jupyter_path,
                             base=sys.prefix)
    install: list[str] = []
    if lock is not None:
        install, fresh.not_in_lock, fresh.local = plan(lock, base, local_distributions())
    _check_interpreter(python, ("ipykernel", "kernel_magics", *(("pip",) if install else ())))
    if install:
        log(f"installing {len(install)} package(s) from the lock: "
            f"{', '.join(install[:5])}{' ...' if len(install) > 5 else ''}")
        fresh.installed, fresh.failed = _pip_install(python, install)
    return fresh


def _pip_install(python: Path, specs: list[str]) -> tuple[list[str], dict[str, str]]:
    """Install ``specs`` into the venv: all at once, else one by one (what failed stays
    the base's version, and the report says so)."""
    if _pip(python, specs)[0]:
        return specs, {}
    installed, failed = [], {}
    for spec in specs:
        ok, output = _pip(python, [spec])
        if ok:
            installed.append(spec)
        else:
            lines = [line for line in output.splitlines() if line.strip()]
            failed[spec] = lines[-1].strip() if lines else "pip failed"
    return installed, failed


def _pip(python: Path, specs: list[str]) -> tuple[bool, str]:
    # pip comes from the base (through _ship_base.pth) and installs under the venv's
    # prefix; --ignore-installed keeps it from touching the base's copy of anything.
    cmd = [str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed",
           "--no-warn-script-location", "--disable-pip-version-check", "--no-input", *specs]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return False, f"pip did not finish in {PIP_TIMEOUT_S} s"
    return proc.returncode == 0, proc.stdout + proc.stderr


def _check_interpreter(python: Path, modules: tuple[str, ...]) -> None:
    """The venv's interpreter finds what the kernel (and pip) need through the base."""
    probe = ("import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
             "if importlib.util.find_spec(m) is None))")
    proc = subprocess.run([str(python), "-c", probe, *modules], capture_output=True,
                          text=True, timeout=120, check=False)
    missing = proc.stdout.split() if proc.returncode == 0 else list(modules)
    if missing:
        raise ShipError(
            f"the fresh environment cannot run the notebook: {', '.join(missing)} not found "
            f"through the base environment {sys.prefix}.",
            hint="Run `ship reproduce` from the environment the notebook ran in (the one "
                 "with ipykernel, pip and Ship installed).")


def remove(env: FreshEnvironment) -> None:
    """Delete the environment and its kernelspec."""
    shutil.rmtree(env.root, ignore_errors=True)
