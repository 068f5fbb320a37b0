"""Usage accounting: each serving process measures what it consumed and what it answered.

    LOG/usage/date=YYYY-MM-DD/usage-<host>-<pid>-<start>.jsonl     one file per process-day

A small thread of every worker process appends one JSON line per model version every
``interval`` seconds (default 10 s), one once the process is ready ("startup") and one
at graceful shutdown ("shutdown"). Each line covers the interval since the process's
previous line; the figures in it are **deltas** over that interval, so adding up the
lines of any time window gives that window's usage:

    {"time": "2026-05-01T12:00:10.000123+00:00",   end of the interval (UTC)
     "started": "2026-05-01T12:00:00.000456+00:00",  when this process began serving
     "host": "web-1", "pid": 4242, "seq": 3,         seq counts the process's records
     "phase": "serving",                            startup | serving | shutdown
     "interval_s": 10.0,                            wall seconds the line covers
     "cpu_user_s": 0.41, "cpu_system_s": 0.05,      CPU of the process in the interval
     "process_cpu_s": 3.2,                          cumulative, user + system (a check)
     "max_rss_mb": 151.2,                           the process's peak resident memory
     "model": "digits", "version": "3",
     "requests": 800, "errors": 2,                  inference requests (status >= 400)
     "predictions": 798,                            rows answered by successful requests
     "share": 1.0}                                  this version's part of the CPU above

CPU seconds come from ``os.times()`` (user + system of every thread of the process:
the event loop, onnxruntime's pool, the log writer, this thread). The first line of a
process ("startup") also holds what the process spent before it: imports, model load,
warm-up. Only the process's own CPU is counted (not uvicorn's supervisor). When a
process serves several versions the CPU of an interval is split by their share of
predictions (evenly when there were none); ``share`` says how. Requests and rows are
counted by :class:`~.metrics.Metrics` on the request path (a dict increment); this
module only reads those counters.

Local folders are appended to (one short write per line); object stores, which cannot
append, get one object per record. Readers skip a torn last line (``kill -9``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow.fs as pafs

from .metrics import Metrics, cpu_times
from .predlog.storage import LogLocation

logger = logging.getLogger(__name__)

STREAM = "usage"
DEFAULT_INTERVAL_S = 10.0
ENV_INTERVAL = "SHIP_USAGE_INTERVAL_S"
_READY_POLL_S = 0.2

try:  # peak RSS; absent on platforms without the resource module
    import resource

    def _max_rss_mb() -> float:
        # Linux reports kilobytes, macOS bytes
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(rss / 1024 if os.uname().sysname != "Darwin" else rss / 2**20, 3)
except ImportError:  # pragma: no cover
    def _max_rss_mb() -> float:
        return 0.0


def default_interval() -> float:
    """``$SHIP_USAGE_INTERVAL_S``, else 10 seconds."""
    try:
        value = float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


class UsageMeter:
    """Appends this process's usage records under ``LOG/usage/`` from its own thread."""

    def __init__(self, location: str | os.PathLike[str] | LogLocation | None,
                 metrics: Metrics, *, versions: list[tuple[str, str]],
                 interval: float | None = None, ready: Callable[[], bool] | None = None
                 ) -> None:
        """``location``: the log's folder, URL or location; None: no records."""
        self.enabled = location is not None
        self.metrics = metrics
        self.versions = list(versions)
        self.interval = default_interval() if interval is None else interval
        self.ready = ready or (lambda: True)
        if location is None:
            self.fs, self.root, self._local = pafs.LocalFileSystem(), "", True
        else:
            log = location if isinstance(location, LogLocation) else LogLocation(location)
            self.fs, self.root, self._local = log.fs, log.root, log.local
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.started = time.time()
        self._last_time = self.started
        self._last_cpu = (0.0, 0.0)  # the first record holds the process's start-up CPU
        self._last_counts: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.records = 0  # lines written
        self.failed = 0  # lines storage refused (logged, not retried)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (idempotent); it writes "startup" once the process is ready."""
        if self.enabled and self._thread is None:
            self.pid = os.getpid()  # a fork after __init__ is another process
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ship-usage", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and write the "shutdown" record (after in-flight requests)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.enabled:
            self.write("shutdown")

    def _run(self) -> None:
        deadline = time.monotonic() + self.interval
        while not self.ready() and time.monotonic() < deadline:
            if self._stop.wait(_READY_POLL_S):
                return
        self.write("startup")
        while not self._stop.wait(self.interval):
            self.write("serving")

    # -- records ----------------------------------------------------------------------------
    def counts(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """Cumulative (requests, errors, predictions) per (model, version), from Metrics."""
        requests = dict(self.metrics.requests)  # one C-level copy: safe against the loop
        rows = dict(self.metrics.rows)
        out: dict[tuple[str, str], list[int]] = {v: [0, 0, 0] for v in self.versions}
        for (model, version, endpoint, status), count in requests.items():
            if endpoint == "feedback":
                continue
            entry = out.setdefault((model, version), [0, 0, 0])
            entry[0] += count
            if status >= 400:
                entry[1] += count
        for key, count in rows.items():
            out.setdefault(key, [0, 0, 0])[2] += count
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def sample(self, phase: str) -> list[dict[str, Any]]:
        """The records for the interval since the previous sample (and advance it)."""
        with self._lock:
            now = time.time()
            user, system = cpu_times()
            d_user = max(user - self._last_cpu[0], 0.0)
            d_system = max(system - self._last_cpu[1], 0.0)
            interval = max(now - self._last_time, 0.0)
            counts = self.counts()
            deltas = {key: tuple(c - p for c, p in zip(
                value, self._last_counts.get(key, (0, 0, 0)), strict=True))
                for key, value in counts.items()}
            self._last_time, self._last_cpu, self._last_counts = now, (user, system), counts
            self._seq += 1
            predictions = sum(d[2] for d in deltas.values())
            common = {"time": _iso(now), "started": _iso(self.started), "host": self.host,
                      "pid": self.pid, "seq": self._seq, "phase": phase,
                      "interval_s": round(interval, 6), "process_cpu_s": round(user + system, 6),
                      "max_rss_mb": _max_rss_mb()}
            records = []
            for (model, version), (requests, errors, rows) in deltas.items():
                share = rows / predictions if predictions else 1 / len(deltas)
                records.append({**common, "cpu_user_s": round(d_user * share, 6),
                                "cpu_system_s": round(d_system * share, 6),
                                "model": model, "version": version, "requests": requests,
                                "errors": errors, "predictions": rows,
                                "share": round(share, 6)})
            return records

    def write(self, phase: str) -> int:
        """Sample and append the records now; the number written (0 when storage fails)."""
        records = self.sample(phase)
        if not self.enabled or not records:
            return 0
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        try:
            self._append(data)
        except Exception:  # storage down: usage is lost for this interval, serving goes on
            logger.exception("usage: writing %d records failed", len(records))
            self.failed += len(records)
            return 0
        self.records += len(records)
        return len(records)

    def _append(self, data: bytes) -> None:
        now = datetime.now(UTC)
        folder = f"{self.root}/{STREAM}/date={now:%Y-%m-%d}"
        start = datetime.fromtimestamp(self.started, UTC)
        name = f"usage-{self.host}-{self.pid}-{start:%Y%m%dT%H%M%S}"
        if self._local:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(f"{folder}/{name}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                         0o644)
            try:
                os.write(fd, data)  # one write with O_APPEND: lines never interleave
            finally:
                os.close(fd)
            return
        self.fs.create_dir(folder, recursive=True)
        with contextlib.closing(self.fs.open_output_stream(
                f"{folder}/{name}-{self._seq:06d}.jsonl")) as out:
            out.write(data)
