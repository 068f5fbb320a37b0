"""An S3-compatible server for tests: moto's server mode on 127.0.0.1.

Tests import it as ``object_store`` (``tests/`` is on ``sys.path``, see live_server.py).
:func:`moto_server` starts ``python -m moto.server`` in a subprocess and stops it;
:func:`s3_environment` is what a client needs to reach it (``AWS_ENDPOINT_URL`` and
throw-away credentials): pyarrow, boto3 and MLflow all honour those variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from live_server import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """A running moto server; yields its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start: " + (
                        proc.stderr.read().decode() if proc.stderr else "")) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_environment(endpoint: str) -> dict[str, str]:
    """Environment variables that point S3 clients at ``endpoint``."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


def create_bucket(endpoint: str, name: str) -> None:
    """A new, empty bucket."""
    import boto3

    env = s3_environment(endpoint)
    boto3.client("s3", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
                 aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=name)


def environ_with(endpoint: str) -> dict[str, str]:
    """This process's environment plus :func:`s3_environment` (for subprocesses)."""
    return {**os.environ, **s3_environment(endpoint)}
