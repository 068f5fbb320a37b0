"""int8: dynamic quantization of MatMul weights only (no ConvInteger), its size and accuracy
figures, and the bound that refuses a variant unless forced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from mlflow.artifacts import download_artifacts
from sklearn.linear_model import LogisticRegression
from torch import nn

from kernel_magics.errors import ExportError, QuantizationRefusedError
from kernel_magics.export import export_model
from kernel_magics.export.pipeline import ExportSettings, check_export


def test_cnn_int8_keeps_conv_in_float(cnn: nn.Module, digits: Any, workspace: Any,
                                      mlflow_client: Any, tmp_path: Path) -> None:
    # force: how many of 450 predictions int8 flips depends on the CPU's integer kernels;
    # this test is about the graph, the bound has its own tests below.
    result = export_model(cnn, "digits-cnn", digits.x_test[:2], eval_X=digits.x_test,
                          eval_y=digits.y_test, quantize="int8", force=True, workspace=workspace)
    assert result.precision == "int8"
    quant = result.quantization
    assert quant is not None
    assert quant.float_ops_kept == ["Conv"]
    assert quant.quantized_nodes == 2  # the two Linear layers
    assert quant.size_ratio < 0.5
    assert quant.measure == "accuracy" and quant.reference == "eval labels"
    assert abs(quant.change) < 5.0
    assert quant.latency_ratio is not None and quant.latency_ratio > 0
    # The registered file itself: read it back from MLflow and look at its operators.
    version = mlflow_client.get_model_version("digits-cnn", result.version)
    folder = Path(download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path)))
    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert "ConvInteger" not in ops
    assert "Conv" in ops and "MatMulInteger" in ops
    assert version.tags["ship.export.precision"] == "int8"
    assert float(version.tags["ship.quant.size_ratio"]) == pytest.approx(quant.size_ratio,
                                                                         rel=1e-5)


def test_matmul_heavy_model_shrinks_to_under_a_third(wide_mlp: nn.Module, digits: Any) -> None:
    checked = check_export(wide_mlp, digits.x_test[:2], eval_x=digits.x_test,
                           eval_y=digits.y_test, quantize="int8", force=True,
                           settings=ExportSettings(profile_repeats=10))
    quant = checked.quantization
    assert quant is not None
    assert quant.size_ratio <= 0.3
    assert quant.float_ops_kept == []
    assert checked.profile is not None
    assert [v.name for v in checked.profile.variants] == ["original", "onnx-fp32", "onnx-int8"]


def regressor() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 1)).eval()


def test_int8_beyond_the_bound_is_refused_and_nothing_registered(
        digits: Any, workspace: Any, store_contents: Any) -> None:
    (workspace.ship_dir / "ship.toml").write_text(
        "[export]\nprofile_repeats = 10\nmax_rmse_increase = 0.0\n", encoding="utf-8")
    from kernel_magics.workspace import find_workspace

    strict = find_workspace(workspace.root)
    with pytest.raises(QuantizationRefusedError) as caught:
        export_model(regressor(), "reg", digits.x_test[:4], eval_X=digits.x_test,
                     quantize="int8", workspace=strict)
    err = caught.value
    assert err.bound == 0.0 and err.change > 0.0
    assert "--force" in str(err) and "Nothing was registered" in str(err)
    assert store_contents() == ([], [])
    forced = export_model(regressor(), "reg", digits.x_test[:4], eval_X=digits.x_test,
                          quantize="int8", force=True, workspace=strict)
    assert forced.quantization is not None and forced.quantization.forced
    models, _ = store_contents()
    assert [m.name for m in models] == ["reg"]


def test_accuracy_drop_within_the_bound_is_accepted(wide_mlp: nn.Module, digits: Any) -> None:
    # A generous bound: the check runs (labels, points) and lets the variant through.
    checked = check_export(wide_mlp, digits.x_test[:2], eval_x=digits.x_test,
                           eval_y=digits.y_test, quantize="int8",
                           settings=ExportSettings(max_accuracy_drop=100.0), profile=False)
    quant = checked.quantization
    assert quant is not None and quant.within_bound and not quant.forced
    assert quant.unit == "points"
    assert quant.fp32_value == pytest.approx(checked.parity.metric_onnx)


def test_models_without_matmul_have_nothing_to_quantize(digits: Any) -> None:
    model = LogisticRegression(max_iter=200).fit(digits.x_train, digits.y_train)
    with pytest.raises(ExportError, match="nothing to quantize"):
        check_export(model, digits.x_test[:2], quantize="int8")


def test_unknown_quantization_is_a_validation_error(mlp: nn.Module, digits: Any) -> None:
    from kernel_magics.errors import ValidationError

    with pytest.raises(ValidationError, match="int8"):
        check_export(mlp, digits.x_test[:2], quantize="fp16")
