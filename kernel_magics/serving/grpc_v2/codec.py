"""ModelInferRequest -> validated Inputs, and model outputs -> ModelInferResponse.

The checks and their messages are the REST API's (v2_codec.py): a tensor's name,
datatype and shape, its raw bytes or values, the features or model inputs it names, the
outputs asked for. Input values come either all in ``raw_input_contents`` (one entry per
input, in order: what tritonclient and KServe's client send for numpy arrays) or each in
its ``contents`` field of its datatype (KServe's client for lists). Outputs always go
back raw, in ``raw_output_contents``, as Triton answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from ..errors import InputError
from ..inputs import NDArray
from ..schema import Schema, numpy_to_v2
from ..v2_codec import (
    InferRequest,
    check_tensor,
    from_data,
    from_raw,
    raw_tensor,
    requested_output,
    to_inputs,
)
from ..wire import LOGGED_BODY_BYTES
from .protocol import ModelInferResponse

#: datatype -> the InferTensorContents field that carries its values (FP16, BF16: raw only)
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
            "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
            "UINT16": "uint_contents", "UINT32": "uint_contents",
            "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
            "BYTES": "bytes_contents"}


def parse_model_infer(schema: Schema, request: Any, *, identity: bool) -> InferRequest:
    """Decode a ModelInferRequest into validated input (InputError naming the field)."""
    items = request.inputs
    if not items:
        raise InputError("'inputs' must be a non-empty list of tensors.", field="inputs")
    raw = request.raw_input_contents
    if raw and len(raw) != len(items):
        raise InputError(f"raw_input_contents holds {len(raw)} tensors for {len(items)} "
                         "inputs; send one per input, in their order, or none.",
                         field="raw_input_contents")
    tensors: dict[str, NDArray] = {}
    for i, item in enumerate(items):
        name, datatype, shape = check_tensor(item.name, item.datatype, list(item.shape))
        if raw:
            if item.HasField("contents"):
                raise InputError(f"input {name!r}: its values come in raw_input_contents; "
                                 "leave its contents empty.", field=name)
            array = from_raw(name, datatype, shape, raw[i])
        else:
            array = from_data(name, datatype, shape,
                              _values(name, datatype, shape, item.contents))
        if name in tensors:
            raise InputError(f"input {name!r} appears twice.", field=name)
        tensors[name] = array
    outputs = [requested_output(schema, o.name) for o in request.outputs] or None
    return InferRequest(inputs=to_inputs(schema, tensors, identity),
                        client_id=request.id or None, outputs=outputs)


def _values(name: str, datatype: str, shape: list[int], contents: Any) -> list[Any]:
    field = CONTENTS.get(datatype)
    if field is None:
        raise InputError(f"input {name!r}: {datatype} values travel only in "
                         "raw_input_contents.", field=name)
    values = getattr(contents, field)
    if not values:
        used = [f.name for f, _ in contents.ListFields()]
        if used:
            raise InputError(f"input {name!r}: {datatype} values go in contents.{field}, "
                             f"not contents.{used[0]}.", field=name)
        if 0 not in shape:
            raise InputError(f"input {name!r} has neither contents nor raw_input_contents.",
                             field=name)
    if datatype == "BYTES":
        return [v.decode("utf-8", "replace") for v in values]
    return list(values)


def encode_model_infer(*, model: str, version: str, response_id: str,
                       outputs: dict[str, NDArray]) -> Any:
    """A ModelInferResponse carrying ``outputs`` raw."""
    response = ModelInferResponse(model_name=model, model_version=version, id=response_id)
    for name, array in outputs.items():
        datatype = numpy_to_v2(array.dtype)
        response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        response.raw_output_contents.append(raw_tensor(np.asarray(array), datatype))
    return response


def describe(request: Any) -> dict[str, str]:
    """What the prediction log keeps of a request that failed: its header, the sizes of
    its raw contents (as ``raw_body``, like a REST body that did not parse)."""
    summary = {"model_name": request.model_name, "model_version": request.model_version,
               "id": request.id,
               "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                          for t in request.inputs[:64]],
               "outputs": [o.name for o in request.outputs[:64]],
               "raw_input_contents_bytes": [len(r) for r in request.raw_input_contents[:64]]}
    text = orjson.dumps(summary).decode()
    return {"raw_body": text[:LOGGED_BODY_BYTES]}
