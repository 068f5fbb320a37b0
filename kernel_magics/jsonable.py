"""Standard JSON of Ship's data, for every adapter that prints or answers it (the command
line's ``--json``, the REST API): dataclasses as dicts, NaN and infinity as null (a hole
in a logged feature, a figure with no data; JSON has no NaN, and jq and browsers refuse
it)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any


def plain(obj: Any) -> Any:
    """``obj`` with finite floats only, dataclasses as dicts, tuples as lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    return obj


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Standard JSON text of ``obj`` (anything else as its str)."""
    return json.dumps(plain(obj), indent=indent, default=str, allow_nan=False)
