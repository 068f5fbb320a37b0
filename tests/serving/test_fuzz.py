"""schemathesis fuzzes every operation of /openapi.json: never a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# A test dependency (pyproject's `test` extra): the test runs, never skips.
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow
@pytest.mark.parametrize("bundle", ["digits_bundle", "tabular_bundle"])
def test_no_server_errors(start_server: Any, request: pytest.FixtureRequest,
                          bundle: str, tmp_path: Path) -> None:
    running = start_server(request.getfixturevalue(bundle))
    done = subprocess.run(
        [str(SCHEMATHESIS), "run",
         f"{running.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "30", "--phases", "examples,coverage,fuzzing",
         "--suppress-health-check", "all", "--request-timeout", "10", "--workers", "2",
         "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("bundle", ["digits_bundle", "tabular_bundle"])
def test_what_the_document_calls_valid_is_accepted(start_server: Any,
                                                   request: pytest.FixtureRequest,
                                                   bundle: str, tmp_path: Path) -> None:
    # /openapi.json describes /invocations bodies exactly (typed rows, every feature,
    # bounded numbers, CSV with its header): schemathesis' valid bodies all get a 2xx.
    # (V2 tensors' data must fill their shape, which JSON Schema cannot say.)
    running = start_server(request.getfixturevalue(bundle))
    done = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{running.url}/openapi.json",
         "--include-path", "/invocations", "--mode", "positive",
         "--checks", "positive_data_acceptance,not_a_server_error", "--max-examples", "30",
         "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
         "--request-timeout", "10", "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
