"""The parity gate: the ONNX model must compute what the original computes, on held-out rows.

Numeric outputs pass when every value satisfies |onnx - original| <= atol + rtol * |original|
(numpy.isclose's rule). Label outputs (integers, strings) must match exactly, and gate
only when the model has no numeric output: near-ties between classes may legitimately
flip a label while the scores agree to 1e-6. On top, the gate reports task-level agreement:
the argmax / label match rate for classifiers, and the metric (accuracy or RMSE) of both
models on the labelled eval rows. A failure names the output, the row and the distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParityError
from .heldout import HeldOut

CLASSIFICATION = "classification"
REGRESSION = "regression"
TRANSFORM = "transform"


@dataclass(frozen=True)
class Task:
    """What the model predicts, and where in its outputs the prediction is."""

    kind: str
    # Index of an output that already holds labels (skl2onnx's `label`); -1: take the argmax
    # of output 0 (torch logits or probabilities).
    label_output: int = -1

    @property
    def metric_name(self) -> str | None:
        return {CLASSIFICATION: "accuracy", REGRESSION: "rmse"}.get(self.kind)

    def predictions(self, outputs: list[np.ndarray]) -> np.ndarray | None:
        """Predicted labels (classifiers) or values (regressors), one per row."""
        if self.kind == CLASSIFICATION:
            if self.label_output >= 0:
                labels = outputs[self.label_output]
                return np.asarray(labels.reshape(len(labels), -1)[:, 0])
            scores = outputs[0].reshape(len(outputs[0]), -1)
            if scores.shape[1] == 1:  # one column: a probability or a logit
                cut = 0.5 if np.all((scores >= 0) & (scores <= 1)) else 0.0
                return (scores[:, 0] > cut).astype(np.int64)
            return np.asarray(scores.argmax(axis=1))
        if self.kind == REGRESSION:
            return outputs[0].reshape(len(outputs[0]), -1).astype(np.float64)
        return None

    def metric(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy (a fraction) for classifiers, RMSE for regressors."""
        if self.kind == CLASSIFICATION:
            return float(np.mean(predictions == labels.reshape(-1)))
        target = labels.reshape(len(labels), -1).astype(np.float64)
        return float(np.sqrt(np.mean((predictions - target) ** 2)))


@dataclass
class OutputParity:
    """How far one output of the ONNX model is from the original's."""

    name: str
    kind: str  # "values" or "labels"
    total: int
    outside: int
    max_abs_error: float
    max_rel_error: float
    worst_row: int
    worst_index: list[int]
    onnx_value: float | str
    original_value: float | str
    allowed: float
    note: str | None = None

    @property
    def passed(self) -> bool:
        return self.outside == 0


@dataclass
class ParityReport:
    """The gate's verdict for one exported graph."""

    exporter: str
    rows: int
    example_rows: int
    rtol: float
    atol: float
    task: str
    outputs: list[OutputParity] = field(default_factory=list)
    agreement: float | None = None
    metric_name: str | None = None
    metric_original: float | None = None
    metric_onnx: float | None = None

    @property
    def gating(self) -> list[OutputParity]:
        values = [o for o in self.outputs if o.kind == "values"]
        return values or self.outputs

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.gating)

    @property
    def max_abs_error(self) -> float:
        return max((o.max_abs_error for o in self.gating), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((o.max_rel_error for o in self.gating), default=0.0)

    @property
    def metric_delta(self) -> float | None:
        if self.metric_onnx is None or self.metric_original is None:
            return None
        return self.metric_onnx - self.metric_original

    def worst(self) -> OutputParity:
        failing = [o for o in self.gating if not o.passed] or self.gating
        return max(failing, key=lambda o: (o.outside > 0, o.max_abs_error))

    def describe_failure(self, held: HeldOut) -> str:
        """Which output, which row, how far: one sentence."""
        w = self.worst()
        element = f", element {w.worst_index}" if w.worst_index else ""
        where = (f"output {w.name!r}, {held.origin(w.worst_row)} "
                 f"(index {w.worst_row} of {self.rows} held-out rows)")
        if w.note:
            return f"output {w.name!r}: {w.note}"
        if w.kind == "labels":
            return (f"{where}: ONNX {w.onnx_value!r} vs original {w.original_value!r}; "
                    f"{w.outside} of {w.total} rows differ")
        return (f"{where}{element}: ONNX {w.onnx_value:.6g} vs original {w.original_value:.6g}, "
                f"|diff| {w.max_abs_error:.3g} > allowed {w.allowed:.3g} (atol {self.atol:g} + "
                f"rtol {self.rtol:g} x |original|); {w.outside} of {w.total} values outside "
                f"tolerance, max relative error {w.max_rel_error:.3g}")

    def error(self, held: HeldOut, also: list[str] | None = None) -> ParityError:
        """The exception that stops the export; nothing has been registered at this point."""
        w = self.worst()
        others = "".join(f" {line}." for line in also or [])
        return ParityError(
            f"Parity gate failed for the {self.exporter} export: {self.describe_failure(held)}."
            f"{others} Nothing was registered.",
            exporter=self.exporter, output=w.name, row=w.worst_row,
            abs_error=w.max_abs_error, rel_error=w.max_rel_error,
            hint=_SKLEARN_HINT if self.exporter == "skl2onnx" else _TORCH_HINT)


_TORCH_HINT = ("Look for behaviour in forward() that changes under export "
               "(torch.onnx.is_in_onnx_export(), Python-side state, data-dependent branches). "
               "Loosen rtol/atol only if the difference is expected.")
# Tree thresholds sit on the training values: a step before the trees that computes in
# float32 in ONNX (float64 in scikit-learn) moves values across them.
_SKLEARN_HINT = ("ONNX computes in float32 where scikit-learn computes in float64: a step "
                 "that rescales features before trees (a StandardScaler before XGBoost, "
                 "say) moves values across their split thresholds. Drop the scaling (trees "
                 "need none), or pass float32 data through the whole pipeline; loosen "
                 "rtol/atol only if the difference is expected.")


def compare_output(name: str, original: np.ndarray, onnx: np.ndarray, *, rtol: float,
                   atol: float) -> OutputParity:
    """Distance between one ONNX output and the original's, element by element."""
    if original.shape != onnx.shape:
        if original.size != onnx.size:
            return OutputParity(name, "values", onnx.size, onnx.size or 1, float("inf"),
                                float("inf"), 0, [], "?", "?", 0.0,
                                note=f"shape {list(onnx.shape)} vs original "
                                     f"{list(original.shape)}")
        original = original.reshape(onnx.shape)
    if onnx.dtype.kind not in "fc" or original.dtype.kind not in "fc":
        return _compare_labels(name, original, onnx)
    a = onnx.astype(np.float64)
    b = original.astype(np.float64)
    diff = np.abs(a - b)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
    allowed = atol + rtol * np.abs(np.nan_to_num(b))
    outside = diff > allowed
    # The element furthest beyond its allowance when some fail, else the largest difference.
    worst = int(np.argmax(diff - allowed)) if outside.any() else int(np.argmax(diff))
    index = [int(i) for i in np.unravel_index(worst, diff.shape)] if diff.size else [0]
    scale = np.abs(b)
    rel = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > atol)
    return OutputParity(
        name=name, kind="values", total=int(diff.size), outside=int(outside.sum()),
        max_abs_error=float(diff.max(initial=0.0)), max_rel_error=float(rel.max(initial=0.0)),
        worst_row=index[0], worst_index=index[1:],
        onnx_value=float(a.flat[worst]) if a.size else 0.0,
        original_value=float(b.flat[worst]) if b.size else 0.0,
        allowed=float(allowed.flat[worst]) if allowed.size else atol)


def _compare_labels(name: str, original: np.ndarray, onnx: np.ndarray) -> OutputParity:
    rows = len(onnx)
    same = (onnx.reshape(rows, -1) == original.reshape(rows, -1)).all(axis=1)
    wrong = np.flatnonzero(~same)
    row = int(wrong[0]) if wrong.size else 0
    return OutputParity(name=name, kind="labels", total=rows, outside=int(wrong.size),
                        max_abs_error=0.0, max_rel_error=0.0, worst_row=row, worst_index=[],
                        onnx_value=_scalar(onnx[row]) if rows else "",
                        original_value=_scalar(original[row]) if rows else "", allowed=0.0)


def _scalar(value: object) -> float | str:
    item = np.asarray(value).reshape(-1)
    first = item[0] if item.size else ""
    return float(first) if isinstance(first, int | float | np.number) else str(first)


def check_parity(exporter: str, task: Task, held: HeldOut, names: list[str],
                 original: list[np.ndarray], onnx: list[np.ndarray], *, rtol: float,
                 atol: float) -> ParityReport:
    """Compare every output, then the task-level agreement and metric."""
    report = ParityReport(exporter=exporter, rows=held.rows, example_rows=held.n_example,
                          rtol=rtol, atol=atol, task=task.kind)
    if len(original) != len(onnx):
        report.outputs.append(OutputParity(
            names[0] if names else "output", "values", 1, 1, float("inf"), float("inf"), 0, [],
            "?", "?", 0.0, note=f"{len(onnx)} ONNX outputs vs {len(original)} original outputs"))
        return report
    report.outputs = [compare_output(name, o, x, rtol=rtol, atol=atol)
                      for name, o, x in zip(names, original, onnx, strict=True)]
    ours, theirs = task.predictions(onnx), task.predictions(original)
    if ours is None or theirs is None:
        return report
    if task.kind == CLASSIFICATION:
        report.agreement = float(np.mean(ours == theirs))
    if held.labels is not None and task.metric_name is not None:
        labelled = slice(held.n_example, None)
        report.metric_name = task.metric_name
        report.metric_original = task.metric(theirs[labelled], held.labels)
        report.metric_onnx = task.metric(ours[labelled], held.labels)
    return report
