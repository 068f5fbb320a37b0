"""Errors the serving runtime raises; each carries the HTTP status it maps to.

    RuntimeServingError        base; ``message`` says what went wrong, ``status`` the HTTP code
    ├── BundleError            a bundle folder is incomplete or inconsistent (what to fix)
    ├── InputError             a request body is malformed; ``field`` names the culprit (400)
    ├── PayloadTooLarge        a body is larger than the bundle's max_body_bytes (413)
    ├── RequestTimeout         a request body that arrives too slowly (408)
    ├── UnsupportedMediaType   a content type (or parameter) /invocations does not read (415)
    ├── Unauthorized           a bearer token is required and was not given (401)
    ├── UnknownError           an unknown model, version or request id (404)
    ├── NotReady               the model is still warming up, or failed to (503)
    └── HandlerError           the bundle's own code or the model failed on valid input (500)

The runtime cannot import ``kernel_magics.errors`` (it is copied into bundles as
``ship_runtime`` and runs without the rest of Ship), hence its own small hierarchy;
the CLI maps ``BundleError`` to ``ShipError``-style ``error: ...`` output.
"""

from __future__ import annotations

# HTTP status -> MLflow's ErrorCode name (mlflow.protos.databricks_pb2), as its scoring
# server answers them.
ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST",
               408: "BAD_REQUEST", 409: "INVALID_STATE", 413: "BAD_REQUEST", 415: "BAD_REQUEST",
               500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}


class RuntimeServingError(Exception):
    """Base of every error the runtime raises on purpose."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)

    def payload(self) -> dict[str, str]:
        """The JSON error body: ``{"error": ..., "field": ...}``, with MLflow's
        ``error_code`` and ``message`` so MLflow's clients read it as they read MLflow's."""
        body = {"error": self.message, "error_code": ERROR_CODES.get(self.status,
                                                                      "INTERNAL_ERROR"),
                "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BundleError(RuntimeServingError):
    """A bundle is missing a file or holds inconsistent settings; says what to fix."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}")


class InputError(RuntimeServingError):
    """A request is malformed: unknown or missing field, wrong dtype or shape, bad JSON."""

    status = 400


class PayloadTooLarge(RuntimeServingError):
    """A request body exceeds the bundle's ``max_body_bytes``."""

    status = 413


class RequestTimeout(RuntimeServingError):
    """A request body that does not arrive within the bundle's body_timeout_s."""

    status = 408


class UnsupportedMediaType(RuntimeServingError):
    """A Content-Type (or one of its parameters) the endpoint does not read."""

    status = 415


class Unauthorized(RuntimeServingError):
    """The service requires a bearer token (SHIP_AUTH_TOKEN) and the request lacks it."""

    status = 401


class UnknownError(RuntimeServingError):
    """An unknown model, model version or request id."""

    status = 404


class LogDisabled(RuntimeServingError):
    """Feedback sent to a service that runs without a prediction log: nothing could keep it."""

    status = 409


class NotReady(RuntimeServingError):
    """The model has not finished (or failed) its warm-up inference."""

    status = 503


class HandlerError(RuntimeServingError):
    """handler.py or the model raised on input that passed validation: a bundle bug."""

    status = 500
