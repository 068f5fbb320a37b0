"""torch → ONNX: the dynamo exporter with a dynamic batch, the TorchScript fallback, and the
parity gate catching a module that behaves differently while it is exported."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from kernel_magics.errors import ExportError, ParityError
from kernel_magics.export import export_model
from kernel_magics.export.graph import TORCH_DYNAMO, TORCH_SCRIPT, run, session
from kernel_magics.export.pipeline import ExportSettings, check_export

FAST = ExportSettings(profile_repeats=10)


class ExportOnlyScaling(nn.Module):
    """Halves its logits only while torch.onnx.export traces it: every exporter is fooled."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        if torch.onnx.is_in_onnx_export():
            return logits * 0.5
        return logits


class ValidatesInput(nn.Module):
    """A data-dependent check torch.export cannot trace; TorchScript traces past it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.min() < 0:
            raise ValueError("pixel intensities must be >= 0")
        return self.inner(x)


def test_mlp_exports_with_dynamo_and_a_dynamic_batch(mlp: nn.Module, digits: Any) -> None:
    checked = check_export(mlp, digits.x_test[:2], eval_x=digits.x_test, eval_y=digits.y_test,
                           settings=FAST)
    graph = checked.graph
    assert graph.exporter == TORCH_DYNAMO
    assert checked.fallback_reason is None
    assert checked.task.kind == "classification"
    parity = checked.parity
    assert parity.passed
    assert parity.rows == 2 + len(digits.x_test)
    assert parity.max_abs_error <= 1e-5
    assert parity.agreement == 1.0
    assert parity.metric_name == "accuracy"
    assert parity.metric_onnx == parity.metric_original
    assert parity.metric_onnx is not None and parity.metric_onnx > 0.9
    # The batch dimension is symbolic: one row and 33 rows both run.
    dim = graph.model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value
    sess = session(graph)
    for rows in (1, 33):
        (out,) = run(sess, graph, digits.x_test[:rows])
        assert out.shape == (rows, 10)
    assert checked.profile is not None
    assert [v.name for v in checked.profile.variants] == ["original", "onnx-fp32"]


def test_dynamo_failure_falls_back_to_torchscript(mlp: nn.Module, digits: Any) -> None:
    checked = check_export(ValidatesInput(mlp), digits.x_test[:4], eval_x=digits.x_test,
                           settings=FAST, profile=False)
    assert checked.graph.exporter == TORCH_SCRIPT
    assert checked.parity.passed
    reason = checked.fallback_reason
    assert reason is not None and reason.startswith(f"{TORCH_DYNAMO} could not export")
    assert "data-dependent" in reason
    assert [a.exporter for a in checked.attempts] == [TORCH_DYNAMO, TORCH_SCRIPT]
    # The trace dropped the check; the warning that says so travels with the export.
    assert any(w.startswith("TracerWarning") for w in checked.graph.warnings)


def test_parity_gate_catches_export_only_behaviour_and_registers_nothing(
        mlp: nn.Module, digits: Any, workspace: Any, store_contents: Any) -> None:
    with pytest.raises(ParityError) as caught:
        export_model(ExportOnlyScaling(mlp), "sneaky", digits.x_test[:2],
                     eval_X=digits.x_test, eval_y=digits.y_test, workspace=workspace)
    err = caught.value
    assert err.exporter == TORCH_DYNAMO
    assert err.output == "output"
    assert 0 <= err.row < 2 + len(digits.x_test)
    assert err.abs_error > 1.0
    assert err.rel_error == pytest.approx(0.5, rel=1e-3)
    message = str(err)
    assert "output 'output'" in message and "row" in message and "|diff|" in message
    assert "torch-torchscript export failed too" in message
    assert "Nothing was registered" in message
    assert err.http_status == 409
    models, runs = store_contents()
    assert models == [] and runs == []


def test_export_leaves_the_module_in_its_own_mode(mlp: nn.Module, digits: Any) -> None:
    model = nn.Sequential(nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, 10))
    model.train()
    checked = check_export(model, digits.x_test[:3], settings=FAST, profile=False)
    # Dropout is off during export and the gate (both in eval mode), back on afterwards.
    assert checked.parity.passed
    assert model.training and all(m.training for m in model.modules())


def test_regression_output_is_gated_on_rmse(digits: Any) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 1)).eval()
    target = digits.y_test.astype(np.float32)
    checked = check_export(model, digits.x_test[:2], eval_x=digits.x_test, eval_y=target,
                           settings=FAST, profile=False)
    assert checked.task.kind == "regression"
    assert checked.parity.metric_name == "rmse"
    assert checked.parity.agreement is None
    delta = checked.parity.metric_delta
    assert delta is not None and abs(delta) < 1e-4


def test_dict_outputs_are_refused_with_a_clear_error(digits: Any) -> None:
    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.linear(x)}

    with pytest.raises(ExportError, match="returned dict"):
        check_export(DictOut(), digits.x_test[:2], settings=FAST)


def test_single_row_example_still_exports_a_dynamic_batch(mlp: nn.Module, digits: Any) -> None:
    checked = check_export(mlp, digits.x_test[0], settings=FAST, profile=False)
    assert checked.held.rows == 1
    model = onnx.load_from_string(checked.graph.to_bytes())
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
