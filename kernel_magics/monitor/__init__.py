"""Monitor: what production traffic is compared against, and how far it has moved.

    reference.py    the training-data profile a bundle carries (reference.parquet)
    predictions.py  predictions as one scalar per row (log answers, reference rows)
    settings.py     [drift] of ship.toml: window, history, thresholds
    stats.py        PSI, Wasserstein, KS, Jensen-Shannon, chi-squared on sketches
    sketch.py       per-window counts on the reference's bins (mergeable)
    scan.py         one streaming pass over the prediction log
    drift.py        a window's verdict per feature
    report.py       drift_report(): DriftReport (JSON, HTML, text)
    html.py         the self-contained HTML page
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import DriftReport, drift_report

__all__ = ["DriftReport", "drift_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import report

        return getattr(report, name)
    raise AttributeError(name)
