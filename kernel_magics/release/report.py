"""The release as text: what ``ship deploy NAME`` prints and ``%ship deploy`` shows
where widgets are not rendered (controller.release_view's dictionary)."""

from __future__ import annotations

from typing import Any

from .gate import NAMES


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric in ("error_rate", "disagreement", "accuracy"):
        return f"{value:.1%}"
    return f"{value:.2f} ms"


def _verdict(passed: bool | None) -> str:
    return "waiting" if passed is None else "pass" if passed else "FAIL"


def render_text(view: dict[str, Any]) -> str:
    """The release, the canary's comparison, shadow reports and recent decisions."""
    lines = [f"service {view['service']}" + ("" if view.get("running") else
                                             "   (not running: ship serve "
                                             f"{view['service']})"),
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
