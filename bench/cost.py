"""Measure CPU seconds per 1,000 predictions of a demo-like service.

    .venv/bin/python bench/cost.py [--requests 20000] [--rows 1] [--concurrency 16]
                                   [--workers 1]

Builds a workspace in a temporary folder with the service ``digits`` (sklearn's
LogisticRegression on the digits data, 64 features, as ONNX: the demo's model), runs
``ship serve digits`` (the real command, pinned to core 0 when there are two), sends
``--requests`` ``POST /invocations`` of ``--rows`` rows with bench/serving.py's load
generator (core 1), stops the service with SIGTERM, and prints what
``ship cost --service digits --json`` says. There is no peer to compare with: the figure
is Ship's own measurement of itself (docs/cost.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from serving import (  # bench/
    PY,
    ROOT,
    Server,
    _drive,
    free_port,
    http_request,
    load_runner,
    pinned,
    split_cores,
)

SHIP = [PY, "-c", "from kernel_magics.cli import main; main()"]


def build(root: Path) -> None:
    """A workspace with the service ``digits``, version 1, as ``ship build`` lays it out."""
    import numpy as np
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT))
    from kernel_magics.serving.bundle import Lineage, Manifest, write_bundle
    from kernel_magics.serving.schema import Feature, Schema, TensorSpec
    from kernel_magics.workspace import init_workspace

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x.astype(np.float32), y)
    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, 64]))],
                  options={id(model): {"zipmap": False}}, target_opset=17)
    workspace = init_workspace(root)
    write_bundle(workspace.services_dir / "digits" / "1",
                 manifest=Manifest(name="digits", version="1",
                                   lineage=Lineage("digits", "1", "bench")),
                 schema=Schema(features=tuple(Feature(f"pixel_{i}") for i in range(64)),
                               inputs=(TensorSpec("float_input", "FP32", (-1, 64)),),
                               outputs=(TensorSpec("label", "INT64", (-1,)),
                                        TensorSpec("probabilities", "FP32", (-1, -1)))),
                 model=onx.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    server_core, _ = split_cores()
    run = load_runner()
    with tempfile.TemporaryDirectory(prefix="ship-cost-") as tmp:
        root = Path(tmp) / "ws"
        build(root)
        port = free_port()
        # `ship serve NAME` and `ship cost` find the workspace from their working folder
        server = Server(pinned([*SHIP, "serve", "digits", "--port", str(port),
                                "--workers", str(args.workers)], server_core),
                        port, "/v2/health/ready", cwd=root)
        try:
            body = json.dumps({"instances": [[3.0] * 64] * args.rows}).encode()
            result = run(_drive(port, http_request(port, "/invocations", body),
                                args.requests, args.concurrency))
        finally:
            server.stop()
        out = subprocess.run([*SHIP, "cost", "--service", "digits", "--json"], cwd=root,
                             env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, check=True).stdout
        cost: dict[str, Any] = json.loads(out)
    predictions = cost["predictions"]
    serving_cpu = cost["cpu_s"] - cost["startup_cpu_s"]
    print(f"{result.requests} requests x {args.rows} row(s), concurrency "
          f"{args.concurrency}, {args.workers} worker(s): {result.rps:,.0f} req/s, "
          f"{result.errors} errors")
    print(f"predictions counted: {predictions}; CPU s: {cost['cpu_s']:.3f} "
          f"(start-up {cost['startup_cpu_s']:.3f}) over {cost['process_wall_s']:.1f} process-s")
    print(f"CPU s per 1,000 predictions (measured): {cost['cpu_s_per_1k_predictions']:.4f} "
          f"all CPU; {serving_cpu / predictions * 1000:.4f} without start-up")
    print(f"per 1,000 predictions (estimated): {cost['amount_per_1k_predictions']:.8f} "
          f"{cost['currency']} ({cost['basis']})")


if __name__ == "__main__":
    main()
