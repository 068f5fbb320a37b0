"""Prometheus metrics: request counts, errors, latency histograms per model version.

    ship_requests_total{model,version,endpoint,code}        counter
    ship_request_errors_total{model,version,endpoint}       counter (status >= 400)
    ship_request_duration_seconds{model,version}            histogram
    ship_model_ready{model,version}                         gauge
    ship_predictions_total{model,version}                   counter (rows answered, 2xx/3xx)
    ship_prediction_log_records_total / _dropped_total      counters
    ship_prediction_log_cpu_seconds_total{step}             counter (build, write)
    ship_process_cpu_seconds_total{mode}                    counter (user, system; all workers)
    ship_shadow_copies_total{model,version,outcome}         counter (scored, dropped)

Written by hand (the text format is small) so the hot path is a few dict updates.
With several workers each process writes a snapshot to a shared folder every second
(and when it answers /metrics) and /metrics adds the snapshots up, so any worker
answers for the whole service, counts from other workers at most a second old, and no
counter ever goes backwards between two scrapes.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
           5.0, 10.0)
Snapshot = dict[str, Any]


class Metrics:
    """In-process counters and histograms."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int], int] = defaultdict(int)
        self.histograms: dict[tuple[str, str], list[float]] = {}
        self.ready: dict[tuple[str, str], int] = {}
        # rows answered by successful inference requests (the usage meter reads these too)
        self.rows: dict[tuple[str, str], int] = defaultdict(int)
        self.log_records = 0
        self.log_dropped = 0
        self.log_cpu: dict[str, float] = {}  # step (build, write) -> CPU seconds
        # (user, system) CPU seconds; None: this process's own, read when snapshotted
        self.cpu: tuple[float, float] | None = None
        # shadows' copies: (model, version, "scored" | "dropped") -> count (shadow.py)
        self.shadow: dict[tuple[str, str, str], int] = {}

    def observe(self, model: str, version: str, endpoint: str, status: int,
                seconds: float, rows: int = 0) -> None:
        """Count one request, its latency and the rows it predicted."""
        self.requests[(model, version, endpoint, status)] += 1
        if rows:
            self.rows[(model, version)] += rows
        hist = self.histograms.get((model, version))
        if hist is None:
            # one count per bucket, +Inf, then sum and count
            hist = self.histograms[(model, version)] = [0.0] * (len(BUCKETS) + 3)
        hist[bisect.bisect_left(BUCKETS, seconds)] += 1
        hist[-2] += seconds
        hist[-1] += 1

    def snapshot(self) -> Snapshot:
        """A JSON-able copy, for other workers to add up."""
        return {
            "requests": [[*k, v] for k, v in self.requests.items()],
            "histograms": [[*k, v] for k, v in self.histograms.items()],
            "ready": [[*k, v] for k, v in self.ready.items()],
            "rows": [[*k, v] for k, v in self.rows.items()],
            "log": [self.log_records, self.log_dropped],
            "log_cpu": [[k, v] for k, v in self.log_cpu.items()],
            "cpu": list(self.cpu if self.cpu is not None else cpu_times()),
            "shadow": [[*k, v] for k, v in self.shadow.items()],
        }


def cpu_times() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, all threads."""
    times = os.times()
    return times.user, times.system


def merge(snapshots: list[Snapshot]) -> Metrics:
    """Add several workers' snapshots into one Metrics."""
    total = Metrics()
    for snap in snapshots:
        for model, version, endpoint, code, count in snap["requests"]:
            total.requests[(model, version, endpoint, int(code))] += count
        for model, version, values in snap["histograms"]:
            hist = total.histograms.setdefault((model, version), [0.0] * len(values))
            for i, value in enumerate(values):
                hist[i] += value
        for model, version, value in snap["ready"]:
            total.ready[(model, version)] = min(total.ready.get((model, version), 1), value)
        for model, version, count in snap.get("rows", []):
            total.rows[(model, version)] += count
        total.log_records += snap["log"][0]
        total.log_dropped += snap["log"][1]
        for step, seconds in snap.get("log_cpu", []):
            total.log_cpu[step] = total.log_cpu.get(step, 0.0) + seconds
        for model, version, outcome, count in snap.get("shadow", []):
            key = (model, version, outcome)
            total.shadow[key] = total.shadow.get(key, 0) + count
        user, system = snap.get("cpu", [0.0, 0.0])
        cpu = total.cpu or (0.0, 0.0)
        total.cpu = (cpu[0] + user, cpu[1] + system)
    return total


class SharedMetrics:
    """Snapshots of all workers in a folder (``SHIP_METRICS_DIR``), one file per pid."""

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None

    def publish(self, metrics: Metrics) -> None:
        """Write this worker's snapshot (atomically)."""
        if self.folder is None:
            return
        path = self.folder / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(metrics.snapshot()))
        temporary.replace(path)

    def collect(self, own: Metrics) -> Metrics:
        """Every worker's latest snapshot, this one's written first.

        Only published snapshots are added up, this worker's included: a file only ever
        grows, so whichever worker answers, no counter is lower than in an earlier answer
        (adding this worker's live counts to the others' older files made a scrape
        answered by another worker go backwards). A worker that exits leaves its file."""
        if self.folder is None:
            return merge([own.snapshot()])
        self.publish(own)
        snapshots = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                snapshots.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return merge(snapshots)


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(metrics: Metrics) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines = ["# HELP ship_requests_total Requests answered, by endpoint and status code.",
             "# TYPE ship_requests_total counter"]
    errors: dict[tuple[str, str, str], int] = defaultdict(int)
    for (model, version, endpoint, code), count in sorted(metrics.requests.items()):
        labels = _labels(model=model, version=version, endpoint=endpoint, code=str(code))
        lines.append(f"ship_requests_total{labels} {count}")
        if code >= 400:
            errors[(model, version, endpoint)] += count
    lines += ["# HELP ship_request_errors_total Requests answered with status >= 400.",
              "# TYPE ship_request_errors_total counter"]
    for (model, version, endpoint), count in sorted(errors.items()):
        lines.append(f"ship_request_errors_total"
                     f"{_labels(model=model, version=version, endpoint=endpoint)} {count}")
    lines += ["# HELP ship_request_duration_seconds Request latency per model version.",
              "# TYPE ship_request_duration_seconds histogram"]
    for (model, version), hist in sorted(metrics.histograms.items()):
        cumulative = 0.0
        bounds = [repr(b) for b in BUCKETS] + ["+Inf"]
        for le, bucket in zip(bounds, hist[:-2], strict=True):
            cumulative += bucket
            lines.append(f"ship_request_duration_seconds_bucket"
                         f"{_labels(model=model, version=version, le=le)} {cumulative:.0f}")
        base = _labels(model=model, version=version)
        lines.append(f"ship_request_duration_seconds_sum{base} {hist[-2]:.6f}")
        lines.append(f"ship_request_duration_seconds_count{base} {hist[-1]:.0f}")
    lines += ["# HELP ship_model_ready 1 once the warm-up inference succeeded.",
              "# TYPE ship_model_ready gauge"]
    for (model, version), value in sorted(metrics.ready.items()):
        lines.append(f"ship_model_ready{_labels(model=model, version=version)} {value}")
    lines += ["# HELP ship_predictions_total Rows answered by successful inference requests.",
              "# TYPE ship_predictions_total counter"]
    for (model, version), count in sorted(metrics.rows.items()):
        lines.append(f"ship_predictions_total{_labels(model=model, version=version)} {count}")
    user, system = metrics.cpu if metrics.cpu is not None else cpu_times()
    lines += ["# HELP ship_process_cpu_seconds_total CPU seconds of the serving processes.",
              "# TYPE ship_process_cpu_seconds_total counter",
              f'ship_process_cpu_seconds_total{{mode="user"}} {user:.6f}',
              f'ship_process_cpu_seconds_total{{mode="system"}} {system:.6f}']
    lines += ["# HELP ship_prediction_log_records_total Requests written to the log.",
              "# TYPE ship_prediction_log_records_total counter",
              f"ship_prediction_log_records_total {metrics.log_records}",
              "# HELP ship_prediction_log_dropped_total Requests the log could not keep.",
              "# TYPE ship_prediction_log_dropped_total counter",
              f"ship_prediction_log_dropped_total {metrics.log_dropped}",
              "# HELP ship_prediction_log_cpu_seconds_total CPU seconds the log spent "
              "building columns and writing segments.",
              "# TYPE ship_prediction_log_cpu_seconds_total counter"]
    for step, seconds in sorted(metrics.log_cpu.items()):
        lines.append(f"ship_prediction_log_cpu_seconds_total{_labels(step=step)} {seconds:.6f}")
    lines += ["# HELP ship_shadow_copies_total Copies of answered requests sent to shadow "
              "versions: scored, or dropped because the shadows fell behind.",
              "# TYPE ship_shadow_copies_total counter"]
    for (model, version, outcome), count in sorted(metrics.shadow.items()):
        lines.append(f"ship_shadow_copies_total"
                     f"{_labels(model=model, version=version, outcome=outcome)} {count}")
    return "\n".join(lines) + "\n"
