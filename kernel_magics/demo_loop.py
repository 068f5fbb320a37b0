"""Steps 7 and 8 of `ship demo`: the loop closes on the running service.

Step 7 is one look of `ship watch digits` (retrain/watch.py) at the shifted window:
dataset drift fires, `ship retrain` runs the training notebook with the labelled
production rows as ``ship_new_data``, builds the challenger, gates it against the
champion on the newest labelled rows and on the champion's holdout, and releases it as
a canary. Step 8 sends more shifted traffic with ground truth while the release gate in
the `ship serve` process steps the canary up and promotes it.

A demo must finish in a couple of minutes, so :func:`configure` gives the release gate
and the loop short steps (in the workspace's ship.toml, where the serving process reads
them, and only when the file does not set them already).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import ShipError
from .workspace import CONFIG_FILE, Workspace, find_workspace

if TYPE_CHECKING:
    import pandas as pd

    from .retrain.retrain import RetrainResult

Echo = Callable[[str], Any]
SERVICE = "digits"
RELEASE_TIMEOUT_S = 60.0
RELEASE_RATE = 40  # requests a second while the canary is judged
DEMO_CONFIG = """
# Written by `ship demo`: a release gate and a loop fast enough for a two-minute demo
# (the defaults wait a minute at each canary step). Delete these sections for the defaults.
[release]
step_seconds = 3
interval_s = 1

[loop]
canary_percent = 50
canary_steps = "50,100"
"""


def configure(workspace: Workspace) -> Workspace:
    """Add the demo's [release] and [loop] sections to ship.toml when it has neither."""
    if "release" in workspace.config or "loop" in workspace.config:
        return workspace
    path = workspace.ship_dir / CONFIG_FILE
    with path.open("a", encoding="utf-8") as config:
        config.write(DEMO_CONFIG)
    return find_workspace(workspace.root)


def close_loop(workspace: Workspace, window: str, end: float, echo: Echo) -> RetrainResult:
    """Step 7: one look of the watcher at the shifted window (``window`` long, ending at
    ``end``, epoch seconds)."""
    from .retrain.report import render_text
    from .retrain.watch import Watcher, state_file

    echo(f"7/10 loop: ship watch {SERVICE} looks at the shifted window: drift -> retrain -> "
         "gate -> canary")
    state_file(workspace, SERVICE).unlink(missing_ok=True)  # a fresh watcher, no back-off
    watcher = Watcher(workspace, SERVICE, window=window,
                      progress=lambda text: echo(f"  ... {text}"))
    started = time.monotonic()
    result = watcher.tick(now=datetime.fromtimestamp(end, UTC))
    if result is None:
        raise ShipError("the watcher saw no reason to retrain in the shifted window; "
                        f"`ship watch {SERVICE} --status` shows its events.")
    seconds = time.monotonic() - started
    echo("\n".join(f"  {line}" for line in render_text(result.to_json()).splitlines()))
    if result.decision != "canary":
        raise ShipError(f"the challenger was not released ({result.decision}): "
                        f"{result.reason}")
    echo(f"  drift alarm -> challenger live as a canary: {seconds:.1f} s (retraining, build "
         "and gate included)")
    return result


def release(workspace: Workspace, url: str, result: RetrainResult,
            shift: Callable[[pd.DataFrame], pd.DataFrame], echo: Echo) -> None:
    """Step 8: traffic through ``shift``, with ground truth, until the release gate
    decides."""
    import httpx
    import numpy as np
    from sklearn.datasets import load_digits

    from .release.rollout import current_release, decisions

    assert result.challenger is not None
    canary = result.challenger.version
    echo(f"8/10 release: shifted traffic ({RELEASE_RATE} requests/s, ground truth for every "
         f"second) while the release gate watches canary {canary}")
    digits = load_digits(as_frame=True)
    features = digits.frame.drop(columns="target")
    target = digits.frame["target"].to_numpy()
    rng = np.random.default_rng(3)
    seen = len(decisions(workspace, SERVICE, limit=10_000)) - 1  # the canary's start
    deadline = time.monotonic() + RELEASE_TIMEOUT_S
    sent = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while current_release(workspace, SERVICE).canary is not None:
            if time.monotonic() > deadline:
                raise ShipError(f"the release gate did not decide on canary {canary} within "
                                f"{RELEASE_TIMEOUT_S:g} s; `ship deploy {SERVICE}` shows why.")
            picked = rng.integers(0, len(features), 5)
            rows = shift(features.iloc[picked])
            answer = client.post("/invocations", json={"dataframe_split": {
                "columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
            if answer.status_code == 200 and sent % 2 == 0:
                client.post("/feedback", json={
                    "request_id": answer.headers["x-request-id"],
                    "ground_truth": [int(t) for t in target[picked]]})
            sent += 1
            time.sleep(1 / RELEASE_RATE)
    for decision in decisions(workspace, SERVICE, limit=10_000)[::-1][seen:]:
        who = "gate" if decision.automatic else "by hand"
        echo(f"  {decision.time[11:19]} {decision.action:<8} {decision.version:<3} ({who}) "
             f"{decision.reason[:150]}")
    now = current_release(workspace, SERVICE)
    echo(f"  {sent} requests sent; champion now: version {now.champion}"
         + (" (the retrained model)" if now.champion == canary else " (rolled back)"))
    echo(f"  the story, step by step: ship watch {SERVICE} --status · ship deploy {SERVICE}")
