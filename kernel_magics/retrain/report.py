"""`ship retrain` and `ship watch --status` as text, and as HTML for the notebook widget."""

from __future__ import annotations

import html
from typing import Any

WORDS = {
    "canary": "released as a canary: the release gate promotes or rolls it back",
    "passed": "passed the gate (not released: --no-release)",
    "rejected": "rejected: the champion stays",
    "no-holdout": "not released: the champion has no holdout to check forgetting on",
    "too-little-feedback": "nothing trained: too little labelled production data",
    "first-model": "first model: nothing to compare with",
    "failed": "failed",
}


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _interval(check: dict[str, Any]) -> str:
    low_high = check.get("interval")
    return "-" if not low_high else f"[{low_high[0]:+.4f}, {low_high[1]:+.4f}]"


def _verdict(check: dict[str, Any]) -> str:
    return {True: "passed", False: "FAILED", None: "not judged"}[check.get("passed")]


def render_text(doc: dict[str, Any]) -> str:
    """A retraining's `--json` document as text."""
    lines = [f"retrain {doc['service']}: {doc['decision']} "
             f"({WORDS.get(doc['decision'], doc['decision'])})"]
    data = doc.get("data") or {}
    if doc.get("champion"):
        lines.append(f"  champion    version {doc['champion']}"
                     + _model(doc["models"]["champion"]))
    if doc.get("challenger"):
        lines.append(f"  challenger  version {doc['challenger']}"
                     + _model(doc["models"]["challenger"]))
    if data.get("labelled_rows"):
        lines.append(f"  data        {data['labelled_rows']:,} labelled production rows: "
                     f"{data['training_rows']:,} to train on ({data['path']}), the newest "
                     f"{data['recent_rows']:,} held out for the gate")
    for why, rows in (data.get("skipped") or {}).items():
        lines.append(f"              {rows:,} rows skipped: {why}")
    if doc.get("checks"):
        lines.append(f"  {'CHECK':<9} {'METRIC':<9} {'ROWS':>6} {'CHAMPION':>9} "
                     f"{'CHALLENGER':>10}  {'INTERVAL (challenger - champion)':<32} VERDICT")
        for c in doc["checks"]:
            lines.append(f"  {c['name']:<9} {c['metric']:<9} {c['rows']:>6} "
                         f"{_figure(c['champion']):>9} {_figure(c['challenger']):>10}  "
                         f"{_interval(c):<32} {_verdict(c)}")
    lines.append(f"  why         {doc['reason']}")
    if doc.get("canary"):
        canary = doc["canary"]
        lines.append(f"  canary      version {canary['version']} at {canary['percent']:g}% "
                     f"(steps {', '.join(f'{s:g}' for s in canary['steps'])}); "
                     f"`ship deploy {doc['service']}` shows the release")
    if doc.get("output"):
        lines.append(f"  notebook    {doc['output']}")
    return "\n".join(lines)


def _model(model: dict[str, Any] | None) -> str:
    if not model or not model.get("model"):
        return ""
    return f" (model {model['model']} version {model['model_version']}, run " \
           f"{(model.get('run_id') or '-')[:12]})"


def render_html(doc: dict[str, Any]) -> str:
    """The same as a table, for ``%ship retrain`` (self-contained, no scripts)."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(c['name'])}</td><td>{esc(c['metric'])}</td><td>{c['rows']}</td>"
        f"<td>{_figure(c['champion'])}</td><td>{_figure(c['challenger'])}</td>"
        f"<td>{_interval(c)}</td><td><b>{_verdict(c)}</b></td><td>{esc(c['reason'])}</td></tr>"
        for c in doc.get("checks", []))
    table = ("<table><tr><th>check</th><th>metric</th><th>rows</th><th>champion</th>"
             "<th>challenger</th><th>interval</th><th>verdict</th><th>why</th></tr>"
             f"{rows}</table>") if rows else ""
    head = (f"<b>retrain {esc(doc['service'])}: {esc(doc['decision'])}</b> "
            f"({esc(WORDS.get(doc['decision'], doc['decision']))})")
    versions = (f"<div>champion {esc(str(doc.get('champion') or '-'))} · challenger "
                f"{esc(str(doc.get('challenger') or '-'))}</div>")
    return (f"<div class='ship-retrain'>{head}{versions}{table}"
            f"<div>{esc(doc['reason'])}</div></div>")


def render_status(doc: dict[str, Any]) -> str:
    """`ship watch NAME --status` as text."""
    state = doc["state"]
    release = doc.get("release") or {}
    canary = release.get("canary")
    running = f"running (pid {state['pid']})" if doc["running"] else "not running"
    lines = [f"watch {doc['service']}: {running}",
             f"  release     champion {release.get('champion')}"
             + (f", canary {canary['version']} at {canary['percent']:g}%" if canary else "")]
    if state.get("backoff_until"):
        lines.append(f"  back-off    until {state['backoff_until']} after "
                     f"{state['rejections']} rejected challenger(s)")
    if state.get("last_retrain"):
        lines.append(f"  retrained   {state['last_retrain']}")
    if state.get("last_check"):
        lines.append(f"  last look   {state['last_check']}")
    lines.append("  events:")
    for event in doc["events"] or []:
        lines.append(f"    {event['time']}  {event['kind']:<8} {event['message']}")
    if not doc["events"]:
        lines.append("    none yet")
    return "\n".join(lines)
