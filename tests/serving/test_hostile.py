"""Hostile clients cannot exhaust the service: slow, idle, oversized and too many.

A real server (uvicorn with Ship's guarded protocol) on 127.0.0.1, a bundle with tight
limits, and raw sockets playing the clients a load balancer would not stop: one that
opens a connection and says nothing, one that sends its headers a byte at a time, one
with 100 KB of headers, one whose body never finishes, and a crowd of idle connections.
After each, the service still answers.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import free_port, wait_ready

from kernel_magics.serving.bundle import Bundle, write_bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tight_bundle(digits_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    runtime = replace(digits_bundle.manifest.runtime, header_timeout_s=1.0, body_timeout_s=1.0,
                      max_header_bytes=8192, max_connections=20, shutdown_timeout_s=2)
    folder = tmp_path_factory.mktemp("tight") / "digits" / "3"
    return write_bundle(folder, manifest=replace(digits_bundle.manifest, runtime=runtime),
                        schema=digits_bundle.schema, model=digits_bundle.model_path)


@pytest.fixture
def tight(start_server: Any, tight_bundle: Bundle) -> Any:
    return start_server(tight_bundle)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def still_serves(server: Any) -> None:
    answer = httpx.post(server.url + "/invocations", json={"instances": [[0.0] * 64]},
                        timeout=10)
    assert answer.status_code == 200, answer.text


def test_an_idle_connection_is_closed(tight: Any) -> None:
    sock = connect(tight.port)
    started = time.monotonic()
    assert read_all(sock) == b""  # closed by the server, nothing to answer
    assert 0.5 < time.monotonic() - started < 5
    still_serves(tight)


def test_headers_sent_a_byte_at_a_time_get_408(tight: Any) -> None:
    sock = connect(tight.port)
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    try:
        for byte in b"X-Slow: " + b"a" * 100:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
    except OSError:
        pass  # the server closed it, as it should
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 5
    still_serves(tight)


def test_oversized_headers_get_431(tight: Any) -> None:
    sock = connect(tight.port)
    request = (b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n"
               + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(100)) + b"\r\n")
    with contextlib.suppress(OSError):  # the server may close before it has all of it
        sock.sendall(request)
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    still_serves(tight)


def test_a_body_that_never_finishes_gets_408(tight: Any) -> None:
    sock = connect(tight.port)
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"instances\": ")
    answer = read_all(sock)
    assert b" 408 " in answer.split(b"\r\n", 1)[0], answer[:200]
    assert b'"error_code"' in answer
    still_serves(tight)


def test_connections_past_the_limit_are_refused_and_the_service_goes_on(tight: Any) -> None:
    crowd = [connect(tight.port) for _ in range(30)]
    try:
        refused = 0
        for sock in crowd[20:]:
            sock.settimeout(5)
            answer = read_all(sock)
            refused += answer.startswith(b"HTTP/1.1 503")
        assert refused >= 9  # the 20 before them hold every slot
    finally:
        for sock in crowd:
            sock.close()
    time.sleep(0.2)
    still_serves(tight)


def test_sigterm_stops_within_the_shutdown_timeout(tight_bundle: Bundle, tmp_path: Path) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "kernel_magics.serving", "serve",
                             str(tight_bundle.path), "--port", str(port), "--log-dir",
                             str(tmp_path / "log")], cwd=root, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=60)
        # A client mid-request: its body keeps coming, so the request never finishes.
        sock = connect(port)
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 2 + 5  # shutdown_timeout_s plus the log's flush
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
