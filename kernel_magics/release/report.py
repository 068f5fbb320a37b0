"""The release as text: what ``ship deploy NAME`` prints and ``%ship deploy`` shows
where widgets are not rendered (controller.release_view's dictionary)."""

from __future__ import annotations

from typing import Any

from .gate import NAMES, show_value


def _value(metric: str, value: float | None) -> str:
    return show_value(metric, value, "-")


def _verdict(passed: bool | None) -> str:
    return "waiting" if passed is None else "pass" if passed else "FAIL"


def render_text(view: dict[str, Any]) -> str:
    """The release, the canary's comparison, shadow reports and recent decisions."""
    lines = [f"service {view['service']}" + ("   (served by its local process)"
                                             if view.get("running") else ""),
             f"  champion  {view['champion']}"]
    canary = view.get("canary")
    if canary:
        steps = ", ".join(f"{s:g}" for s in canary["steps"])
        lines.append(f"  canary    {canary['version']} at {canary['percent']:g}% "
                     f"(steps {steps}; this step since {canary['started'][:19]})")
    if view.get("shadows"):
        lines.append(f"  shadows   {', '.join(view['shadows'])}")
    comparison = view.get("comparison")
    if comparison:
        lines += ["", f"gate: {comparison['status']}: {comparison['reason']}",
                  f"  {'check':<32} {'champion':>10} {'canary':>10} {'p':>8} {'n':>13}  "
                  "verdict"]
        for check in comparison["checks"]:
            p = "-" if check["p_value"] is None else f"{check['p_value']:.2g}"
            n = f"{check['n_champion']}/{check['n_canary']}"
            lines.append(f"  {NAMES.get(check['metric'], check['metric']):<32} "
                         f"{_value(check['metric'], check['champion']):>10} "
                         f"{_value(check['metric'], check['canary']):>10} {p:>8} {n:>13}  "
                         f"{_verdict(check['passed'])} ({check['threshold']})")
    for report in view.get("shadow_reports", []):
        agreement = report["agreement"]
        lines += ["", f"shadow {report['version']}: {report['requests']} copies, "
                  f"{report['dropped']} answered without a copy, agreement "
                  f"{'-' if agreement is None else f'{agreement:.1%}'} over "
                  f"{report['rows']} rows"]
        for flip in report["flips"][:5]:
            lines.append(f"  {flip['from']} -> {flip['to']}: {flip['count']}")
        for key, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
            pair = report[key]
            lines.append(f"  {label} latency: champion {_value(key, pair['champion'])}, "
                         f"shadow {_value(key, pair['shadow'])}")
    decisions = view.get("decisions", [])
    if decisions:
        lines += ["", "decisions (newest first):"]
        for d in decisions[:10]:
            who = "gate" if d["automatic"] else "by hand"
            lines.append(f"  {d['time'][:19]}  {d['action']:<8} {d['version']:<4} "
                         f"{who:<7}  {d['reason']}")
    return "\n".join(lines)


def render_html(view: dict[str, Any]) -> str:
    """The same as HTML for a notebook: the traffic split as a bar, then the tables."""
    from html import escape

    canary = view.get("canary")
    share = canary["percent"] if canary else 0.0
    champion = escape(str(view["champion"]))
    bar = (f'<div style="display:flex;height:14px;width:420px;border-radius:3px;'
           f'overflow:hidden;font-size:10px;color:white">'
           f'<div style="flex:{100 - share:g};background:var(--jp-brand-color1,#1976d2);'
           f'padding-left:4px">champion {champion} · {100 - share:g}%</div>')
    if canary:
        bar += (f'<div style="flex:{share:g};background:var(--jp-warn-color1,#f57c00);'
                f'padding-left:4px">{escape(canary["version"])} · {share:g}%</div>')
    bar += "</div>"
    shadows = ", ".join(escape(v) for v in view.get("shadows", []))
    parts = [f"<b>service {escape(view['service'])}</b>", bar]
    if shadows:
        parts.append(f"<div>shadows: {shadows}</div>")
    comparison = view.get("comparison")
    if comparison:
        rows = "".join(
            f"<tr><td>{escape(NAMES.get(c['metric'], c['metric']))}</td>"
            f"<td>{_value(c['metric'], c['champion'])}</td>"
            f"<td>{_value(c['metric'], c['canary'])}</td>"
            f"<td>{'-' if c['p_value'] is None else format(c['p_value'], '.2g')}</td>"
            f"<td>{c['n_champion']}/{c['n_canary']}</td>"
            f"<td>{_verdict(c['passed'])} ({escape(c['threshold'])})</td></tr>"
            for c in comparison["checks"])
        parts.append(f"<div>gate: <b>{escape(comparison['status'])}</b>: "
                     f"{escape(comparison['reason'])}</div><table><tr><th>check</th>"
                     f"<th>champion</th><th>canary</th><th>p</th><th>n</th><th>verdict</th>"
                     f"</tr>{rows}</table>")
    for report in view.get("shadow_reports", []):
        agreement = report["agreement"]
        parts.append(f"<div>shadow {escape(report['version'])}: agreement "
                     f"{'-' if agreement is None else f'{agreement:.1%}'} over "
                     f"{report['rows']} rows, {report['requests']} copies</div>")
    decisions = view.get("decisions", [])[:10]
    if decisions:
        rows = "".join(f"<tr><td>{escape(d['time'][:19])}</td><td>{escape(d['action'])}"
                       f"</td><td>{escape(d['version'])}</td><td>"
                       f"{'gate' if d['automatic'] else 'by hand'}</td>"
                       f"<td style='text-align:left'>{escape(d['reason'])}</td></tr>"
                       for d in decisions)
        parts.append(f"<table><tr><th>time</th><th>action</th><th>version</th><th>by</th>"
                     f"<th>reason</th></tr>{rows}</table>")
    return "<div class='ship-release'>" + "".join(parts) + "</div>"
