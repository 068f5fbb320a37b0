"""`%ship drift NAME`: the drift report as a live widget, with text and HTML fallbacks.

Notebook display, an adapter like magics.py: the monitor stage returns the report as
data (``DriftReport.to_json()``); this module draws it.

The widget (ipywidgets) shows the dataset-drift verdict, a bar per feature (its score
against its own threshold: the dashed line is the threshold, drifted features in the
error colour), and, for the feature chosen with the buttons below the chart, the
reference (training) vs. current distributions as overlaid bars, with every test's
method, score and threshold.

Front ends without widgets (papermill, nbconvert, a terminal) get the report's own
``to_html()`` / ``to_text()``. Everything is drawn as SVG from the report's JSON, so
``render_features`` and ``render_histogram`` are plain functions of that JSON.
"""

from __future__ import annotations

import html
import uuid
from typing import TYPE_CHECKING, Any

from IPython.display import display

from ..monitor.html import shares

if TYPE_CHECKING:
    from ..monitor.report import DriftReport

WIDTH = 420
ERROR = "var(--jp-error-color1, #d32f2f)"
BRAND = "var(--jp-brand-color1, #1976d2)"
MUTED = "var(--jp-ui-font-color2, #616161)"
REFERENCE = "var(--jp-layout-color4, #9e9e9e)"
FONT = "font-family: var(--jp-ui-font-family, sans-serif); font-size: 11px"
PREDICTION = "prediction"
DRIFT_MIME = "application/vnd.ship.drift+json"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.2e}"
    return f"{value:.4g}"


def _percent(share: float) -> str:
    return f"{share * 100:.3g} %"


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The features, then the prediction (named ``prediction``) when there is one."""
    entries = list(report.get("features") or [])
    prediction = report.get("prediction")
    if prediction:
        entries.append({**prediction, "feature": PREDICTION})
    return entries


def severity(score: float, threshold: float, method: str, cap: float = 2.0) -> float:
    """Score relative to its threshold: 1 at the threshold, more the further past it.

    Distances drift at ``score >= threshold``; p-values (``ks``, ``chi2``) at
    ``score < threshold``, so theirs is inverted."""
    if method.startswith(("ks", "chi2")):
        return cap if score <= 0 else min(cap, threshold / score)
    return min(cap, abs(score) / threshold) if threshold > 0 else 0.0


def render_header(report: dict[str, Any]) -> str:
    """The verdict: dataset drift, window, rows, notes."""
    dataset = report.get("dataset") or {}
    drifted = bool(dataset.get("drifted"))
    names = dataset.get("drifted_features") or []
    colour = ERROR if drifted else "var(--jp-success-color1, #388e3c)"
    verdict = "Dataset drift" if drifted else "No dataset drift"
    window = report.get("window") or {}
    reference = report.get("reference") or {}
    lines = [
        f'<div class="ship-drift-header" style="{FONT}; border-left: 3px solid {colour}; '
        'padding: 4px 8px; margin-bottom: 6px">',
        f'<b style="color: {colour}">{verdict}</b> in <b>{_esc(report.get("service"))}</b> '
        f'v{_esc(report.get("version") or "?")}: {len(names)} of '
        f'{len(report.get("features") or [])} features drifted '
        f'(share {_percent(float(dataset.get("share") or 0))}, threshold '
        f'{_percent(float(dataset.get("threshold") or 0))}; {_esc(dataset.get("method", ""))})',
        f'<br><span style="color: {MUTED}">window {_num(window.get("length_s"))} s: '
        f'{_esc(report.get("current_rows", 0))} rows vs {_esc(reference.get("rows"))} '
        'reference rows</span>',
    ]
    performance = report.get("performance")
    if performance:
        lines.append(f'<br>{_esc(performance["metric"])} {_num(performance["value"])} on '
                     f'{_esc(performance["labelled"])} labelled predictions '
                     f'({_esc(performance["method"])})')
    for note in report.get("notes") or []:
        lines.append(f'<br><span style="color: {MUTED}">{_esc(note)}</span>')
    lines.append("</div>")
    return "".join(lines)


def render_features(report: dict[str, Any], selected: str | None = None) -> str:
    """One bar per feature: score ÷ threshold, the threshold a dashed line."""
    entries = _entries(report)
    if not entries:
        return f'<p style="{FONT}; color: {MUTED}">No features to compare.</p>'
    label, right, row = 120, 150, 18
    plot = WIDTH - label - right
    cap = 2.0  # scores beyond twice the threshold are drawn at the edge
    at_threshold = label + plot / cap
    height = row * len(entries) + 18
    parts = [f'<svg class="ship-drift-features" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
             f'style="{FONT}">']
    for i, entry in enumerate(entries):
        y = 4 + i * row
        score = entry.get("score")
        threshold = float(entry.get("threshold") or 0) or 1.0
        ratio = 0.0 if score is None else severity(float(score), threshold,
                                                      str(entry.get("method", "")), cap)
        drifted = bool(entry.get("drifted"))
        colour = ERROR if drifted else BRAND
        name = str(entry.get("feature"))
        weight = "bold" if name == selected else "normal"
        parts.append(
            f'<text x="{label - 6}" y="{y + 10}" text-anchor="end" font-weight="{weight}" '
            f'fill="{ERROR if drifted else "currentColor"}">{_esc(name[:18])}</text>')
        width = max(1.0, ratio * plot / cap) if score is not None else 0
        parts.append(
            f'<rect class="ship-drift-bar" data-feature="{_esc(name)}" '
            f'data-drifted="{str(drifted).lower()}" x="{label}" y="{y + 2}" '
            f'width="{width:.1f}" height="{row - 6}" fill="{colour}" fill-opacity="0.8">'
            f'<title>{_esc(name)}: {_esc(entry.get("method"))} {_num(score)} '
            f'(threshold {_num(entry.get("threshold"))})</title></rect>')
        status = entry.get("status", "")
        parts.append(
            f'<text x="{label + plot + 6}" y="{y + 10}" fill="{colour if drifted else MUTED}">'
            f'{_num(score)} / {_num(entry.get("threshold"))} · {_esc(status)}</text>')
    bottom = 4 + len(entries) * row
    parts.append(f'<line x1="{at_threshold:.1f}" x2="{at_threshold:.1f}" y1="2" '
                 f'y2="{bottom}" stroke="{ERROR}" stroke-dasharray="3 2"/>')
    parts.append(f'<text x="{at_threshold:.1f}" y="{bottom + 11}" text-anchor="middle" '
                 f'fill="{MUTED}">threshold</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_histogram(entry: dict[str, Any] | None) -> str:
    """Reference vs. current distribution of one feature (overlaid bars), and its tests."""
    if entry is None:
        return (f'<p class="ship-drift-hint" style="{FONT}; color: {MUTED}">Choose a feature '
                'to compare its reference and current distributions.</p>')
    name = _esc(entry.get("feature"))
    tests = "".join(
        f'<li style="color: {ERROR if t.get("drifted") else "inherit"}">'
        f'{_esc(t.get("method"))}: {_num(t.get("score"))} (threshold {_num(t.get("threshold"))}'
        + (f", p = {_num(t['p_value'])}" if t.get("p_value") is not None else "")
        + ")</li>" for t in entry.get("tests") or [])
    note = f'<li style="color: {MUTED}">{_esc(entry["note"])}</li>' if entry.get("note") else ""
    head = (f'<div class="ship-drift-histogram" data-feature="{name}" style="{FONT}">'
            f'<b>{name}</b>: reference (grey) vs current '
            f'({"red: drifted" if entry.get("drifted") else "blue"})'
            f'<ul style="margin: 2px 0 4px; padding-left: 18px">{tests}{note}</ul>')
    reference, current = entry.get("reference"), entry.get("current")
    if not reference or not current:
        return head + f'<p style="color: {MUTED}">No distribution ({_esc(entry.get("status"))}).' \
                      "</p></div>"
    colour = ERROR if entry.get("drifted") else BRAND
    if "edges" in reference:
        return head + _numeric_svg(reference, current, colour) + "</div>"
    return head + _categorical_svg(reference, current, colour) + "</div>"


def _numeric_svg(reference: dict[str, Any], current: dict[str, Any], colour: str) -> str:
    edges = [float(e) for e in reference["edges"]]
    bins = min(len(reference["counts"]), len(current.get("counts") or []), len(edges) - 1)
    ref, cur = shares(reference["counts"][:bins]), shares(current["counts"][:bins])
    height, bottom, left, right = 120, 104, 4, WIDTH - 4
    top = max(ref + cur + [1e-12])
    slot = (right - left) / max(1, bins)
    parts = [f'<svg class="ship-drift-hist" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">']
    for bars, fill, opacity, who in ((ref, REFERENCE, 0.6, "reference"),
                                     (cur, colour, 0.55, "current")):
        for i, share in enumerate(bars):
            h = (bottom - 4) * share / top
            parts.append(
                f'<rect class="ship-hist-{who}" x="{left + i * slot:.1f}" y="{bottom - h:.1f}" '
                f'width="{max(0.5, slot - 0.5):.1f}" height="{h:.1f}" fill="{fill}" '
                f'fill-opacity="{opacity}"><title>{who} [{_num(edges[i])}, '
                f'{_num(edges[i + 1])}): {_percent(share)}</title></rect>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" '
                 f'stroke="{MUTED}"/>')
    parts.append(f'<text x="{left}" y="{height - 3}" fill="{MUTED}">{_num(edges[0])}</text>')
    parts.append(f'<text x="{right}" y="{height - 3}" text-anchor="end" fill="{MUTED}">'
                 f'{_num(edges[bins])}</text></svg>')
    return "".join(parts)


def _categorical_svg(reference: dict[str, Any], current: dict[str, Any], colour: str) -> str:
    names = [str(c) for c in reference["categories"]][:20]
    ref = shares(reference["counts"])
    current_shares = dict(zip([str(c) for c in current.get("categories") or []],
                              shares(current.get("counts") or []), strict=False))
    label, band = 110, 16
    height = len(names) * (band + 4) + 4
    top = max(ref + list(current_shares.values()) + [1e-12])
    plot = WIDTH - label - 90
    parts = [f'<svg class="ship-drift-hist" xmlns="http://www.w3.org/2000/svg" '
             f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">']
    for i, name in enumerate(names):
        y = 2 + i * (band + 4)
        r, c = ref[i] if i < len(ref) else 0.0, current_shares.get(name, 0.0)
        parts.append(f'<text x="{label - 6}" y="{y + 11}" text-anchor="end" '
                     f'fill="currentColor">{_esc(name[:16])}</text>')
        parts.append(f'<rect class="ship-hist-reference" x="{label}" y="{y}" '
                     f'width="{plot * r / top:.1f}" height="{band / 2:.0f}" fill="{REFERENCE}">'
                     f'<title>reference {_esc(name)}: {_percent(r)}</title></rect>')
        parts.append(f'<rect class="ship-hist-current" x="{label}" y="{y + band / 2:.0f}" '
                     f'width="{plot * c / top:.1f}" height="{band / 2:.0f}" fill="{colour}">'
                     f'<title>current {_esc(name)}: {_percent(c)}</title></rect>')
        parts.append(f'<text x="{label + plot * max(r, c) / top + 4:.1f}" y="{y + 11}" '
                     f'fill="{MUTED}">{_percent(r)} → {_percent(c)}</text>')
    parts.append("</svg>")
    return "".join(parts)


class DriftWidget:
    """The live view of one drift report: verdict, per-feature bars, a feature picker and
    the chosen feature's reference vs. current histogram."""

    def __init__(self, report: dict[str, Any]) -> None:
        import ipywidgets

        self.report = report
        self._entries = {str(e["feature"]): e for e in _entries(report)}
        names = list(self._entries)
        self.header = ipywidgets.HTML(value=render_header(report))
        self.chart = ipywidgets.HTML(value=render_features(report))
        self.picker = ipywidgets.ToggleButtons(
            options=names, value=None, description="Feature:",
            tooltips=[f"{n}: {self._entries[n].get('status')}" for n in names],
            style={"button_width": "auto"})
        self.histogram = ipywidgets.HTML(value=render_histogram(None))
        self.picker.observe(self._on_pick, names="value")
        self.widget = ipywidgets.VBox([self.header, self.chart, self.picker, self.histogram])
        drifted = [n for n, e in self._entries.items() if e.get("drifted")]
        if drifted:  # open on the first drifted feature: what the user came to see
            self.select(drifted[0])

    @property
    def selected(self) -> str | None:
        """The feature whose histogram shows."""
        value = self.picker.value
        return None if value is None else str(value)

    def select(self, feature: str | None) -> None:
        """Show a feature's reference vs. current histogram (as clicking its button does)."""
        if feature is not None and feature not in self._entries:
            raise KeyError(f"no feature {feature!r}; features: {', '.join(self._entries)}")
        self.picker.value = feature

    def _on_pick(self, change: dict[str, Any]) -> None:
        feature = change["new"]
        self.chart.value = render_features(self.report, feature)
        self.histogram.value = render_histogram(
            None if feature is None else self._entries.get(str(feature)))


def show_drift(shell: Any, report: DriftReport) -> DriftWidget | None:
    """Display a ``DriftReport``: the widget in a kernel, its HTML/text everywhere else."""
    from ..monitor.html import render
    from ..monitor.report import render_text

    data = report.to_json()  # once: the text and the page are drawn from it
    bundle: dict[str, Any] = {"text/plain": render_text(data), "text/html": render(data),
                              DRIFT_MIME: {"service": data.get("service"),
                                           "version": data.get("version"),
                                           "drifted": (data.get("dataset") or {}).get("drifted")}}
    view = None
    if getattr(shell, "kernel", None) is not None:
        try:
            view = DriftWidget(data)
        except ImportError:
            view = None
    if view is not None:
        bundle["application/vnd.jupyter.widget-view+json"] = {
            "model_id": view.widget.model_id, "version_major": 2, "version_minor": 0}
    display(bundle, raw=True, display_id=f"ship-drift-{uuid.uuid4().hex[:8]}")
    return view
