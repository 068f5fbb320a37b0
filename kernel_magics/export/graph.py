"""An exported ONNX graph and how Ship runs it: one onnxruntime session per graph, fixed threads.

Every exporter (torch dynamo, torch TorchScript, skl2onnx) returns an `OnnxGraph`;
the parity gate, the quantizer and the profiler only ever see this type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx
    import onnxruntime

# Exporter names recorded on every model version (tag `ship.export.exporter`).
TORCH_DYNAMO = "torch-dynamo"
TORCH_SCRIPT = "torch-torchscript"
SKL2ONNX = "skl2onnx"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


@dataclass
class OnnxGraph:
    """One ONNX model in memory, with what produced it."""

    model: onnx.ModelProto
    exporter: str
    input_name: str
    output_names: list[str]
    # Warnings the exporter raised that bear on correctness (e.g. TracerWarning).
    warnings: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The serialised model, as it would be written to model.onnx."""
        return bytes(self.model.SerializeToString())

    @property
    def size_bytes(self) -> int:
        return len(self.to_bytes())

    @property
    def opset(self) -> int:
        return max((int(o.version) for o in self.model.opset_import if o.domain in ("", "ai.onnx")),
                   default=0)

    def digest(self) -> str:
        """sha256 of the model as it computes: the same for the same model exported twice
        (the graph's name, a random id from skl2onnx, and doc strings left out)."""
        import hashlib

        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        model.graph.name = ""
        model.doc_string = ""
        model.graph.doc_string = ""
        return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()

    @property
    def input_names(self) -> list[str]:
        """The graph's inputs (weights stored as initializers are not inputs)."""
        weights = {i.name for i in self.model.graph.initializer}
        return [str(i.name) for i in self.model.graph.input if i.name not in weights]

    def op_types(self) -> list[str]:
        """Operator types of the main graph, in order."""
        return [str(node.op_type) for node in self.model.graph.node]


def session(graph: OnnxGraph, threads: int = 1) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session with a fixed thread count.

    onnxruntime ignores OMP_NUM_THREADS and cgroup quotas, so an unset count means one
    thread per visible core: latency figures would then depend on the machine's load.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(graph.to_bytes(), sess_options=options,
                                providers=["CPUExecutionProvider"])


# The rows an export runs on: one array for a graph with one input, or (tabular models)
# one (n, 1) column per named input.
Rows = np.ndarray | dict[str, np.ndarray]


def feeds(graph: OnnxGraph, rows: Rows) -> dict[str, np.ndarray]:
    """The session feed for ``rows``."""
    if isinstance(rows, dict):
        return {name: rows[name] for name in graph.input_names}
    return {graph.input_name: rows}


def run(sess: onnxruntime.InferenceSession, graph: OnnxGraph, rows: Rows) -> list[np.ndarray]:
    """All outputs of the session for one batch of rows, as numpy arrays."""
    outputs: list[Any] = sess.run(None, feeds(graph, rows))
    return [np.asarray(o) for o in outputs]


def failure_summary(exc: BaseException) -> str:
    """One or two lines out of an exporter's (often page-long) error."""
    text = _CLASS.sub(r"\1", _ANSI.sub("", str(exc)))
    marker = "## Exception summary"
    if marker in text:
        after = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
        if after:
            return f"{type(exc).__name__}: {after[0]}"[:600]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"[:600]
