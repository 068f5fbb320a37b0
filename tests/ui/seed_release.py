"""Seed a workspace for the release views (Services panel, service page), through Ship's
real components:

1. `release/churn.ipynb` (the serve and training cells of seed_monitor.py) runs in a
   real IPython shell: three `%%ship track` runs, each exporting a version of the
   `churn` model (C = 1.0, 0.5 and 0.01: the last disagrees more with the first);
2. `build_service` builds the `churn` service three times, version N from model
   version N;
3. `write_release` writes release.json: champion 1, canary 2 at 25 % (steps 5, 25, 50,
   100; this step began 30 minutes ago), shadow 3; releases.jsonl holds the decisions
   that led there, oldest first (a canary of 3 rolled back by the gate with its
   evidence, 3 added as a shadow, 2 started as a canary by hand, then stepped up by the
   gate);
4. the real `PredictionLog` writes 90 minutes of traffic scored by each version's own
   pipeline: the canary answers 5 % of requests, then 25 % for the last 30 minutes, and
   the champion scores a copy of each (shadow = "2"); version 3 scores a copy of every
   request (shadow = the answering version); a few errors, version-specific latencies,
   and ground truth for most requests as feedback.

    python tests/ui/seed_release.py FOLDER        (about 40 s)
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from seed_monitor import SERVE_CELL, TRAIN_CELL, traffic, wait_written  # noqa: E402

NAME = "churn"
C_VALUES = (1.0, 0.5, 0.01)
MINUTES = 90  # of traffic, up to now
STEP_MINUTES = 30  # the canary's 25 % step began this long ago
REQUESTS_PER_MINUTE = 16


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def track_runs(folder: Path) -> None:
    """Three tracked training runs in a real shell, each exporting a model version."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    os.environ["SHIP_NOTEBOOK"] = str(folder / "churn.ipynb")
    os.chdir(folder)
    shell.run_line_magic("load_ext", "kernel_magics")
    cells = [SERVE_CELL]
    for c in C_VALUES:
        cells += [f"C = {c}\nn = 6000",
                  f"%%ship track --name churn-C{c} --model clf --export {NAME} "
                  "--example X[:4] --eval X labels\n" + TRAIN_CELL]
    for cell in cells:
        with capture_output(display=True) as captured:
            result = shell.run_cell(cell, store_history=True)
        if not result.success:
            sys.stderr.write(captured.stdout + captured.stderr)
            raise SystemExit(f"seed cell failed: {result.error_in_exec!r}")


def check(metric: str, champion: float | None, canary: float | None, test: str,
          p_value: float | None, n_champion: int, n_canary: int, threshold: str,
          passed: bool | None) -> dict[str, Any]:
    """A gate check as the gate writes it into a decision's evidence."""
    return {"metric": metric, "champion": champion, "canary": canary, "test": test,
            "p_value": p_value, "n_champion": n_champion, "n_canary": n_canary,
            "threshold": threshold, "passed": passed}


def decision(action: str, version: str, automatic: bool, at: float, reason: str,
             percent: float | None = None,
             evidence: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One line of releases.jsonl (kernel_magics/release/rollout.py `Decision`)."""
    return {"action": action, "version": version, "automatic": automatic, "reason": reason,
            "evidence": evidence or [], "percent": percent, "aliases": None,
            "time": iso(at)}


def write_release_state(service: Path, now: float) -> None:
    """release.json now, and the decisions that led to it (oldest first)."""
    from kernel_magics.serving.release import Canary, Release, write_release

    step_began = now - STEP_MINUTES * 60
    write_release(service / "release.json", Release(
        service=NAME, champion="1",
        canary=Canary("2", 25.0, (5.0, 25.0, 50.0, 100.0), iso(step_began)),
        shadows=("3",), updated=iso(step_began)))
    fisher = "Fisher's exact test (one-sided)"
    mann = "Mann-Whitney U (one-sided)"
    rollback_evidence = [
        check("error_rate", 0.0, 0.31, fisher, 2e-9, 570, 30, "p < 0.01 and +1.0 pt", False),
        check("latency_p50_ms", 1.02, 1.61, mann, 0.003, 570, 30,
              "p < 0.01 and ratio > 1.5", False),
        check("latency_p99_ms", 3.1, None, mann, None, 570, 30, "from 100 requests", None),
        check("disagreement", 0.0, 0.12, "binomial test against 5%", 0.02, 0, 90,
              "p < 0.01 above 5%", None),
    ]
    step_evidence = [
        check("error_rate", 0.011, 0.0, fisher, 1.0, 1368, 72, "p < 0.01 and +1.0 pt", True),
        check("latency_p50_ms", 1.01, 1.2, mann, 0.04, 1368, 72, "p < 0.01 and ratio > 1.5",
              True),
        check("disagreement", 0.0, 0.014, "binomial test against 5%", 0.99, 216, 216,
              "p < 0.01 above 5%", True),
    ]
    lines = [
        decision("canary", "3", False, now - 4 * 3600,
                 "canary 3 started by hand at 5% (steps 5, 25, 50, 100) against champion 1",
                 percent=5.0),
        decision("rollback", "3", True, now - 3.8 * 3600,
                 "rolled back canary 3: error rate 31.0% on the canary against 0.0% on the "
                 "champion, beyond p < 0.01 and +1.0 pt (Fisher's exact test (one-sided) "
                 "p=2e-09, 30 and 570 requests)", percent=5.0, evidence=rollback_evidence),
        decision("shadow", "3", False, now - 2 * 3600,
                 "shadow 3 added by hand: it scores a copy of each request, the client gets "
                 "champion 1's answer"),
        decision("canary", "2", False, now - MINUTES * 60,
                 "canary 2 started by hand at 5% (steps 5, 25, 50, 100) against champion 1",
                 percent=5.0),
        decision("step", "2", True, step_began,
                 "canary 2 stepped up to 25%: error rate, latency and disagreement within "
                 "their thresholds for 60 s at 5%", percent=25.0, evidence=step_evidence),
    ]
    with open(service / "releases.jsonl", "w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")


def write_log(service: Path, now: float) -> None:
    """90 minutes of the release's traffic in the real prediction log, and feedback."""
    from kernel_magics.serving.bundle import Bundle
    from kernel_magics.serving.inputs import from_columns
    from kernel_magics.serving.pipeline import Pipeline
    from kernel_magics.serving.predlog import Prediction, PredictionLog

    bundles = {v: Bundle.load(service / v) for v in ("1", "2", "3")}
    pipelines = {v: Pipeline(b) for v, b in bundles.items()}
    log = PredictionLog(service / "log")
    model = bundles["1"].manifest.name
    for version, bundle in bundles.items():
        log.register(model, version, bundle.schema, identity=False)
    rng = np.random.default_rng(5)
    latency = {"1": 1.0, "2": 1.2, "3": 1.5}  # median ms of each version
    errors = {"1": 0.01, "2": 0.0, "3": 0.005}
    truth: list[tuple[str, list[int]]] = []
    step_began = now - STEP_MINUTES * 60

    def record(request_id: str, at: float, version: str, inputs: Any, outputs: Any,
               shadow: str | None) -> None:
        failed = rng.random() < errors[version]
        log.append(Prediction(
            request_id, at, model, version, "invocations", 500 if failed else 200,
            float(rng.lognormal(np.log(latency[version]), 0.25)), None, inputs, None,
            None if failed else outputs, "model error: seeded failure" if failed else None,
            shadow=shadow))

    for minute in range(MINUTES):
        start = now - (MINUTES - minute) * 60
        share = 25.0 if start >= step_began else 5.0
        for i in range(REQUESTS_PER_MINUTE):
            at = start + i * (60 / REQUESTS_PER_MINUTE) + float(rng.uniform(0, 2))
            data = traffic(rng, 3, shifted=False)
            inputs = from_columns(bundles["1"].schema, data)
            outputs = {v: p.predict(inputs) for v, p in pipelines.items()}
            request_id = uuid.uuid4().hex
            answering = "2" if rng.random() * 100 < share else "1"
            record(request_id, at, answering, inputs, outputs[answering], None)
            if answering == "2":  # the champion scores a copy of each canary request
                record(request_id, at, "1", inputs, outputs["1"], "2")
            record(request_id, at, "3", inputs, outputs["3"], answering)
            labels = ((data["age"] < 32) ^ (data["plan"] == "premium")).astype(int)
            truth.append((request_id, [int(v) for v in labels]))
    log.flush()
    for request_id, labels in truth:
        if rng.random() < 0.6:
            log.feedback(request_id, model, labels)
    log.close()


def main(folder: Path) -> None:
    from kernel_magics.bundle.build import build_service
    from kernel_magics.workspace import init_workspace

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    workspace = init_workspace(folder)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell(SERVE_CELL))
    notebook.cells.append(nbformat.v4.new_code_cell("C = 0.01\nn = 6000"))
    notebook.cells.append(nbformat.v4.new_code_cell(
        f"%%ship track --model clf --export {NAME} --example X[:4]\n" + TRAIN_CELL))
    notebook.cells.append(nbformat.v4.new_code_cell(f"%ship deploy {NAME}"))
    nbformat.write(notebook, folder / "churn.ipynb")
    started = time.monotonic()
    track_runs(folder)
    wait_written(folder)
    for version in ("1", "2", "3"):
        build_service(folder / "churn.ipynb", NAME, model_version=version,
                      workspace=workspace)
    service = workspace.services_dir / NAME
    now = time.time()
    write_release_state(service, now)
    write_log(service, now)
    print(f"seeded {folder} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
