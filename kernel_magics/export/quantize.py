"""int8: onnxruntime dynamic quantization of MatMul weights, and what it costs in accuracy.

Only MatMul is quantized (onnxruntime rewrites Gemm into MatMul + Add first). Conv is left
in float on purpose: dynamic quantization would turn it into ConvInteger, which
onnxruntime's CPU provider runs without optimised kernels (slower than float) and most other
providers do not run at all. The accuracy change is measured against the fp32 ONNX model
(which already passed the parity gate) on the eval labels when given, else on the fp32
model's own predictions; beyond the configured bound the variant is refused unless forced.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ExportError, QuantizationRefusedError
from .graph import OnnxGraph

if TYPE_CHECKING:
    import onnx
from .heldout import HeldOut
from .parity import CLASSIFICATION, Task

QUANTIZED_OPS = ["MatMul"]
INTEGER_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "QLinearMatMul"}


@dataclass
class QuantizationReport:
    """Size, latency and accuracy of the int8 variant next to the fp32 one."""

    quantized_nodes: int
    float_ops_kept: list[str]
    size_fp32: int
    size_int8: int
    reference: str  # "eval labels" or "fp32 predictions"
    measure: str  # "accuracy", "agreement", "rmse" or "relative error"
    fp32_value: float
    int8_value: float
    change: float  # points of accuracy (negative: lost), or relative increase of the error
    unit: str  # "points" or "relative"
    bound: float
    forced: bool = False
    latency_ratio: float | None = None  # int8 p50 / fp32 p50 for one row, set by the profile

    @property
    def size_ratio(self) -> float:
        return self.size_int8 / self.size_fp32 if self.size_fp32 else float("nan")

    @property
    def within_bound(self) -> bool:
        if self.unit == "points":
            return -self.change <= self.bound
        return self.change <= self.bound


def quantize_graph(graph: OnnxGraph) -> OnnxGraph:
    """The dynamically quantized copy of `graph`; raises when there is nothing to quantize."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nothing = ExportError(
        f"nothing to quantize: the {graph.exporter} graph has no MatMul or Gemm with constant "
        f"weights (operators: {', '.join(sorted(set(graph.op_types())))}).",
        exporter="int8", hint="Export without --quantize int8.")
    if not {"MatMul", "Gemm"} & set(graph.op_types()):
        raise nothing
    model = copy.deepcopy(graph.model)
    # The dynamo exporter records value_info for weights too. onnxruntime transposes Gemm
    # weights when it rewrites Gemm into MatMul but leaves those entries stale, and its own
    # shape inference then fails ("Inferred shape and existing shape differ"). Shapes are
    # inferred again from scratch, so dropping them loses nothing.
    del model.graph.value_info[:]
    _dedupe_opsets(model)
    with tempfile.TemporaryDirectory(prefix="ship-int8-") as tmp, _no_preprocess_nag():
        out = Path(tmp) / "model.int8.onnx"
        try:
            quantize_dynamic(model, out, op_types_to_quantize=QUANTIZED_OPS,
                             weight_type=QuantType.QInt8, per_channel=False)
        except Exception as exc:
            raise ExportError(f"onnxruntime could not quantize the graph: "
                              f"{type(exc).__name__}: {exc}", exporter="int8",
                              hint="Export without --quantize int8.") from exc
        quantized = onnx.load(str(out))
    ops = [str(n.op_type) for n in quantized.graph.node]
    if "ConvInteger" in ops:  # a guarantee, not a hope: fail loudly if onnxruntime changes
        raise ExportError("dynamic quantization produced ConvInteger nodes.", exporter="int8")
    if not any(op in INTEGER_OPS for op in ops):
        raise nothing
    return OnnxGraph(model=quantized, exporter=graph.exporter, input_name=graph.input_name,
                     output_names=graph.output_names, warnings=list(graph.warnings))


def _dedupe_opsets(model: onnx.ModelProto) -> None:
    """One import per domain, the highest version: skl2onnx can list the default one twice,
    and onnxruntime's quantizer then cannot tell which opset the graph uses."""
    best: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else str(entry.domain)
        best[domain] = max(best.get(domain, 0), int(entry.version))
    if len(best) == len(model.opset_import):
        return
    del model.opset_import[:]
    for domain, version in best.items():
        model.opset_import.add(domain=domain, version=version)


def kept_float(graph: OnnxGraph) -> list[str]:
    """Operator types int8 leaves in float that carry weights worth mentioning."""
    return sorted({op for op in graph.op_types() if op in ("Conv", "ConvTranspose", "Gather",
                                                           "LSTM", "GRU", "Attention")})


def accuracy_report(task: Task, held: HeldOut, fp32: OnnxGraph, int8: OnnxGraph,
                    fp32_outputs: list[np.ndarray], int8_outputs: list[np.ndarray], *,
                    max_accuracy_drop: float, max_rmse_increase: float) -> QuantizationReport:
    """Compare int8 with fp32 on the held-out rows, in the task's terms."""
    base = task.predictions(fp32_outputs)
    new = task.predictions(int8_outputs)
    labelled = slice(held.n_example, None)
    if task.kind == CLASSIFICATION and base is not None and new is not None:
        if held.labels is not None:
            reference, measure = "eval labels", "accuracy"
            before = task.metric(base[labelled], held.labels)
            after = task.metric(new[labelled], held.labels)
        else:
            reference, measure = "fp32 predictions", "agreement"
            before, after = 1.0, float(np.mean(new == base))
        change, unit, bound = (after - before) * 100, "points", max_accuracy_drop
    else:
        unit, bound = "relative", max_rmse_increase
        if base is not None and new is not None and held.labels is not None:
            reference, measure = "eval labels", "rmse"
            before = task.metric(base[labelled], held.labels)
            after = task.metric(new[labelled], held.labels)
            change = (after - before) / before if before > 0 else after
        else:  # no labels: the int8 error relative to the spread of the fp32 outputs
            reference, measure = "fp32 predictions", "relative error"
            a, b = fp32_outputs[0].astype(np.float64), int8_outputs[0].astype(np.float64)
            spread = float(np.std(a)) or 1.0
            before, after = 0.0, float(np.sqrt(np.mean((a - b) ** 2))) / spread
            change = after
    return QuantizationReport(
        quantized_nodes=sum(op in INTEGER_OPS for op in int8.op_types()),
        float_ops_kept=kept_float(int8), size_fp32=fp32.size_bytes, size_int8=int8.size_bytes,
        reference=reference, measure=measure, fp32_value=before, int8_value=after,
        change=change, unit=unit, bound=bound)


def enforce_bound(report: QuantizationReport, *, force: bool) -> None:
    """Refuse an int8 variant that costs more than the bound, unless forced."""
    report.forced = force and not report.within_bound
    if report.within_bound or force:
        return
    if report.unit == "points":
        what = (f"{report.measure} {report.fp32_value:.2%} -> {report.int8_value:.2%} "
                f"({report.change:+.2f} points, bound -{report.bound:g})")
    else:
        what = (f"{report.measure} {report.fp32_value:.4g} -> {report.int8_value:.4g} "
                f"({report.change:+.1%}, bound +{report.bound:.1%})")
    raise QuantizationRefusedError(
        f"int8 quantization changes {what} against the {report.reference}. "
        "Nothing was registered.", change=report.change, bound=report.bound,
        hint="Export the fp32 model (no --quantize), raise [export] max_accuracy_drop / "
             "max_rmse_increase in .ship/ship.toml, or pass --force to register it anyway.")


class _DropNag(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocess_nag() -> Iterator[None]:
    """onnxruntime logs a pre-processing tip on the root logger at every call; drop just that."""
    nag = _DropNag()
    logging.getLogger().addFilter(nag)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(nag)
