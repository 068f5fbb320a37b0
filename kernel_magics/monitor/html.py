"""A drift report as one self-contained HTML page: inline CSS and SVG, no scripts, no CDN."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#59636e}.badge{display:inline-block;padding:1px 8px;border-radius:10px;
font-size:12px;font-weight:600}.ok{background:#dafbe1;color:#1a7f37}
.drift{background:#ffebe9;color:#cf222e}.empty,.missing{background:#eaeef2;color:#59636e}
.new{background:#fff8c5;color:#9a6700}table{border-collapse:collapse;width:100%}
td,th{padding:6px 8px;border-bottom:1px solid #d1d9e0;text-align:left;vertical-align:top}
th{font-size:12px;color:#59636e;font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums}.note{color:#59636e;font-size:12px}
.legend span{margin-right:12px}.swatch{display:inline-block;width:10px;height:10px;
margin-right:4px}svg text{font:10px system-ui,sans-serif;fill:#59636e}
"""
REF_COLOR = "#8c959f"
CUR_COLOR = "#0969da"
CELL = {"drift": "#cf222e", "ok": "#2da44e", None: "#eaeef2"}


def render(doc: dict[str, Any]) -> str:
    """The page for a report's ``to_json()``."""
    window = doc["window"]
    dataset = doc["dataset"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Drift: {escape(doc['service'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>Drift of {escape(doc['service'])} version {escape(str(doc['version']))}</h1>",
        f"<div class='meta'>window {escape(str(window['start']))} to "
        f"{escape(str(window['end']))} ({escape(doc['thresholds']['window'])}), "
        f"{doc['current_rows']:,} rows; reference "
        f"{'none' if doc['reference']['rows'] is None else format(doc['reference']['rows'], ',')}"
        " rows</div>",
    ]
    if doc["features"]:
        label = "drift" if dataset["drifted"] else "ok"
        parts.append(f"<p><span class='badge {label}'>dataset "
                     f"{'drift' if dataset['drifted'] else 'no drift'}</span> "
                     f"{len(dataset['drifted_features'])} of {dataset['judged']} judged features"
                     f" drift ({dataset['share']:.0%}; {escape(dataset['method'])})</p>")
    if doc["performance"]:
        perf = doc["performance"]
        parts.append(f"<p>{escape(perf['metric'])}: <b>{perf['value']:.4g}</b> on "
                     f"{perf['labelled']:,} labelled rows ({escape(perf['method'])})</p>")
    for note in doc["notes"]:
        parts.append(f"<p class='note'>{escape(note)}</p>")
    rows = [*doc["features"], *([doc["prediction"]] if doc["prediction"] else [])]
    if rows:
        parts.append("<h2>Features, current window</h2><div class='legend note'>"
                     f"<span><i class='swatch' style='background:{REF_COLOR}'></i>reference"
                     f"</span><span><i class='swatch' style='background:{CUR_COLOR}'></i>"
                     "current window</span></div><table><tr><th>feature</th><th>status</th>"
                     "<th>method</th><th>score</th><th>threshold</th><th>distribution</th>"
                     "<th>other tests</th></tr>")
        parts += [_feature_row(r) for r in rows]
        parts.append("</table>")
    if len(doc["history"]) > 1 and rows:
        parts.append("<h2>History</h2>")
        parts.append(_heatmap(doc))
    parts.append("</body></html>")
    return "".join(parts)


def _feature_row(r: dict[str, Any]) -> str:
    rule = "p &lt;" if r["method"] in ("ks", "chi2") else "&ge;"
    score = "&ndash;" if r["score"] is None else f"{r['score']:.4g}"
    tests = "<br>".join(
        f"{escape(t['method'])} {'-' if t['score'] is None else format(t['score'], '.3g')}"
        + ("" if t["p_value"] is None else f" (p {t['p_value']:.3g})")
        + (" <b>drift</b>" if t["drifted"] else "")
        for t in r["tests"] if t["method"] != r["method"])
    note = f"<div class='note'>{escape(r['note'])}</div>" if r["note"] else ""
    return (f"<tr><td>{escape(r['feature'])}{note}</td><td><span class='badge "
            f"{escape(r['status'])}'>{escape(r['status'])}</span></td>"
            f"<td>{escape(r['method'])}</td><td class='num'>{score}</td>"
            f"<td class='num'>{rule} {r['threshold']:g}</td><td>{_histogram(r)}</td>"
            f"<td class='note'>{tests}</td></tr>")


def shares(counts: list[Any]) -> list[float]:
    """Counts as shares of their total (a missing count as 0; zeros for no total)."""
    total = float(sum(c or 0 for c in counts))
    return [(c or 0) / total if total else 0.0 for c in counts]


def _histogram(r: dict[str, Any], width: int = 240, height: int = 56) -> str:
    """Reference and current shares side by side, per bin or category."""
    reference, current = r.get("reference"), r.get("current")
    if not reference or not current or not reference.get("counts"):
        return ""
    ref = shares(reference["counts"])
    cur_counts = list(current["counts"])
    cur = shares(cur_counts)
    top = max([*ref, *cur, 1e-12])
    bins = len(ref)
    step = width / bins
    bars = []
    for i, (a, b) in enumerate(zip(ref, cur, strict=True)):
        x = i * step
        for j, (value, color) in enumerate(((a, REF_COLOR), (b, CUR_COLOR))):
            h = value / top * (height - 12)
            label = reference.get("categories", [None] * bins)[i] if "categories" in \
                reference else f"{reference['edges'][i]:.3g}..{reference['edges'][i + 1]:.3g}"
            bars.append(f"<rect x='{x + j * step / 2:.1f}' y='{height - 12 - h:.1f}' "
                        f"width='{max(step / 2 - 0.5, 0.5):.1f}' height='{h:.1f}' "
                        f"fill='{color}'><title>{escape(str(label))}: "
                        f"{'reference' if j == 0 else 'current'} {value:.1%}</title></rect>")
    if "edges" in reference and reference["edges"]:
        lo, hi = reference["edges"][0], reference["edges"][-1]
        bars.append(f"<text x='0' y='{height - 1}'>{lo:.3g}</text><text x='{width}' "
                    f"y='{height - 1}' text-anchor='end'>{hi:.3g}</text>")
        outside = current.get("below", 0) + current.get("above", 0)
        if outside:
            bars.append(f"<text x='{width / 2}' y='{height - 1}' text-anchor='middle'>"
                        f"{outside:,} outside</text>")
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"role='img'>{''.join(bars)}</svg>")


def _heatmap(doc: dict[str, Any]) -> str:
    """Windows (columns, oldest first) by features (rows): drift, ok, or no data."""
    history = doc["history"]
    names = [f["feature"] for f in doc["features"] if f["status"] != "new"]
    with_prediction = doc["prediction"] is not None
    label_width, cell, gap = 160, max(6, min(24, 720 // max(len(history), 1))), 1
    rows = len(names) + (1 if with_prediction else 0) + 1
    width = label_width + len(history) * (cell + gap)
    height = rows * (cell + gap) + 24
    parts = [f"<svg width='{width}' height='{height}' role='img'>"]

    def row(y: int, label: str, cells: list[tuple[str | None, str]]) -> None:
        parts.append(f"<text x='0' y='{y + cell - 3}'>{escape(label[:28])}</text>")
        for i, (state, tip) in enumerate(cells):
            parts.append(f"<rect x='{label_width + i * (cell + gap)}' y='{y}' width='{cell}' "
                         f"height='{cell}' fill='{CELL[state]}'><title>{escape(tip)}</title>"
                         "</rect>")

    def tip(h: dict[str, Any], score: float | None) -> str:
        return f"{h['start'][:16]}: {'no data' if score is None else f'{score:.4g}'}"

    y = 0
    row(y, "rows", [("drift" if h["dataset_drifted"] else "ok" if h["rows"] else None,
                     f"{h['start'][:16]}: {h['rows']:,} rows") for h in history])
    for name in names:
        y += cell + gap
        row(y, name, [("drift" if name in h["drifted"] else
                       "ok" if h["scores"].get(name) is not None else None,
                       tip(h, h["scores"].get(name))) for h in history])
    if with_prediction:
        y += cell + gap
        row(y, "prediction", [("drift" if h.get("prediction_drifted") else
                               "ok" if h.get("prediction") is not None else None,
                               tip(h, h.get("prediction"))) for h in history])
    y += cell + gap + 14
    parts.append(f"<text x='{label_width}' y='{y}'>{escape(history[0]['start'][:16])}</text>"
                 f"<text x='{width}' y='{y}' text-anchor='end'>now</text></svg>")
    return "".join(parts)
