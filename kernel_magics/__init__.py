"""Ship: from a notebook cell to a tracked, exported, served and monitored model.

In a notebook: ``%load_ext kernel_magics`` (automatic in kernels JupyterLab starts),
then ``%%ship track`` on a cell; inside it, ``ship.log(step=..., loss=...)`` logs series.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "label", "load_ipython_extension", "log", "production_data",
           "review_queue"]


def log(step: int | None = None, **values: Any) -> None:
    """Log metric values at a step from inside a `%%ship track` cell (e.g. per epoch)."""
    from .errors import ValidationError
    from .tracking.capture import active_step_log

    steps = active_step_log()
    if steps is None:
        raise ValidationError("ship.log() works inside a cell that starts with %%ship track.",
                              hint="Add `%%ship track` as the cell's first line.")
    steps.log(step, values)


def production_data(name: str, *, since: str | None = None) -> Any:
    """Service ``name``'s production rows that have ground truth, as a pandas DataFrame:
    one column per feature, ``target``, ``request_id``, ``time`` (oldest first); what
    ``ship retrain`` passes to the training notebook as ``ship_new_data``. ``since``: a
    duration (``"2h"``, ``"1d"``) or an ISO time."""
    from .retrain.data import service_production_data
    from .workspace import find_workspace

    return service_production_data(find_workspace(), name, since=since).frame


def review_queue(name: str) -> Any:
    """Service ``name``'s human-review queue as a pandas DataFrame, oldest first: one row
    per prediction waiting for a label (``request_id``, ``row``, ``reason``,
    ``prediction``, the scores, then the features); what ``ship review NAME`` lists."""
    import pandas as pd

    from .review.queue import review_queue as queue_of
    from .workspace import find_workspace

    items = queue_of(find_workspace(), name).items
    return pd.DataFrame([{"request_id": i.request_id, "row": i.row, "time": i.time,
                          "reason": i.reason, "prediction": i.prediction, **i.scores,
                          **i.inputs} for i in items])


def label(name: str, request_id: str, value: Any, *, row: int = 0) -> list[dict[str, Any]]:
    """Label row ``row`` of request ``request_id`` of service ``name`` (``None`` takes a
    label back): feedback, as ``ship review NAME --label`` writes it."""
    from .review.labels import Label, write_labels
    from .workspace import find_workspace

    return write_labels(find_workspace(), name, [Label(request_id, value, row)])


def load_ipython_extension(ipython: Any) -> None:
    """Register `%ship` / `%%ship` and make `ship.log` available as `ship`."""
    import sys

    from .magics import ShipMagics

    ipython.register_magics(ShipMagics)
    ipython.user_ns.setdefault("ship", sys.modules[__name__])


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "kernel-magics"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "kernel_magics"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .server import load

    load(server_app)
