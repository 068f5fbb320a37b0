"""Shadows: versions that score a copy of each request after the answer went out.

The answering endpoint hands :meth:`Shadows.submit` what it already decoded; one thread
scores the copies in order, off the event loop, and appends each result to the
prediction log with the answered request's id and ``shadow`` = the version that
answered. A copy never delays or fails the client's answer: the thread scores a copy
when the service answers no request (it waits up to ``DEFER_S`` for such a moment: the
copy's Python work would otherwise take the GIL from requests), and when
``max_pending`` copies wait already, a new one is dropped and counted (per version:
``scored`` and ``dropped``, in /metrics as ``ship_shadow_copies_total{outcome}``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from .errors import RuntimeServingError
from .inputs import Inputs
from .predlog import Prediction, PredictionLog
from .router import Deployment
from .v2_codec import V2Outputs
from .wire import json_default

logger = logging.getLogger(__name__)
MAX_PENDING = 64
DEFER_S = 0.05  # the longest a copy waits for the service to be idle
IDLE_POLL_S = 0.0002


class Shadows:
    """A bounded queue of shadow copies, scored by one thread."""

    def __init__(self, log: PredictionLog, *, max_pending: int = MAX_PENDING,
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.log = log
        self.busy = busy
        self.max_pending = max_pending
        self.dropped: Counter[str] = Counter()
        self.scored: Counter[str] = Counter()
        self._pending = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, targets: tuple[Deployment, ...], *, request_id: str, endpoint: str,
               answered_by: str, inputs: Inputs, client_id: str | None = None,
               requested: Any = None) -> None:
        """Queue a copy of an answered request for each target (or drop it, counted)."""
        for target in targets:
            with self._lock:
                if self._pending >= self.max_pending:
                    self.dropped[target.version] += 1
                    continue
                self._pending += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="ship-shadow")
            self._pool.submit(self._score, target, request_id, endpoint, answered_by,
                              inputs, client_id, requested)

    def close(self) -> None:
        """Finish the queued copies (their rows reach the log before it closes)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _score(self, target: Deployment, request_id: str, endpoint: str, answered_by: str,
               inputs: Inputs, client_id: str | None, requested: Any) -> None:
        deadline = time.monotonic() + DEFER_S
        while self.busy() and time.monotonic() < deadline:
            time.sleep(IDLE_POLL_S)  # the requests first
        started = time.perf_counter()
        status, error = 200, None
        outputs: V2Outputs | bytes | None = None
        try:
            pipeline = target.require()
            if endpoint in ("v2_infer", "grpc_infer"):  # V2 tensors, over REST or gRPC
                outputs = V2Outputs(pipeline.infer(inputs, requested))
            else:
                outputs = orjson.dumps(pipeline.predict(inputs), default=json_default,
                                       option=orjson.OPT_SERIALIZE_NUMPY)
        except RuntimeServingError as exc:
            status, error = exc.status, exc.message
        except Exception as exc:  # the shadow's bug: logged as its error, never raised
            logger.warning("shadow %s on request %s: %s: %s", target.version, request_id,
                           type(exc).__name__, exc)
            status, error = 500, f"internal error: {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._pending -= 1
        self.scored[target.version] += 1
        self.log.append(Prediction(
            request_id, time.time(), target.name, target.version, endpoint, status,
            (time.perf_counter() - started) * 1000.0, client_id, inputs, None, outputs,
            error, shadow=answered_by))
