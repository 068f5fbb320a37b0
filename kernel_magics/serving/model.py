"""The ONNX model in an onnxruntime session sized to the CPUs this process may use.

onnxruntime ignores OMP_NUM_THREADS and cgroup quotas and would start one thread per
host core; in a container limited to 2 CPUs on a 64-core host that is 64 threads
fighting for 2 CPUs. So intra-op threads = CPU quota (cgroup v2 cpu.max, v1 cfs quota,
else the affinity mask) divided by the worker count, at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .bundle import Bundle
from .errors import BundleError, HandlerError
from .schema import ONNX_TO_V2, TensorSpec

NDArray = np.ndarray[Any, Any]


def cpu_quota(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float:
    """CPUs this process may use: the cgroup quota if one is set, else the affinity mask."""
    try:
        available = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        available = float(os.cpu_count() or 1)
    quota = _cgroup_quota(cgroup_root)
    return available if quota is None else min(quota, available)


def _cgroup_quota(root: Path) -> float | None:
    try:  # cgroup v2: "max 100000" or "200000 100000"
        limit, period = (root / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def intra_op_threads(workers: int, configured: int = 0, quota: float | None = None) -> int:
    """onnxruntime intra-op threads for one of ``workers`` processes."""
    if configured > 0:
        return configured
    cpus = cpu_quota() if quota is None else quota
    return max(1, math.floor(cpus / max(1, workers)))


class Model:
    """An onnxruntime session whose inputs and outputs match the bundle's schema."""

    def __init__(self, bundle: Bundle, *, workers: int = 1) -> None:
        self.threads = intra_op_threads(workers, bundle.manifest.runtime.threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning pool threads burn the CPU the event loop needs between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(bundle.model_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"onnxruntime cannot load the model: {exc}",
                              path=str(bundle.model_path)) from None
        self._check(bundle.schema.inputs, self.session.get_inputs(), "input")
        self._check(bundle.schema.outputs, self.session.get_outputs(), "output")
        self.output_names = [spec.name for spec in bundle.schema.outputs]

    @staticmethod
    def _check(specs: tuple[TensorSpec, ...], actual: list[Any], kind: str) -> None:
        got = {node.name: node for node in actual}
        want = {spec.name for spec in specs}
        if set(got) != want:
            raise BundleError(f"lists model {kind}s {sorted(want)} but the model has "
                              f"{sorted(got)}.", path="schema.json")
        for spec in specs:
            node = got[spec.name]
            datatype = ONNX_TO_V2.get(node.type)
            if datatype is None:
                raise BundleError(
                    f"model {kind} {spec.name!r} is {node.type}, not a tensor; export "
                    "without ZipMap (skl2onnx: options={'zipmap': False}).",
                    path=spec.name)
            if datatype != spec.datatype:
                raise BundleError(f"says model {kind} {spec.name!r} is {spec.datatype}, but "
                                  f"the model has {datatype}.", path="schema.json")
            dims = [d if isinstance(d, int) else -1 for d in node.shape]
            if len(dims) != len(spec.shape) or any(
                    a != -1 and b != -1 and a != b for a, b in zip(dims, spec.shape, strict=True)):
                raise BundleError(f"says model {kind} {spec.name!r} has shape "
                                  f"{list(spec.shape)}, but the model has {dims}.",
                                  path="schema.json")

    def run(self, feeds: dict[str, NDArray],
            outputs: list[str] | None = None) -> dict[str, NDArray]:
        """Run the model; ``outputs`` limits which outputs are computed and returned."""
        names = outputs or self.output_names
        try:
            values = self.session.run(names, feeds)
        except Exception as exc:  # onnxruntime's errors carry no useful type
            raise HandlerError(f"the model failed: {exc}") from exc
        return dict(zip(names, values, strict=True))
