"""Benchmark: `ship run --engine ray` against `--engine local --parallel 2`, same 4-point grid.

    .venv/bin/python bench/ray_batch.py [--points 4] [--rounds 1]

About 2 minutes on a 2-core machine.

One notebook (a `parameters` cell, then a `%%ship track` cell that fits a
LogisticRegression on sklearn's digits with the grid's ``C`` and logs its accuracy), a
grid of ``--points`` values of ``C``, run by the installed `ship` command in a fresh
workspace, each engine on its own copy of the notebook (its own experiment):

- ``--engine local --parallel 2``: two worker processes at a time on this machine;
- ``--engine ray``: each point a Ray task (one CPU each) on a local Ray that `ship run`
  starts and shuts down (2 CPUs here: two at a time as well).

Printed: the wall time of each whole command (Ray's start and stop included, and the
runs' completion: spool drained into MLflow, executed notebooks attached), the sum and
the longest of the notebooks' own times (papermill's process per point, from
``--json``), and the ratio ray / local. ``--rounds`` runs the pair several times,
alternating which goes first. The figures move with whatever else the machine does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from notebook_files import write_notebook  # noqa: E402 (tests/notebook_files.py)

SHIP = str(Path(sys.executable).with_name("ship"))
PARAMS = ("C = 1.0", ["parameters"])
TRAIN = ("%%ship track\nfrom sklearn.datasets import load_digits\n"
         "from sklearn.linear_model import LogisticRegression\n"
         "x, y = load_digits(return_X_y=True)\n"
         "model = LogisticRegression(C=C, max_iter=500).fit(x[:1200] / 16, y[:1200])\n"
         "accuracy = model.score(x[1200:] / 16, y[1200:])")


def run(root: Path, notebook: str, engine: list[str], grid: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run([SHIP, "run", notebook, "--grid", grid, *engine, "--json"],
                          cwd=root, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",
                               "RAY_USAGE_STATS_ENABLED": "0"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"ship run {' '.join(engine)} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    seconds = [r["seconds"] for r in report["runs"]]
    written = sum(len(r["runs"]) for r in report["runs"])
    if not report["ok"] or written != len(seconds):
        raise SystemExit(f"ship run {' '.join(engine)}: {written} runs written of "
                         f"{len(seconds)}: {report['unwritten']}")
    return {"wall": wall, "sum": sum(seconds), "longest": max(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    grid = "C=" + ",".join(str(0.01 * 3 ** i) for i in range(args.points))
    engines = {"local --parallel 2": ["--engine", "local", "--parallel", "2"],
               "ray": ["--engine", "ray"]}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory(prefix="ship-bench-raybatch-") as tmp:
        root = Path(tmp)
        (root / ".ship").mkdir()
        for name in engines:
            write_notebook(root / f"{name.split()[0]}.ipynb", PARAMS, TRAIN)
        # untimed: the workspace's MLflow store is created by the first run
        run(root, "local.ipynb", ["--engine", "local"], "C=1.0")
        for round_ in range(args.rounds):
            order = list(engines) if round_ % 2 == 0 else list(reversed(engines))
            for name in order:
                figures = run(root, f"{name.split()[0]}.ipynb", engines[name], grid)
                results[name].append(figures)
                print(f"round {round_ + 1} {name:<20} wall {figures['wall']:6.1f} s  "
                      f"notebooks: sum {figures['sum']:6.1f} s, longest "
                      f"{figures['longest']:5.1f} s", flush=True)
    print(f"\n{os.cpu_count()} CPUs; load average at the end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; {args.points}-point grid\n")
    print("| engine | wall s | notebooks' sum s | longest notebook s |\n| --- | ---: | ---: | "
          "---: |")
    for name, rounds in results.items():
        for figures in rounds:
            print(f"| {name} | {figures['wall']:.1f} | {figures['sum']:.1f} | "
                  f"{figures['longest']:.1f} |")
    ratio = sorted(r["wall"] for r in results["ray"])[len(results["ray"]) // 2] / sorted(
        r["wall"] for r in results["local --parallel 2"])[len(results["ray"]) // 2]
    print(f"\nwall time ray / local (median rounds): {ratio:.2f}")


if __name__ == "__main__":
    main()
