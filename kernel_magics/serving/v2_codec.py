"""Open Inference Protocol v2 /infer bodies, JSON and the binary tensor extension.

A binary request is a JSON header of ``Inference-Header-Content-Length`` bytes followed
by the tensors whose ``parameters.binary_data_size`` is set, in input order, raw
little-endian (BYTES: each element a 4-byte little-endian length then the bytes).
Responses use the same layout for outputs asked for with ``binary_data: true`` or,
request-wide, ``parameters.binary_data_output: true`` (what tritonclient sends by default).

Inputs are named by model input tensors (fed as they are) or by features (one
[N] or [N, 1] tensor each, then the bundle's preprocess), as in MLServer's pandas codec.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .errors import InputError
from .inputs import Inputs, NDArray, checked_cast, from_columns, from_tensors
from .schema import V2_TO_NUMPY, Schema, numpy_to_v2

_LENGTH = struct.Struct("<I")


@dataclass
class InferRequest:
    """A parsed /infer request."""

    inputs: Inputs
    client_id: str | None = None
    outputs: list[str] | None = None
    binary: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a JSON object.", field=where)
    return value


def parse_infer(schema: Schema, body: bytes, header_length: str | None, *,
                identity: bool) -> InferRequest:
    """Decode a V2 infer body (JSON or JSON header + binary tensors) into validated input."""
    if header_length is None:
        header, blob = body, memoryview(b"")
    else:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 < size <= len(body):
            raise InputError(f"Inference-Header-Content-Length {header_length!r} does not fit "
                             f"a {len(body)}-byte body.", field="Inference-Header-Content-Length")
        header, blob = body[:size], memoryview(body)[size:]
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", field="body") from None
    if not isinstance(doc, dict):
        raise InputError("the body must be a JSON object with 'inputs'.", field="body")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InputError("'inputs' must be a non-empty list of tensors.", field="inputs")
    client_id = doc.get("id")
    if client_id is not None and not isinstance(client_id, str):
        raise InputError("'id' must be a string.", field="id")
    params = _object(doc.get("parameters"), "parameters")
    tensors: dict[str, NDArray] = {}
    offset = 0
    for item in raw_inputs:
        item = _object(item, "inputs")
        name, array, used = _decode(item, blob, offset)
        if name in tensors:
            raise InputError(f"input {name!r} appears twice.", field=name)
        tensors[name] = array
        offset += used
    if offset != len(blob):
        raise InputError(f"{len(blob) - offset} bytes of binary data follow the tensors "
                         "unclaimed; check binary_data_size.", field="binary_data_size")
    request = InferRequest(inputs=to_inputs(schema, tensors, identity), client_id=client_id,
                           binary_default=params.get("binary_data_output") is True)
    if doc.get("outputs") is not None:
        if not isinstance(doc["outputs"], list):
            raise InputError("'outputs' must be a list.", field="outputs")
        request.outputs = []
        for item in doc["outputs"]:
            item = _object(item, "outputs")
            name = requested_output(schema, item.get("name"))
            request.outputs.append(name)
            wants = _object(item.get("parameters"), f"outputs.{name}.parameters")
            if "binary_data" in wants:
                request.binary[name] = wants["binary_data"] is True
    return request


def _decode(item: dict[str, Any], blob: memoryview, offset: int) -> tuple[str, NDArray, int]:
    name, datatype, shape = check_tensor(item.get("name"), item.get("datatype"),
                                         item.get("shape"))
    size = _object(item.get("parameters"), f"{name}.parameters").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= \
                len(blob) - offset:
            raise InputError(f"input {name!r}: binary_data_size {size!r} exceeds the binary "
                             "data sent.", field=name)
        return name, from_raw(name, datatype, shape, blob[offset:offset + size]), size
    if "data" not in item:
        raise InputError(f"input {name!r} has neither 'data' nor binary_data_size.", field=name)
    return name, from_data(name, datatype, shape, item["data"]), 0


def check_tensor(name: Any, datatype: Any, shape: Any) -> tuple[str, str, list[int]]:
    """An input tensor's name, V2 datatype and shape (non-negative integers), else
    InputError (every V2 wire format checks its tensors here)."""
    if not isinstance(name, str):
        raise InputError("every input needs a string 'name'.", field="inputs")
    if not isinstance(datatype, str) or datatype not in V2_TO_NUMPY:
        raise InputError(f"input {name!r}: datatype {datatype!r} is not one of "
                         f"{sorted(V2_TO_NUMPY)}.", field=name)
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape):
        raise InputError(f"input {name!r}: shape must be a list of non-negative integers.",
                         field=name)
    return name, datatype, shape


def from_raw(name: str, datatype: str, shape: list[int], raw: memoryview | bytes) -> NDArray:
    """A checked tensor's elements from raw little-endian bytes (BYTES: each element a
    4-byte length, then its bytes)."""
    count = math.prod(shape)
    size = len(raw)
    if datatype == "BYTES":
        # Each element takes at least its 4-byte length: a declared shape the data
        # cannot hold is refused before anything is allocated for it.
        if count * 4 > size:
            raise InputError(f"input {name!r}: {size} bytes cannot hold {count} BYTES "
                             f"elements of shape {shape}.", field=name)
        array = _bytes_elements(name, memoryview(raw), count)
    else:
        dtype = V2_TO_NUMPY[datatype]
        if size != count * dtype.itemsize:
            raise InputError(f"input {name!r}: {size} bytes do not hold {count} "
                             f"{datatype} values.", field=name)
        array = np.frombuffer(raw, dtype=dtype.newbyteorder("<"), count=count)
    return array.reshape(shape)


def from_data(name: str, datatype: str, shape: list[int], data: Any) -> NDArray:
    """A checked tensor's elements from values (JSON ``data``, typed gRPC contents)."""
    count = math.prod(shape)
    dtype = V2_TO_NUMPY[datatype]
    try:
        array = np.array(data)
    except (ValueError, TypeError):
        raise InputError(f"input {name!r}: ragged data.", field=name) from None
    ok = {"b": "b", "i": "iub", "u": "iub", "f": "iubf", "O": "U"}[dtype.kind]
    if array.dtype.kind not in ok or (array.size == 0 and count != 0):
        raise InputError(f"input {name!r}: data do not hold {datatype} values.", field=name)
    if array.size != count:
        raise InputError(f"input {name!r}: {array.size} values do not fill shape {shape}.",
                         field=name)
    return checked_cast(array, dtype, name, "input").reshape(shape)


def _bytes_elements(name: str, raw: memoryview, count: int) -> NDArray:
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(raw):
            raise InputError(f"input {name!r}: BYTES data end early.", field=name)
        (length,) = _LENGTH.unpack_from(raw, pos)
        pos += 4
        if pos + length > len(raw):
            raise InputError(f"input {name!r}: BYTES element {i} runs past its data.",
                             field=name)
        out[i] = bytes(raw[pos:pos + length]).decode("utf-8", "replace")
        pos += length
    if pos != len(raw):
        raise InputError(f"input {name!r}: BYTES data hold more than {count} elements.",
                         field=name)
    return out


def requested_output(schema: Schema, wanted: Any) -> str:
    """``wanted`` if the model has an output of that name, else InputError."""
    known = [spec.name for spec in schema.outputs]
    if not isinstance(wanted, str) or wanted not in known:
        raise InputError(f"unknown output {wanted!r}; the model returns {known}.",
                         field=str(wanted))
    return wanted


def to_inputs(schema: Schema, tensors: dict[str, NDArray], identity: bool) -> Inputs:
    """Decoded tensors as validated Inputs: features (then preprocess) when every name is
    a feature's, else model input tensors fed as they are."""
    if all(schema.feature(n) is not None for n in tensors):
        return from_columns(schema, dict(tensors))
    model_inputs = {spec.name for spec in schema.inputs}
    unknown = sorted(n for n in tensors if n not in model_inputs)
    if unknown:
        raise InputError(f"unknown input {unknown[0]!r}; send the model inputs "
                         f"{sorted(model_inputs)} or the features {schema.feature_names}.",
                         field=unknown[0])
    return from_tensors(schema, tensors, identity=identity)


def encode_infer(*, model: str, version: str, request_id: str, request: InferRequest,
                 outputs: dict[str, NDArray]) -> tuple[bytes, int | None, bytes | None]:
    """The response body, the JSON header length when binary tensors follow it, and the
    ``outputs`` list as JSON when all of it is JSON (the prediction log keeps it)."""
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, array in outputs.items():
        datatype = numpy_to_v2(array.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if request.binary.get(name, request.binary_default):
            blob = raw_tensor(array, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = json_data(array, datatype)
        described.append(entry)
    head = orjson.dumps({"model_name": model, "model_version": version,
                         "id": request_id if request.client_id is None
                         else request.client_id})
    listed = orjson.dumps(described, option=orjson.OPT_SERIALIZE_NUMPY)
    header = b"".join([head[:-1], b',"outputs":', listed, b"}"])
    if not blobs:
        return header, None, listed
    return b"".join([header, *blobs]), len(header), None


class V2Outputs:
    """Output tensors answered in binary, rendered as the V2 ``outputs`` list (JSON) by
    the prediction log, off the request path."""

    __slots__ = ("arrays",)

    def __init__(self, arrays: dict[str, NDArray]) -> None:
        self.arrays = arrays

    def tolist(self) -> list[dict[str, Any]]:
        """The ``outputs`` list of a V2 JSON answer (format.render_json calls it)."""
        return [{"name": name, "datatype": (datatype := numpy_to_v2(array.dtype)),
                 "shape": list(array.shape), "data": json_data(array, datatype)}
                for name, array in self.arrays.items()]


def json_data(array: NDArray, datatype: str) -> Any:
    """A tensor's ``data`` in a V2 JSON answer: flat, row-major."""
    if datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in array.ravel().tolist()]
    return np.ascontiguousarray(array).ravel()


def raw_tensor(array: NDArray, datatype: str) -> bytes:
    """A tensor's elements as raw little-endian bytes (BYTES: length-prefixed)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts: list[bytes] = []
    for value in array.ravel().tolist():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)
