"""state/: the values serve cells take from the rest of the notebook, in safe formats.

A serve cell may use names other cells defined: ``mu, sd = X.mean(), X.std()``,
``FEATURES = list(X.columns)``, a fitted encoder. Their values are captured from the
kernel and stored here, one file each, in formats that load without running code::

    state/state.json      {"format": 1, "values": {NAME: {"kind", "type", "file"?, ...}}}
    state/NAME.json       kind json:    None, bool, int, float, str, list, tuple, set, dict
    state/NAME.npy        kind npy:     a numpy array (np.save, allow_pickle=False)
    state/NAME.parquet    kind parquet: a pandas DataFrame or Series (index kept)
    state/NAME.json       kind index:   a pandas Index (its values as JSON)
    state/NAME.skops      kind skops:   a scikit-learn object; loaded only when every type
                                        in it is on :data:`TRUSTED_MODULES`
    (no file)             kind module:  a module, imported again by name (``import numpy as np``)
    (no file)             kind import:  a function or class, imported by module and name

Nothing here uses pickle. :func:`write_state` refuses a value it has no safe format for
with :class:`StateError`, naming the variable, its type and what to do; the runtime's
:func:`load_state` returns ``{name: value}`` for handler.py's module namespace.
"""

from __future__ import annotations

import importlib
import json
import math
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = "state"
STATE_FILE = "state.json"
FORMAT = 1
# Modules whose types a .skops file may hold: scikit-learn objects are built from these.
TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "builtins", "collections", "math",
                   "datetime", "decimal", "fractions")
# Modules a service must never import (Ship's runtime promise); a value from them is refused.
FORBIDDEN_MODULES = ("torch", "mlflow", "IPython", "ipykernel", "jupyter_client",
                     "jupyter_server", "kernel_magics", "__main__")
_TAG = "$ship"  # marks a JSON object that encodes a tuple, set or dict with non-string keys


class StateError(ValueError):
    """A captured value cannot be stored or loaded safely; says which and what to do."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"{name}: {message}")


@dataclass(frozen=True)
class StateEntry:
    """One stored value: how it is stored and what it was."""

    kind: str
    type: str
    file: str | None = None
    module: str | None = None
    attribute: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def type_name(value: Any) -> str:
    """``module.Class`` of a value, as error messages and state.json show it."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"


def root_module(name: str | None) -> str:
    return (name or "").split(".", 1)[0]


# -- writing (the kernel side) ---------------------------------------------------------
def write_state(values: dict[str, Any], folder: Path, *,
                refused: dict[str, str] | None = None) -> dict[str, StateEntry]:
    """Store ``values`` under ``folder/state``; StateError names the first unsafe value.

    Given a ``refused`` dict, an unsafe value is left out and its reason put there (and
    in state.json) instead: a capture that must never fail the user's cell."""
    target = folder / STATE_DIR
    target.mkdir(parents=True, exist_ok=True)
    entries: dict[str, StateEntry] = {}
    reasons: dict[str, str] = {}
    for name, value in values.items():
        try:
            entry = encode(name, value)
            _write_file(target, name, entry, value)
        except StateError as exc:
            if refused is None:
                raise
            reasons[name] = str(exc)
            for stale in target.glob(f"{name}.*"):
                stale.unlink()
            continue
        entries[name] = entry
    document: dict[str, Any] = {"format": FORMAT,
                                "values": {n: e.to_dict() for n, e in sorted(entries.items())}}
    if reasons:
        document["refused"] = reasons
        assert refused is not None
        refused.update(reasons)
    (target / STATE_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return entries


def read_refused(bundle_path: Path) -> dict[str, str]:
    """{name: why it has no safe format} of a capture made with ``refused``."""
    path = bundle_path / STATE_DIR / STATE_FILE
    if not path.is_file():
        return {}
    refused = json.loads(path.read_text(encoding="utf-8")).get("refused", {})
    return {str(k): str(v) for k, v in refused.items()}


def encode(name: str, value: Any) -> StateEntry:
    """How ``value`` would be stored; StateError when it has no safe format."""
    typename = type_name(value)
    if isinstance(value, types.ModuleType):
        _allowed_module(name, value.__name__, "module")
        return StateEntry("module", "module", module=value.__name__)
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
        return _importable(name, value)
    if _is_json(value):
        return StateEntry("json", typename, file=f"{name}.json")
    module = root_module(type(value).__module__)
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise StateError(name, f"a numpy array of Python objects ({typename}, dtype "
                                 "object) has no safe format; convert it, e.g. "
                                 f"{name}.astype(str) or .astype(float).")
            return StateEntry("npy", typename, file=f"{name}.npy")
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series):
            return StateEntry("parquet", typename, file=f"{name}.parquet")
        if isinstance(value, pd.Index) and not isinstance(value, pd.MultiIndex) \
                and _is_json(value.tolist()):
            return StateEntry("index", typename, file=f"{name}.json")
    if module == "sklearn":
        return StateEntry("skops", typename, file=f"{name}.skops")
    raise StateError(name, f"a {typename} has no safe format (JSON, npy, Parquet or skops); "
                     "store what the service needs as numbers, strings, lists, dicts, arrays "
                     "or DataFrames, or define it in a serve cell.")


def _allowed_module(name: str, module: str, what: str) -> None:
    if root_module(module) in FORBIDDEN_MODULES:
        raise StateError(name, f"the {what} comes from {module}, which a service never imports "
                         "(no torch, MLflow or Jupyter at serving time); compute what the "
                         "service needs with numpy or pandas instead.")


def _importable(name: str, value: Any) -> StateEntry:
    module = getattr(value, "__module__", None) or ""
    attribute = getattr(value, "__qualname__", "")
    if module == "__main__":
        raise StateError(name, f"{attribute} is a {type_name(value)} defined in the notebook; "
                         "move its definition into a serve cell (%%ship serve) so it goes "
                         "into the service as code.")
    _allowed_module(name, module, "function or class")
    try:
        found: Any = importlib.import_module(module)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        found = None
    if found is not value:
        raise StateError(name, f"{type_name(value)} {attribute or value!r} cannot be imported "
                         "again by name; define it in a serve cell (%%ship serve).")
    return StateEntry("import", type_name(value), module=module, attribute=attribute)


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple, set, frozenset):
        return all(_is_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(_is_json(k, depth + 1) and not isinstance(k, list | dict | set)
                   and _is_json(v, depth + 1) for k, v in value.items())
    # numpy scalars (np.float64 from X.mean()) are stored as their Python value
    return hasattr(value, "item") and getattr(value, "shape", None) == () and \
        root_module(type(value).__module__) == "numpy" and _is_json(value.item(), depth + 1)


def _to_json(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return _to_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {_TAG: "float", "value": repr(value)}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return {_TAG: type(value).__name__, "items": [_to_json(v) for v in items]}
    if isinstance(value, dict):
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: _to_json(v) for k, v in value.items()}
        return {_TAG: "dict", "items": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    return value


def _write_file(folder: Path, name: str, entry: StateEntry, value: Any) -> None:
    if entry.file is None:
        return
    path = folder / entry.file
    if entry.kind == "json":
        path.write_text(json.dumps(_to_json(value)), encoding="utf-8")
    elif entry.kind == "index":
        path.write_text(json.dumps({"values": _to_json(value.tolist()), "name": value.name,
                                    "dtype": str(value.dtype)}), encoding="utf-8")
    elif entry.kind == "npy":
        import numpy as np

        np.save(path, value, allow_pickle=False)
    elif entry.kind == "parquet":
        frame = value.to_frame(name=_series_column(value)) if entry.type.endswith("Series") \
            else value
        try:
            frame.to_parquet(path)
        except (TypeError, ValueError, ImportError) as exc:
            raise StateError(name, f"this {entry.type} cannot be written as Parquet ({exc}); "
                             "give its columns plain types (numbers, strings).") from None
    elif entry.kind == "skops":
        import skops.io as sio

        sio.dump(value, path)
        _check_trusted(name, sio.get_untrusted_types(file=path))


def _series_column(series: Any) -> str:
    return "__series__" if series.name is None else str(series.name)


def _check_trusted(name: str, found: list[str]) -> list[str]:
    untrusted = [t for t in found if root_module(t) not in TRUSTED_MODULES]
    if untrusted:
        raise StateError(name, f"holds types that are not scikit-learn's, numpy's or scipy's "
                         f"({', '.join(untrusted[:5])}); only those load without running "
                         "arbitrary code. Refit it from scikit-learn parts, or define it in a "
                         "serve cell.")
    return found


# -- reading (the runtime side) --------------------------------------------------------
def read_entries(bundle_path: Path) -> dict[str, StateEntry]:
    """state.json's entries ({} when the bundle has no state)."""
    path = bundle_path / STATE_DIR / STATE_FILE
    if not path.is_file():
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise StateError(STATE_FILE, f"format {document.get('format')} is not {FORMAT}; "
                         "rebuild the bundle with this version of Ship.")
    return {name: StateEntry(**fields) for name, fields in document["values"].items()}


def load_state(bundle_path: Path) -> dict[str, Any]:
    """{name: value} of the bundle's state, loaded without pickle."""
    folder = bundle_path / STATE_DIR
    return {name: _load(folder, name, entry)
            for name, entry in read_entries(bundle_path).items()}


def _load(folder: Path, name: str, entry: StateEntry) -> Any:
    path = folder / entry.file if entry.file else None
    if entry.kind in ("module", "import"):
        assert entry.module is not None
        _allowed_module(name, entry.module, entry.kind)
        found: Any = importlib.import_module(entry.module)
        for part in (entry.attribute or "").split(".") if entry.attribute else []:
            found = getattr(found, part)
        return found
    assert path is not None
    if entry.kind == "json":
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    if entry.kind == "index":
        import pandas as pd

        doc = json.loads(path.read_text(encoding="utf-8"))
        return pd.Index(_from_json(doc["values"]), name=doc["name"], dtype=doc["dtype"])
    if entry.kind == "npy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if entry.kind == "parquet":
        import pyarrow.parquet as pq

        frame = pq.read_table(path).to_pandas()
        if entry.type.endswith("Series"):
            series = frame.iloc[:, 0]
            return series.rename(None) if series.name == "__series__" else series
        return frame
    if entry.kind == "skops":
        import skops.io as sio

        trusted = _check_trusted(name, sio.get_untrusted_types(file=path))
        return sio.load(path, trusted=trusted)
    raise StateError(name, f"unknown kind {entry.kind!r} in {STATE_FILE}; rebuild the bundle.")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag == "float":
            return float(value["value"])
        if tag == "tuple":
            return tuple(_from_json(v) for v in value["items"])
        if tag in ("set", "frozenset"):
            items = [_from_json(v) for v in value["items"]]
            return set(items) if tag == "set" else frozenset(items)
        if tag == "dict":
            return {_hashable(_from_json(k)): _from_json(v) for k, v in value["items"]}
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
