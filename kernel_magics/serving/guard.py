"""Connection limits uvicorn does not set: a few clients cannot exhaust the service.

uvicorn's httptools protocol keeps a connection that never finishes its headers open
forever, buffers headers of any size, and accepts connections without bound (its
``limit_concurrency`` answers 503 only once a request arrives). :func:`guarded_protocol`
returns its subclass that, per :class:`ConnectionLimits`:

- closes a connection whose request headers are not complete ``header_timeout_s`` after
  its first byte (or after it opened): slowloris clients and idle sockets (408);
- answers 431 and closes once a request's header section passes ``max_header_bytes``
  (counted as it arrives, so memory stays bounded);
- refuses connections past ``max_connections`` at once with a 503 (file descriptors).

Idle keep-alive connections close after uvicorn's ``timeout_keep_alive``; a body that
arrives too slowly is wire.read_body's ``body_timeout_s`` (408).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ENV_LIMITS = "SHIP_CONNECTION_LIMITS"
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large",
           503: b"Service Unavailable"}
# After a refusal the client may still be sending (the rest of its headers). Closing a
# socket with unread bytes makes the kernel reset it, and the reset can discard the
# refusal before it leaves; so the service half-closes, reads and drops what still
# comes for this long, then closes (a "lingering close", as Apache and nginx do).
LINGER_S = 1.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Bounds on what one connection may hold (ship.yaml ``runtime``, see bundle.py)."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000

    @classmethod
    def from_env(cls) -> ConnectionLimits:
        """``SHIP_CONNECTION_LIMITS`` (JSON), which worker processes inherit; else defaults."""
        raw = os.environ.get(ENV_LIMITS)
        return cls(**json.loads(raw)) if raw else cls()

    def to_env(self) -> str:
        return json.dumps(asdict(self))


def refusal(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    body = message.encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, REASONS[status], len(body), body))


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits` enforced."""

    # Worker processes import this class by name (uvicorn's ``http="module:Class"``) and
    # read the limits their parent put in the environment.
    limits: ClassVar[ConnectionLimits] = ConnectionLimits.from_env()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._oversized = False
        self._refused = False  # answered and half-closed: what still arrives is dropped
        self._chunk = 0  # bytes of the read being parsed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport  # connection_lost closes it
            transport.write(refusal(503, "too many open connections; retry later.\n"))
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._chunk = len(data)
        super().data_received(data)
        # Still no complete header section after more bytes than it may hold: every byte
        # since the request began was header, so the section itself is too large. (Bytes
        # of a body still arriving after its answer, as after an early 413, are no header.)
        # A request that arrives whole in one read (the usual case) arms no timer at all.
        if self._awaiting_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, f"request headers exceed {self.limits.max_header_bytes} "
                                  "bytes.\n")
            elif self._header_timer is None:
                self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers, self._header_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._cancel_header_timer()
        # A whole header section that came in one read is measured here, when that read
        # was large enough to hold too much.
        if self._header_bytes + self._chunk > self.limits.max_header_bytes and len(
                self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) \
                > self.limits.max_header_bytes:
            self._oversized = True
            raise ValueError("header section too large")  # the parser stops: 431 below
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._oversized:
            self._refuse(431, f"request headers exceed {self.limits.max_header_bytes} bytes.\n")
        else:
            super().send_400_response(msg)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s,
                                                  self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and self._header_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
        elif self._awaiting_headers:
            self._refuse(408, f"request headers not complete within "
                              f"{self.limits.header_timeout_s:g} s.\n")

    def _refuse(self, status: int, message: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._cancel_header_timer()
        self.transport.write(refusal(status, message))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpTools]:
    """The protocol class for uvicorn's ``http`` option, bound to ``limits``."""
    return type("GuardedHttpTools", (GuardedHttpTools,), {"limits": limits})
