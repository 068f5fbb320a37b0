"""Optional bearer-token authentication for inference and feedback.

    SHIP_AUTH_TOKEN       every endpoint but the health probes needs
                          ``Authorization: Bearer <token>``
    SHIP_FEEDBACK_TOKEN   feedback needs this one instead (default: SHIP_AUTH_TOKEN), so
                          the clients that ask for predictions cannot send ground truth

Neither set: no authentication (a service behind an authenticating gateway or mesh).
Only feedback's token set: inference is open, ground truth is not. The health probes
(/v2/health/*, /ping, /health) stay open for Kubernetes. Tokens are compared in constant
time; a missing or wrong one gets 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Unauthorized
from .wire import error_response

ENV_TOKEN = "SHIP_AUTH_TOKEN"
ENV_FEEDBACK_TOKEN = "SHIP_FEEDBACK_TOKEN"
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})


@dataclass(frozen=True)
class Tokens:
    """The tokens a service requires (None: that part is open)."""

    inference: str | None = None
    feedback: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tokens:
        env = os.environ if env is None else env
        inference = env.get(ENV_TOKEN, "").strip() or None
        feedback = env.get(ENV_FEEDBACK_TOKEN, "").strip() or inference
        return cls(inference, feedback)

    @property
    def enabled(self) -> bool:
        return self.inference is not None or self.feedback is not None


class BearerAuth:
    """ASGI middleware: 401 unless the request carries the token its path needs."""

    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            feedback = scope["path"].endswith("/feedback")
            needed = self.tokens.feedback if feedback else self.tokens.inference
            if needed is not None and not _carries(scope, needed):
                what = "feedback" if feedback else "this endpoint"
                variable = ENV_FEEDBACK_TOKEN if feedback and \
                    self.tokens.feedback != self.tokens.inference else ENV_TOKEN
                response = error_response(Unauthorized(
                    f"{what} needs 'Authorization: Bearer <token>' with the service's "
                    f"{variable}.", field="authorization"))
                response.headers["www-authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _carries(scope: Scope, token: str) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                      token.encode())
    return False
