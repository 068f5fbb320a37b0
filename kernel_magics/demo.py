"""`ship demo` / `make demo`: the loop on examples/, end to end, on this machine.

1. train: `ship run examples/train.ipynb` for two learning rates (tracked runs, each
   exporting an fp32 and an int8 ONNX version of the model `digits`, with their test
   split as the historical holdout: `--eval`);
2. runs: what MLflow now holds;
3. models: the leaderboard, the most accurate version aliased `champion`;
4. build: the notebook's serve cell and the champion become the bundle `digits`, with the
   digits features as its drift reference;
5. serve: `ship serve digits` on a free port, real requests over both protocols (and a
   malformed one); the service keeps running (its release gate with it);
6. monitor: normal traffic (digits rows, ground truth for half of the requests) for one
   10-second window, then shifted traffic (a scanner that moves every image one pixel to
   the right) for the next; the drift report of each window (no drift, then dataset
   drift), the second also as HTML;
7. loop: one look of `ship watch digits` at the shifted window: the drift alarm retrains
   the notebook on the labelled production rows, the gate compares challenger and
   champion on the newest rows and on the holdout (forgetting), and the challenger goes
   out as a canary (demo_loop.py);
8. release: shifted traffic with ground truth while the service's release gate steps
   the canary up and promotes it; then a graceful stop, which flushes the prediction log
   and the usage records;
9. log: the prediction log this service process left, read back with DuckDB;
10. cost: CPU seconds per 1,000 predictions (measured in the serving process) and their
   price (estimated from the [cost] table).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ShipError

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from .monitor.report import DriftReport
    from .workspace import Workspace

Echo = Callable[[str], Any]

SERVICE = "digits"
# Step 6's traffic: one window of each kind; the reports' windows are these phases exactly.
PHASE_S = 10.0
PHASE_REQUESTS = 250
ROWS_PER_REQUEST = 5
FEEDBACK_EVERY = 2  # ground truth for every second request
REVIEW_LABELS = 20  # items of the review queue a person labels in step 6
# The shift: a new scanner's offset moves every image one pixel to the right. The model
# reads pixels by position, so it gets about half of such digits wrong, and production
# rows with ground truth teach the retrained model what shifted digits look like.
SHIFT_PIXELS = 1
# The features each report lists (all 64 are in the HTML page and in `ship drift`).
SHOWN_FEATURES = ("pixel_0_4", "pixel_2_2", "pixel_3_4", "pixel_4_5", "pixel_6_6", "pixel_7_3")


def run_demo(examples: Path, echo: Echo = print) -> None:
    """Run every step; raises ShipError naming the step that failed."""
    notebook = examples / "train.ipynb"
    if not notebook.is_file():
        raise ShipError(f"{notebook} not found; run `ship demo` from the repository root or "
                        "pass --examples DIR.")
    from .demo_loop import close_loop, configure, release
    from .services import start_service, stop_service
    from .workspace import find_workspace

    train(notebook, echo)
    workspace = configure(find_workspace(notebook.parent.resolve()))
    show_runs(workspace, echo)
    choose_champion(workspace, echo)
    built = build(notebook, echo)
    make_champion(workspace, built.version, echo)
    echo(f"5/10 serve: ship serve {SERVICE} (a free port, as the sidebar's Start does)")
    running = start_service(workspace, SERVICE)
    echo(f"  ready at {running.url}")
    try:
        serve_and_predict(running.url, echo)
        shifted = monitor(workspace, running.url, echo)
        result = close_loop(workspace, shifted.window, shifted.end, echo)
        release(workspace, running.url, result, shift_traffic, echo)
    finally:
        stop_service(workspace, SERVICE)  # graceful: the log and usage records are flushed
    echo("  service stopped (SIGTERM): prediction log and usage records flushed")
    log_dir = Path(workspace.services_dir) / SERVICE / "log"
    show_log(log_dir, running.started, echo)
    show_cost(workspace, running.started, echo)
    db = workspace.ship_dir / "mlflow.db"
    echo("\nLook further:")
    echo(f"  MLflow UI:   mlflow ui --backend-store-uri sqlite:///{db} --port 5000")
    echo(f"  JupyterLab:  jupyter lab {notebook}   (the Ship sidebar)")
    echo("  Terminal:    ship runs · ship models digits · ship serve digits · ship logs digits"
         " · ship drift digits · ship cost")
    echo("  The loop:    ship watch digits --status · ship deploy digits · ship retrain digits"
         " · ship watch digits")


def train(notebook: Path, echo: Echo) -> None:
    from .batch.runner import run_notebooks

    echo(f"1/10 train and export: ship run {notebook} -p lr 0.05, then -p lr 0.01")
    result = run_notebooks(notebook, [{"lr": 0.05}, {"lr": 0.01}], progress=True)
    for run in result.runs:
        echo(f"  lr={run.parameters['lr']}: {'ok' if run.ok else run.error} ({run.seconds:.0f} s)"
             f", output {run.output}")
    if not result.ok:
        raise ShipError("the training notebook failed; open the output notebook above.")


def show_runs(workspace: Any, echo: Echo) -> None:
    from .tracking.catalog import list_runs

    echo("2/10 runs in MLflow:")
    for row in list_runs(workspace, limit=4).runs:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in row.metrics.items()
                            if v is not None and not k.startswith("ship."))
        echo(f"  {row.status:<9} {row.name:<28} {metrics}")


def choose_champion(workspace: Any, echo: Echo) -> None:
    from .export.api import leaderboard, set_alias
    from .export.report import render_alias, render_leaderboard

    echo("3/10 model versions (fp32 and int8 per run); the most accurate becomes champion:")
    rows = leaderboard("digits", workspace=workspace)
    scored = [r for r in rows if r.metric is not None]
    if scored:
        best = max(scored, key=lambda r: (r.metric or 0.0, -(r.p50_ms or 0.0)))
        echo("  " + render_alias(set_alias("digits", best.version, "champion",
                                           workspace=workspace)))
        rows = leaderboard("digits", workspace=workspace)
    echo(render_leaderboard("digits", rows))


def make_champion(workspace: Workspace, version: str, echo: Echo) -> None:
    """A release left by an earlier demo names an older champion: the new build takes
    its place, as `ship deploy digits --version V --promote` would."""
    from .release.rollout import current_release, promote, release_file, rollback

    if not release_file(workspace, SERVICE).is_file():
        return
    if current_release(workspace, SERVICE).canary is not None:
        rollback(workspace, SERVICE, reason="an earlier demo's canary, ended by ship demo")
    if current_release(workspace, SERVICE).champion != version:
        promote(workspace, SERVICE, version=version)
        echo(f"  release: version {version} is the champion (ship deploy {SERVICE} --version "
             f"{version} --promote)")


def build(notebook: Path, echo: Echo) -> Any:
    from sklearn.datasets import load_digits

    from .bundle.build import build_service, describe

    echo(f"4/10 build: ship build {notebook} --name digits --reference <the digits features>")
    training = load_digits(as_frame=True).frame.drop(columns="target")
    result = build_service(notebook, "digits", reference=training)
    echo(describe(result))
    return result


def serve_and_predict(url: str, echo: Echo) -> None:
    """Real requests over both protocols, and a malformed one, to the running service."""
    import httpx
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True)
    features = digits.frame.drop(columns="target")
    sample = features.iloc[:3]
    with httpx.Client(base_url=url, timeout=10) as client:
        body = {"dataframe_split": {"columns": list(sample.columns),
                                    "data": sample.to_numpy().tolist()}}
        answer = client.post("/invocations", json=body)
        echo(f"  POST /invocations (dataframe_split, 3 rows) -> {answer.status_code} "
             f"{answer.json()['predictions']}   truth: {digits.target[:3].tolist()}")
        # V2 carries the model's own tensor: scaled already, as preprocess would.
        rows = features.iloc[3:8].to_numpy(dtype=np.float32) / 16.0
        name = client.get(f"/v2/models/{SERVICE}").json()["inputs"][0]["name"]
        v2 = {"inputs": [{"name": name, "datatype": "FP32", "shape": list(rows.shape),
                          "data": rows.ravel().tolist()}]}
        answer = client.post(f"/v2/models/{SERVICE}/infer", json=v2)
        logits = np.array(answer.json()["outputs"][0]["data"]).reshape(len(rows), -1)
        echo(f"  POST /v2/models/{SERVICE}/infer (5 rows, model tensor) -> "
             f"{answer.status_code} argmax {logits.argmax(1).tolist()}   "
             f"truth: {digits.target[3:8].tolist()}")
        bad = client.post("/invocations", json={"dataframe_split": {
            "columns": ["pixel_0_0"], "data": [[1.0]]}})
        echo(f"  POST /invocations with missing features -> {bad.status_code} "
             f"{bad.json()['error'][:90]}")
        for _ in range(50):
            client.post("/invocations", json=body)
        echo("  50 more predictions sent")


# -- step 6: traffic, then drift -----------------------------------------------------------
def shift_traffic(rows: pd.DataFrame, pixels: int = SHIFT_PIXELS) -> pd.DataFrame:
    """Each 8x8 image moved ``pixels`` to the right (row-major ``pixel_R_C`` columns); the
    columns it leaves on the left are blank."""
    import numpy as np
    import pandas as pd

    images = rows.to_numpy().reshape(len(rows), 8, 8)
    moved = np.zeros_like(images)
    moved[:, :, pixels:] = images[:, :, :8 - pixels]
    return pd.DataFrame(moved.reshape(len(rows), 64), columns=rows.columns, index=rows.index)


@dataclass
class Phase:
    """One phase of step 6, and the drift window it is: ``[start, start + seconds)``.

    Requests go out from ``start + 0.25`` to ``end - settle_s``; the rest of the window
    leaves time for the log's flush and the report, so no request of the next phase (or of
    the one before) can fall in it."""

    start: float  # epoch seconds
    seconds: float = PHASE_S
    settle_s: float = 3.0
    requests: int = 0
    rows: int = 0
    labelled: int = 0  # rows with ground truth sent
    # every request's true digits, by request id (a person reviewing would know them)
    truth: dict[str, list[int]] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def window(self) -> str:
        return f"{self.seconds:g}s"

    def describe(self) -> str:
        start = datetime.fromtimestamp(self.start, UTC)
        end = datetime.fromtimestamp(self.end, UTC)
        return (f"{self.requests} requests, {self.rows:,} rows, {self.labelled} with ground "
                f"truth, in [{start:%H:%M:%S}, {end:%H:%M:%S}) UTC")


def send_phase(client: httpx.Client, features: pd.DataFrame, target: Any, phase: Phase, *,
               seed: int, shift: bool = False, requests: int = PHASE_REQUESTS) -> Phase:
    """``requests`` requests of ``ROWS_PER_REQUEST`` random digits rows over /invocations,
    paced over the phase, with ground truth (POST /feedback) for every
    ``FEEDBACK_EVERY``-th; ``shift``: through :func:`shift_traffic` first."""
    import time

    import numpy as np

    rng = np.random.default_rng(seed)
    truths = np.asarray(target)
    first, last = phase.start + 0.25, phase.end - phase.settle_s
    for i in range(requests):
        delay = first + i * (last - first) / requests - time.time()
        if delay > 0:
            time.sleep(delay)
        picked = rng.integers(0, len(features), ROWS_PER_REQUEST)
        rows = features.iloc[picked]
        if shift:
            rows = shift_traffic(rows)
        answer = client.post("/invocations", json={"dataframe_split": {
            "columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
        answer.raise_for_status()
        phase.requests += 1
        phase.rows += len(rows)
        truth = [int(t) for t in truths[picked]]
        phase.truth[answer.headers["x-request-id"]] = truth
        if i % FEEDBACK_EVERY == 0:
            client.post("/feedback", json={"request_id": answer.headers["x-request-id"],
                                           "ground_truth": truth}).raise_for_status()
            phase.labelled += len(truth)
    return phase


def phase_report(workspace: Workspace, phase: Phase, *, history: int = 1,
                 timeout_s: float = 10.0) -> DriftReport:
    """The drift report whose current window is the phase (``now`` = its end), once the
    service's log writer has flushed every row and ground truth the phase sent."""
    import time

    from .monitor.report import drift_report

    deadline = time.monotonic() + timeout_s
    end = datetime.fromtimestamp(phase.end, UTC)
    while True:
        report = drift_report(workspace, SERVICE, window=phase.window, history=history,
                              now=end)
        labelled = report.performance["labelled"] if report.performance else 0
        if report.current_rows >= phase.rows and labelled >= phase.labelled or \
                time.monotonic() > deadline:
            return report
        time.sleep(0.25)


def report_text(report: DriftReport) -> str:
    """`ship drift`'s text (the report's own renderer) for ``SHOWN_FEATURES`` only."""
    from .monitor.report import render_text

    doc = report.to_json()
    listed = [f for f in doc["features"] if f["feature"] in SHOWN_FEATURES]
    doc["notes"] = [*doc["notes"], f"{len(listed)} of {len(doc['features'])} features listed; "
                    "all of them: the HTML page, `ship drift`"]
    doc["features"] = listed
    return "\n".join(f"  {line}" if line else line for line in render_text(doc).splitlines())


def drifted_summary(report: DriftReport) -> str:
    """How many features drifted, and the share that makes dataset drift."""
    dataset = report.dataset()
    drifted = dataset["drifted_features"]
    if not drifted:
        return "drifted features: none"
    return (f"drifted features: {len(drifted)} of {dataset['judged']} (dataset drift at "
            f"{dataset['threshold']:.0%}): {', '.join(drifted[:6])}"
            + (" ..." if len(drifted) > 6 else ""))


def monitor(workspace: Workspace, url: str, echo: Echo) -> Phase:
    """Step 6: normal, then shifted traffic, a drift report for each; the HTML page.
    The shifted phase, for the loop's look at it."""
    import time

    import httpx
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True)
    features = digits.frame.drop(columns="target")
    target = digits.frame["target"].to_numpy()
    echo(f"6/10 monitor: two {PHASE_S:g}-second windows of traffic, {PHASE_REQUESTS} requests "
         f"x {ROWS_PER_REQUEST} rows each, ground truth (POST /feedback) for every "
         f"{'second' if FEEDBACK_EVERY == 2 else f'{FEEDBACK_EVERY}th'} request")
    start = time.time()
    normal = Phase(start)
    shifted = Phase(normal.end)
    with httpx.Client(base_url=url, timeout=10) as client:
        send_phase(client, features, target, normal, seed=1)
        echo(f"  normal traffic (digits rows as they are): {normal.describe()}")
        report = phase_report(workspace, normal)
        echo(report_text(report))
        echo(f"  {drifted_summary(report)}")
        # send_phase paces from the phase start: it waits for the shifted window to begin
        send_phase(client, features, target, shifted, seed=2, shift=True)
    echo(f"  shifted traffic (a scanner that moves each image {SHIFT_PIXELS} pixel to the "
         f"right): {shifted.describe()}")
    report = phase_report(workspace, shifted, history=2)
    echo(report_text(report))
    echo(f"  {drifted_summary(report)}")
    html = Path(workspace.services_dir) / SERVICE / "drift.html"
    html.write_text(report.to_html(), encoding="utf-8")
    echo(f"  HTML report (both windows): {html}")
    echo(f"  CLI: ship drift {SERVICE} --window 1m --history 30 --html drift.html   (windows "
         "end when you run it)")
    review(workspace, {**normal.truth, **shifted.truth}, echo)
    return shifted


def review(workspace: Workspace, truth: dict[str, list[int]], echo: Echo,
           labels: int = REVIEW_LABELS) -> None:
    """The human-review queue of both windows (docs/review.md), and a person labelling
    ``labels`` of its items (the demo knows every request's digits)."""
    from .review.labels import Label, write_labels
    from .review.queue import review_queue

    queue = review_queue(workspace, SERVICE)
    reasons = ", ".join(f"{r} {n}" for r, n in queue.by_reason.items()) or "none"
    echo(f"  human review: {queue.routed} of {queue.scored:,} predicted rows routed to a "
         f"person (budget: {queue.settings.daily_share:.0%} of the day's predictions, at "
         f"most {queue.settings.daily_budget}); by reason: {reasons}")
    picked = [i for i in queue.items if i.request_id in truth][:labels]
    wrong = sum(truth[i.request_id][i.row] != i.prediction for i in picked)
    write_labels(workspace, SERVICE, [Label(i.request_id, truth[i.request_id][i.row], i.row)
                                      for i in picked])
    echo(f"  a person labels {len(picked)} of them: the model was wrong on {wrong} "
         f"(ship review {SERVICE}; the sidebar's Review panel)")


# -- steps 7 and 8, after the graceful stop -----------------------------------------------
def show_log(log_dir: Path, since: str, echo: Echo) -> None:
    from .serving.predlog import read_log

    entries = read_log(log_dir, since)
    errors = [e for e in entries if e.error]
    echo(f"9/10 prediction log: {len(entries)} requests since the service started "
         f"({len(errors)} error), in {log_dir}")
    for entry in entries[:2] + errors[:1]:
        detail = entry.error or entry.outputs or ""
        echo(f"  {entry.time:%H:%M:%S} {entry.endpoint:<12} {entry.status} "
             f"{entry.latency_ms:.2f} ms  {detail[:70]}")
    echo(f"  all of it: ship logs {SERVICE}   (or DuckDB on {log_dir}/**/*.parquet)")


def show_cost(workspace: Workspace, since: str, echo: Echo) -> None:
    """Step 8: the serving process's usage records since it started, priced."""
    from .cost.service import service_cost

    cost = service_cost(workspace, SERVICE, since=since)
    echo(f"10/10 cost of this service process ({cost.records} usage records: every 10 s and "
         "at the graceful stop)")
    per_1k = cost.cpu_s_per_1k_predictions
    running = cost.cpu_s - cost.startup_cpu_s
    echo(f"  measured:  {cost.predictions:,} predictions in {cost.requests:,} requests, "
         f"{cost.cpu_s:.2f} CPU s (start-up {cost.startup_cpu_s:.2f} s included)")
    if per_1k is not None and cost.predictions:
        echo(f"  measured:  {per_1k:.3f} CPU s per 1,000 predictions "
             f"({running / cost.predictions * 1000:.3f} without start-up; at this light, "
             "paced load idle CPU weighs in: docs/cost.md has figures under load)")
    if cost.amount_per_1k_predictions is not None:
        echo(f"  estimated: {cost.amount_per_1k_predictions:.3g} {cost.currency} per 1,000 "
             f"predictions ({cost.amount:.3g} {cost.currency} in all)")
    echo(f"  basis:     {cost.basis}")
    for note in cost.notes:
        echo(f"  note: {note}")
    echo(f"  CLI: ship cost --service {SERVICE} --since {since}")
