"""The compact summary a tracked cell ends with, as plain text and as HTML.

Rendering is pure: a record (and, once written, where it landed) in, strings
out. The magic shows the HTML in a widget and updates it when the writer is done
(display/summary.py); papermill and nbconvert keep the text and HTML fallbacks, which
`ship run` rewrites once the runs are written (batch/runner.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from .record import RunRecord, WrittenRun

MAX_ITEMS = 8
SUMMARY_MIME = "application/vnd.ship.run-summary+json"


@dataclass
class SummaryLine:
    label: str
    text: str


def _items(values: dict[str, str], limit: int = MAX_ITEMS) -> str:
    shown = [f"{k}={v if len(v) <= 40 else v[:37] + '...'}" for k, v in
             list(values.items())[:limit]]
    more = len(values) - limit
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "") if values else "none"


def _number(value: float) -> str:
    return f"{value:.6g}"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def lines(record: RunRecord, written: WrittenRun | None,
          warnings: list[str] | None = None) -> list[SummaryLine]:
    """The summary's rows, in display order."""
    rows: list[SummaryLine] = []
    if written is not None:
        where = written.url or f"run id {written.run_id}"
        rows.append(SummaryLine("run", f"{record.run_name} [{written.status}] in experiment "
                                f"{record.experiment!r}: written to MLflow, {where}"))
    else:
        rows.append(SummaryLine("run", f"{record.run_name} [{record.status}] in experiment "
                                f"{record.experiment!r}: pending, being written to MLflow in "
                                "the background (`ship sync` writes it now)"))
    rows.append(SummaryLine("params", _items(record.params)))
    metric_text = _items({k: _number(v) for k, v in record.metrics.items()})
    if record.skipped_metrics:
        metric_text += f"; not logged (over the limit): {', '.join(record.skipped_metrics)}"
    rows.append(SummaryLine("metrics", metric_text))
    if record.data:
        rows.append(SummaryLine("data", "; ".join(
            f"{d.name} {'x'.join(map(str, d.shape))} {d.kind} #{d.digest[:12]}"
            for d in record.data[:MAX_ITEMS])))
    else:
        rows.append(SummaryLine("data", "no DataFrame, array or tensor read"))
    env = record.environment
    if env is not None:
        change = env.change
        if change.previous_record is None:
            text = f"Python {env.python}, {env.package_count} packages (first run of experiment)"
        elif change.empty:
            text = f"Python {env.python}, {env.package_count} packages, unchanged since last run"
        else:
            parts = [f"+{k} {v}" for k, v in change.added.items()]
            parts += [f"-{k} {v}" for k, v in change.removed.items()]
            parts += [f"{k} {a} -> {b}" for k, (a, b) in change.changed.items()]
            if change.python_changed:
                parts.insert(0, f"Python now {env.python}")
            text = "changed since last run: " + ", ".join(parts[:MAX_ITEMS])
            if len(parts) > MAX_ITEMS:
                text += f" (+{len(parts) - MAX_ITEMS} more)"
        if env.gpus:
            text += f"; GPU: {', '.join(env.gpus)}"
        rows.append(SummaryLine("environment", text))
    git = record.git
    if git is not None and git.commit:
        rows.append(SummaryLine("git", f"{git.branch or 'detached'} @ {git.commit[:10]}"
                                + (" (uncommitted changes logged as a diff)" if git.dirty
                                   else "")))
    if record.resources is not None and record.cost is not None:
        r, c = record.resources, record.cost
        text = (f"{r.wall_s:.2f} s wall, {r.cpu_s:.2f} CPU s, {r.gpu_s:.2f} GPU s, peak "
                f"{_bytes(r.peak_memory_bytes)}; {c.amount:.6f} {c.currency} "
                f"({'estimate' if c.estimated else 'measured'})")
        rows.append(SummaryLine("cost", text))
    if record.model is not None:
        rows.append(SummaryLine("model", f"{record.model.variable} ({record.model.class_name}, "
                                f"{record.model.flavor} flavor)"))
    if record.error:
        rows.append(SummaryLine("error", record.error))
    for warning in warnings or []:
        rows.append(SummaryLine("warning", warning))
    return rows


def render_text(record: RunRecord, written: WrittenRun | None,
                warnings: list[str] | None = None) -> str:
    rows = lines(record, written, warnings)
    width = max(len(r.label) for r in rows)
    return "\n".join(f"ship {r.label.ljust(width)}  {r.text}" for r in rows)


def render_html(record: RunRecord, written: WrittenRun | None,
                warnings: list[str] | None = None) -> str:
    rows = lines(record, written, warnings)
    state = "written" if written is not None else "pending"
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:1em;vertical-align:top">'
        f"{html.escape(r.label)}</th><td style=\"text-align:left\">{_linkify(r, written)}</td></tr>"
        for r in rows)
    return (f'<div class="jp-ship-summary jp-ship-summary-{state}" '
            f'data-ship-record="{html.escape(record.record_id)}">'
            f'<table style="font-size:var(--jp-ui-font-size1, 12px)">{body}</table></div>')


def _linkify(row: SummaryLine, written: WrittenRun | None) -> str:
    text = html.escape(row.text)
    if row.label == "run" and written is not None and written.url:
        url = html.escape(written.url)
        text = text.replace(url, f'<a href="{url}" target="_blank" rel="noopener">{url}</a>')
    return text


def summary_bundle(record: RunRecord, written: WrittenRun | None,
                   warnings: list[str] | None = None) -> dict[str, Any]:
    """The summary as a mime bundle: text, HTML, and Ship's own type (record id, state)."""
    return {"text/plain": render_text(record, written, warnings),
            "text/html": render_html(record, written, warnings),
            SUMMARY_MIME: {"record_id": record.record_id,
                           "state": "written" if written else "pending"}}
