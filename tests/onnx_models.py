"""Tiny real models for tests: a fitted sklearn classifier as ONNX, and its schema.

Tests import it as ``onnx_models`` (``tests/`` is on ``sys.path``, see ``live_server``).
"""

from __future__ import annotations

from typing import Any

from kernel_magics.serving.schema import Feature, Schema, TensorSpec


def sklearn_onnx(model: Any, width: int) -> bytes:
    """A fitted sklearn classifier as ONNX: ``float_input`` (rows x ``width``) in,
    ``label`` and ``probabilities`` out (no zipmap)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(model, initial_types=[("float_input", FloatTensorType([None, width]))],
                  options={id(model): {"zipmap": False}}, target_opset=17)
    return onx.SerializeToString()  # type: ignore[no-any-return]


def classifier_schema(features: list[Feature] | tuple[Feature, ...], width: int,
                      **extra: Any) -> Schema:
    """Schema of :func:`sklearn_onnx`'s model with ``width`` float inputs."""
    return Schema(features=tuple(features),
                  inputs=(TensorSpec("float_input", "FP32", (-1, width)),),
                  outputs=(TensorSpec("label", "INT64", (-1,)),
                           TensorSpec("probabilities", "FP32", (-1, -1))), **extra)
