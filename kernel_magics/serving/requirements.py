"""What the runtime is and what it needs: its version and pinned requirements.

The bundle builder writes :func:`runtime_requirements` into the bundle's
requirements.txt; a fresh virtual environment installed from it runs
``python -m ship_runtime serve BUNDLE``. The pins are the versions the runtime's
tests run against (tests/serving checks them against the test environment and
constraints.txt); transitive dependencies are resolved by pip (pass Ship's
constraints.txt with ``-c`` to pin those too).
"""

from __future__ import annotations

from collections.abc import Iterable

RUNTIME_VERSION = "0.1.0"

#: distribution -> (version, environment marker or "")
PINS: dict[str, tuple[str, str]] = {
    "numpy": ("2.4.6", ""),
    "onnxruntime": ("1.31.1", ""),
    "pyarrow": ("25.0.1", ""),
    "starlette": ("1.10.0", ""),
    "anyio": ("4.16.0", ""),
    "uvicorn": ("0.54.0", ""),
    "httptools": ("0.9.0", ""),
    "uvloop": ("0.23.0", 'sys_platform != "win32"'),
    "orjson": ("3.13.0", ""),
    "PyYAML": ("6.0.3", ""),
    # the V2 gRPC service (grpc_v2/); protobuf 6, as tritonclient's gRPC client needs
    "grpcio": ("1.85.1", ""),
    "protobuf": ("6.33.6", ""),
}
#: only for bundles whose handler.py defines preprocess(df) (it receives a DataFrame)
PANDAS_PIN = ("pandas", "3.1.1")


def runtime_requirements(*, pandas: bool = False, extra: Iterable[str] = ()) -> list[str]:
    """requirements.txt lines for a bundle: the runtime's pins, pandas if asked, ``extra``."""
    lines = [f"{name}=={version}" + (f"; {marker}" if marker else "")
             for name, (version, marker) in PINS.items()]
    if pandas:
        lines.append(f"{PANDAS_PIN[0]}=={PANDAS_PIN[1]}")
    lines.extend(extra)
    return lines
