"""Export: torch / scikit-learn → ONNX behind a parity gate, int8, profile, MLflow registry.

    api.py            export_model, export_from, list_models, leaderboard, set_alias
    pipeline.py       convert → parity gate → int8 → profile (no MLflow)
    torch_export.py   dynamo exporter (dynamic batch), TorchScript fallback
    sklearn_export.py skl2onnx, with errors that name the unsupported step
    parity.py         ONNX vs original on held-out rows: tolerances and task agreement
    quantize.py       dynamic int8 of MatMul weights (never Conv), accuracy bound
    profile.py        size and p50/p99 latency, one process, fixed threads
    registry.py       model versions, tags, aliases, leaderboard
    report.py         text for the magics and the CLI
    sources.py        models and rows named on a command line

Importing this package is cheap: torch, onnx and MLflow load on first use.
"""

from __future__ import annotations

from .api import ExportResult, export_from, export_model, leaderboard, list_models, set_alias

__all__ = ["ExportResult", "export_from", "export_model", "leaderboard", "list_models",
           "set_alias"]
