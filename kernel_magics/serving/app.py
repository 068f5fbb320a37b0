"""The Starlette app: V2 and MLflow endpoints over a Router, logging every request.

Request path of an inference: read the body (413 past max_body_bytes), decode the wire
format into validated Inputs (400 naming the field), run handler + model on the event
loop (batches over inline_max_rows in a thread), encode with orjson, then count it in
/metrics and append it to the prediction log: a deque append, the only logging work on
the request path. Every response carries ``x-request-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .auth import BearerAuth, Tokens
from .errors import HandlerError, InputError, LogDisabled, RuntimeServingError, UnknownError
from .follower import ReleaseFollower
from .inputs import Inputs
from .metrics import Metrics, SharedMetrics, render
from .mlflow_codec import media_type, parse_csv, parse_invocation, parse_parquet
from .openapi import build_openapi
from .predlog import Prediction, PredictionLog, RequestIndex
from .release import ROUTING_HEADER, VERSION_HEADER
from .requirements import RUNTIME_VERSION
from .review import Reviewer
from .router import Deployment, Router
from .shadow import Shadows
from .usage import UsageMeter
from .v2_codec import V2Outputs, encode_infer, parse_infer
from .wire import (
    error_response,
    issued_here,
    json_default,
    json_response,
    loads,
    logged_body,
    new_request_id,
    new_response_id,
    read_body,
    request_key_for,
    use_request_key,
)

logger = logging.getLogger(__name__)

REVIEW_HEADER = "x-ship-review"


def wants_review(request: Request) -> bool:
    """The client asked for review scores: ``?review=true`` or ``x-ship-review: true``."""
    asked = request.query_params.get("review") or request.headers.get(REVIEW_HEADER)
    return asked is not None and asked.lower() in ("1", "true", "yes")


class Outcome(NamedTuple):
    """What an endpoint answered, and what the prediction log keeps of it."""

    response: Response
    deployment: Deployment
    inputs: Inputs | None = None
    outputs: Any = None
    client_id: str | None = None
    requested: Any = None  # V2 outputs the client asked for (a shadow's copy asks the same)
    model_outputs: Any = None  # the raw outputs, scored for review by the log


class Routed:
    """Which deployment a request went to, known to the error path too (so a failure is
    logged and counted against the version that failed, and says which one)."""

    __slots__ = ("deployment",)

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment


class Sidecar(Protocol):
    """Another server of the same Service in the same process (grpc_v2/: the V2 gRPC
    service): bound as the lifespan starts (a port in use fails the start), serving once
    the warm-up is done, stopped first on shutdown."""

    def bind(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    """A service's state (router, log, metrics) and its endpoints; with ``release_file``
    it follows that release.json (follower.py) and sends shadows their copies.
    ``sidecars`` (:class:`Sidecar`) serve beside the app from the same state."""

    def __init__(self, router: Router, log: PredictionLog, *, workers: int = 1,
                 metrics_dir: str | None = None, freeze_gc: bool = False,
                 release_file: Path | None = None) -> None:
        self.router = router
        self.log = log
        use_request_key(request_key_for(log.location))
        self.index = RequestIndex(log.location, issued_here)
        self.metrics = Metrics()
        self.shared = SharedMetrics(metrics_dir)
        self.workers = workers
        self.freeze_gc = freeze_gc
        self.limit = router.champion.bundle.manifest.runtime.max_body_bytes
        self.body_timeout = router.champion.bundle.manifest.runtime.body_timeout_s
        self._openapi: bytes | None = None
        self.reviewers: dict[tuple[str, str], Reviewer] = {}
        for d in router.deployments.values():
            self._register(d)
        self.usage = UsageMeter(log.location, self.metrics,
                                versions=[(d.name, d.version) for d in
                                          router.deployments.values()],
                                ready=lambda: router.ready)
        self.in_flight = 0  # requests being answered now (shadows wait for none)
        self.shadows = Shadows(log, busy=lambda: self.in_flight > 0)
        self.follower = None if release_file is None else ReleaseFollower(
            release_file, router, workers=workers, loaded=self._loaded)
        self.sidecars: list[Sidecar] = []

    def _register(self, deployment: Deployment) -> None:
        """Declare a version's features to the log (its typed ``inputs`` columns) and
        its review scorer (the ``review`` column, and answers that ask for scores)."""
        bundle = deployment.bundle
        reviewer = Reviewer.for_bundle(bundle.path, list(bundle.schema.feature_names),
                                       bundle.schema.task)
        self.reviewers[(deployment.name, deployment.version)] = reviewer
        self.log.register(deployment.name, deployment.version, bundle.schema,
                          identity="preprocess" not in bundle.handler_functions,
                          reviewer=reviewer if bundle.manifest.runtime.review_scores
                          else None)

    def _loaded(self, deployment: Deployment) -> None:
        """A version the release added, loaded and warmed up: log and meter it, and keep
        its objects out of the collector's sight as the first versions' are."""
        self._register(deployment)
        key = (deployment.name, deployment.version)
        if key not in self.usage.versions:
            self.usage.versions.append(key)
        if self.freeze_gc:
            gc.freeze()

    # -- the common path of every logged endpoint ---------------------------------------
    async def _serve(self, request: Request, endpoint: str,
                     work: Callable[[str, Routed], Awaitable[Outcome]]) -> Response:
        started = time.perf_counter()
        logged = endpoint != "feedback"
        request_id = new_request_id() if logged else new_response_id()
        routed = Routed(self.router.champion)
        self.in_flight += 1
        try:
            outcome = await work(request_id, routed)
            error = None
        except RuntimeServingError as exc:
            if exc.status >= 500:
                logger.error("request %s: %s", request_id, exc.message, exc_info=exc)
            else:
                logger.info("request %s: %d %s", request_id, exc.status, exc.message)
            outcome = Outcome(error_response(exc, request_id), routed.deployment)
            error = exc.message
        except Exception as exc:  # a bug; answer, log, keep serving
            logger.exception("request %s failed", request_id)
            wrapped = HandlerError(f"internal error: {type(exc).__name__}: {exc}")
            outcome = Outcome(error_response(wrapped, request_id), routed.deployment)
            error = wrapped.message
        finally:
            self.in_flight -= 1
        seconds = time.perf_counter() - started
        target = outcome.deployment
        if error is not None and logged:
            outcome.response.headers[VERSION_HEADER] = target.version
        status = outcome.response.status_code
        inputs = outcome.inputs
        if status < 400 and inputs is not None and logged:
            shadows = self.router.shadows(target)
            if shadows:  # after the answer is sent (Starlette's background task)
                outcome.response.background = BackgroundTask(
                    self._copy, shadows, request_id, endpoint, target.version, inputs,
                    outcome.client_id, outcome.requested)
        if logged:
            self.account(request_id, endpoint, target, status, seconds, inputs=inputs,
                         client_id=outcome.client_id,
                         raw=logged_body(request) if error else None,
                         outputs=outcome.outputs, error=error,
                         model_outputs=outcome.model_outputs)
        else:
            self.metrics.observe(target.name, target.version, endpoint, status, seconds)
        return outcome.response

    def account(self, request_id: str, endpoint: str, target: Deployment, status: int,
                seconds: float, *, inputs: Inputs | None = None,
                client_id: str | None = None, raw: Any = None, outputs: Any = None,
                error: str | None = None, model_outputs: Any = None) -> None:
        """Count an answered request in /metrics and append it to the prediction log
        (``status``: the HTTP status, or the one the same error gets over HTTP;
        ``model_outputs``: the raw outputs, which the log scores for review)."""
        self.metrics.observe(target.name, target.version, endpoint, status, seconds,
                             0 if inputs is None or status >= 400 else inputs.rows)
        self.log.append(Prediction(
            request_id, time.time(), target.name, target.version, endpoint, status,
            seconds * 1000.0, client_id, inputs, raw, outputs, error,
            model_outputs=model_outputs))

    async def _copy(self, shadows: tuple[Deployment, ...], request_id: str, endpoint: str,
                    answered_by: str, inputs: Inputs, client_id: str | None,
                    requested: Any) -> None:
        self.shadows.submit(shadows, request_id=request_id, endpoint=endpoint,
                            answered_by=answered_by, inputs=inputs, client_id=client_id,
                            requested=requested)

    async def compute(self, deployment: Deployment, inputs: Inputs,
                      fn: Callable[[], Any]) -> Any:
        """``fn()`` on the event loop, or in a thread for batches over inline_max_rows."""
        if inputs.rows > deployment.bundle.manifest.runtime.inline_max_rows:
            return await anyio.to_thread.run_sync(fn)
        return fn()

    # -- MLflow scoring protocol ------------------------------------------------------
    async def invocations(self, request: Request) -> Response:
        """POST /invocations: dataframe_split, dataframe_records, instances, inputs (JSON),
        CSV, Parquet."""
        async def work(request_id: str, routed: Routed) -> Outcome:
            deployment = routed.deployment = self.router.route(
                key=request.headers.get(ROUTING_HEADER))
            pipeline = deployment.require()
            body = await read_body(request, self.limit, self.body_timeout)
            schema = deployment.bundle.schema
            kind = media_type(request.headers.get("content-type", ""))
            if kind == "text/csv":
                inputs = parse_csv(schema, body)
            elif kind == "application/vnd.apache.parquet":
                inputs = parse_parquet(schema, body)
            else:
                inputs = parse_invocation(schema, loads(body), identity=pipeline.identity)
            predictions, outputs = await self.compute(
                deployment, inputs, partial(pipeline.predict_outputs, inputs))
            answer: dict[str, Any] = {"predictions": predictions}
            logged = None
            if wants_review(request):  # the client holds back a decision on these
                answer["review"] = self.review_rows(deployment, inputs, outputs)
            content = orjson.dumps(answer, default=json_default,
                                   option=orjson.OPT_SERIALIZE_NUMPY)
            if len(answer) == 1:  # the log keeps the predictions as the JSON answered
                logged = content[len(b'{"predictions":'):-1]
            else:
                logged = orjson.dumps(predictions, default=json_default,
                                      option=orjson.OPT_SERIALIZE_NUMPY)
            return Outcome(Response(content, media_type="application/json",
                                    headers={"x-request-id": request_id,
                                             VERSION_HEADER: deployment.version}),
                           deployment, inputs, logged, model_outputs=outputs)

        return await self._serve(request, "invocations", work)

    # -- Open Inference Protocol v2 -----------------------------------------------------
    async def infer(self, request: Request) -> Response:
        """POST /v2/models/{m}[/versions/{v}]/infer, JSON or binary tensors."""
        async def work(request_id: str, routed: Routed) -> Outcome:
            params = request.path_params
            name = params["model_name"]
            version = params.get("model_version")
            deployment = routed.deployment = self.router.version(name, version) \
                if version is not None else \
                self.router.route(name, request.headers.get(ROUTING_HEADER))
            pipeline = deployment.require()
            body = await read_body(request, self.limit, self.body_timeout)
            parsed = parse_infer(deployment.bundle.schema, body,
                                 request.headers.get("inference-header-content-length"),
                                 identity=pipeline.identity)
            outputs = await self.compute(deployment, parsed.inputs,
                                         partial(pipeline.infer, parsed.inputs,
                                                 parsed.outputs))
            content, header_length, answered = encode_infer(
                model=deployment.name, version=deployment.version, request_id=request_id,
                request=parsed, outputs=outputs)
            headers = {"x-request-id": request_id, VERSION_HEADER: deployment.version}
            if header_length is None:
                media = "application/json"
            else:
                media = "application/octet-stream"
                headers["inference-header-content-length"] = str(header_length)
            # the log keeps the outputs list as answered (JSON), or renders binary ones
            return Outcome(Response(content, media_type=media, headers=headers), deployment,
                           parsed.inputs, answered if answered is not None
                           else V2Outputs(outputs), parsed.client_id, parsed.outputs,
                           outputs)

        return await self._serve(request, "v2_infer", work)

    async def feedback(self, request: Request) -> Response:
        """POST /feedback or /v2/models/{m}/feedback: ground truth for request ids."""
        async def work(request_id: str, routed: Routed) -> Outcome:
            name = request.path_params.get("model_name")
            deployment = self.router.route(name)
            if not self.log.enabled:
                raise LogDisabled("this service runs without a prediction log (--no-log), "
                                  "so ground truth has nowhere to go; serve it with a log "
                                  "to send feedback.")
            doc = loads(await read_body(request, self.limit, self.body_timeout))
            items = doc if isinstance(doc, list) else [doc]
            if not items:
                raise InputError("send an object (or a list of objects) with 'request_id' "
                                 "and 'ground_truth'.", field="body")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("request_id"), str):
                    raise InputError("each feedback needs a string 'request_id'.",
                                     field="request_id")
                if "ground_truth" not in item:
                    raise InputError("each feedback needs 'ground_truth'.",
                                     field="ground_truth")
            for item in items:
                rid = item["request_id"]
                if not await anyio.to_thread.run_sync(self.index.known, rid):
                    raise UnknownError(f"unknown request id {rid!r}.", field="request_id")
            for item in items:
                self.log.feedback(item["request_id"], deployment.name, item["ground_truth"])
            content = orjson.dumps({"recorded": len(items), "request_id": request_id})
            return Outcome(json_response(content, request_id), deployment)

        return await self._serve(request, "feedback", work)

    def review_rows(self, deployment: Deployment, inputs: Inputs,
                    outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """One request's review scores, one object per row (the log computes the same
        for every request, off the request path)."""
        reviewer = self.reviewers[(deployment.name, deployment.version)]
        columns = inputs.columns
        if columns is None and inputs.matrix is not None:
            columns = dict(zip(deployment.bundle.schema.feature_names, inputs.matrix.T,
                               strict=True))
        return reviewer.rows(reviewer.score([outputs], columns, [inputs.rows]))

    def metadata(self, deployment: Deployment, versions: list[str]) -> dict[str, Any]:
        """A version's V2 model metadata (``versions``: the ones to list)."""
        schema = deployment.bundle.schema
        lineage = deployment.bundle.manifest.lineage
        return {"name": deployment.name, "versions": versions,
                "platform": "onnxruntime_onnx",
                "inputs": [s.to_dict() for s in schema.inputs],
                "outputs": [s.to_dict() for s in schema.outputs],
                # V2 parameters hold only strings, numbers and booleans: the features
                # (names, dtypes, nullable) travel as a JSON string.
                "parameters": {k: v for k, v in {
                    "features": orjson.dumps(schema.to_dict()["features"]).decode(),
                    "task": schema.task, "registered_model": lineage.registered_model,
                    "run_id": lineage.run_id}.items() if v is not None}}

    async def model_metadata(self, request: Request) -> Response:
        """GET /v2/models/{m}[/versions/{v}]."""
        params = request.path_params
        try:
            if "model_version" in params:
                deployment = self.router.version(params["model_name"], params["model_version"])
                versions = [deployment.version]
            else:
                deployment = self.router.route(params["model_name"])
                versions = sorted(self.router.deployments)
        except RuntimeServingError as exc:
            return error_response(exc)
        return json_response(orjson.dumps(self.metadata(deployment, versions)))

    async def model_ready(self, request: Request) -> Response:
        """GET /v2/models/{m}[/versions/{v}]/ready: 200 once warmed up, else 503."""
        params = request.path_params
        try:
            deployment = self.router.version(params["model_name"], params["model_version"]) \
                if "model_version" in params else self.router.route(params["model_name"])
        except RuntimeServingError as exc:
            return error_response(exc)
        body = {"name": deployment.name, "version": deployment.version,
                "ready": deployment.ready}
        if deployment.error:
            body["error"] = deployment.error
        return json_response(orjson.dumps(body), None,
                             200 if deployment.ready else 503)

    # -- health, metadata, metrics --------------------------------------------------------
    async def server_metadata(self, request: Request) -> Response:
        """GET /v2."""
        return json_response(orjson.dumps({"name": "ship", "version": RUNTIME_VERSION,
                                           "extensions": ["binary_tensor_data"]}))

    async def live(self, request: Request) -> Response:
        """GET /v2/health/live: the process answers."""
        return json_response(b'{"live":true}')

    async def ready(self, request: Request) -> Response:
        """GET /v2/health/ready, /ping, /health: 200 once every version warmed up."""
        ok = self.router.ready
        body: dict[str, Any] = {"ready": ok}
        errors = [d.error for d in self.router.deployments.values() if d.error]
        if errors:
            body["error"] = "; ".join(errors)
        return json_response(orjson.dumps(body), None,
                             200 if ok else 503)

    async def version(self, request: Request) -> Response:
        """GET /version: runtime and model versions."""
        release = self.router.release
        return json_response(orjson.dumps({
            "runtime": RUNTIME_VERSION, "model": self.router.name,
            "versions": sorted(self.router.deployments),
            "champion": self.router.champion.version,
            "release": None if release is None else release.to_json(),
            "release_error": None if self.follower is None else self.follower.error}))

    async def prometheus(self, request: Request) -> Response:
        """GET /metrics: Prometheus text format, all workers added up."""
        for d in self.router.deployments.values():
            self.metrics.ready[(d.name, d.version)] = int(d.ready)
        self._log_counters()
        text = render(self.shared.collect(self.metrics))
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8",
                        headers={"x-request-id": new_response_id()})

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json."""
        if self._openapi is None:
            champion = self.router.champion
            self._openapi = orjson.dumps(build_openapi(
                champion.bundle.schema, model=self.router.name,
                versions=sorted(self.router.deployments), runtime_version=RUNTIME_VERSION))
        return json_response(self._openapi)

    # -- lifecycle ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the log writer, usage meter and warm-up; on shutdown flush the log."""
        bound: list[Sidecar] = []
        try:
            for sidecar in self.sidecars:
                sidecar.bind()
                bound.append(sidecar)
        except BaseException:
            for sidecar in bound:
                await sidecar.stop()
            raise
        self.log.start(asyncio.get_running_loop())
        self.usage.start()
        if self.workers > 1:
            # Workers share the listening socket: one still warming up accepts nothing
            # (uvicorn listens after the lifespan starts), so no request meets a cold
            # worker while another already answers ready.
            await self._warm_up()
            tasks = []
        else:  # one process: it answers 503 (and /v2/health/ready) while warming up
            tasks = [asyncio.create_task(self._warm_up())]
        if self.follower is not None:
            tasks.append(asyncio.create_task(self.follower.run()))
        if self.shared.folder is not None:
            tasks.append(asyncio.create_task(self._publish_metrics()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for sidecar in bound:  # their calls in flight finish and reach the log below
                await sidecar.stop()
            await anyio.to_thread.run_sync(self.shadows.close)  # their rows, then the log
            self.log.close()
            self.usage.close()  # last: its final record counts the log's last flush
            self._log_counters()
            self.shared.publish(self.metrics)

    async def _warm_up(self) -> None:
        try:  # before ready, off the loop; the log's warm-up is not worth a failed start
            await anyio.to_thread.run_sync(self.log.warm_up)
        except Exception:
            logger.exception("prediction log: warm-up failed; the first flush pays for it")
        for deployment in self.router.deployments.values():
            await anyio.to_thread.run_sync(deployment.load, self.workers)
        if self.freeze_gc:
            # Objects alive after warm-up (modules, the model, the app) live as long as the
            # process: out of the collector's sight, full collections stay cheap. Only when
            # the process is ours (serve()), not when the app is embedded (tests).
            gc.freeze()
        for sidecar in self.sidecars:  # their connections so far waited for this
            await sidecar.start()

    async def _publish_metrics(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._log_counters()
            self.shared.publish(self.metrics)

    def _log_counters(self) -> None:
        """Copy the prediction log's counters into the metrics (before render/publish)."""
        metrics, log = self.metrics, self.log
        metrics.log_records, metrics.log_dropped = log.written, log.dropped
        metrics.log_cpu = dict(log.cpu_s) if log.enabled else {}
        name = self.router.name
        for outcome, counts in (("scored", self.shadows.scored),
                                ("dropped", self.shadows.dropped)):
            for version, count in list(counts.items()):
                metrics.shadow[(name, version, outcome)] = count

    def routes(self) -> list[Route]:
        """Hot routes first: Starlette tries them in order."""
        v2 = "/v2/models/{model_name}"
        ver = v2 + "/versions/{model_version}"
        return [
            Route("/invocations", self.invocations, methods=["POST"]),
            Route(v2 + "/infer", self.infer, methods=["POST"]),
            Route(ver + "/infer", self.infer, methods=["POST"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route("/ping", self.ready, methods=["GET"]),
            Route("/health", self.ready, methods=["GET"]),
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route(v2, self.model_metadata, methods=["GET"]),
            Route(v2 + "/ready", self.model_ready, methods=["GET"]),
            Route(ver, self.model_metadata, methods=["GET"]),
            Route(ver + "/ready", self.model_ready, methods=["GET"]),
            Route(v2 + "/feedback", self.feedback, methods=["POST"]),
            Route("/feedback", self.feedback, methods=["POST"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
        ]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    error = RuntimeServingError(str(detail))
    error.status = status
    response = error_response(error, None)
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def build_app(service: Service, tokens: Tokens | None = None) -> Starlette:
    """The ASGI app for a Service; with ``tokens``, bearer authentication (auth.py)."""
    middleware = [Middleware(BearerAuth, tokens=tokens)] if tokens and tokens.enabled else []
    return Starlette(routes=service.routes(), lifespan=service.lifespan, middleware=middleware,
                     exception_handlers={HTTPException: _http_error, Exception: _http_error})
