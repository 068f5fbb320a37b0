"""The parity gate's arithmetic, the held-out rows, and the `[export]` settings, without any
exporter: small arrays with known differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from kernel_magics.errors import ConfigError, ValidationError
from kernel_magics.export.api import settings_for
from kernel_magics.export.heldout import prepare
from kernel_magics.export.parity import Task, check_parity, compare_output
from kernel_magics.workspace import find_workspace


def test_values_within_tolerance_pass() -> None:
    original = np.array([[1.0, 100.0], [0.0, -2.0]])
    onnx = original + np.array([[5e-4, 0.09], [9e-6, 0.0]])  # each inside atol + rtol*|x|
    result = compare_output("y", original, onnx.astype(np.float32), rtol=1e-3, atol=1e-5)
    assert result.passed and result.outside == 0
    assert result.max_abs_error == pytest.approx(0.09, rel=1e-3)


def test_the_worst_value_is_named_by_row_and_element() -> None:
    original = np.zeros((4, 3))
    onnx = original.copy()
    onnx[2, 1] = 0.5
    onnx[1, 0] = 1e-6  # inside atol: not a violation
    result = compare_output("logits", original, onnx, rtol=1e-3, atol=1e-5)
    assert not result.passed and result.outside == 1
    assert (result.worst_row, result.worst_index) == (2, [1])
    assert (result.onnx_value, result.original_value) == (0.5, 0.0)
    assert result.allowed == pytest.approx(1e-5)


def test_nan_equal_nan_passes_nan_versus_number_fails() -> None:
    original = np.array([np.nan, 1.0, 2.0])
    assert compare_output("y", original, original.copy(), rtol=1e-3, atol=1e-5).passed
    broken = np.array([np.nan, np.nan, 2.0])
    result = compare_output("y", original, broken, rtol=1e-3, atol=1e-5)
    assert not result.passed and result.worst_row == 1 and result.max_abs_error == np.inf


def test_shape_mismatch_is_reported_not_broadcast() -> None:
    result = compare_output("y", np.zeros((4, 2)), np.zeros((4, 3)), rtol=1e-3, atol=1e-5)
    assert not result.passed and result.note == "shape [4, 3] vs original [4, 2]"
    # Same values, different layout (skl2onnx's (n, 1) regressor output): compared as one.
    assert compare_output("y", np.ones(4), np.ones((4, 1)), rtol=1e-3, atol=1e-5).passed


def test_labels_gate_only_without_numeric_outputs() -> None:
    held = prepare(np.zeros((2, 3)), np.zeros((2, 3)), np.array([1, 1]))
    task = Task("classification", label_output=0)
    labels, probs = np.array([0, 1, 1, 1]), np.array([[0.6, 0.4], [0.2, 0.8]] * 2)
    flipped = np.array([0, 1, 0, 1])
    report = check_parity("x", task, held, ["label", "probabilities"], [labels, probs],
                          [flipped, probs], rtol=1e-3, atol=1e-5)
    assert report.passed  # the probabilities agree; a flipped label alone is a near-tie
    assert report.agreement == 0.75
    assert report.metric_original == 1.0 and report.metric_onnx == 0.5
    only_labels = check_parity("x", task, held, ["label"], [labels], [flipped], rtol=1e-3,
                               atol=1e-5)
    assert not only_labels.passed
    message = only_labels.describe_failure(held)
    assert "output 'label', eval row 0" in message and "ONNX 0.0 vs original 1.0" in message


def test_argmax_task_and_failure_message() -> None:
    held = prepare(np.zeros((1, 2)), np.zeros((2, 2)), np.array([1, 0]))
    original = [np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])]
    onnx = [np.array([[0.1, 0.9], [0.8, 0.2], [0.9, 0.1]])]
    report = check_parity("torch-dynamo", Task("classification"), held, ["output"], original,
                          onnx, rtol=1e-3, atol=1e-5)
    assert not report.passed
    assert report.agreement == pytest.approx(2 / 3)
    err = report.error(held)
    assert (err.output, err.row) == ("output", 2)
    assert "eval row 1 (index 2 of 3 held-out rows), element [0]" in str(err)
    assert "Nothing was registered" in str(err)


def test_heldout_rows_from_frames_tensors_and_lists() -> None:
    import torch

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    held = prepare(frame, torch.tensor([[5.0, 6.0]]), [1])
    assert held.rows == 3 and held.n_example == 2 and held.n_eval == 1
    assert isinstance(held.original, pd.DataFrame) and list(held.original.columns) == ["a", "b"]
    assert held.origin(1) == "example row 1" and held.origin(2) == "eval row 0"
    assert held.features(np.float32).dtype == np.float32
    assert prepare([1.0, 2.0, 3.0]).array.shape == (1, 3)  # a 1-D example is one row


def test_a_dataframe_with_strings_becomes_a_column_per_input() -> None:
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "age": [31, 40], "w": [0.5, 1.5]})
    held = prepare(frame)
    assert held.columns is not None and held.rows == 2
    assert {k: (v.dtype.kind, v.shape) for k, v in held.columns.items()} == {
        "city": ("O", (2, 1)), "age": ("i", (2, 1)), "w": ("f", (2, 1))}
    with pytest.raises(ValidationError):
        prepare(frame, np.zeros((2, 3)))  # eval rows must be the same DataFrame's kind


@pytest.mark.parametrize(("args", "field"), [
    ((np.zeros((2, 3)), None, np.zeros(2)), "eval"),
    ((np.zeros((2, 3)), np.zeros((2, 4))), "eval_X"),
    ((np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3)), "eval_y"),
    ((np.zeros((0, 3)),), "example"),
    (((np.zeros(3), np.zeros(3)),), "example"),
])
def test_heldout_rejects_bad_rows(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        prepare(*args)
    assert caught.value.field == field


def test_settings_come_from_ship_toml_with_overrides(workspace: Any) -> None:
    (workspace.ship_dir / "ship.toml").write_text(
        '[export]\nrtol = 0.01\nprofile_threads = 2\nexperiment = "exports"\n', encoding="utf-8")
    ws = find_workspace(workspace.root)
    settings = settings_for(ws, atol=1e-3)
    assert (settings.rtol, settings.atol, settings.profile_threads) == (0.01, 1e-3, 2)
    assert settings.profile_repeats == 200 and settings.experiment == "exports"
    (workspace.ship_dir / "ship.toml").write_text("[export]\nprofile_repeats = 0\n",
                                                  encoding="utf-8")
    with pytest.raises(ConfigError, match="profile_repeats must be a positive whole number"):
        settings_for(find_workspace(workspace.root))
