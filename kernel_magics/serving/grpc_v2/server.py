"""The V2 gRPC service over the app's :class:`Service`: same models, release, log, metrics.

:class:`GrpcServer` is a sidecar of the Service (app.py): the lifespan starts it on the
app's own event loop (grpc.aio) and stops it before the prediction log's last flush, so
a call in flight on SIGTERM finishes (ship.yaml ``runtime.shutdown_timeout_s``) and is
logged. ModelInfer takes the REST path's steps: route (the release's champion/canary
split, the ``x-ship-routing-key`` metadata; ``model_version`` pins a version), decode
and validate (codec.py), compute (batches over ``inline_max_rows`` in a thread), answer
raw tensors; then /metrics and the prediction log (endpoint ``grpc_infer``, status the
HTTP code the same answer gets over REST) and the shadows' copies.

Errors map to gRPC codes (:data:`CODES`) with the REST API's message: bad input
INVALID_ARGUMENT, unknown model or version NOT_FOUND, warming up UNAVAILABLE, a fault
INTERNAL (logged with its traceback; the server keeps serving). Trailing metadata carries
``x-request-id`` (feedback names it) and ``x-ship-model-version``. ``SHIP_AUTH_TOKEN``
applies as over REST: every call but ServerLive/ServerReady needs ``authorization:
Bearer <token>`` metadata, else UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NoReturn

import grpc

from ..app import Service
from ..auth import ENV_TOKEN, Tokens
from ..errors import HandlerError, RuntimeServingError, Unauthorized
from ..release import ROUTING_HEADER, VERSION_HEADER
from ..requirements import RUNTIME_VERSION
from ..router import Deployment
from ..v2_codec import V2Outputs
from ..wire import new_request_id, new_response_id
from . import protocol
from .codec import describe, encode_model_infer, parse_model_infer

logger = logging.getLogger(__name__)

ENDPOINT = "grpc_infer"  # the prediction log's and /metrics' name for ModelInfer
#: the runtime's HTTP status -> the gRPC code of the same error
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
         404: grpc.StatusCode.NOT_FOUND, 408: grpc.StatusCode.DEADLINE_EXCEEDED,
         409: grpc.StatusCode.FAILED_PRECONDITION, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
         415: grpc.StatusCode.INVALID_ARGUMENT, 503: grpc.StatusCode.UNAVAILABLE}
OPEN_CALLS = frozenset({"ServerLive", "ServerReady"})  # like /v2/health/*: for probes

Handler = Callable[[Any, Any], Awaitable[Any]]


def grpc_address(host: str, port: int) -> str:
    """``host:port`` as gRPC binds it (an IPv6 host in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else \
        f"{host}:{port}"


class GrpcServer:
    """``inference.GRPCInferenceService`` on ``address`` for ``service``.

    ``reuse_port``: several worker processes bind the same port (SO_REUSEPORT) and the
    kernel spreads connections over them; off, a port already taken fails the start."""

    def __init__(self, service: Service, address: str, *, tokens: Tokens | None = None,
                 reuse_port: bool = False) -> None:
        self.service = service
        self.address = address
        self.tokens = tokens or Tokens()
        self.reuse_port = reuse_port
        self.port: int | None = None  # bound, once started
        self._server: Any = None
        self._settings = service.router.champion.bundle.manifest.runtime

    # -- lifecycle (the Service's Sidecar) -------------------------------------------------
    def bind(self) -> None:
        """Take the port (RuntimeServingError naming it when that fails): from now on
        connections wait, until :meth:`start`, then are answered."""
        settings = self._settings
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", settings.max_body_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.max_metadata_size", settings.max_header_bytes),
                     ("grpc.so_reuseport", int(self.reuse_port))],
            maximum_concurrent_rpcs=settings.max_connections)
        server.add_generic_rpc_handlers((self._handlers(),))
        try:
            self.port = server.add_insecure_port(self.address)
        except RuntimeError:
            raise RuntimeServingError(
                f"cannot serve gRPC on {self.address}: the address is in use or not "
                "this machine's; pick another --grpc-port.") from None
        self._server = server

    async def start(self) -> None:
        """Answer calls (the lifespan calls it once the warm-up is done)."""
        await self._server.start()
        logger.info("gRPC (inference.GRPCInferenceService) on %s", self.address)

    async def stop(self) -> None:
        """Refuse new calls, let those in flight finish (shutdown_timeout_s at most)."""
        if self._server is not None:
            await self._server.stop(self._settings.shutdown_timeout_s)
            self._server = None

    def _handlers(self) -> Any:
        calls: dict[str, Handler] = {
            "ServerLive": self.server_live, "ServerReady": self.server_ready,
            "ModelReady": self.model_ready, "ServerMetadata": self.server_metadata,
            "ModelMetadata": self.model_metadata, "ModelInfer": self.model_infer}
        handlers = {}
        for name, (request, response) in protocol.CALLS.items():
            call = calls[name] if name in OPEN_CALLS or name == "ModelInfer" else \
                self._guarded(name, calls[name])
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                call, request_deserializer=request.FromString,
                response_serializer=response.SerializeToString)
        return grpc.method_handlers_generic_handler(protocol.SERVICE, handlers)

    def _guarded(self, name: str, call: Handler) -> Handler:
        """``call`` behind authentication, its runtime errors as gRPC codes."""
        async def guarded(request: Any, context: Any) -> Any:
            try:
                self._authorize(context)
                return await call(request, context)
            except RuntimeServingError as exc:
                await _abort(context, exc, new_response_id())
            except Exception as exc:  # a bug; answer, log, keep serving
                logger.exception("gRPC %s failed", name)
                await _abort(context, HandlerError(
                    f"internal error: {type(exc).__name__}: {exc}"), new_response_id())

        return guarded

    def _authorize(self, context: Any) -> None:
        token = self.tokens.inference
        if token is None:
            return
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                scheme, _, given = str(value).partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                        given.strip().encode(), token.encode()):
                    return
                break
        raise Unauthorized(f"this call needs 'authorization: Bearer <token>' metadata with "
                           f"the service's {ENV_TOKEN}.", field="authorization")

    # -- health and metadata ------------------------------------------------------------------
    async def server_live(self, request: Any, context: Any) -> Any:
        """ServerLive: the process answers."""
        return protocol.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: Any) -> Any:
        """ServerReady: every version warmed up."""
        return protocol.ServerReadyResponse(ready=self.service.router.ready)

    async def server_metadata(self, request: Any, context: Any) -> Any:
        """ServerMetadata: name and version (the binary tensor extension is HTTP's)."""
        return protocol.ServerMetadataResponse(name="ship", version=RUNTIME_VERSION)

    def _deployment(self, name: str, version: str) -> Deployment:
        router = self.service.router
        return router.version(name, version) if version else router.route(name)

    async def model_ready(self, request: Any, context: Any) -> Any:
        """ModelReady: false while warming up; NOT_FOUND for an unknown model or version."""
        deployment = self._deployment(request.name, request.version)
        return protocol.ModelReadyResponse(ready=deployment.ready)

    async def model_metadata(self, request: Any, context: Any) -> Any:
        """ModelMetadata: name, versions, platform, input and output tensors."""
        deployment = self._deployment(request.name, request.version)
        versions = [deployment.version] if request.version else \
            sorted(self.service.router.deployments)
        meta = self.service.metadata(deployment, versions)
        response = protocol.ModelMetadataResponse(name=meta["name"], versions=meta["versions"],
                                                  platform=meta["platform"])
        for specs, tensors in ((meta["inputs"], response.inputs),
                               (meta["outputs"], response.outputs)):
            for spec in specs:
                tensors.add(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])
        return response

    # -- inference ---------------------------------------------------------------------------
    async def model_infer(self, request: Any, context: Any) -> Any:
        """ModelInfer: as POST /v2/models/{m}[/versions/{v}]/infer, logged as grpc_infer."""
        try:
            self._authorize(context)
        except Unauthorized as exc:  # as over REST: refused before it counts as a request
            await _abort(context, exc, new_response_id())
        service = self.service
        router = service.router
        started = time.perf_counter()
        request_id = new_request_id()
        target = router.champion
        service.in_flight += 1
        try:
            target = router.version(request.model_name, request.model_version) \
                if request.model_version else \
                router.route(request.model_name, _metadata(context, ROUTING_HEADER))
            pipeline = target.require()
            parsed = parse_model_infer(target.bundle.schema, request,
                                       identity=pipeline.identity)
            outputs = await service.compute(target, parsed.inputs,
                                            partial(pipeline.infer, parsed.inputs,
                                                    parsed.outputs))
            response = encode_model_infer(model=target.name, version=target.version,
                                          response_id=parsed.client_id or request_id,
                                          outputs=outputs)
            error = None
        except RuntimeServingError as exc:
            error = exc
        except Exception as exc:  # a bug; answer, log, keep serving
            logger.exception("request %s failed", request_id)
            error = HandlerError(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            service.in_flight -= 1
        seconds = time.perf_counter() - started
        if error is not None:
            if error.status >= 500:
                logger.error("request %s: %s", request_id, error.message, exc_info=error)
            else:
                logger.info("request %s: %d %s", request_id, error.status, error.message)
            service.account(request_id, ENDPOINT, target, error.status, seconds,
                            client_id=request.id or None, raw=describe(request),
                            error=error.message)
            await _abort(context, error, request_id, target.version)
        service.account(request_id, ENDPOINT, target, 200, seconds, inputs=parsed.inputs,
                        client_id=parsed.client_id, outputs=V2Outputs(outputs),
                        model_outputs=outputs)
        shadows = router.shadows(target)
        if shadows:  # queued once this call returns; scored when the service is idle
            asyncio.get_running_loop().call_soon(partial(
                service.shadows.submit, shadows, request_id=request_id, endpoint=ENDPOINT,
                answered_by=target.version, inputs=parsed.inputs,
                client_id=parsed.client_id, requested=parsed.outputs))
        context.set_trailing_metadata((("x-request-id", request_id),
                                       (VERSION_HEADER, target.version)))
        return response


def _metadata(context: Any, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return str(value)
    return None


async def _abort(context: Any, error: RuntimeServingError, request_id: str,
                 version: str | None = None) -> NoReturn:
    """End the call with ``error``'s gRPC code and message (grpc.aio raises to do so)."""
    metadata = [("x-request-id", request_id)]
    if version is not None:
        metadata.append((VERSION_HEADER, version))
    field = error.field
    if field is not None and field.isascii() and field.isprintable():  # metadata: ASCII
        metadata.append(("x-ship-error-field", field))
    await context.abort(CODES.get(error.status, grpc.StatusCode.INTERNAL), error.message,
                        trailing_metadata=tuple(metadata))
    raise AssertionError("grpc.aio's abort raises")
