"""Benchmark: what `%%ship track` adds to a cell, against the same capture in plain MLflow.

    .venv/bin/python bench/tracking.py [--runs 30]

Both sides use one sqlite MLflow store in a temporary workspace.

- Ship: the median of (time of `%%ship track` + trivial cell) - (time of the trivial cell)
  in a real IPython shell, after one warm-up run (the first use in a kernel imports
  what the magic needs). Each tracked cell starts after the previous one's background
  completion (git state, files, spool write: a few ms in a thread) has finished.
- MLflow: the median blocking time of start_run, log_params, log_metrics, set_tags,
  log_artifact (the cell source) and end_run for the same params, metrics and tags,
  after one warm-up run (so `import mlflow` and schema creation are not counted).

Prints both medians and their ratio; the goal is Ship blocking at least 10x less.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CELL = "lr = 0.01\nepochs = 3\naccuracy = 0.9 + lr\nloss = 1 - accuracy"


def ship_added_latency(runs: int) -> list[float]:
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    assert shell is not None
    shell.run_line_magic("load_ext", "kernel_magics")
    from kernel_magics.tracking.capture import wait_for_background

    added = []
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell(f"%%ship track\n{CELL}")  # warm-up: first use in this kernel
        for _ in range(runs):
            # The previous cell's background completion (git, files) is not this cell's
            # latency; a person does not run cells microseconds apart.
            wait_for_background()
            start = time.perf_counter()
            shell.run_cell(CELL)
            plain = time.perf_counter() - start
            start = time.perf_counter()
            result = shell.run_cell(f"%%ship track\n{CELL}")
            tracked = time.perf_counter() - start
            assert result.success, result.error_in_exec
            added.append(tracked - plain)
    return added


def mlflow_blocking(runs: int, workdir: Path) -> list[float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir / '.ship' / 'mlflow.db'}")
    mlflow.set_experiment("plain-mlflow")
    source = workdir / "cell.py"
    source.write_text(CELL)
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        mlflow.start_run()
        mlflow.log_params({"lr": 0.01, "epochs": 3})
        mlflow.log_metrics({"accuracy": 0.91, "loss": 0.09})
        mlflow.set_tags({"mlflow.source.type": "NOTEBOOK", "team": "bench"})
        mlflow.log_artifact(str(source), "code")
        mlflow.end_run()
        if i:  # the first run creates the experiment and warms caches
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory(prefix="ship-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / ".ship").mkdir()
        os.chdir(workdir)
        ship = ship_added_latency(args.runs)
        # Let the background writer empty the spool so both sides see an idle store.
        from kernel_magics.tracking import daemon
        from kernel_magics.tracking.spool import Spool

        with daemon.exclusive(workdir / ".ship" / "spool", timeout=120):
            drained = daemon.drain(Spool(workdir / ".ship" / "spool"), force=True)
        written = len(Spool(workdir / ".ship" / "spool").all_written())
        plain = mlflow_blocking(args.runs, workdir)
        os.chdir(Path(__file__).resolve().parent)  # IPython's atexit needs a live cwd
    ship_ms = statistics.median(ship) * 1000
    plain_ms = statistics.median(plain) * 1000
    print(f"runs per side:                        {args.runs}")
    print(f"Ship %%ship track, median added:      {ship_ms:8.2f} ms "
          f"(p90 {statistics.quantiles(ship, n=10)[-1] * 1000:.2f} ms)")
    print(f"plain MLflow calls, median blocking:  {plain_ms:8.2f} ms "
          f"(p90 {statistics.quantiles(plain, n=10)[-1] * 1000:.2f} ms)")
    print(f"ratio (MLflow / Ship):                {plain_ms / ship_ms:8.1f}x  (goal >= 10x)")
    print(f"Ship runs written to MLflow afterwards: {written} "
          f"({len(drained.failed)} failed)")
    return 0 if not drained.failed else 1


if __name__ == "__main__":
    sys.exit(main())
