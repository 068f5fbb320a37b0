"""Errors Ship raises, one hierarchy for the magics, the CLI and the REST API.

    ShipError                  base; ``message`` says what went wrong and what to do
    ├── ConfigError            .ship/ship.toml is unreadable or holds a bad value
    ├── ValidationError        user input is malformed (maps to HTTP 400)
    ├── NotFoundError          an experiment, run, model or service does not exist (404)
    ├── ConflictError          the request contradicts current state (409)
    ├── TrackingError          a run record could not be captured or written
    └── ExportError            a model could not be converted to ONNX (400)
        ├── ParityError        the ONNX model disagrees with the original: nothing registered (409)
        └── QuantizationRefusedError  int8 costs more accuracy than the configured bound (409)

Adapters map them in one place each: magics raise ``UsageError``, the CLI prints
the message and exits 1, the server extension answers JSON with a status code.
"""

from __future__ import annotations


class ShipError(Exception):
    """Base of every error Ship raises on purpose."""

    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class ConfigError(ShipError):
    """The workspace configuration is unreadable or holds an invalid value."""

    http_status = 400

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}", hint=hint)


class ValidationError(ShipError):
    """User input is malformed; names the field and the expected form."""

    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.field = field
        super().__init__(message, hint=hint)


class NotFoundError(ShipError):
    """A named thing (experiment, run, model, service, notebook) does not exist."""

    http_status = 404

    def __init__(self, kind: str, name: str, *, hint: str | None = None) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} {name!r} not found.", hint=hint)


class ConflictError(ShipError):
    """The request contradicts the current state."""

    http_status = 409


class StorageError(ShipError):
    """Storage Ship reads refused (a prediction log on S3 out of reach, no access)."""

    http_status = 502


class TrackingError(ShipError):
    """A run record could not be captured, spooled or written to MLflow."""


class ExportError(ShipError):
    """A model could not be exported to ONNX; names the exporter or the pipeline step at fault."""

    http_status = 400

    def __init__(self, message: str, *, exporter: str | None = None, step: str | None = None,
                 hint: str | None = None) -> None:
        self.exporter = exporter
        self.step = step
        super().__init__(message, hint=hint)


class ParityError(ExportError):
    """The exported model's outputs differ from the original's beyond the tolerances."""

    http_status = 409

    def __init__(self, message: str, *, exporter: str, output: str, row: int,
                 abs_error: float, rel_error: float, hint: str | None = None) -> None:
        self.output = output
        self.row = row
        self.abs_error = abs_error
        self.rel_error = rel_error
        super().__init__(message, exporter=exporter, hint=hint)


class QuantizationRefusedError(ExportError):
    """Dynamic int8 quantization changed accuracy beyond the configured bound (force overrides)."""

    http_status = 409

    def __init__(self, message: str, *, change: float, bound: float,
                 hint: str | None = None) -> None:
        self.change = change
        self.bound = bound
        super().__init__(message, hint=hint)
