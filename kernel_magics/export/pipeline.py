"""Export without the registry: convert, gate, quantize, profile. Nothing here touches MLflow.

`check_export` tries the exporters for the model's library in order (torch: dynamo, then
TorchScript; scikit-learn: skl2onnx) and keeps the first graph that passes the parity
gate. A dynamo graph that exports cleanly but computes something else therefore falls
back to TorchScript instead of being registered; when every graph fails, the first
failure is raised with the others summarised, and nothing is registered.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ExportError, ValidationError
from ..tracking.models import flavor_of
from .graph import OnnxGraph, Rows, failure_summary, feeds, run, session
from .heldout import HeldOut, prepare
from .parity import CLASSIFICATION, REGRESSION, TRANSFORM, ParityReport, Task, check_parity
from .profile import ONNX_FP32, ONNX_INT8, ORIGINAL, CallFactory, ProfileReport, measure, take
from .quantize import QuantizationReport, accuracy_report, enforce_bound, quantize_graph
from .sklearn_export import selects_by_name

TASKS = (CLASSIFICATION, REGRESSION, TRANSFORM)
EXAMPLE_ROWS = 5  # rows stored as the MLflow input example


@dataclass(frozen=True)
class ExportSettings:
    """Tolerances, bounds and profile settings; `[export]` in ship.toml."""

    rtol: float = 1e-3
    atol: float = 1e-5
    max_accuracy_drop: float = 0.5
    max_rmse_increase: float = 0.05
    profile_repeats: int = 200
    profile_threads: int = 1
    experiment: str = "ship-export"


@dataclass
class Attempt:
    """One exporter's try: an export error, or a graph and its parity verdict."""

    exporter: str
    error: str | None = None
    parity: ParityReport | None = None

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.exporter} could not export ({self.error})"
        verdict = "passed" if self.parity and self.parity.passed else "failed the parity gate"
        return f"{self.exporter} {verdict}"


@dataclass
class CheckedExport:
    """A graph that passed the gate, plus its int8 variant and profile when asked for."""

    flavor: str
    task: Task
    held: HeldOut
    graph: OnnxGraph
    parity: ParityReport
    attempts: list[Attempt]
    original_size: int
    int8: OnnxGraph | None = None
    quantization: QuantizationReport | None = None
    profile: ProfileReport | None = None
    example_input: Rows = field(default_factory=lambda: np.empty(0))
    example_outputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def chosen(self) -> OnnxGraph:
        """The graph to register: int8 when it was asked for and accepted."""
        return self.int8 if self.int8 is not None else self.graph

    @property
    def precision(self) -> str:
        return "int8" if self.int8 is not None else "fp32"

    @property
    def fallback_reason(self) -> str | None:
        """Why earlier exporters were not used (None when the first one was)."""
        before = [a for a in self.attempts if a.exporter != self.graph.exporter]
        if not before:
            return None
        held = self.held
        return "; ".join(
            a.summary() if a.parity is None else f"{a.summary()}: {a.parity.describe_failure(held)}"
            for a in before)


@dataclass
class _Frontend:
    flavor: str
    task: Task
    dtype: type[np.generic]
    original_outputs: list[np.ndarray]
    exporters: list[tuple[str, Callable[[], OnnxGraph]]]
    make_call: CallFactory
    original_size: int


def check_export(model: Any, example: Any, *, eval_x: Any = None, eval_y: Any = None,
                 quantize: str | None = None, task: str | None = None, force: bool = False,
                 settings: ExportSettings | None = None, profile: bool = True) -> CheckedExport:
    """Convert `model` to ONNX, gate it, optionally quantize it and profile every variant."""
    settings = settings or ExportSettings()
    if quantize not in (None, "int8"):
        raise ValidationError(f"unknown quantization {quantize!r}.", field="quantize",
                              hint="The one supported value is int8.")
    if task is not None and task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}.", field="task")
    held = prepare(example, eval_x, eval_y, by_name=selects_by_name(model))
    with contextlib.ExitStack() as stack:
        front = _frontend(model, held, task, stack)
        features = held.features(front.dtype)
        attempts: list[Attempt] = []
        passed: tuple[OnnxGraph, ParityReport, list[np.ndarray]] | None = None
        for name, export in front.exporters:
            try:
                graph = export()
                outputs = run(session(graph, settings.profile_threads), graph, features)
            except Exception as exc:  # noqa: BLE001 - any exporter failure means: try the next
                if isinstance(exc, ExportError) and len(front.exporters) == 1:
                    raise
                attempts.append(Attempt(name, error=failure_summary(exc)))
                continue
            report = check_parity(name, front.task, held, graph.output_names,
                                  front.original_outputs, outputs, rtol=settings.rtol,
                                  atol=settings.atol)
            attempts.append(Attempt(name, parity=report))
            if report.passed:
                passed = (graph, report, outputs)
                break
        if passed is None:
            raise _no_export(attempts, held)
        graph, report, fp32_outputs = passed
        checked = CheckedExport(flavor=front.flavor, task=front.task, held=held, graph=graph,
                                parity=report, attempts=attempts,
                                original_size=front.original_size)
        if quantize == "int8":
            _quantize(checked, features, fp32_outputs, settings, force)
        chosen = checked.chosen
        checked.example_input = take(features, min(held.n_example, EXAMPLE_ROWS))
        outs = run(session(chosen, settings.profile_threads), chosen, checked.example_input)
        checked.example_outputs = dict(zip(chosen.output_names, outs, strict=True))
        if profile:
            variants = [(ORIGINAL, front.original_size, front.make_call),
                        (ONNX_FP32, graph.size_bytes, _ort_call(graph, features, settings))]
            if checked.int8 is not None:
                variants.append((ONNX_INT8, checked.int8.size_bytes,
                                 _ort_call(checked.int8, features, settings)))
            checked.profile = measure(variants, repeats=settings.profile_repeats,
                                      threads=settings.profile_threads)
            if checked.quantization is not None:
                ratio = checked.profile.speedup(ONNX_INT8, ONNX_FP32)
                checked.quantization.latency_ratio = ratio
        return checked


def _quantize(checked: CheckedExport, features: Rows, fp32_outputs: list[np.ndarray],
              settings: ExportSettings, force: bool) -> None:
    graph = checked.graph
    int8 = quantize_graph(graph)
    int8_outputs = run(session(int8, settings.profile_threads), int8, features)
    report = accuracy_report(checked.task, checked.held, graph, int8, fp32_outputs, int8_outputs,
                             max_accuracy_drop=settings.max_accuracy_drop,
                             max_rmse_increase=settings.max_rmse_increase)
    enforce_bound(report, force=force)
    checked.int8, checked.quantization = int8, report


def _no_export(attempts: list[Attempt], held: HeldOut) -> ExportError:
    gated = [a for a in attempts if a.parity is not None]
    if gated and gated[0].parity is not None:
        others = [a.summary() if a.parity is None
                  else f"The {a.exporter} export failed too: {a.parity.describe_failure(held)}"
                  for a in attempts if a is not gated[0]]
        return gated[0].parity.error(held, also=others)
    reasons = "; ".join(f"{a.exporter}: {a.error}" for a in attempts)
    return ExportError(f"No exporter could convert the model. {reasons}",
                       exporter=attempts[-1].exporter if attempts else None,
                       hint="Make forward() traceable: no data-dependent Python control flow "
                            "on tensor values, tensors in and out.")


def _ort_call(graph: OnnxGraph, features: Rows, settings: ExportSettings) -> CallFactory:
    sess = session(graph, settings.profile_threads)

    def make(rows: int) -> Callable[[], object]:
        feed = feeds(graph, take(features, rows))
        return lambda: sess.run(None, feed)

    return make


def _frontend(model: Any, held: HeldOut, task: str | None,
              stack: contextlib.ExitStack) -> _Frontend:
    flavor = flavor_of(model)
    if flavor == "pytorch":
        return _torch_frontend(model, held, task, stack)
    if flavor == "sklearn":
        return _sklearn_frontend(model, held, task)
    raise ValidationError(
        f"cannot export a {type(model).__module__}.{type(model).__qualname__}.", field="model",
        hint="Export takes a torch.nn.Module or a fitted scikit-learn estimator or pipeline.")


def _torch_frontend(module: Any, held: HeldOut, task: str | None,
                    stack: contextlib.ExitStack) -> _Frontend:
    import torch

    from . import torch_export

    devices = {str(t.device) for t in [*module.parameters(), *module.buffers()]}
    if devices - {"cpu"}:
        raise ValidationError(
            f"the model is on {', '.join(sorted(devices - {'cpu'}))}; export runs on the CPU.",
            field="model", hint="Pass model.cpu() (onnxruntime serves it on CPU here).")
    stack.enter_context(torch_export.eval_mode(module))  # the profile runs in eval mode too
    dtype = torch_export.input_dtype(held.array)
    rows = held.features(dtype)
    try:
        outputs = torch_export.eager_outputs(module, rows)
    except ExportError:
        raise
    except Exception as exc:
        raise ValidationError(f"the model fails on the example: {type(exc).__name__}: {exc}",
                              field="example") from exc
    example = rows[:held.n_example]
    exporters = [(name, _bind(fn, module, example, len(outputs)))
                 for name, fn in torch_export.EXPORTERS]

    def make_call(count: int) -> Callable[[], object]:
        x = torch.from_numpy(np.ascontiguousarray(take(rows, count)))

        def call() -> object:
            with torch.inference_mode():
                return module(x)

        return call

    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return _Frontend("pytorch", Task(_torch_task(outputs, held.labels, task)), dtype, outputs,
                     exporters, make_call, len(buffer.getvalue()))


def _torch_task(outputs: list[np.ndarray], labels: np.ndarray | None, task: str | None) -> str:
    """Integer labels mean a classifier; without labels, a multi-column output does."""
    if task is not None:
        return task
    if labels is not None:
        return CLASSIFICATION if labels.dtype.kind in "biuUSO" else REGRESSION
    first = outputs[0]
    return CLASSIFICATION if first.ndim == 2 and first.shape[1] > 1 else REGRESSION


def _sklearn_frontend(estimator: Any, held: HeldOut, task: str | None) -> _Frontend:
    import cloudpickle

    from . import sklearn_export
    from .graph import SKL2ONNX

    kind = task or sklearn_export.task_of(estimator)
    outputs = sklearn_export.original_outputs(estimator, held.original)
    rows = held.features(np.float32)
    predict = estimator.predict if hasattr(estimator, "predict") else estimator.transform

    def make_call(count: int) -> Callable[[], object]:
        x = take(held.original, count)
        return lambda: predict(x)

    size = len(cloudpickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL))
    return _Frontend("sklearn", Task(kind, label_output=0 if kind == CLASSIFICATION else -1),
                     np.float32, outputs,
                     [(SKL2ONNX, lambda: sklearn_export.export_sklearn(estimator, rows))],
                     make_call, size)


def _bind(fn: Callable[[Any, np.ndarray, int], OnnxGraph], module: Any, rows: np.ndarray,
          count: int) -> Callable[[], OnnxGraph]:
    return lambda: fn(module, rows, count)
