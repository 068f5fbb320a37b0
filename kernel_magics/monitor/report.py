"""`drift_report`: a service's prediction log, window by window, against its reference.

    report = drift_report(workspace, "churn", window="1h", history=24)
    report.to_json()   # the REST API, the sidebar's Drift panel
    report.to_html()   # a self-contained page (inline SVG)
    report.to_text()   # `ship drift`

The newest bundle of the service carries the reference (``reference.parquet``, built
with ``--reference``); the log holds every version's requests. Feature drift uses every
request; prediction drift and accuracy only the newest version's answers. Windows end
now: window 0 is the last ``window``, and ``history`` windows are scored for the chart.
See docs/monitoring.md for the methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotFoundError, StorageError
from ..serving.predlog import LogLocation
from ..serving.predlog.reader import busiest_version
from ..workspace import Workspace
from .drift import FeatureResult, evaluate
from .reference import PREDICTION, FeatureProfile, read_reference
from .scan import LogScanner, Scan, Target, Windows
from .settings import DriftSettings

REFERENCE_FILE = "reference.parquet"


@dataclass
class DriftReport:
    """The drift of one service: the current window in detail, past windows as scores."""

    service: str
    version: str | None
    settings: DriftSettings
    window_start: datetime | None
    window_end: datetime | None
    reference_rows: int | None
    reference_path: str | None
    current_rows: int
    features: list[FeatureResult] = field(default_factory=list)
    prediction: FeatureResult | None = None
    performance: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0

    @property
    def judged(self) -> list[FeatureResult]:
        return [f for f in self.features if f.status in ("ok", "drift")]

    def dataset(self) -> dict[str, Any]:
        """Dataset drift: the share of judged features that drift."""
        judged = self.judged
        drifted = [f.feature for f in judged if f.drifted]
        share = len(drifted) / len(judged) if judged else 0.0
        threshold = self.settings.dataset_share
        return {"drifted": _dataset_drifted(len(drifted), len(judged), self.settings),
                "share": share,
                "threshold": threshold, "drifted_features": drifted,
                "judged": len(judged),
                "method": f"share of drifted features >= {threshold:g}"}

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "version": self.version,
            "window": {"length_s": self.settings.window_s,
                       "start": _iso(self.window_start), "end": _iso(self.window_end)},
            "reference": {"rows": self.reference_rows, "path": self.reference_path},
            "current_rows": self.current_rows,
            "thresholds": self.settings.to_json(),
            "dataset": self.dataset(),
            "features": [f.to_json() for f in self.features],
            "prediction": self.prediction.to_json() if self.prediction else None,
            "performance": self.performance,
            "history": self.history,
            "notes": self.notes,
            "generated": _iso(self.generated),
            "seconds": round(self.seconds, 4),
        }

    def to_html(self) -> str:
        from .html import render

        return render(self.to_json())

    def to_text(self) -> str:
        return render_text(self.to_json())


def _dataset_drifted(drifted: int, judged: int, settings: DriftSettings) -> bool:
    """Dataset drift: at least ``dataset_share`` of the judged features drift."""
    return judged > 0 and drifted / judged >= settings.dataset_share


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _bundle_facts(bundle_dir: Path) -> tuple[str | None, Target]:
    """The bundle's version and what shapes its answers; a bundle that does not load
    (damaged, half-copied) still gets a report on its log, with the defaults."""
    from ..serving.bundle import Bundle
    from ..serving.errors import BundleError

    try:
        bundle = Bundle.load(bundle_dir)
    except BundleError:
        return bundle_dir.name, Target(bundle_dir.name, "classification", None, False)
    schema = bundle.schema
    version = bundle.manifest.version
    return version, Target(version, schema.task, schema.class_labels,
                           "postprocess" in bundle.handler_functions)


def drift_report(workspace: Workspace, name: str, *, window: str | None = None,
                 history: int | None = None, now: datetime | None = None,
                 version: str | None = None, log_dir: str | None = None) -> DriftReport:
    """The drift report of service ``name`` (NotFoundError when there is no such service).

    ``window`` ("15m", "1h", "1d") and ``history`` (windows charted) default to
    ship.toml's ``[drift]``; ``now`` (default: the current time) ends the last window.
    ``version``: the bundle whose reference and answers are compared; by default the
    version that answered most of the current window (the newest built when the window
    is empty), not simply the newest built. ``log_dir``: where the prediction log is (a
    folder or URL such as ``s3://bucket/prefix``); by default the bundle's own.
    """
    import time

    from ..services import latest_bundle, service_folder

    started = time.perf_counter()
    bundle_dir, log_url = latest_bundle(workspace, name, log_dir)
    log = LogLocation(log_url)
    settings = DriftSettings.from_workspace(workspace, window=window, history=history)
    end = (now or datetime.now(UTC)).astimezone(UTC)
    length_us = int(round(settings.window_s * 1e6))
    windows = Windows(int(end.timestamp() * 1e6), length_us, settings.history)
    notes: list[str] = []
    newest = bundle_dir.name
    with _readable(log_url):
        chosen = version or busiest_version(log, *windows.bounds(0))
    if chosen is not None and chosen != newest:
        candidate = service_folder(workspace, name) / chosen
        if not (candidate / "ship.yaml").is_file():
            if version is not None:
                raise NotFoundError("version", f"{name}/{version}",
                                    hint=f"`ship models` and .ship/services/{name}/ list the "
                                         "built versions.")
        else:
            bundle_dir = candidate
            if version is None:
                notes.append(f"version {chosen} answered most of this window (the newest "
                             f"built is {newest}); pass --version to compare another.")
    version, target = _bundle_facts(bundle_dir)
    reference_path = bundle_dir / REFERENCE_FILE
    profiles: list[FeatureProfile] = []
    prediction: FeatureProfile | None = None
    reference_rows: int | None = None
    if reference_path.is_file():
        found = read_reference(reference_path)
        profiles = [p for p in found if p.feature != PREDICTION]
        prediction = next((p for p in found if p.feature == PREDICTION), None)
        reference_rows = max((p.count + p.null_count for p in profiles), default=0)
        if prediction is None:
            notes.append("the reference has no profile of the model's predictions (built "
                         "before prediction drift existed): rebuild to get prediction drift.")
    else:
        notes.append(f"service {name!r} version {version} has no reference profile: build "
                     "it with --reference TRAINING_DATA to monitor drift.")
    with _readable(log_url):
        scan = LogScanner(log, windows, profiles, prediction, target).run()
    current = 0
    start, stop = windows.bounds(current)
    window_rows = int(scan.rows[current])
    report = DriftReport(service=name, version=version, settings=settings,
                         window_start=start, window_end=stop,
                         reference_rows=reference_rows,
                         reference_path=str(reference_path) if reference_rows is not None
                         else None, current_rows=window_rows, notes=notes)
    results = [evaluate(scan.sketches[p.feature], current, window_rows, settings)
               for p in profiles]
    if scan.prediction is not None:
        report.prediction = evaluate(scan.prediction, current, window_rows, settings)
    known = {p.feature for p in profiles}
    report.features = results + [_new_feature(feature, kind, settings) for feature, kind in
                                 sorted(scan.log_features.items())
                                 if feature not in known and profiles]
    report.performance = _performance(scan, current)
    report.history = _history(scan, profiles, settings, (results, report.prediction))
    report.notes += scan.notes + _scan_notes(scan, name, log_url, target, report)
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _readable(log: str) -> Iterator[None]:
    """A log whose storage refuses (unreachable, no access) is a StorageError naming it."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"cannot read the prediction log at {log}: {exc}") from None


def _new_feature(feature: str, arrow_type: str, settings: DriftSettings) -> FeatureResult:
    numeric = arrow_type not in ("string", "large_string")
    method = "wasserstein/std" if numeric else "js"
    return FeatureResult(feature, "numeric" if numeric else "categorical", "new", method,
                         None, settings.wasserstein if numeric else settings.js, False,
                         note="in the prediction log but not in the reference: rebuild the "
                         "bundle with --reference data that has it.")


def _performance(scan: Scan, window: int) -> dict[str, Any] | None:
    performance = scan.performance
    if performance is None:
        return None
    value = performance.value(window)
    labelled = int(performance.labelled[window])
    if value is None:
        return None
    metric = "accuracy" if performance.classification else "rmse"
    method = "share of labelled predictions equal to the ground truth" \
        if performance.classification else "root mean squared error against the ground truth"
    return {"metric": metric, "value": value, "labelled": labelled,
            "method": f"{method} (feedback joined by request id)"}


def _history(scan: Scan, profiles: list[FeatureProfile], settings: DriftSettings,
             current: tuple[list[FeatureResult], FeatureResult | None]
             ) -> list[dict[str, Any]]:
    """Scores of every window, oldest first (the current one last, from ``current``: its
    feature and prediction results, already judged)."""
    entries = []
    for w in reversed(range(scan.windows.count)):
        start, end = scan.windows.bounds(w)
        rows = int(scan.rows[w])
        if w == 0:
            results, predicted = current
        else:
            results = [evaluate(scan.sketches[p.feature], w, rows, settings, detail=False)
                       for p in profiles]
            predicted = None if scan.prediction is None else \
                evaluate(scan.prediction, w, rows, settings, detail=False)
        drifted = [r.feature for r in results if r.drifted]
        judged = sum(r.status in ("ok", "drift") for r in results)
        entry: dict[str, Any] = {
            "start": start.isoformat(), "end": end.isoformat(), "rows": rows,
            "requests": int(scan.requests[w]),
            "scores": {r.feature: _clean(r.score) for r in results}, "drifted": drifted,
            "dataset_drifted": _dataset_drifted(len(drifted), judged, settings),
        }
        if predicted is not None:
            entry["prediction"] = _clean(predicted.score)
            entry["prediction_drifted"] = predicted.drifted
        if scan.performance is not None:
            entry["performance"] = scan.performance.value(w)
        entries.append(entry)
    return entries


def _clean(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _scan_notes(scan: Scan, name: str, log_dir: str, target: Target,
                report: DriftReport) -> list[str]:
    notes = []
    if scan.segments == 0:
        notes.append(f"no prediction log for {name!r} yet ({log_dir}): serve it with "
                     f"`ship serve {name}` and send requests.")
    elif report.current_rows == 0:
        latest = f" the latest request was at {scan.latest.isoformat(timespec='seconds')}." \
            if scan.latest is not None else ""
        notes.append(f"the current window ({report.settings.window}) has no requests:"
                     f" nothing to judge.{latest}")
    if scan.prediction_skipped:
        why = " (V2 answers are model tensors; this bundle's predictions come from " \
            "postprocess)" if target.postprocess else ""
        notes.append(f"{scan.prediction_skipped} answer(s) could not be read as one "
                     f"prediction per row{why}: left out of prediction drift.")
    dataset = report.dataset()
    if report.features and not dataset["judged"] and report.current_rows:
        notes.append("no feature could be judged in the current window.")
    return notes


def render_text(doc: dict[str, Any]) -> str:
    """The report as `ship drift` prints it."""
    window = doc["window"]
    lines = [f"drift of service {doc['service']} version {doc['version']}: window "
             f"{_short(window['start'])} .. {_short(window['end'])} "
             f"({doc['thresholds']['window']}), {doc['current_rows']:,} rows"]
    reference = doc["reference"]
    if reference["rows"] is not None:
        lines.append(f"  reference  {reference['rows']:,} training rows ({reference['path']})")
    dataset = doc["dataset"]
    if doc["features"]:
        verdict = "DRIFT" if dataset["drifted"] else "no drift"
        lines.append(f"  dataset    {verdict}: {len(dataset['drifted_features'])} of "
                     f"{dataset['judged']} judged features drift ({dataset['share']:.0%}; "
                     f"{dataset['method']})")
    performance = doc["performance"]
    if performance is not None:
        lines.append(f"  {performance['metric']:<10} {performance['value']:.4g} on "
                     f"{performance['labelled']:,} labelled rows ({performance['method']})")
    rows = [*doc["features"], *([doc["prediction"]] if doc["prediction"] else [])]
    if rows:
        width = max(12, *(len(r["feature"]) for r in rows))
        lines.append("")
        lines.append(f"  {'FEATURE':<{width}} {'KIND':<11} {'STATUS':<7} {'METHOD':<15} "
                     f"{'SCORE':>9} {'THRESHOLD':>9}  NOTE")
        for r in rows:
            score = "-" if r["score"] is None else f"{r['score']:.4g}"
            rule = "p <" if r["method"] in ("ks", "chi2") else ">="
            others = "; ".join(f"{t['method']} {_fmt(t)}" for t in r["tests"]
                               if t["method"] != r["method"])
            note = " ".join(x for x in (others and f"[{others}]", r["note"] or "") if x)
            lines.append(f"  {r['feature']:<{width}} {r['kind']:<11} {r['status']:<7} "
                         f"{r['method']:<15} {score:>9} {rule:>3} {r['threshold']:<5g}  "
                         f"{note}".rstrip())
    history = doc["history"]
    if len(history) > 1:
        marks = "".join("-" if h["rows"] == 0 else "D" if h["dataset_drifted"]
                        else "d" if h["drifted"] else "." for h in history)
        lines.append("")
        lines.append(f"  history    {marks}  (oldest .. now; . ok, d some features drift, "
                     "D dataset drift, - no requests)")
    for note in doc["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _short(value: str | None) -> str:
    return "-" if value is None else value[:16].replace("T", " ")


def _fmt(test: dict[str, Any]) -> str:
    if test["score"] is None:
        return "-"
    text = f"{test['score']:.3g}"
    if test["p_value"] is not None:
        text += f" (p {test['p_value']:.3g})"
    return text + (" drift" if test["drifted"] else "")
