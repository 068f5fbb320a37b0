"""torch → ONNX: the dynamo exporter with a dynamic batch dimension, TorchScript as fallback.

Both exporters run the module in eval mode (dropout off, batch-norm running statistics),
which is what serving does; the module's own train/eval flags are restored afterwards.
Neither result is trusted: `pipeline.check_export` puts each through the parity gate.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ExportError
from .graph import TORCH_DYNAMO, TORCH_SCRIPT, OnnxGraph

INPUT_NAME = "input"
# The dynamo exporter and torch.export log through these even when verbose=False.
_NOISY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo",
                  "torch.fx.experimental.symbolic_shapes")


def input_dtype(rows: np.ndarray) -> type[np.generic]:
    """What the module receives: float32 for real-valued rows, int64 for indices, bool as is."""
    if rows.dtype.kind == "f":
        return np.float32
    if rows.dtype.kind in "iu":
        return np.int64
    return np.bool_


def output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then every submodule's own flag back."""
    flags = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in flags.items():
            m.training = training


def eager_outputs(module: torch.nn.Module, rows: np.ndarray) -> list[np.ndarray]:
    """The module's outputs in eager mode, as a list of numpy arrays."""
    with eval_mode(module), torch.inference_mode():
        result = module(torch.from_numpy(rows))
    return [t.detach().cpu().numpy() for t in _flatten(result)]


def export_dynamo(module: torch.nn.Module, rows: np.ndarray, n_outputs: int) -> OnnxGraph:
    """`torch.onnx.export(dynamo=True)` with the first dimension symbolic ("batch")."""
    names = output_names(n_outputs)
    # torch.export specialises a dimension of size 1 to a constant: trace with two rows at least.
    traced = rows if rows.shape[0] > 1 else np.concatenate([rows, rows])
    with eval_mode(module), torch.no_grad(), _quiet() as caught:
        program = torch.onnx.export(
            module, (torch.from_numpy(traced),), None, dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False,
            input_names=[INPUT_NAME], output_names=names, verbose=False, optimize=True)
    if program is None:
        raise ExportError("the dynamo exporter returned no program.", exporter=TORCH_DYNAMO)
    return OnnxGraph(model=program.model_proto, exporter=TORCH_DYNAMO, input_name=INPUT_NAME,
                     output_names=names, warnings=caught)


def export_torchscript(module: torch.nn.Module, rows: np.ndarray, n_outputs: int) -> OnnxGraph:
    """The TorchScript exporter (`dynamo=False`): traces one call, batch axis marked dynamic."""
    import onnx

    names = output_names(n_outputs)
    axes = {name: {0: "batch"} for name in [INPUT_NAME, *names]}
    with tempfile.TemporaryDirectory(prefix="ship-torchscript-") as tmp:
        path = Path(tmp) / "model.onnx"
        with eval_mode(module), torch.no_grad(), _quiet() as caught:
            torch.onnx.export(module, (torch.from_numpy(rows),), path, dynamo=False,
                              input_names=[INPUT_NAME], output_names=names, dynamic_axes=axes)
        model = onnx.load(str(path))
    return OnnxGraph(model=model, exporter=TORCH_SCRIPT, input_name=INPUT_NAME,
                     output_names=names, warnings=caught)


# Tried in this order; the first whose graph passes the parity gate is kept.
EXPORTERS: list[tuple[str, Callable[[torch.nn.Module, np.ndarray, int], OnnxGraph]]] = [
    (TORCH_DYNAMO, export_dynamo),
    (TORCH_SCRIPT, export_torchscript),
]


def _flatten(result: Any) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, list | tuple) and result and all(
            isinstance(t, torch.Tensor) for t in result):
        return list(result)
    raise ExportError(f"the module returned {type(result).__name__}; export needs a tensor or "
                      "a tuple of tensors.", exporter="torch",
                      hint="Return tensors from forward(); dicts and nested outputs are not "
                           "exported.")


@contextlib.contextmanager
def _quiet() -> Iterator[list[str]]:
    """Keep exporter chatter out of the notebook; collect warnings that matter for correctness.

    The TorchScript exporter's DeprecationWarning is expected (it is the fallback) and the
    FutureWarnings come from torch's own internals; TracerWarnings say a trace may be wrong
    for other inputs, so they travel with the graph into the export report.
    """
    caught: list[str] = []
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as records, \
                contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("always")
            yield caught
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    seen: set[str] = set()
    for record in records:
        if issubclass(record.category, DeprecationWarning | FutureWarning):
            continue
        message = f"{record.category.__name__}: {str(record.message).splitlines()[0]}"
        if message not in seen:
            seen.add(message)
            caught.append(message)
