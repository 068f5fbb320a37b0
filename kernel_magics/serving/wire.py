"""HTTP plumbing shared by the endpoints: bounded body reads, JSON in and out, errors.

Bodies are read against the bundle's ``max_body_bytes``: a larger Content-Length is
refused before reading, a chunked body as soon as it grows past the limit, and a
gzip/deflate body (tritonclient can compress) as soon as it inflates past it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import zlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .errors import InputError, PayloadTooLarge, RequestTimeout, RuntimeServingError

BODY_KEY = "ship.body"  # where read_body leaves the raw body in the ASGI scope, for the log
LOGGED_BODY_BYTES = 4096


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds max_body_bytes ({limit} bytes).",
                           field="body")


async def read_body(request: Request, limit: int, timeout: float = 30.0) -> bytes:
    """The (decompressed) body, or PayloadTooLarge / InputError / RequestTimeout (a body
    still arriving ``timeout`` seconds on: a slow client holds no worker for long)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InputError("Content-Length must be a number.", field="content-length")
        if int(length) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s.",
                             field="body") from None
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = request.headers.get("content-encoding")
    if encoding:
        body = _inflate(body, encoding.strip().lower(), limit)
    request.scope[BODY_KEY] = body
    return body


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise InputError(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate.",
                         field="content-encoding")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"body is not valid {encoding}: {exc}", field="body") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    return out


def logged_body(request: Request) -> dict[str, str] | None:
    """The start of the raw body, for logging a request that failed to parse."""
    body = request.scope.get(BODY_KEY)
    if not isinstance(body, bytes):
        return None
    return {"raw_body": body[:LOGGED_BODY_BYTES].decode("utf-8", "replace")}


def json_default(value: Any) -> Any:
    """orjson's ``default`` for answers: numpy values, DataFrames (as records), bytes."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):  # pandas DataFrame from a postprocess
        return value.to_dict(orient="records")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def loads(body: bytes) -> Any:
    """Parse JSON or raise InputError('malformed JSON ...')."""
    if not body:
        raise InputError("the body is empty; send JSON.", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", field="body") from None


ID_LENGTH, ID_PREFIX_LENGTH = 24, 12  # hex digits: a process prefix, then a counter
# A request id ends in a keyed hash of those 24 digits: the counter is sequential (the
# request index keeps runs of it), so without the hash anyone who saw one id could name
# the next and send ground truth for requests they never made.
MAC_LENGTH = 8
REQUEST_ID_LENGTH = ID_LENGTH + MAC_LENGTH
ENV_REQUEST_KEY = "SHIP_REQUEST_KEY"  # hex; else the log's own key file (predlog.py)
# per process (each worker has its own), 48 random bits
_ID_PREFIX = os.urandom(ID_PREFIX_LENGTH // 2).hex()
_ID_FIRST = int.from_bytes(os.urandom(5))  # the counter's random start, 40 bits
_ID_SEQUENCE = itertools.count(_ID_FIRST)
_ID_MASK = 0xFFFFFFFFFF  # 40 bits, written as ID_LENGTH - ID_PREFIX_LENGTH = 12 digits
_HEX = frozenset("0123456789abcdef")
# ids of responses that are no prediction: another prefix and counter, never "issued here"
_RESPONSE_PREFIX = f"{int(_ID_PREFIX, 16) ^ 1:012x}"
_RESPONSE_SEQUENCE = itertools.count(int.from_bytes(os.urandom(5)))
# keyed once; each id hashes a copy (0.4 us against 0.6 us keying it anew)
_ID_HASH = hashlib.blake2s(key=os.urandom(16), digest_size=MAC_LENGTH // 2)


def use_request_key(key: bytes) -> None:
    """Sign request ids with ``key``: the same for every worker and reader of one log,
    and across restarts, so an id stays valid for feedback as long as the log."""
    global _ID_HASH
    _ID_HASH = hashlib.blake2s(key=key, digest_size=MAC_LENGTH // 2)


def request_key_for(log: Any) -> bytes:
    """``SHIP_REQUEST_KEY``, else the key file of ``log`` (a predlog.LogLocation), else
    (None: no log, no feedback either) a key of this process."""
    configured = os.environ.get(ENV_REQUEST_KEY, "").strip()
    if configured:
        try:
            return bytes.fromhex(configured)
        except ValueError:
            raise ValueError(f"{ENV_REQUEST_KEY} must be hex digits.") from None
    if log is None:
        return os.urandom(16)
    return bytes(log.request_key())


def sign(body: str) -> str:
    """``body`` (24 hex digits) followed by its keyed hash (8 hex digits)."""
    digest = _ID_HASH.copy()
    digest.update(body.encode("ascii"))
    return body + digest.hexdigest()


def new_request_id() -> str:
    """A fresh request id: 32 hex digits, unique across processes and restarts, and not
    to be guessed from another.

    A random per-process prefix plus a counter that starts at a random value, then a
    keyed hash of both. Not ``os.urandom`` per request: that system call releases the
    GIL, and while another thread (an object-store log writer, a large batch) is busy
    the event loop then waits up to a switch interval (5 ms) to get it back."""
    return sign(f"{_ID_PREFIX}{next(_ID_SEQUENCE) & _ID_MASK:012x}")


def new_response_id() -> str:
    """An id for a response that is no prediction (feedback, /metrics, health, metadata):
    the same shape as :func:`new_request_id`'s, from another prefix and counter, so
    :func:`issued_here` does not take it for a prediction's."""
    return sign(f"{_RESPONSE_PREFIX}{next(_RESPONSE_SEQUENCE) & _ID_MASK:012x}")


def split_request_id(request_id: str) -> tuple[str, int] | None:
    """The (process prefix, counter) of an id in :func:`new_request_id`'s shape (32
    lowercase hex digits whose hash holds), or None for anything else."""
    if len(request_id) != REQUEST_ID_LENGTH or not set(request_id) <= _HEX:
        return None
    body = request_id[:ID_LENGTH]
    if not hmac.compare_digest(sign(body), request_id):
        return None
    return body[:ID_PREFIX_LENGTH], int(body[ID_PREFIX_LENGTH:], 16)


def issued_here(request_id: str) -> bool:
    """True if :func:`new_request_id` of this process returned ``request_id``: its prefix,
    and a counter value already handed out. Nothing is stored per request."""
    parts = split_request_id(request_id)
    if parts is None or parts[0] != _ID_PREFIX:
        return False
    issued = int(repr(_ID_SEQUENCE)[len("count("):-1]) - _ID_FIRST  # peek, not consume
    return (parts[1] - _ID_FIRST) & _ID_MASK < issued


def json_response(content: bytes, request_id: str | None = None, status: int = 200,
                  ) -> Response:
    """A JSON response from already-encoded bytes, with an ``x-request-id`` header."""
    return Response(content, status_code=status, media_type="application/json",
                    headers={"x-request-id": request_id or new_response_id()})


def error_response(exc: RuntimeServingError, request_id: str | None = None) -> Response:
    """``{"error": ..., "field": ..., "request_id": ...}`` with the error's status."""
    body: dict[str, Any] = exc.payload()
    body["request_id"] = request_id = request_id or new_response_id()
    return json_response(orjson.dumps(body), request_id, exc.status)
