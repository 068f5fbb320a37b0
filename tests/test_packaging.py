"""The installed package wires itself into Jupyter: lab extension, server extension, kernels."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    """Run `jupyter …` with this interpreter; both streams, colours stripped."""
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return ANSI.sub("", done.stdout + done.stderr)


def test_labextension_is_installed_enabled_and_ok() -> None:
    output = _jupyter("labextension", "list")

    line = next((ln for ln in output.splitlines() if "kernel-magics" in ln), None)
    assert line is not None, output
    assert re.search(r"kernel-magics v\d+\.\d+\.\d+\S* enabled\s+OK", line), line


def test_server_extension_is_enabled_and_ok() -> None:
    output = _jupyter("server", "extension", "list")

    assert re.search(r"^\s*kernel_magics enabled\s*$", output, re.MULTILINE), output
    assert re.search(r"kernel_magics\s+(\S+\s+)?OK", output), output


def test_kernels_load_the_magics() -> None:
    config = Path(sys.prefix, "etc", "ipython", "ipython_kernel_config.json")

    assert config.is_file(), f"{config} is not installed"
    data = json.loads(config.read_text(encoding="utf-8"))
    assert "kernel_magics" in data["InteractiveShellApp"]["extra_extensions"]


def test_runtime_version_follows_the_package() -> None:
    """The runtime (copied into bundles, so it cannot import the package) states its version."""
    import kernel_magics
    from kernel_magics.serving.requirements import RUNTIME_VERSION

    assert kernel_magics.__version__ == RUNTIME_VERSION
